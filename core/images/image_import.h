/* `image import`: a root filesystem tarball (debootstrap output, `docker
 * export`, ...; plain, gzip, xz or zstd) becomes rootfs.ext4 with the guest
 * agent inside, next to a given kernel and optional initrd. */
#ifndef BANGER_IMAGE_IMPORT_H
#define BANGER_IMAGE_IMPORT_H

#include <stdint.h>

#include "images/image_bundle.h"
#include "images/image_stage.h"
#include "store/store.h"
#include "util/caller_open.h"
#include "util/error.h"

struct images_import_params {
    const char *name;
    const char *tar;
    const char *kernel;
    const char *initrd;            /* NULL: none */
    images_progress_fn progress;   /* may be NULL */
    void *progress_ctx;
    cJSON *warnings;               /* may be NULL; else an array the import appends
                                      warnings to (e.g. "no sshd") */
    const struct bg_caller *caller; /* tar, kernel and initrd are opened as this
                                       client; NULL: as the daemon */
    const struct images_cancel *cancel; /* checked between steps; NULL: never */
    uint64_t max_bytes;            /* the tree's content may not exceed this
                                      (images.max_rootfs_bytes); 0: no cap */
};

int images_import(struct store *store, const char *images_dir,
                  const struct images_import_params *p, struct image_record **out,
                  struct banger_error *err);

/* Extract a tarball into the existing directory `root`, refusing (with the
 * entry named) absolute paths, "..", links that point outside, and device
 * nodes, fifos and sockets anywhere but directly in dev/ (those are skipped
 * with a log line: the guest's devtmpfs provides /dev). Adds the content
 * size to *bytes. */
int images_extract_tree(const char *tar, const char *root, uint64_t *bytes,
                        struct banger_error *err);
/* The same from an open descriptor (read from its current position; left
 * open); `tar` names it in errors. With max_bytes non-zero, an entry that
 * would take the content (sizes as declared, sparse files at their full
 * size) past it is refused with -EFBIG before anything of it is written. */
int images_extract_tree_fd(int tar_fd, const char *tar, const char *root, uint64_t max_bytes,
                           uint64_t *bytes, struct banger_error *err);

/* Make an ext4 file `path` from the tree at `root`: a sparse file of
 * max(1 GiB, content x 1.5), then mkfs.ext4 -d. */
int images_make_ext4(const char *root, uint64_t content_bytes, const char *path,
                     struct banger_error *err);

/* The common tail of import and build-default: add the guest agent and
 * units to the tree at `root` (content size `bytes`), make `rootfs` from it
 * and remove the tree. Progress stages "agent", "mkfs". Warnings as for
 * images_guest_inject. */
int images_tree_to_rootfs(const char *root, uint64_t bytes, const char *rootfs,
                          images_progress_fn progress, void *progress_ctx, cJSON *warnings,
                          struct banger_error *err);

#endif
