/* What banger adds to a guest root filesystem tree before it becomes an
 * ext4 image, for systemd (units enabled) or else busybox init (inittab):
 * - the vsock agent;
 * - banger-net: network, hostname and resolv.conf from the kernel's ip=
 *   argument;
 * - the work disk (LABEL=banger-work) mounted at /root (fstab, nofail) and
 *   seeded on first use with the image's /root and /etc/skel (banger-work);
 * - sshd: no host keys in the image (ssh-keygen -A on first boot, before
 *   sshd), root by key only;
 * - Ctrl-Alt-Del and poweroff shut down and end in a reset, the only way a
 *   Firecracker guest ends its VMM (ctrl-alt-del.target and poweroff.target
 *   are aliases of reboot.target);
 * - a oneshot that prints BANGER-BOOT-OK on the console once the agent was
 *   started. */
#ifndef BANGER_IMAGE_GUEST_H
#define BANGER_IMAGE_GUEST_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "util/error.h"

#define IMAGES_BOOT_MARKER "BANGER-BOOT-OK"
#define IMAGES_GUEST_AGENT "/usr/local/sbin/banger-vsock-agent"
/* The file system label of a VM's work disk: the guest mounts it by this. */
#define IMAGES_WORK_LABEL "banger-work"

/* The host's agent binary: $BANGER_AGENT_PATH, else the installed one. */
const char *images_agent_path(void);
/* The host's guest start-up files: $BANGER_GUEST_DIR, else the installed dir. */
const char *images_guest_dir(void);

/* Write the files into the tree at `root`; adds their size to *bytes.
 * What makes the image hard to use (no sshd, no init banger knows) is
 * logged and, when `warnings` is not NULL, appended to it as strings. */
int images_guest_inject(const char *root, uint64_t *bytes, cJSON *warnings,
                        struct banger_error *err);

#endif
