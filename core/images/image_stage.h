/* Shared by every way an image arrives (register, import, pull): a staging
 * directory beside the final one, file hashes and the kernel version for
 * manifest.json, then one rename and the store insert. Whatever fails, the
 * staging directory is removed and images/ holds nothing new. */
#ifndef BANGER_IMAGE_STAGE_H
#define BANGER_IMAGE_STAGE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"
#include "util/error.h"

#define IMAGES_SHA256_HEX 65

struct images_stage {
    char *staging;   /* images_dir/<id>.staging */
    char *final;     /* images_dir/<id> */
    bool committed;
};

/* Create images_dir (private) and a fresh staging directory in it. */
int images_stage_open(const char *images_dir, struct images_stage *st, struct banger_error *err);
/* malloc'd staging/<file>. */
char *images_stage_path(const struct images_stage *st, const char *file);
/* Hash rootfs.ext4, vmlinux and initrd.img (when present) in the staging
 * directory, write manifest.json (with `extra` members merged in; may be
 * NULL, not consumed), rename into place and insert into the store. */
int images_stage_commit(struct images_stage *st, struct store *store, const char *name,
                        const cJSON *extra, struct image_record **out, struct banger_error *err);
/* Remove the staging directory unless committed; free the paths. */
void images_stage_close(struct images_stage *st);

/* Copy a file (reflink where possible) to a new file `to`. */
int images_copy_file(const char *from, const char *to, struct banger_error *err);
/* The same from an open descriptor; `from` names it in errors. */
int images_copy_fd(int fd, const char *from, const char *to, struct banger_error *err);

/* Progress stages for long operations (download, extract, mkfs...). */
typedef void (*images_progress_fn)(void *ctx, const char *stage);

/* Fail with -EEXIST when an image of that name exists. */
int images_name_free(struct store *store, const char *name, struct banger_error *err);

/* sha256 of a file, streamed, as lowercase hex. */
int images_sha256_file(const char *path, char hex[IMAGES_SHA256_HEX], struct banger_error *err);
/* The same of an open descriptor, read from offset 0 (its position is left
 * anywhere); `path` names it in errors. */
int images_sha256_fd(int fd, const char *path, char hex[IMAGES_SHA256_HEX],
                     struct banger_error *err);
/* The same, checking `cancel` (image_bundle.h; NULL: never) before each
 * chunk: -ECANCELED once the client has gone away. */
struct images_cancel;
int images_sha256_fd_cancel(int fd, const char *path, const struct images_cancel *cancel,
                            char hex[IMAGES_SHA256_HEX], struct banger_error *err);
/* "6.1.0-18-amd64" from the "Linux version ..." banner in an ELF vmlinux's
 * .rodata (the first 64 MiB of the file when there is no section table).
 * -ENOENT when there is none. */
int images_kernel_version(const char *path, char *out, size_t len);

#endif
