/* Per-VM root disk benchmark on the host: the reflink capability's first
 * start (make the VM's root) + destroy (remove it), on xfs (reflink=1) and
 * btrfs, where it is a FICLONE, and on ext4, where it is the sparse copy
 * fallback; with `cp --sparse=always` on ext4 as the scripted baseline.
 * The image is realistic: a 512 MiB ext4 holding about 200 MiB of files.
 * The filesystems are made on loop devices in a private mount namespace
 * and removed afterwards. The dm snapshot's numbers come from
 * bench_snapshot, which needs device-mapper and runs in the kernel harness
 * (make bench runs both). Prints medians and ratios; asserts nothing.
 * Page cache is warm after the first run, as for a host that starts VMs
 * from the same image all day. */
#include "config.h"

#include "bench_util.h"

#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_RUNS 9
#define BENCH_IMAGE_SIZE (512ull << 20)
#define BENCH_IMAGE_DATA_MIB 200u
#define BENCH_FS_SIZE (2ull << 30)

static int bench_sized_file(const char *path, uint64_t bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int r = fd < 0 || ftruncate(fd, (off_t)bytes) < 0 ? -1 : 0;

    if (fd >= 0)
        close(fd);
    return r;
}

/* 512 MiB ext4 with BENCH_IMAGE_DATA_MIB MiB of distinct file data. */
static int bench_make_image(const char *dir, const char *image)
{
    static unsigned char buf[1 << 20];
    char files[800], file[900];
    int r = -1;

    snprintf(files, sizeof(files), "%s/files", dir);
    if (mkdir(files, 0755) < 0)
        return -1;
    for (unsigned i = 0; i < BENCH_IMAGE_DATA_MIB; i++) {
        int fd;
        snprintf(file, sizeof(file), "%s/f%03u", files, i);
        for (size_t j = 0; j < sizeof(buf); j++)
            buf[j] = (unsigned char)(i * 2654435761u + j * 40503u);
        fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
            if (fd >= 0)
                close(fd);
            goto cleanup;
        }
        close(fd);
    }
    if (bench_sized_file(image, BENCH_IMAGE_SIZE) < 0)
        goto cleanup;
    {
        const char *argv[] = {"mkfs.ext4", "-q", "-F", "-d", files, image, NULL};
        r = bench_run(argv, NULL);
    }
cleanup:
    {
        const char *argv[] = {"rm", "-rf", files, NULL};
        bench_run(argv, NULL);
    }
    return r;
}

struct bench_result {
    const char *what;
    double median_ms;
    bool ok;
};

/* One filesystem: make it, put the image on it, time the module's root
 * create+remove, and (ext4) cp. */
static void bench_fs(const char *top, const char *fstype, struct bench_result *module,
                     struct bench_result *cp)
{
    char dir[600], backing[700], mnt[700], image[800], state[800], copy[800];
    double ms[BENCH_RUNS], cp_ms[BENCH_RUNS];
    struct banger_error e = {0};
    struct bench_module m = {0};
    bool mounted = false;

    snprintf(dir, sizeof(dir), "%s/%s", top, fstype);
    snprintf(backing, sizeof(backing), "%s/fs.img", dir);
    snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
    snprintf(image, sizeof(image), "%s/rootfs.ext4", mnt);
    snprintf(state, sizeof(state), "%s/vm", mnt);
    snprintf(copy, sizeof(copy), "%s/cp.ext4", mnt);
    if (mkdir(dir, 0700) < 0 || mkdir(mnt, 0700) < 0 ||
        bench_sized_file(backing, BENCH_FS_SIZE) < 0)
        goto cleanup;
    {
        const char *xfs[] = {"mkfs.xfs", "-q", "-f", "-m", "reflink=1", backing, NULL};
        const char *btrfs[] = {"mkfs.btrfs", "-q", "-f", backing, NULL};
        const char *ext4[] = {"mkfs.ext4", "-q", "-F", backing, NULL};
        const char *const *mkfs = strcmp(fstype, "xfs") == 0     ? xfs
                                  : strcmp(fstype, "btrfs") == 0 ? btrfs
                                                                 : ext4;
        const char *mount_argv[] = {"mount", "-t", fstype, "-o", "loop", backing, mnt, NULL};
        if (bench_run(mkfs, NULL) < 0 || bench_run(mount_argv, NULL) < 0)
            goto cleanup;
        mounted = true;
    }
    if (mkdir(state, 0700) < 0 || bench_make_image(mnt, image) < 0)
        goto cleanup;
    sync();

