/* Image registration: an ext4 root filesystem plus an ELF vmlinux (and an
 * optional initrd), checked, then copied into state_dir/images/<dir>/ through
 * a staging directory renamed into place, then recorded in the store. */
#ifndef BANGER_IMAGES_H
#define BANGER_IMAGES_H

#include "store/store.h"
#include "util/caller_open.h"
#include "util/error.h"

struct images_register_params {
    const char *name;
    const char *rootfs;
    const char *kernel;
    const char *initrd;  /* NULL: none */
    /* Who named the paths: they are opened with the client's credentials.
     * NULL: with the daemon's own (internal callers and tests). */
    const struct bg_caller *caller;
};

/* Open a file a client named, as that client (bg_caller_open; NULL: as the
 * daemon); `what` ("kernel", "initrd") leads the error. */
int images_open_source(const struct bg_caller *caller, const char *what, const char *path,
                       int *fd_out, struct banger_error *err);

/* Checks on the files themselves, usable without a store. The _fd forms
 * read the given descriptor (`path` only names it in errors); the others
 * open `path` as the daemon. */
int images_check_rootfs(const char *path, struct banger_error *err);
int images_check_kernel(const char *path, struct banger_error *err);
int images_check_rootfs_fd(int fd, const char *path, struct banger_error *err);
int images_check_kernel_fd(int fd, const char *path, struct banger_error *err);
/* A cpio archive, or one compressed in a way the kernel unpacks. */
int images_check_initrd_fd(int fd, const char *path, struct banger_error *err);

int images_register(struct store *store, const char *images_dir,
                    const struct images_register_params *p, struct image_record **out,
                    struct banger_error *err);
/* Refused while a VM uses the image; removes its files. */
int images_delete(struct store *store, const char *images_dir, const char *ref,
                  struct image_record **deleted, struct banger_error *err);

#endif
