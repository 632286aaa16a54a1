/* Per-VM network setup + teardown: banger's tap+nat modules against the
 * same work done with ip(8) and nft(8) processes, inside a private network
 * namespace. Prints medians; asserts nothing. Needs root. */
#include "config.h"

#include "config/config.h"
#include "engine/engine.h"
#include "host/host.h"
#include "host/vm.h"
#include "loader/loader.h"
#include "runner/runner.h"
#include "util/error.h"

#include "../plugins/tap/tap-pool.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_RUNS 200

static double bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), bench_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bench_run(const char *const *argv, char **out)
{
    struct banger_run_result res = {.struct_size = sizeof(res)};
    struct banger_error e = {0};
    int r = runner_run(argv, NULL, &res, &e);

    if (r < 0)
        fprintf(stderr, "bench_net: %s\n", bg_error_text(&e));
    if (out)
        *out = strdup(res.out ? res.out : "");
    runner_result_clear(&res);
    return r;
}

/* "... # handle 7" -> 7 */
static int bench_handle(const char *echo)
{
    const char *h = strstr(echo, "# handle ");
    return h ? atoi(h + 9) : -1;
}

static int bench_setup_ns(void)
{
    const char *lo[] = {"ip", "link", "set", "lo", "up", NULL};
    const char *add[] = {"ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0peer",
                         NULL};
    const char *addr[] = {"ip", "addr", "add", "198.18.0.1/24", "dev", "up0", NULL};
    const char *up[] = {"ip", "link", "set", "up0", "up", NULL};
    const char *peer[] = {"ip", "link", "set", "up0peer", "up", NULL};
    const char *route[] = {"ip", "route", "add", "default", "via", "198.18.0.2", NULL};

    if (unshare(CLONE_NEWNET) < 0) {
        fprintf(stderr, "bench_net: unshare(CLONE_NEWNET): %s (run as root)\n", strerror(errno));
        return -errno;
    }
    if (bench_run(lo, NULL) || bench_run(add, NULL) || bench_run(addr, NULL) ||
        bench_run(up, NULL) || bench_run(peer, NULL) || bench_run(route, NULL))
        return -EIO;
    return 0;
}

/* The baseline: what a shell script would run per VM. */
static int bench_baseline_once(double *us)
{
    const char *tuntap[] = {"ip", "tuntap", "add", "bgb0", "mode", "tap", "vnet_hdr", NULL};
    const char *master[] = {"ip", "link", "set", "bgb0", "master", "br-banger", NULL};
    const char *up[] = {"ip", "link", "set", "bgb0", "up", NULL};
    const char *masq[] = {"nft", "--echo", "--handle", "add", "rule", "ip", "bench",
                          "postrouting", "ip", "saddr", "172.29.0.9", "oifname", "up0",
                          "masquerade", NULL};
    const char *fwd1[] = {"nft", "--echo", "--handle", "add", "rule", "ip", "bench", "forward",
                          "iifname", "bgb0", "oifname", "up0", "accept", NULL};
    const char *fwd2[] = {"nft", "--echo", "--handle", "add", "rule", "ip", "bench", "forward",
                          "iifname", "up0", "oifname", "bgb0", "ct", "state",
                          "established,related", "accept", NULL};
    const char *del_link[] = {"ip", "link", "del", "bgb0", NULL};
    const char *const *adds[] = {masq, fwd1, fwd2};
    const char *chains[] = {"postrouting", "forward", "forward"};
    char handle[3][16];
    double t0 = bench_now_us();

    if (bench_run(tuntap, NULL) || bench_run(master, NULL) || bench_run(up, NULL))
        return -EIO;
    for (int i = 0; i < 3; i++) {
        char *out = NULL;
        if (bench_run(adds[i], &out)) {
            free(out);
            return -EIO;
        }
        snprintf(handle[i], sizeof(handle[i]), "%d", bench_handle(out));
        free(out);
    }
    for (int i = 0; i < 3; i++) {
        const char *del[] = {"nft", "delete", "rule", "ip", "bench", chains[i], "handle",
                             handle[i], NULL};
        if (bench_run(del, NULL))
            return -EIO;
    }
    if (bench_run(del_link, NULL))
        return -EIO;
    *us = bench_now_us() - t0;
    return 0;
}

static int bench_load(struct bg_config *cfg, struct bg_plugin *mods, const char *name,
                      const char *dir)
{
    struct banger_error e = {0};
    int r = loader_open(dir, name, false, mods, &e);

    if (r == 0)
        r = mods->cap->init(bg_host_api(), config_group(cfg, name), &mods->state, &e);
    mods->inited = r == 0;
    if (r == 0 && mods->cap->activate)
        r = mods->cap->activate(mods->state, &e);
    if (r < 0)
        fprintf(stderr, "bench_net: %s: %s\n", name, bg_error_text(&e));
    return r;
}

