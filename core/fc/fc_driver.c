/* The launch step: launch, graceful stop, kill, adoption, version check. */
#include "config.h"

#include "fc/fc.h"
#include "host/host.h"
#include "runner/runner.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* SIGKILL -> exit: freeing a large guest can take seconds. */
#define FC_KILL_WAIT_MS 30000
#define FC_VERSION_TIMEOUT_MS 10000

static long long fc_driver_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fc_driver_api_timeout(const struct fc_driver *drv)
{
    return drv && drv->api_timeout_ms > 0 ? drv->api_timeout_ms : FC_DEFAULT_API_TIMEOUT_MS;
}

static pid_t fc_driver_recorded_pid(struct banger_vm *vm)
{
    if (vm->vmm_pid > 0)
        return vm->vmm_pid;
    const char *h = bg_vm_get_handle(vm, FC_HANDLE_PID);
    return h ? (pid_t)atoi(h) : 0;
}

int fc_launch(const struct fc_driver *drv, struct banger_vm *vm, struct banger_error *err)
{
    char *sock = NULL;
    int timeout = fc_driver_api_timeout(drv);
    int r;

    r = fc_spawn(drv, vm, err);
    if (r < 0)
        goto cleanup;
    r = fc_wait_api(vm, drv->api_wait_ms > 0 ? drv->api_wait_ms : FC_DEFAULT_API_WAIT_MS, err);
    if (r < 0)
        goto cleanup;
    /* Fault points let tests prove that undo copes with every partial state. */
    r = bg_host_api()->fault_point(vm, "fc.configure", err);
    if (r < 0)
        goto cleanup;
    sock = fc_api_sock_for_stop(vm);
    r = fc_configure(vm, sock, timeout, err);
    if (r < 0)
        goto cleanup;
    r = bg_host_api()->fault_point(vm, "fc.start", err);
    if (r < 0)
        goto cleanup;
    r = fc_action(sock, "InstanceStart", timeout, err);
    if (r < 0)
        goto cleanup;
    bg_log(BANGER_LOG_INFO, vm->info.id, "firecracker booted (pid %d)", vm->vmm_pid);
cleanup:
    /* A VMM that died while being configured explains the failed request. */
    if (r < 0 && sock && fc_pid_exited(vm->vmm_pid)) {
        struct banger_error why = { 0 };
        if (fc_check_alive(vm, &why) < 0)
            bg_error_join(err, &why);
    }
    free(sock);
    return r;
}

/* The process is gone: drop its sockets and handles. */
static int fc_driver_forget(struct banger_vm *vm, struct banger_error *err)
{
    static const char *const keys[] = { FC_HANDLE_PID, FC_HANDLE_API_SOCK };
    int r = fc_remove_sockets(vm, err);
    vm->vmm_pid = 0;
    for (size_t i = 0; r == 0 && i < sizeof(keys) / sizeof(keys[0]); i++)
        if (bg_vm_get_handle(vm, keys[i]))
            r = bg_vm_set_handle(vm, keys[i], NULL, err);
    return r;
}

int fc_stop(const struct fc_driver *drv, struct banger_vm *vm, int grace_ms,
            struct banger_error *err)
{
    char *sock = fc_api_sock_for_stop(vm);
    int r = 0;

    pid_t pid = fc_find_pid(sock, fc_driver_recorded_pid(vm));
    if (pid > 0 && grace_ms > 0) {
        struct banger_error e = { 0 };
        long long start = fc_driver_now_ms();
        int timeout = fc_driver_api_timeout(drv);
        r = fc_action(sock, "SendCtrlAltDel", timeout < grace_ms ? timeout : grace_ms, &e);
        if (r == 0) {
            long long left = grace_ms - (fc_driver_now_ms() - start);
            r = fc_signal_and_wait(sock, pid, 0, left > 0 ? (int)left : 0, &e);
        }
        if (r < 0)
            bg_log(BANGER_LOG_INFO, vm->info.id, "graceful stop of pid %d failed (%s); killing",
                   (int)pid, bg_error_text(&e));
    }
    if (pid > 0) {
        r = fc_signal_and_wait(sock, pid, SIGKILL, FC_KILL_WAIT_MS, err);
        if (r < 0)
            goto cleanup;
    }
    r = fc_driver_forget(vm, err);
cleanup:
    free(sock);
    return r;
}

