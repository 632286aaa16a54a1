/* What banger adds to a guest root filesystem tree before it becomes an
 * ext4 image: the vsock agent and its systemd unit (enabled), a oneshot that
 * configures the network from the kernel's ip= argument, and a oneshot that
 * prints BANGER-BOOT-OK on the console once the agent was started. */
#ifndef BANGER_IMAGE_GUEST_H
#define BANGER_IMAGE_GUEST_H

#include <stdint.h>

#include "util/error.h"

#define IMAGES_BOOT_MARKER "BANGER-BOOT-OK"
#define IMAGES_GUEST_AGENT "/usr/local/sbin/banger-vsock-agent"

/* The host's agent binary: $BANGER_AGENT_PATH, else the installed one. */
const char *images_agent_path(void);
/* The host's guest start-up files: $BANGER_GUEST_DIR, else the installed dir. */
const char *images_guest_dir(void);

/* Write the files into the tree at `root`; adds their size to *bytes. */
int images_guest_inject(const char *root, uint64_t *bytes, struct banger_error *err);

#endif
