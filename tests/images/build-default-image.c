/* Helper for boot-default.sh: runs the daemon's build-default code against a
 * throw-away store and leaves vmlinux, initrd.img and rootfs.ext4 in OUTDIR.
 *   build-default-image kernel-version     the host kernel it would use
 *   build-default-image build OUTDIR [MIRROR]
 * Exit status: 0 built, 3 debootstrap failed (mirror unreachable?), 1 other. */
#include "config.h"

#include "images/image_build.h"
#include "images/image_kernel.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct build_clock {
    struct timespec start, last;
    const char *stage;
};

static double build_secs(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void build_stage_done(struct build_clock *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (c->stage)
        fprintf(stderr, "build-default-image: %-12s %6.1f s\n", c->stage,
                build_secs(&c->last, &now));
    c->last = now;
}

static void build_progress(void *ctx, const char *stage)
{
    struct build_clock *c = ctx;
    build_stage_done(c);
    c->stage = stage;
}

static int build_move(const char *from, const char *dir, const char *name)
{
    char *to = fs_join(dir, name);
    int r = rename(from, to) < 0 ? -errno : 0;
    if (r < 0)
        fprintf(stderr, "build-default-image: rename %s: %s\n", from, strerror(-r));
    free(to);
    return r;
}

int main(int argc, char **argv)
{
    struct banger_error err = { 0 };
    if (argc == 2 && strcmp(argv[1], "kernel-version") == 0) {
        char ver[128];
        if (images_host_kernel("/boot", "/lib/modules", ver, sizeof(ver), &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        printf("%s\n", ver);
        return 0;
    }
    if (argc < 3 || argc > 4 || strcmp(argv[1], "build") != 0) {
        fprintf(stderr, "usage: build-default-image kernel-version | build OUTDIR [MIRROR]\n");
        return 1;
    }
    setenv("BANGER_AGENT_PATH", AGENT_BUILD_PATH, 0);
    setenv("BANGER_GUEST_DIR", GUEST_SRC_DIR, 0);
    const char *outdir = argv[2];
    char *state = fs_join(outdir, "state");
    char *db = fs_join(state, "state.db");
    char *images = fs_join(state, "images");
    struct store *store = NULL;
    struct image_record *img = NULL;
    char eb[512] = "";
    int status = 1;
    if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
        perror(outdir);
        goto cleanup;
    }
    if (mkdir(state, 0700) < 0 && errno != EEXIST) {
        perror(state);
        goto cleanup;
    }
    if (store_open(db, &store, eb, sizeof(eb)) < 0) {
        fprintf(stderr, "build-default-image: %s\n", eb);
        goto cleanup;
    }
    struct build_clock clock = { 0 };
    clock_gettime(CLOCK_MONOTONIC, &clock.start);
    clock.last = clock.start;
    struct images_build_params p = { .mirror = argc == 4 ? argv[3] : NULL,
                                     .progress = build_progress, .progress_ctx = &clock };
    int r = images_build_default(store, images, &p, &img, &err);
    build_stage_done(&clock);
    if (r < 0) {
        fprintf(stderr, "build-default-image: %s\n", err.msg);
        status = clock.stage && strcmp(clock.stage, "debootstrap") == 0 ? 3 : 1;
        goto cleanup;
    }
    fprintf(stderr, "build-default-image: total        %6.1f s\n",
            build_secs(&clock.start, &clock.last));
    if (build_move(img->rootfs_path, outdir, "rootfs.ext4") == 0 &&
        build_move(img->kernel_path, outdir, "vmlinux") == 0 &&
        build_move(img->initrd_path, outdir, "initrd.img") == 0)
        status = 0;

cleanup:
    image_record_free(img);
    store_close(store);
    if (state) {
        struct banger_error e2 = { 0 };
        fs_remove_tree(state, &e2);
    }
    free(state);
    free(db);
    free(images);
    return status;
}
