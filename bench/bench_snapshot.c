/* Snapshot set-up benchmark, run inside the kernel harness guest
 * (tests/kernel/run-kernel-tests.sh --bench): the snapshot capability's
 * start+stop (loop ioctls + libdevmapper) against the same work done with
 * losetup and dmsetup commands, and against copying a 1 GiB image, which is
 * what a per-VM root disk costs without a snapshot. Prints medians and
 * ratios; never a pass/fail. */
#include "config.h"

#include "bench_util.h"


#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_RUNS 15
/* Copying 1 GiB under emulation takes a minute or more: one run. */
#define BENCH_COPY_RUNS 1
#define BENCH_IMAGE_SIZE (1ull << 30)

/* A 1 GiB file with every block written (nothing sparse), ext4 on top. */
static int bench_make_image(const char *path)
{
    static char buf[1 << 20];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0)
        return -1;
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)(i * 131 + 7);
    for (unsigned long long off = 0; off < BENCH_IMAGE_SIZE; off += sizeof(buf))
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
            close(fd);
            return -1;
        }
    close(fd);
    const char *argv[] = {"mkfs.ext4", "-q", "-F", path, NULL};
    return bench_run(argv, NULL);
}

/* The same snapshot done the way scripts do it. */
static int bench_commands_once(const char *image, const char *cow)
{
    char *base = NULL, *cowdev = NULL, table[256];
    int r = -1;
    const char *lo1[] = {"losetup", "-r", "-f", "--show", image, NULL};
    const char *lo2[] = {"losetup", "-f", "--show", cow, NULL};

    if (bench_run(lo1, &base) < 0 || bench_run(lo2, &cowdev) < 0)
        goto cleanup;
    snprintf(table, sizeof(table), "0 %llu snapshot %s %s P 8",
             (unsigned long long)(BENCH_IMAGE_SIZE / 512), base, cowdev);
    const char *mk[] = {"dmsetup", "create", "bench-cmd", "--table", table, NULL};
    const char *rm[] = {"dmsetup", "remove", "bench-cmd", NULL};
    if (bench_run(mk, NULL) < 0 || bench_run(rm, NULL) < 0)
        goto cleanup;
    r = 0;
cleanup:
    if (cowdev) {
        const char *d[] = {"losetup", "-d", cowdev, NULL};
        bench_run(d, NULL);
    }
    if (base) {
        const char *d[] = {"losetup", "-d", base, NULL};
        bench_run(d, NULL);
    }
    free(base);
    free(cowdev);
    return r;
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    double plugin_ms[BENCH_RUNS], cmd_ms[BENCH_RUNS], copy_ms[BENCH_COPY_RUNS];
    char dir[512], image[600], copy[600], cow[600], state[600];
    struct banger_error e = {0};
    struct bench_module m = {0};
    int fd, rc = 1;

    snprintf(dir, sizeof(dir), "%s/bench-snapshot.XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(image, sizeof(image), "%s/rootfs.ext4", dir);
    snprintf(copy, sizeof(copy), "%s/copy.ext4", dir);
    snprintf(cow, sizeof(cow), "%s/cmd.cow", dir);
    snprintf(state, sizeof(state), "%s/vm", dir);
    if (mkdir(state, 0700) < 0 || bench_make_image(image) < 0) {
        fprintf(stderr, "cannot make the 1 GiB image in %s\n", dir);
        goto cleanup;
    }
    fd = open(cow, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 1 << 30) < 0)
        goto cleanup;
    close(fd);

    if (bench_module_open(&m, "snapshot",
                          "plugins = (\"snapshot\"); vm_defaults = { disk_size = \"64M\";"
                          " overlay_size = \"1G\"; };",
                          "00000000be0c", state, image, &e) < 0)
        goto fail;

    /* Warm-up (makes the COW file once, like a first start). */
    if (m.plugin.cap->start(m.plugin.state, m.vm, BANGER_PHASE_BEFORE_LAUNCH, &e) < 0 ||
        m.plugin.cap->stop(m.plugin.state, m.vm, &e) < 0)
        goto fail;
    for (int i = 0; i < BENCH_RUNS; i++) {
        double t0 = bench_now_ms();
        bg_vm_contrib_reset(m.vm);
        if (m.plugin.cap->start(m.plugin.state, m.vm, BANGER_PHASE_BEFORE_LAUNCH, &e) < 0 ||
            m.plugin.cap->stop(m.plugin.state, m.vm, &e) < 0)
            goto fail;
        plugin_ms[i] = bench_now_ms() - t0;
    }
    if (bench_commands_once(image, cow) < 0)
        goto cleanup;
    for (int i = 0; i < BENCH_RUNS; i++) {
        double t0 = bench_now_ms();
        if (bench_commands_once(image, cow) < 0)
            goto cleanup;
        cmd_ms[i] = bench_now_ms() - t0;
    }
    for (int i = 0; i < BENCH_COPY_RUNS; i++) {
        const char *cp[] = {"cp", "--sparse=never", image, copy, NULL};
        double t0 = bench_now_ms();
        if (bench_run(cp, NULL) < 0)
            goto cleanup;
        copy_ms[i] = bench_now_ms() - t0;
        unlink(copy);
    }
    {
        double mp = bench_median(plugin_ms, BENCH_RUNS), mc = bench_median(cmd_ms, BENCH_RUNS);
        double mcp = bench_median(copy_ms, BENCH_COPY_RUNS);

        printf("bench_snapshot (in the kernel harness guest, software emulation)\n");
        printf("  snapshot start+stop, plugin (ioctl + libdevmapper): median %8.2f ms (%d runs)\n",
               mp, BENCH_RUNS);
        printf("  same with losetup + dmsetup commands:              median %8.2f ms (%d runs)\n",
               mc, BENCH_RUNS);
        printf("  cp of a filled 1 GiB image:                        median %8.2f ms (%d runs)\n",
               mcp, BENCH_COPY_RUNS);
        printf("  ratio commands / plugin: %.1fx   copy / plugin: %.1fx\n", mc / mp, mcp / mp);
        printf("  (plugin includes handles.json writes)\n");
    }
    rc = 0;
    goto cleanup;
fail:
    fprintf(stderr, "bench_snapshot: %s\n", bg_error_text(&e));
cleanup:
    if (m.vm && m.plugin.inited) {
        m.plugin.cap->stop(m.plugin.state, m.vm, &e);
        m.plugin.cap->destroy(m.plugin.state, m.vm, &e);
    }
    bench_module_close(&m);
    unlink(image);
    unlink(copy);
    unlink(cow);
    {
        char f[700];
        snprintf(f, sizeof(f), "%s/handles.json", state);
        unlink(f);
    }
    rmdir(state);
    rmdir(dir);
    return rc;
}
