/* banger-vmm-qemu: the QEMU child process, its QMP socket and its stderr. */
#ifndef VMM_QEMU_H
#define VMM_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The fd number QEMU finds its QMP socket on. */
#define VMM_QEMU_QMP_FD 3

/* Resolves the QEMU binary: $BANGER_VMM_QEMU, else qemu-system-x86_64 on $PATH. */
int vmm_qemu_find(char **ret_path, char *msg, size_t msg_len);

/* Starts QEMU with argv and completes the QMP handshake, so the VM really runs. On
 * failure QEMU is gone and msg says why (QEMU's own stderr when it exited). */
int vmm_qemu_start(char *const *argv, char *msg, size_t msg_len);

/* Sends the key combination Ctrl-Alt-Del to the guest's i8042 keyboard. */
int vmm_qemu_send_ctrl_alt_del(char *msg, size_t msg_len);

/* Stops or continues the guest's vCPUs (QMP stop / cont). */
int vmm_qemu_set_paused(bool paused, char *msg, size_t msg_len);

/* Kills QEMU (if running) and waits until it is reaped. */
void vmm_qemu_kill(void);

/* Called from the reaper thread when a QEMU that had started exits; never returns. */
extern void (*vmm_qemu_on_exit)(int wait_status);

#endif
