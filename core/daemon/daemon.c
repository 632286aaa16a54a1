/* bangerd's serving mode: open the store, load and activate the plugins,
 * reconcile, serve RPC until SIGTERM or SIGINT. */
#include "config.h"

#include "daemon/check.h"
#include "daemon/daemon.h"
#include "guest/guest.h"
#include "workdisk/workdisk.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int daemon_vmm_find(void *ctx, struct banger_vm *vm)
{
    (void)ctx;
    return (int)fc_adopt(vm);
}

static int daemon_vmm_peek(void *ctx, struct banger_vm *vm)
{
    (void)ctx;
    return (int)fc_find(vm);
}

static int daemon_vmm_kill(void *ctx, struct banger_vm *vm, int sig, struct banger_error *err)
{
    (void)ctx;
    return fc_kill(vm, sig, err);
}

/* Firecracker may be installed or upgraded after the daemon starts, so an
 * unusable one is reported here and refused at each launch, not fatal. */
static void daemon_check_firecracker(const struct bg_config *cfg)
{
    struct banger_error e = { 0 };
    char *version = NULL;
    if (fc_version_cached(cfg->firecracker_bin, &version, &e) == 0 &&
        !fc_version_supported(version))
        fc_version_too_old(version, &e);
    if (e.code < 0)
        bg_log(BANGER_LOG_ERROR, NULL, "%s; VMs will not start until this is fixed "
               "(see `banger doctor`)", bg_error_text(&e));
    else
        bg_log(BANGER_LOG_INFO, NULL, "firecracker %s", version);
    free(version);
}

static int daemon_dirs(const struct bg_config *cfg, struct banger_error *err)
{
    int r = fs_ensure_private_dir(cfg->state_dir, 0700, err);
    /* The runtime dir holds the socket group members must reach; the VM
     * runtime dirs below it are private. */
    if (r == 0)
        r = fs_ensure_private_dir(cfg->runtime_dir, 0755, err);
    return r;
}

int bangerd_run(const struct bg_config *cfg, struct banger_error *err)
{
    struct bangerd d = { .cfg = cfg, .started = time(NULL) };
    struct guest_launch guest_launch = { 0 }; /* core/guest: key into the work disk */
    struct workdisk_launch workdisk_launch = { 0 }; /* core/workdisk: the guest's /root */
    char eb[512] = "";
    int r;

    /* A thread per request would otherwise give glibc a malloc arena per
     * core and a half, each holding on to freed memory. */
    mallopt(M_ARENA_MAX, 2);

    /* Signals are handled by sigwait in this thread only: block them before
     * any thread (plugins', the RPC server's) exists. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (geteuid() != 0)
        bg_log(BANGER_LOG_WARNING, NULL, "not running as root: host set-up will likely fail");
    r = daemon_dirs(cfg, err);
    if (r < 0)
        return r;
    /* core/guest: banger's ssh identity; without it only ssh access is lost. */
    if (guest_ssh_setup(cfg->state_dir, 0, err) < 0) {
        bg_log(BANGER_LOG_ERROR, NULL, "ssh identity: %s", bg_error_text(err));
        bg_error_clear(err);
    }
    d.images_dir = fs_join(cfg->state_dir, "images");
    d.socket_path = fs_join(cfg->runtime_dir, "bangerd.sock");

    char *db = fs_join(cfg->state_dir, "banger.db");
    r = store_open(db, &d.store, eb, sizeof(eb));
    free(db);
    if (r < 0) {
        bg_fail(err, r, "%s", eb);
        goto done;
    }
    r = plugins_load(cfg, &d.plugins, err);
    if (r < 0)
        goto done;
    r = plugins_activate(d.plugins, err);
    if (r < 0)
        goto done;

    daemon_check_firecracker(cfg);
    d.fc = (struct fc_driver){
        .firecracker_bin = cfg->firecracker_bin,
        .stop_grace_ms = cfg->stop_grace_ms,
        .jailer_bin = cfg->jailer_bin,
        .jail_base = cfg->jailer_chroot_base,
        .jail_uid_base = cfg->jailer_uid_base,
        .console_log_max_bytes = cfg->console_log_max_bytes,
    };
    struct vmsvc_vmm vmm = { .find = daemon_vmm_find, .peek = daemon_vmm_peek,
                             .kill = daemon_vmm_kill };
    fc_driver_launch_ops(&d.fc, &vmm.launch);
    /* core/guest: write the public key into the work disk just before launch. */
    const struct guest_inject_as inject_as = {
        .drop_privileges = true, .uid = cfg->helper_uid, .gid = cfg->helper_gid,
        .per_vm_uid_base = cfg->helper_per_vm ? cfg->jailer_uid_base : 0,
    };
    guest_launch_wrap(&guest_launch, cfg->state_dir, d.store, &inject_as, &vmm.launch);
    /* core/workdisk, outermost: the disk exists before the key goes into it. */
    workdisk_launch_wrap(&workdisk_launch, &vmm.launch);
    r = vmsvc_new(cfg, d.store, d.plugins, &vmm, &d.vms, err);
    if (r < 0)
        goto done;
    r = vmsvc_reconcile(d.vms, err);
    if (r < 0)
        goto done;

    struct group *grp = getgrnam(cfg->socket_group);
    if (!grp)
        bg_log(BANGER_LOG_WARNING, NULL, "group '%s' does not exist: only root can use the socket "
               "(groupadd %s)", cfg->socket_group, cfg->socket_group);
    const struct rpc_limits limits = {
        .send_timeout_ms = cfg->rpc.send_timeout_ms,
        .max_per_uid = (unsigned)cfg->rpc.max_connections_per_uid,
        .shutdown_grace_ms = cfg->rpc.shutdown_grace_ms,
    };
    r = rpc_server_start(d.socket_path, grp != NULL, grp ? grp->gr_gid : 0, &limits,
                         bangerd_handle, &d, &d.rpc, err);
    if (r < 0)
        goto done;
    bg_log(BANGER_LOG_INFO, NULL, "bangerd %s ready on %s (%zu plugin(s))", PACKAGE_VERSION,
           d.socket_path, d.plugins->n);

    int sig = 0;
    do
        sigwait(&sigs, &sig);
    while (sig == SIGHUP);
    bg_log(BANGER_LOG_INFO, NULL, "signal %d: shutting down (VMs keep running)", sig);
    r = 0;

done:;
    unsigned lingering = rpc_server_stop(d.rpc);
    if (lingering) {
        /* Their threads still use the store, the plugins and the config:
         * freeing those would crash. Exit now, as a crash would, and let the
         * next start reconcile whatever those calls left half-done. */
        bg_log(BANGER_LOG_ERROR, NULL, "exiting with %u call(s) still running; the next start "
               "reconciles what they leave", lingering);
        _exit(r < 0 ? 1 : 0);
    }
    vmsvc_free(d.vms);
    guest_launch_done(&guest_launch);
    plugins_unload(d.plugins);
    store_close(d.store);
    free(d.images_dir);
    free(d.socket_path);
    return r;
}
