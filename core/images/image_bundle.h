/* An image bundle read as untrusted input. The format: a tar (any filter
 * libarchive reads, usually zstd) whose FIRST member is manifest.json,
 *   {"name": "...", "files": {"rootfs.ext4": {"size": N, "sha256": "hex"},
 *                             "vmlinux": {...}, "initrd.img": {...}}}
 * followed by exactly the files it lists (rootfs.ext4 and vmlinux required,
 * initrd.img optional), each once, as regular files. Every declared size
 * and their total are checked against the caps before any member byte is
 * written; a member's tar size must equal its declared size, its data may
 * not reach past it (sparse maps included), and its sha256 is computed over
 * exactly the declared size. */
#ifndef BANGER_IMAGE_BUNDLE_H
#define BANGER_IMAGE_BUNDLE_H

#include <archive.h>
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "images/image_stage.h"
#include "util/error.h"

#define IMAGES_BUNDLE_FILES 3          /* rootfs.ext4, vmlinux, initrd.img */
#define IMAGES_BUNDLE_MANIFEST_MAX (1u << 20)

/* Caps on what a pull may bring in (bytes). */
struct images_limits {
    uint64_t max_bundle_bytes;  /* the bundle file (download or local) and the members' total */
    uint64_t max_rootfs_bytes;
    uint64_t max_kernel_bytes;
    uint64_t max_initrd_bytes;
};
/* 64G bundle, 64G rootfs, 256M kernel, 1G initrd. */
extern const struct images_limits images_default_limits;

/* Long operations poll this and stop with -ECANCELED when it says so (the
 * daemon's: the client closed its connection). */
struct images_cancel {
    bool (*cancelled)(void *ctx);
    void *ctx;
};
/* False for NULL. */
bool images_cancelled(const struct images_cancel *c);

extern const char *const images_bundle_files[IMAGES_BUNDLE_FILES];

struct images_bundle_file {
    bool listed;
    uint64_t size;
    char sha256[IMAGES_SHA256_HEX];   /* the manifest's, lowercase */
};

struct images_bundle_manifest {
    cJSON *doc;                        /* the whole manifest ("name", "kernel_version") */
    struct images_bundle_file files[IMAGES_BUNDLE_FILES];
    uint64_t total;                    /* sum of the declared sizes */
};

/* Parse and check manifest.json: a JSON object whose "files" names only
 * known members, each with an integer "size" within its cap and a 64-hex
 * "sha256"; rootfs.ext4 and vmlinux present; the total within the bundle
 * cap. */
int images_bundle_manifest_parse(const char *text, size_t len, const struct images_limits *lim,
                                 struct images_bundle_manifest *out, struct banger_error *err);
void images_bundle_manifest_clear(struct images_bundle_manifest *m);

/* Read a whole bundle from `a` (opened, formats enabled) into the
 * directory `dir_fd`: manifest first, then each listed member created there
 * (O_EXCL, 0644) and verified as it streams. On success *m holds the
 * manifest. On failure files may remain in dir_fd (the caller's staging
 * directory, removed as a whole). */
int images_bundle_extract(struct archive *a, int dir_fd, const struct images_limits *lim,
                          const struct images_cancel *cancel,
                          struct images_bundle_manifest *m, struct banger_error *err);

#endif
