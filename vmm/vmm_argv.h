/* banger-vmm-qemu: the qemu-system-x86_64 command line for a VM configured through the
 * Firecracker API. A pure function of its inputs, so tests can assert the exact argv. */
#ifndef VMM_ARGV_H
#define VMM_ARGV_H

#include <stdbool.h>
#include <stddef.h>

#include "fcapi.h"

/* Firecracker's kernel command line when PUT /boot-source has no boot_args. */
#define VMM_DEFAULT_BOOT_ARGS \
	"reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd " \
	"swiotlb=noforce"

struct vmm_qemu_opts {
	const char *qemu;      /* argv[0]: the QEMU binary */
	bool kvm;              /* accel=kvm; otherwise accel=tcg */
	unsigned host_mhz;     /* TCG only: pins the guest's TSC/loop calibration; 0: don't */
	int qmp_fd;            /* the QMP socket's fd number inside the QEMU process */
	bool vhost_vsock;      /* the host has /dev/vhost-vsock: give the guest a vsock */
};

/* Builds the argv for vm (read under its lock by the caller); *ret_argv is NULL-terminated
 * and freed with vmm_argv_free(). -EINVAL with msg for a configuration QEMU cannot run. */
int vmm_qemu_argv(const struct fcd_vm *vm, const struct vmm_qemu_opts *opts, char ***ret_argv,
		  char *msg, size_t msg_len);
void vmm_argv_free(char **argv);

#endif
