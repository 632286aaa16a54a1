/* `image pull`: an image bundle (see image_bundle.h: manifest.json first,
 * then rootfs.ext4, vmlinux and optionally initrd.img) from an http(s) URL
 * or a local file. Sizes are capped (images_limits) before anything is
 * written, members are checked against the manifest's sizes and sha256 and,
 * when given, the whole bundle against an expected sha256 (required for
 * plain http). https never redirects to http. Nothing is left behind on
 * failure or cancel; concurrent pulls of one name merge. */
#ifndef BANGER_IMAGE_PULL_H
#define BANGER_IMAGE_PULL_H

#include "images/image_bundle.h"
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
    const struct images_limits *limits; /* NULL: images_default_limits */
    const struct images_cancel *cancel; /* NULL: runs to the end */
    const char *ca_file;         /* NULL: the system's CA bundle (tests pass their own) */
};

int images_pull(struct store *store, const char *images_dir, const struct images_pull_params *p,
                struct image_record **out, struct banger_error *err);

/* How many callers wait on the pull in flight for `key` (the name, or the
 * source when no name was given); for tests. */
int images_pull_waiters(const char *key);

#endif
