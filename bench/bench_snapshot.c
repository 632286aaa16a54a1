/* Snapshot set-up benchmark, run inside the kernel harness guest
 * (tests/kernel/run-kernel-tests.sh --bench): the snapshot capability's
 * start+stop (loop ioctls + libdevmapper) against the same work done with
 * losetup and dmsetup commands, and against copying a 1 GiB image, which is
 * what a per-VM root disk costs without a snapshot. Prints medians and
 * ratios; never a pass/fail. */
#include "config.h"

#include "config/config.h"
#include "host/host.h"
#include "host/vm.h"
#include "loader/loader.h"
#include "runner/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_RUNS 15
/* Copying 1 GiB under emulation takes a minute or more: one run. */
#define BENCH_COPY_RUNS 1
#define BENCH_IMAGE_SIZE (1ull << 30)

static double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), bench_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Run argv; returns 0 or -1 (and says why). stdout in *out when asked. */
static int bench_run(const char *const *argv, char **out)
{
    const struct banger_run_opts opts = {.struct_size = sizeof(opts), .timeout_ms = 900000};
    struct banger_run_result res = {.struct_size = sizeof(res)};
    struct banger_error e = {0};
    int r = runner_run(argv, &opts, &res, &e);

    if (r < 0)
        fprintf(stderr, "%s failed: %s\n", argv[0], bg_error_text(&e));
    if (out && r == 0) {
        *out = strdup(res.out ? res.out : "");
        (*out)[strcspn(*out, "\n")] = '\0';
    }
    runner_result_clear(&res);
    return r < 0 ? -1 : 0;
}

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
    struct bg_config *cfg = NULL;
    struct banger_vm *vm = NULL;
    struct bg_plugin p = {0};
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

    if (config_load_string("plugins = (\"snapshot\"); vm_defaults = { disk_size = \"64M\";"
                           " overlay_size = \"1G\"; };", "bench.conf", &cfg, &e) < 0)
        goto fail;
    config_set_current(cfg);
    if (loader_open(BUILDDIR "/plugins/snapshot/.libs", "snapshot", false, &p, &e) < 0 ||
        p.cap->init(bg_host_api(), config_group(cfg, "snapshot"), &p.state, &e) < 0)
        goto fail;
    p.inited = true;
    {
        struct banger_vm_info info = {
            .struct_size = sizeof(info), .id = "00000000be0c", .name = "bench",
            .ip = "172.29.0.2", .mac = "06:00:ac:1d:00:02", .gateway = "172.29.0.1",
            .prefix_len = 24, .cid = 3, .state_dir = state, .runtime_dir = state,
            .rootfs_path = image, .bridge = "br-banger",
        };
        if (bg_vm_new(&info, &vm, &e) < 0)
            goto fail;
    }

    /* Warm-up (makes the COW file once, like a first start). */
    if (p.cap->start(p.state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e) < 0 ||
        p.cap->stop(p.state, vm, &e) < 0)
        goto fail;
    for (int i = 0; i < BENCH_RUNS; i++) {
        double t0 = bench_now_ms();
        bg_vm_contrib_reset(vm);
        if (p.cap->start(p.state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e) < 0 ||
            p.cap->stop(p.state, vm, &e) < 0)
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
    if (vm && p.inited) {
        p.cap->stop(p.state, vm, &e);
        p.cap->destroy(p.state, vm, &e);
    }
    bg_vm_free(vm);
    if (p.inited && p.cap->fini)
        p.cap->fini(p.state);
    if (p.dl)
        loader_close(&p);
    config_set_current(NULL);
    config_free(cfg);
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
