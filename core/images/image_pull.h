/* `image pull`: an image bundle (a tar, usually zstd-compressed, holding
 * rootfs.ext4, manifest.json, vmlinux and optionally initrd.img) from an
 * http(s) URL or a local file. Members are checked against the manifest's
 * sha256 and, when given, the whole bundle against an expected sha256.
 * Nothing is left behind on failure; concurrent pulls of one name merge. */
#ifndef BANGER_IMAGE_PULL_H
#define BANGER_IMAGE_PULL_H

#include "images/image_stage.h"
#include "store/store.h"
#include "util/caller_open.h"
#include "util/error.h"

struct images_pull_params {
    const char *source;          /* http://, https:// or an absolute path */
    const char *name;            /* NULL: the manifest's "name" */
    const char *sha256;          /* NULL: no whole-bundle check */
    images_progress_fn progress; /* may be NULL */
    void *progress_ctx;
    const struct bg_caller *caller; /* a local source is opened as this client;
                                       NULL: as the daemon */
};

int images_pull(struct store *store, const char *images_dir, const struct images_pull_params *p,
                struct image_record **out, struct banger_error *err);

/* How many callers wait on the pull in flight for `key` (the name, or the
 * source when no name was given); for tests. */
int images_pull_waiters(const char *key);

#endif
