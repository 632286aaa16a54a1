/* banger-vmm-qemu: facts about the host that shape QEMU's command line. */
#ifndef VMM_HOST_H
#define VMM_HOST_H

#include <stdbool.h>
#include <stddef.h>

/* Chooses KVM or TCG from BANGER_VMM_ACCEL (kvm|tcg|auto, default auto); why says why.
 * -EINVAL for another value. */
int vmm_host_choose_accel(bool *ret_kvm, char *why, size_t why_len);

/* The host CPU's clock in MHz from /proc/cpuinfo; 0 when unknown. */
unsigned vmm_host_cpu_mhz(void);

/* Whether the host has /dev/vhost-vsock. */
bool vmm_host_has_vhost_vsock(void);

#endif
