/* vsock capability: gives each VM a Firecracker hybrid-vsock device and,
 * after boot, waits until the guest agent answers a health request. */
#include "config.h"

#include "vsock-client.h"
#include "agent-proto.h"

#include <banger/capability.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#define VSOCK_HANDLE_UDS "vsock.uds"
#define VSOCK_SOCK_NAME "vsock.sock"

struct vsock_state {
    const struct banger_host_api *host;
    unsigned port;
    long long ready_timeout_ms;
};

struct vsock_vmm_ctx {
    const struct banger_host_api *host;
    struct banger_vm *vm;
};

static int vsock_init(const struct banger_host_api *host, const struct banger_cfg *cfg,
                      void **state, struct banger_error *err)
{
    static const char *const allowed[] = {"port", "ready_timeout_ms", NULL};
    struct vsock_state *st;
    long long port = AGENT_DEFAULT_PORT, timeout = 30000;
    int r;

    /* cfg_group is the newest field used here. */
    if (!BANGER_HAS_FIELD(struct banger_host_api, host, cfg_group))
        return -ENOTSUP;
    r = host->cfg_check_keys(cfg, allowed, err);
    if (r < 0)
        return r;
    r = host->cfg_get_int(cfg, "port", &port, err);
    if (r < 0 && r != -ENOENT)
        return r;
    /* 0xffffffff is VMADDR_PORT_ANY. */
    if (port < 1 || port >= 0xffffffffLL)
        return host->cfg_fail(cfg, "port", err, "must be between 1 and 4294967294, not %lld",
                              port);
    r = host->cfg_get_int(cfg, "ready_timeout_ms", &timeout, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (timeout < 100 || timeout > 3600000)
        return host->cfg_fail(cfg, "ready_timeout_ms", err,
                              "must be between 100 and 3600000, not %lld", timeout);
    st = calloc(1, sizeof(*st));
    if (!st)
        return host->fail(err, -ENOMEM, "out of memory");
    st->host = host;
    st->port = (unsigned)port;
    st->ready_timeout_ms = timeout;
    *state = st;
    return 0;
}

static void vsock_fini(void *state)
{
    free(state);
}

/* The socket path: the recorded handle, or where start would put it. */
static int vsock_uds_path(struct vsock_state *st, struct banger_vm *vm, char *out, size_t out_len,
                          struct banger_error *err)
{
    const struct banger_vm_info *info = st->host->vm_info(vm);
    const char *handle = st->host->get_handle(vm, VSOCK_HANDLE_UDS);
    int n;

    if (handle && handle[0]) {
        n = snprintf(out, out_len, "%s", handle);
    } else {
        if (!info || !info->runtime_dir)
            return st->host->fail(err, -EINVAL, "VM has no runtime directory");
        n = snprintf(out, out_len, "%s/" VSOCK_SOCK_NAME, info->runtime_dir);
    }
    /* Firecracker binds it, and also "<path>_<port>" for guest-initiated
     * connections: leave room for the longest suffix in sun_path. */
    if (n < 0 || (size_t)n + sizeof("_4294967295") > sizeof(((struct sockaddr_un *)0)->sun_path))
        return st->host->fail(err, -ENAMETOOLONG, "vsock socket path too long: %s/%s",
                              info && info->runtime_dir ? info->runtime_dir : "?",
                              VSOCK_SOCK_NAME);
    return 0;
}

static int vsock_unlink(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* Remove uds_path and every uds_path_<port> beside it. Missing = done. */
static int vsock_remove_sockets(struct vsock_state *st, struct banger_vm *vm, const char *uds,
                                struct banger_error *err)
{
    char dir[PATH_MAX];
    const char *base, *slash = strrchr(uds, '/');
    size_t base_len;
    struct dirent *de;
    DIR *d;
    int r, first = 0;

    r = vsock_unlink(uds);
    if (r < 0)
        first = st->host->fail(err, r, "remove %s: %s", uds, strerror(-r));
    if (!slash)
        return first;
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - uds), uds);
    base = slash + 1;
    base_len = strlen(base);
    d = opendir(dir[0] ? dir : "/");
    if (!d)
        return first; /* no runtime dir: nothing left */
    while ((de = readdir(d))) {
        const char *suffix;

        if (strncmp(de->d_name, base, base_len) != 0 || de->d_name[base_len] != '_')
            continue;
        suffix = de->d_name + base_len + 1;
        if (!suffix[0] || strspn(suffix, "0123456789") != strlen(suffix))
            continue;
        r = unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT ? -errno : 0;
        if (r < 0 && first == 0)
            first = st->host->fail(err, r, "remove %s/%s: %s", dir, de->d_name, strerror(-r));
    }
    closedir(d);
    return first;
}

static int vsock_vmm_alive(void *ctx)
{
    const struct vsock_vmm_ctx *c = ctx;
    int pid = c->host->vmm_pid(c->vm);

    if (pid <= 0)
        return 0;
    return kill(pid, 0) == 0 || errno == EPERM;
}

static int vsock_before_launch(struct vsock_state *st, struct banger_vm *vm,
                               struct banger_error *err)
{
    const struct banger_vm_info *info = st->host->vm_info(vm);
    char uds[PATH_MAX];
    int r;

