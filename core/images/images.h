/* Image registration: an ext4 root filesystem plus an ELF vmlinux (and an
 * optional initrd), checked, then copied into state_dir/images/<dir>/ through
 * a staging directory renamed into place, then recorded in the store. */
#ifndef BANGER_IMAGES_H
#define BANGER_IMAGES_H

#include "store/store.h"
#include "util/error.h"

struct images_register_params {
    const char *name;
    const char *rootfs;
    const char *kernel;
    const char *initrd;  /* NULL: none */
};

/* Checks on the files themselves, usable without a store. */
int images_check_rootfs(const char *path, struct banger_error *err);
int images_check_kernel(const char *path, struct banger_error *err);

int images_register(struct store *store, const char *images_dir,
                    const struct images_register_params *p, struct image_record **out,
                    struct banger_error *err);
/* Refused while a VM uses the image; removes its files. */
int images_delete(struct store *store, const char *images_dir, const char *ref,
                  struct image_record **deleted, struct banger_error *err);

#endif