    if (bench_module_open(&m, "reflink", "plugins = (\"reflink\");", "00000000be0f", state,
                          image, &e) < 0)
        goto fail;
    /* A first start makes the root; destroy (VM deleted) removes it. On
     * ext4 the cp baseline runs in the same iterations, alternating, so
     * both see the same writeback state of the loop device's backing file. */
    for (int i = -1; i < BENCH_RUNS; i++) {
        double t0 = bench_now_ms();
        bg_vm_contrib_reset(m.vm);
        if (m.plugin.cap->start(m.plugin.state, m.vm, BANGER_PHASE_BEFORE_LAUNCH, &e) < 0 ||
            m.plugin.cap->stop(m.plugin.state, m.vm, &e) < 0 ||
            m.plugin.cap->destroy(m.plugin.state, m.vm, &e) < 0)
            goto fail;
        if (i >= 0)
            ms[i] = bench_now_ms() - t0;
        if (cp) {
            const char *argv[] = {"cp", "--sparse=always", image, copy, NULL};
            int fd;

            t0 = bench_now_ms();
            if (bench_run(argv, NULL) < 0)
                goto cleanup;
            /* the module fsyncs its copy; so does this baseline */
            fd = open(copy, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                fsync(fd);
                close(fd);
            }
            unlink(copy);
            if (i >= 0)
                cp_ms[i] = bench_now_ms() - t0;
        }
    }
    module->median_ms = bench_median(ms, BENCH_RUNS);
    module->ok = true;
    if (cp) {
        cp->median_ms = bench_median(cp_ms, BENCH_RUNS);
        cp->ok = true;
    }
    goto cleanup;
fail:
    fprintf(stderr, "bench_rootdisk (%s): %s\n", fstype, bg_error_text(&e));
cleanup:
    bench_module_close(&m);
    if (mounted && umount2(mnt, 0) < 0)
        perror("umount");
    unlink(backing);
    rmdir(mnt);
    rmdir(dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    static const char *const fstypes[] = {"xfs", "btrfs", "ext4"};
    struct bench_result mod[3] = {{"xfs", 0, false}, {"btrfs", 0, false}, {"ext4", 0, false}};
    struct bench_result cp = {"cp", 0, false};
    char top[512];

    if (geteuid() != 0) {
        fprintf(stderr, "bench_rootdisk: needs root (loop devices, mounts); skipped\n");
        return 0;
    }
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        perror("bench_rootdisk: private mount namespace");
        return 1;
    }
    bg_log_set_level(getenv("BENCH_VERBOSE") ? BANGER_LOG_DEBUG : BANGER_LOG_ERROR); /* the ext4 warning would repeat every run */
    snprintf(top, sizeof(top), "%s/bench-rootdisk.XXXXXX", tmp);
    if (!mkdtemp(top)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < 3; i++)
        bench_fs(top, fstypes[i], &mod[i], strcmp(fstypes[i], "ext4") == 0 ? &cp : NULL);
    rmdir(top);

    printf("bench_rootdisk: a VM's root disk, create + remove, 512 MiB image with %u MiB of "
           "files\n", BENCH_IMAGE_DATA_MIB);
    for (size_t i = 0; i < 3; i++)
        if (mod[i].ok)
            printf("  reflink module on %-5s (%s):%*s median %9.2f ms (%d runs)\n", mod[i].what,
                   i < 2 ? "FICLONE" : "sparse copy", i < 2 ? 5 : 1, "", mod[i].median_ms,
                   BENCH_RUNS);
    if (cp.ok)
        printf("  cp --sparse=always on ext4 + fsync:         median %9.2f ms (%d runs)\n",
               cp.median_ms, BENCH_RUNS);
    if (mod[0].ok && mod[2].ok)
        printf("  ratio sparse copy / xfs clone: %.0fx", mod[2].median_ms / mod[0].median_ms);
    if (mod[1].ok && mod[2].ok)
        printf("   sparse copy / btrfs clone: %.0fx", mod[2].median_ms / mod[1].median_ms);
    if (cp.ok && mod[2].ok)
        printf("   cp / module copy: %.2fx", cp.median_ms / mod[2].median_ms);
    printf("\n  (the dm snapshot's start+stop: bench_snapshot, in the kernel harness)\n");
    return mod[0].ok && mod[1].ok && mod[2].ok ? 0 : 1;
}
