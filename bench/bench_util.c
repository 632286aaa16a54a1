#include "config.h"

#include "bench_util.h"

#include "host/host.h"
#include "runner/runner.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now_ms(void)
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

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), bench_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_run(const char *const *argv, char **out)
{
    /* mkfs and 1 GiB copies under emulation are slow: a generous limit. */
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

int bench_module_open(struct bench_module *m, const char *name, const char *conf,
                      const char *vm_id, const char *state, const char *image,
                      struct banger_error *e)
{
    char dir[512];
    int r;

    snprintf(dir, sizeof(dir), "%s/plugins/%s/.libs", BUILDDIR, name);
    r = config_load_string(conf, "bench.conf", &m->cfg, e);
    if (r < 0)
        return r;
    config_set_current(m->cfg);
    r = loader_open(dir, name, false, &m->plugin, e);
    if (r < 0)
        return r;
    r = m->plugin.cap->init(bg_host_api(), config_group(m->cfg, name), &m->plugin.state, e);
    if (r < 0)
        return r;
    m->plugin.inited = true;
    {
        /* A VM record only: the root-drive modules measured use none of its network. */
        struct banger_vm_info info = {
            .struct_size = sizeof(info), .id = vm_id, .name = "bench",
            .ip = "172.29.0.2", .mac = "06:00:ac:1d:00:02", .gateway = "172.29.0.1",
            .prefix_len = 24, .cid = 3, .state_dir = state, .runtime_dir = state,
            .rootfs_path = image, .bridge = "br-banger",
        };
        return bg_vm_new(&info, &m->vm, e);
    }
}

void bench_module_close(struct bench_module *m)
{
    bg_vm_free(m->vm);
    m->vm = NULL;
    if (m->plugin.inited && m->plugin.cap->fini)
        m->plugin.cap->fini(m->plugin.state);
    m->plugin.inited = false;
    if (m->plugin.dl)
        loader_close(&m->plugin);
    config_set_current(NULL);
    config_free(m->cfg);
    m->cfg = NULL;
}
