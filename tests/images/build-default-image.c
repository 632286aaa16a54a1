/* Helper for boot-default.sh: runs the daemon's build-default code against a
 * throw-away store and leaves vmlinux, initrd.img, rootfs.ext4 and
 * manifest.json in OUTDIR.
 *   build-default-image kernel-version     the host kernel it would use
 *   build-default-image build OUTDIR [MIRROR]
 *   build-default-image inject-key DISK PUBKEY_FILE
 *       the daemon's key injection (guest_inject_key) into a work disk
 *   build-default-image qmp SOCKET JSON
 *       one QMP command to a QEMU monitor socket; prints the reply
 * Exit status: 0 built, 3 debootstrap failed (mirror unreachable?), 1 other. */
#include "config.h"

#include "guest/guest.h"
#include "images/image_build.h"
#include "images/image_kernel.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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

static int helper_inject_key(const char *disk, const char *pubkey_file)
{
    struct banger_error err = { 0 };
    char *key = NULL;
    int r = fs_read_all(pubkey_file, 1 << 16, &key, NULL, &err);
    if (r == 0)
        r = guest_inject_key(disk, key, NULL, &err);
    if (r < 0)
        fprintf(stderr, "build-default-image: %s\n", err.msg);
    free(key);
    return r < 0 ? 1 : 0;
}

/* Reads one line (QMP replies and events are one JSON object a line). */
static int helper_qmp_line(FILE *f, char **line, size_t *cap)
{
    return getline(line, cap, f) > 0 ? 0 : -1;
}

/* The greeting, qmp_capabilities, then `json`; prints the first reply that
 * is not an event. */
static int helper_qmp(const char *sock, const char *json)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *line = NULL;
    size_t cap = 0;
    int status = 1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FILE *f = NULL;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "build-default-image: qmp %s: %s\n", sock, strerror(errno));
        goto cleanup;
    }
    f = fdopen(fd, "r+");
    if (!f)
        goto cleanup;
    fd = -1;
    if (helper_qmp_line(f, &line, &cap) < 0)
        goto cleanup;
    fputs("{\"execute\": \"qmp_capabilities\"}\n", f);
    fflush(f);
    if (helper_qmp_line(f, &line, &cap) < 0)
        goto cleanup;
    fprintf(f, "%s\n", json);
    fflush(f);
    while (helper_qmp_line(f, &line, &cap) == 0) {
        if (strstr(line, "\"event\""))
            continue;
        fputs(line, stdout);
        status = strstr(line, "\"return\"") ? 0 : 1;
        break;
    }
cleanup:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    free(line);
    return status;
}

int main(int argc, char **argv)
{
    struct banger_error err = { 0 };
    if (argc == 4 && strcmp(argv[1], "inject-key") == 0)
        return helper_inject_key(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "qmp") == 0)
        return helper_qmp(argv[2], argv[3]);
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
        fprintf(stderr, "usage: build-default-image kernel-version | build OUTDIR [MIRROR] |\n"
                        "       inject-key DISK PUBKEY_FILE | qmp SOCKET JSON\n");
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
    /* The operator's choice here, as if listed in images.mirrors. */
    const char *const mirrors[] = { argc == 4 ? argv[3] : NULL };
    struct images_build_params p = { .mirror = mirrors[0], .mirrors = mirrors,
                                     .n_mirrors = argc == 4 ? 1 : 0,
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
    char *image_dir = xstrdup(img->rootfs_path);
    *strrchr(image_dir, '/') = '\0';
    char *manifest = fs_join(image_dir, "manifest.json");
    free(image_dir);
    int moved = build_move(manifest, outdir, "manifest.json");
    free(manifest);
    if (moved == 0 && build_move(img->rootfs_path, outdir, "rootfs.ext4") == 0 &&
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