    if (!info || info->cid < 3)
        return st->host->fail(err, -EINVAL, "VM has no valid vsock CID");
    /* Start from the runtime dir, not an old handle. */
    if (!info->runtime_dir)
        return st->host->fail(err, -EINVAL, "VM has no runtime directory");
    if ((size_t)snprintf(uds, sizeof(uds), "%s/" VSOCK_SOCK_NAME, info->runtime_dir) +
            sizeof("_4294967295") > sizeof(((struct sockaddr_un *)0)->sun_path))
        return st->host->fail(err, -ENAMETOOLONG, "vsock socket path too long: %s", uds);

    r = st->host->set_handle(vm, VSOCK_HANDLE_UDS, uds, err);
    if (r < 0)
        return r;
    r = st->host->fault_point(vm, "vsock.set_vsock", err);
    if (r < 0)
        return r;
    /* Firecracker binds uds_path without unlinking: a stale file fails the PUT. */
    r = vsock_remove_sockets(st, vm, uds, err);
    if (r < 0)
        return r;
    return st->host->set_vsock(vm, info->cid, uds, err);
}

/* A guest that never answers usually says why on its console: quote it
 * (the socket-level reason alone, "connection closed after CONNECT", says
 * nothing about the guest). */
static int vsock_wait_failed(struct vsock_state *st, struct banger_vm *vm, int r,
                             const char *why, struct banger_error *err)
{
    char console[640] = "";

    if (BANGER_HAS_FIELD(struct banger_host_api, st->host, vmm_console_summary))
        st->host->vmm_console_summary(vm, console, sizeof(console));
    if (r == -ESRCH && console[0])
        return st->host->fail(err, r, "firecracker exited while waiting for the guest agent: %s",
                              console);
    if (console[0] && r != -EPROTO && r != -ENAMETOOLONG && r != -ENOMEM)
        return st->host->fail(err, r, "%s; guest console: %s", why, console);
    return st->host->fail(err, r, "%s", why);
}

static int vsock_after_boot(struct vsock_state *st, struct banger_vm *vm,
                            struct banger_error *err)
{
    struct vsock_vmm_ctx ctx = {.host = st->host, .vm = vm};
    struct vsock_wait_opts opts = {0};
    struct vsock_health health;
    char uds[PATH_MAX], why[1024];
    long long start;
    int r;

    r = vsock_uds_path(st, vm, uds, sizeof(uds), err);
    if (r < 0)
        return r;
    r = st->host->fault_point(vm, "vsock.wait", err);
    if (r < 0)
        return r;
    opts.uds_path = uds;
    opts.port = st->port;
    opts.timeout_ms = st->ready_timeout_ms;
    opts.vmm_alive = vsock_vmm_alive;
    opts.ctx = &ctx;
    start = vsock_now_ms();
    r = vsock_wait_ready(&opts, &health, why, sizeof(why));
    if (r < 0)
        return vsock_wait_failed(st, vm, r, why, err);
    st->host->log(BANGER_LOG_INFO, vm,
                  "guest agent %s answered after %lld ms (%d attempts), boot id %s",
                  health.version, vsock_now_ms() - start, health.attempts, health.boot_id);
    return 0;
}

static int vsock_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                       struct banger_error *err)
{
    struct vsock_state *st = state;

    if (phase == BANGER_PHASE_BEFORE_LAUNCH)
        return vsock_before_launch(st, vm, err);
    if (phase == BANGER_PHASE_AFTER_BOOT)
        return vsock_after_boot(st, vm, err);
    return 0;
}

static int vsock_stop(void *state, struct banger_vm *vm, struct banger_error *err)
{
    struct vsock_state *st = state;
    char uds[PATH_MAX];
    int r;

    r = vsock_uds_path(st, vm, uds, sizeof(uds), err);
    if (r < 0)
        return r;
    r = vsock_remove_sockets(st, vm, uds, err);
    if (r < 0)
        return r;
    return st->host->set_handle(vm, VSOCK_HANDLE_UDS, NULL, err);
}

static int vsock_rollback(void *state, struct banger_vm *vm, enum banger_phase phase,
                          struct banger_error *err)
{
    (void)phase;
    return vsock_stop(state, vm, err);
}

static int vsock_doctor(void *state, struct banger_doctor *report)
{
    struct vsock_state *st = state;

    st->host->doctor_row(report, BANGER_DOCTOR_PASS, "vsock",
                         "Firecracker hybrid vsock, agent port %u, ready timeout %lld ms",
                         st->port, st->ready_timeout_ms);
    return 0;
}

static const struct banger_capability vsock_capability = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = "vsock",
    .version = PACKAGE_VERSION,
    .description = "vsock device for the guest agent; waits for it after boot",
    .phases = BANGER_PHASE_BEFORE_LAUNCH | BANGER_PHASE_AFTER_BOOT,
    .requires = NULL,
    .init = vsock_init,
    .fini = vsock_fini,
    .start = vsock_start,
    .rollback = vsock_rollback,
    .stop = vsock_stop,
    .doctor = vsock_doctor,
};

BANGER_CAPABILITY_DEFINE(vsock_capability)