int fc_kill(struct banger_vm *vm, int sig, struct banger_error *err)
{
    char *sock = fc_api_sock_for_stop(vm);
    int r = fc_signal_and_wait(sock, fc_driver_recorded_pid(vm), sig > 0 ? sig : SIGKILL,
                               FC_KILL_WAIT_MS, err);
    if (r == 0)
        r = fc_driver_forget(vm, err);
    free(sock);
    return r;
}

pid_t fc_adopt(struct banger_vm *vm)
{
    char *sock = fc_api_sock_for_stop(vm);
    pid_t recorded = fc_driver_recorded_pid(vm);
    pid_t pid = fc_find_pid(sock, recorded);
    vm->vmm_pid = (int)pid;
    if (pid > 0 && pid != recorded) {
        char text[24];
        struct banger_error e = { 0 };
        snprintf(text, sizeof(text), "%d", (int)pid);
        if (bg_vm_set_handle(vm, FC_HANDLE_PID, text, &e) < 0)
            bg_log(BANGER_LOG_WARNING, vm->info.id, "%s", bg_error_text(&e));
    }
    free(sock);
    return pid;
}

static int fc_ops_launch(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    return fc_launch(ctx, vm, err);
}

static int fc_ops_undo(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    (void)ctx;
    return fc_kill(vm, SIGKILL, err);
}

static int fc_ops_stop(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    const struct fc_driver *drv = ctx;
    int grace = drv->stop_grace_ms > 0 ? drv->stop_grace_ms : FC_DEFAULT_STOP_GRACE_MS;
    return fc_stop(drv, vm, grace, err);
}

void fc_driver_launch_ops(struct fc_driver *drv, struct engine_launch_ops *ops)
{
    ops->ctx = drv;
    ops->launch = fc_ops_launch;
    ops->undo = fc_ops_undo;
    ops->stop = fc_ops_stop;
}

/* "X.Y.Z" -> three numbers; false when unparsable. */
static bool fc_version_parse(const char *s, unsigned v[3])
{
    int used = 0;
    return s && sscanf(s, "%u.%u.%u%n", &v[0], &v[1], &v[2], &used) == 3 && used > 0;
}

int fc_version_compare(const char *a, const char *b)
{
    unsigned va[3], vb[3];
    bool ok_a = fc_version_parse(a, va), ok_b = fc_version_parse(b, vb);
    if (!ok_a || !ok_b)
        return (int)ok_a - (int)ok_b;
    for (int i = 0; i < 3; i++)
        if (va[i] != vb[i])
            return va[i] < vb[i] ? -1 : 1;
    return 0;
}

bool fc_version_supported(const char *version)
{
    return fc_version_compare(version, FC_MIN_VERSION) >= 0;
}

int fc_version(const char *bin, char **version, struct banger_error *err)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    struct banger_run_opts opts = { .struct_size = sizeof(opts),
                                    .timeout_ms = FC_VERSION_TIMEOUT_MS };
    const char *name = bin ? bin : FC_DEFAULT_BIN;
    char *path = runner_find_program(name, NULL);
    unsigned v[3];
    int r = 0;

    if (!path) {
        r = bg_fail(err, -ENOENT, "firecracker: binary '%s' not found or not executable", name);
        goto cleanup;
    }
    const char *argv[] = { path, "--version", NULL };
    r = runner_run(argv, &opts, &res, err);
    if (r < 0)
        goto cleanup;
    const char *p = res.out ? strstr(res.out, "Firecracker v") : NULL;
    if (!p || !fc_version_parse(p + strlen("Firecracker v"), v)) {
        r = bg_fail(err, -EPROTO, "firecracker: '%s --version' printed no \"Firecracker vX.Y.Z\"",
                    path);
        goto cleanup;
    }
    *version = xasprintf("%u.%u.%u", v[0], v[1], v[2]);
cleanup:
    runner_result_clear(&res);
    free(path);
    return r;
}
