/* The initrd for a distribution kernel whose virtio-mmio, virtio-blk,
 * virtio-net, vsock and ext4 drivers are modules: a gzip'd cpio (newc) with
 * a static busybox, those modules (uncompressed) and an /init script that
 * loads them in dependency order, mounts root= (default /dev/vda) and
 * switch_roots to /sbin/init. */
#ifndef BANGER_IMAGE_INITRD_H
#define BANGER_IMAGE_INITRD_H

#include "util/error.h"

/* Module names the initrd loads (with their dependencies), NULL-terminated. */
extern const char *const images_initrd_modules[];

/* modules_dir: /lib/modules/<ver>; busybox: a static busybox binary. */
int images_initrd_build(const char *modules_dir, const char *busybox, const char *out,
                        struct banger_error *err);

/* The load order for `images_initrd_modules` from modules_dir/modules.dep:
 * malloc'd array of malloc'd module paths relative to modules_dir,
 * dependencies first, NULL-terminated. Modules built into the kernel
 * (modules.builtin) are left out. */
int images_initrd_plan(const char *modules_dir, char ***paths, struct banger_error *err);
void images_initrd_plan_free(char **paths);

#endif