int main(int argc, char **argv)
{
    const char *build = argc > 1 ? argv[1] : BUILDDIR;
    const char *conf = "plugins = (\"tap\", \"nat\"); tap = { pool_size = 8; }; "
                       "nat = { uplink = \"up0\"; };";
    const char *table[] = {"nft", "add table ip bench; add chain ip bench postrouting { type nat "
                           "hook postrouting priority srcnat; }; add chain ip bench forward { "
                           "type filter hook forward priority filter; }", NULL};
    static double banger_us[BENCH_RUNS], base_us[BENCH_RUNS], acquire_us[BENCH_RUNS];
    struct bg_config *cfg = NULL;
    struct bg_plugin mods[2];
    struct bg_plugins set = {mods, 2};
    struct banger_error e = {0};
    struct banger_vm *vm = NULL;
    char dir[2][512], state[256], why[256];
    const char *state_root = getenv("BENCH_STATE_DIR");
    int r;

    memset(mods, 0, sizeof(mods));
    if (bench_setup_ns() < 0)
        return 1;
    /* handles.json is fsynced on every set_handle; on tmpfs the figure is
     * the network work alone. BENCH_STATE_DIR=/var/tmp includes the disk. */
    snprintf(state, sizeof(state), "%s/bench-net-XXXXXX",
             state_root ? state_root : access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(state))
        return 1;
    printf("VM state dir (handles.json): %s\n", state);
    snprintf(dir[0], sizeof(dir[0]), "%s/plugins/tap/.libs", build);
    snprintf(dir[1], sizeof(dir[1]), "%s/plugins/nat/.libs", build);
    if (config_load_string(conf, "bench.conf", &cfg, &e) < 0) {
        fprintf(stderr, "bench_net: %s\n", bg_error_text(&e));
        return 1;
    }
    config_set_current(cfg);
    if (bench_load(cfg, &mods[0], "tap", dir[0]) < 0 || bench_load(cfg, &mods[1], "nat", dir[1]) < 0)
        return 1;

    struct banger_vm_info info = {
        .struct_size = sizeof(info), .id = "00000000b0b0", .name = "bench", .ip = "172.29.0.9",
        .mac = "06:00:ac:1d:00:09", .gateway = "172.29.0.1", .prefix_len = 24, .cid = 3,
        .nat = true, .state_dir = state, .runtime_dir = state, .bridge = "br-banger",
    };
    if (bg_vm_new(&info, &vm, &e) < 0) {
        fprintf(stderr, "bench_net: %s\n", bg_error_text(&e));
        return 1;
    }
    /* Warm-up: the bridge, the pool, nft's first transaction. */
    if (engine_start(&set, NULL, vm, NULL, NULL, &e) < 0 || engine_stop(&set, NULL, vm, &e) < 0) {
        fprintf(stderr, "bench_net: %s\n", bg_error_text(&e));
        return 1;
    }
    for (int i = 0; i < BENCH_RUNS; i++) {
        double t0;
        struct timespec settle = {0, 2 * 1000 * 1000};

        nanosleep(&settle, NULL); /* let the refill thread finish */
        t0 = bench_now_us();
        r = engine_start(&set, NULL, vm, NULL, NULL, &e);
        if (r == 0)
            r = engine_stop(&set, NULL, vm, &e);
        if (r < 0) {
            fprintf(stderr, "bench_net: %s\n", bg_error_text(&e));
            return 1;
        }
        banger_us[i] = bench_now_us() - t0;
    }

    if (bench_run(table, NULL))
        return 1;
    for (int i = 0; i < BENCH_RUNS; i++)
        if (bench_baseline_once(&base_us[i]) < 0)
            return 1;

    /* The pool alone: acquire from a warm pool, release outside the clock. */
    struct tap_pool_cfg pc = {.prefix = "bgacq", .size = 8, .bridge = "br-banger",
                              .gateway = 0xac1d0001, .prefix_len = 24};
    struct tap_pool *pool = NULL;
    if (tap_pool_new(&pc, &pool) < 0 || tap_pool_start(pool, why, sizeof(why)) < 0)
        return 1;
    tap_pool_wait_full(pool, 10000);
    for (int i = 0; i < BENCH_RUNS; i++) {
        char name[IFNAMSIZ];
        double t0 = bench_now_us();
        if (tap_pool_acquire(pool, name, why, sizeof(why)) < 0) {
            fprintf(stderr, "bench_net: %s\n", why);
            return 1;
        }
        acquire_us[i] = bench_now_us() - t0;
        tap_pool_release(pool, name, why, sizeof(why));
        tap_pool_wait_full(pool, 1000);
    }
    tap_pool_free(pool);

    double mb = bench_median(banger_us, BENCH_RUNS), mbase = bench_median(base_us, BENCH_RUNS);
    printf("per-VM network setup+teardown, median of %d:\n", BENCH_RUNS);
    printf("  banger tap+nat (pool, netlink, one nft transaction): %10.1f us\n", mb);
    printf("  ip tuntap/link + nft add/delete rule processes:        %10.1f us\n", mbase);
    printf("  ratio baseline / banger:                               %10.1fx\n", mbase / mb);
    printf("TAP acquire from warm pool, median of %d:                %10.2f us\n", BENCH_RUNS,
           bench_median(acquire_us, BENCH_RUNS));

    bg_vm_free(vm);
    for (int i = 2; i-- > 0;) {
        if (mods[i].inited)
            mods[i].cap->fini(mods[i].state);
        loader_close(&mods[i]);
    }
    config_set_current(NULL);
    config_free(cfg);
    rmdir(state);
    return 0;
}
