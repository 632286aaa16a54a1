#include "config.h"

#include "fc/fc.h"
#include "guest/guest.h"
#include "host/host.h"
#include "store/cidr.h"
#include "store/names.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "vmsvc/vmsvc.h"
#include "vmsvc/vmsvc_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VMSVC_LOG_TAIL_DEFAULT (64 * 1024)
#define VMSVC_LOG_READ_MAX (1024 * 1024)
/* Test hook: BANGER_FAULTS=vmsvc.create-pause holds a create this long
 * between its reservation and its lock, so a test can race a delete into
 * that gap. */
#define VMSVC_CREATE_PAUSE_POINT "vmsvc.create-pause"
#define VMSVC_CREATE_PAUSE_MS 1500
/* Test hook: BANGER_FAULTS=vmsvc.view-pause holds a reader (vm.show,
 * vm.list, vm.agent) as long between reading a record and looking for its
 * VMM, so a test can delete the VM in that gap. */
#define VMSVC_VIEW_PAUSE_POINT "vmsvc.view-pause"

const char *vmsvc_error_code(int r)
{
    switch (r) {
    case -ENOENT: return "not_found";
    case -EEXIST: return "already_exists";
    case -EINVAL:
    case -ENOTUNIQ:
    case -ERANGE:
    case -ENAMETOOLONG: return "bad_request";
    case -EBUSY:
    case -EAGAIN: return "busy";
    case -EACCES:
    case -EPERM: return "unauthorized";
    default: return "failed";
    }
}

int vmsvc_new(const struct bg_config *cfg, struct store *store, const struct bg_plugins *plugins,
              const struct vmsvc_vmm *vmm, struct vmsvc **out, struct banger_error *err)
{
    struct vmsvc *svc = xcalloc(1, sizeof(*svc));
    svc->cfg = cfg;
    svc->store = store;
    svc->plugins = plugins;
    svc->vmm = *vmm;
    svc->vms_state_dir = fs_join(cfg->state_dir, "vms");
    svc->vms_runtime_dir = fs_join(cfg->runtime_dir, "vms");
    pthread_mutex_init(&svc->locks_mutex, NULL);
    int r = fs_ensure_private_dir(svc->vms_state_dir, 0700, err);
    if (r == 0)
        r = fs_ensure_private_dir(svc->vms_runtime_dir, 0700, err);
    /* Without a way to find a VMM there is nothing to watch. */
    if (r == 0 && vmm->find)
        r = vmsvc_watch_start(svc, err);
    if (r < 0) {
        vmsvc_free(svc);
        return r;
    }
    *out = svc;
    return 0;
}

void vmsvc_free(struct vmsvc *svc)
{
    if (!svc)
        return;
    vmsvc_watch_stop(svc);
    vmsvc_locks_free(svc);
    pthread_mutex_destroy(&svc->locks_mutex);
    free(svc->vms_state_dir);
    free(svc->vms_runtime_dir);
    free(svc);
}

/* ---- records and runtime objects ---------------------------------------- */

bool vmsvc_may_act(uid_t caller, const struct vm_record *rec)
{
    return caller == VMSVC_ROOT || rec->owner_uid == (uint32_t)caller;
}

int vmsvc_find_record(struct vmsvc *svc, uid_t caller, const char *ref, struct vm_record **out,
                      struct banger_error *err)
{
    char eb[512] = "";
    struct vm_record *rec = NULL;
    if (!ref || !ref[0])
        return bg_fail(err, -EINVAL, "no VM given");
    int r = store_vm_find(svc->store, ref, &rec, eb, sizeof(eb));
    if (r == -ENOENT)
        return bg_fail(err, r, "no VM named '%s'", ref);
    if (r < 0)
        return bg_fail(err, r, "%s", eb[0] ? eb : strerror(-r));
    /* The owner never changes, so the check holds for the record re-read
     * under the lock too (an id is never reused). */
    if (!vmsvc_may_act(caller, rec)) {
        r = bg_fail(err, -EACCES, "VM '%s' belongs to uid %u", rec->name,
                    (unsigned)rec->owner_uid);
        vm_record_free(rec);
        return r;
    }
    *out = rec;
    return 0;
}

static int vmsvc_reload(struct vmsvc *svc, const char *id, struct vm_record **out,
                        struct banger_error *err)
{
    char eb[512] = "";
    int r = store_vm_get_by_id(svc->store, id, out, eb, sizeof(eb));
    return r < 0 ? bg_fail(err, r, "%s", eb) : 0;
}

static int vmsvc_set_state(struct vmsvc *svc, const char *id, enum vm_state state,
                           const char *last_error)
{
    char eb[512] = "";
    int r = store_vm_set_state(svc->store, id, state, last_error, eb, sizeof(eb));
    if (r < 0)
        bg_log(BANGER_LOG_ERROR, id, "recording state %s: %s", vm_state_name(state), eb);
    return r;
}

/* The VM's runtime object. It creates nothing on disk: readers build it
 * without the VM's lock, and a delete may have removed the VM's directories
 * meanwhile (vmsvc_vm_dirs makes them, at start only). */
int vmsvc_vm_object(struct vmsvc *svc, const struct vm_record *rec, struct banger_vm **out,
                    struct banger_error *err)
{
    char eb[512] = "";
    struct image_record *img = NULL;
    int r = store_image_get_by_id(svc->store, rec->image_id, &img, eb, sizeof(eb));
    if (r < 0)
        return bg_fail(err, r, "image of VM '%s': %s", rec->name, eb);

    char gateway[16];
    ip4_format(cidr_gateway(svc->cfg->network.net), gateway, sizeof(gateway));
    char *state_dir = fs_join(svc->vms_state_dir, rec->id);
    char *runtime_dir = fs_join(svc->vms_runtime_dir, rec->id);
    struct banger_vm_info info = {
        .struct_size = sizeof(info),
        .vcpu = rec->vcpu,
        .id = rec->id,
        .name = rec->name,
        .ip = rec->ip,
        .mac = rec->mac,
        .gateway = gateway,
        .prefix_len = svc->cfg->network.prefix_len,
        .cid = rec->cid,
        .memory_mib = rec->memory_mib,
        .disk_size = rec->disk_size,
        .overlay_size = rec->overlay_size,
        .nat = rec->nat,
        .state_dir = state_dir,
        .runtime_dir = runtime_dir,
        .rootfs_path = img->rootfs_path,
        .kernel_path = img->kernel_path,
        .initrd_path = img->initrd_path,
        .bridge = svc->cfg->network.bridge,
    };
    r = bg_vm_new(&info, out, err);
    free(state_dir);
    free(runtime_dir);
    image_record_free(img);
    return r;
}

/* A start's directories: the VMM's sockets and log, the disks, the handles. */
static int vmsvc_vm_dirs(const struct banger_vm *vm, struct banger_error *err)
{
    int r = fs_ensure_private_dir(vm->info.state_dir, 0700, err);
    if (r == 0)
        r = fs_ensure_private_dir(vm->info.runtime_dir, 0700, err);
    return r;
}

/* Without the VM's lock: looks, writes nothing. */
int vmsvc_pid(struct vmsvc *svc, const struct vm_record *rec)
{
    if (!svc->vmm.peek)
        return 0;
    struct banger_vm *vm = NULL;
    struct banger_error e = { 0 };
    if (bg_fault_enabled(VMSVC_VIEW_PAUSE_POINT)) {
        struct timespec pause = { VMSVC_CREATE_PAUSE_MS / 1000,
                                  (VMSVC_CREATE_PAUSE_MS % 1000) * 1000000L };
        bg_log(BANGER_LOG_INFO, rec->id, "pausing at %s", VMSVC_VIEW_PAUSE_POINT);
        nanosleep(&pause, NULL);
    }
    if (vmsvc_vm_object(svc, rec, &vm, &e) < 0)
        return 0;
    int pid = svc->vmm.peek(svc->vmm.ctx, vm);
    bg_vm_free(vm);
    return pid;
}

/* ---- lifecycle ----------------------------------------------------------- */

/* Start with the VM's lock held. */
static int vmsvc_start_locked(struct vmsvc *svc, const struct vm_record *rec,
                              vmsvc_progress_fn progress, void *ctx, struct banger_error *err)
{
    struct banger_vm *vm = NULL;
    int r = vmsvc_vm_object(svc, rec, &vm, err);
    if (r < 0) {
        vmsvc_set_state(svc, rec->id, VM_STATE_ERROR, bg_error_text(err));
        return r;
    }
    if (rec->state == VM_STATE_RUNNING && svc->vmm.find && svc->vmm.find(svc->vmm.ctx, vm) > 0) {
        bg_vm_free(vm);
        return 0; /* already running: starting again is a no-op */
    }
    r = vmsvc_vm_dirs(vm, err);
    if (r < 0) {
        vmsvc_set_state(svc, rec->id, VM_STATE_ERROR, bg_error_text(err));
        bg_vm_free(vm);
        return r;
    }
    /* Leftovers of an earlier failed or interrupted run go first. */
    if (bg_vm_handle_count(vm) > 0) {
        struct banger_error e = { 0 };
        if (engine_stop(svc->plugins, &svc->vmm.launch, vm, &e) < 0) {
            r = bg_fail(err, e.code, "cleaning up the previous run failed: %s", bg_error_text(&e));
            vmsvc_set_state(svc, rec->id, VM_STATE_ERROR, bg_error_text(err));
            bg_vm_free(vm);
            return r;
        }
    }
    bg_log(BANGER_LOG_INFO, rec->id, "starting VM '%s'", rec->name);
    r = engine_start(svc->plugins, &svc->vmm.launch, vm, progress, ctx, err);
    if (r < 0) {
        vmsvc_set_state(svc, rec->id, VM_STATE_ERROR, bg_error_text(err));
        bg_log(BANGER_LOG_ERROR, rec->id, "start failed: %s", bg_error_text(err));
    } else {
        vmsvc_set_state(svc, rec->id, VM_STATE_RUNNING, NULL);
        bg_log(BANGER_LOG_INFO, rec->id, "VM '%s' running (pid %d)", rec->name, vm->vmm_pid);
        vmsvc_watch_add(svc, rec->id, vm->vmm_pid);
    }
    bg_vm_free(vm);
    return r;
}

int vmsvc_stop_locked(struct vmsvc *svc, const struct vm_record *rec, struct banger_error *err)
{
    struct banger_vm *vm = NULL;
    int r = vmsvc_vm_object(svc, rec, &vm, err);
    if (r < 0)
        return r;
    r = engine_stop(svc->plugins, &svc->vmm.launch, vm, err);
    if (r < 0)
        vmsvc_set_state(svc, rec->id, VM_STATE_ERROR, bg_error_text(err));
    else
        vmsvc_set_state(svc, rec->id, VM_STATE_STOPPED,
                        rec->state == VM_STATE_ERROR ? rec->last_error : NULL);
    bg_vm_free(vm);
    return r;
}

static int vmsvc_check_create(const struct bg_config *cfg, const struct vm_create_params *p,
                              struct vm_request *req, struct banger_error *err)
{
    char eb[256] = "";
    if (p->name && p->name[0] && vm_name_check(p->name, eb, sizeof(eb)) < 0)
        return bg_fail(err, -EINVAL, "%s", eb);
    req->name = p->name;
    req->image = p->image && p->image[0] ? p->image : "default";
    req->vcpu = p->vcpu ? p->vcpu : cfg->vm_defaults.vcpu;
    req->memory_mib = p->memory_mib ? p->memory_mib : cfg->vm_defaults.memory_mib;
    req->disk_size = p->disk_size ? p->disk_size : cfg->vm_defaults.disk_size;
    req->overlay_size = cfg->vm_defaults.overlay_size;
    req->nat = p->nat;
    req->owner_uid = (uint32_t)p->owner_uid;
    if (req->vcpu < 1 || req->vcpu > 32)
        return bg_fail(err, -EINVAL, "vcpu must be between 1 and 32, not %u", req->vcpu);
    if (req->memory_mib < 128 || req->memory_mib > (1u << 20))
        return bg_fail(err, -EINVAL, "memory must be between 128 and 1048576 MiB, not %llu",
                       (unsigned long long)req->memory_mib);
    if (req->disk_size < (64ull << 20))
        return bg_fail(err, -EINVAL, "disk size must be at least 64M");
    return 0;
}

int vmsvc_create(struct vmsvc *svc, const struct vm_create_params *p, vmsvc_progress_fn progress,
                 void *ctx, struct vm_record **out, struct banger_error *err)
{
    struct vm_request req = { 0 };
    struct vm_record *rec = NULL;
    char eb[512] = "";
    int r = vmsvc_check_create(svc->cfg, p, &req, err);
    if (r < 0)
        return r;
    if (progress)
        progress(ctx, "reserve");
    /* Name, IP, MAC and CID: one short transaction. */
    r = store_vm_reserve(svc->store, &req, svc->cfg->network.net, svc->cfg->network.prefix_len,
                         &rec, eb, sizeof(eb));
    if (r < 0)
        return bg_fail(err, r, "%s", eb);
    bg_log(BANGER_LOG_INFO, rec->id, "created VM '%s' (%s)", rec->name, rec->ip);
    if (p->start) {
        if (bg_fault_enabled(VMSVC_CREATE_PAUSE_POINT)) {
            struct timespec pause = { VMSVC_CREATE_PAUSE_MS / 1000,
                                      (VMSVC_CREATE_PAUSE_MS % 1000) * 1000000L };
            bg_log(BANGER_LOG_INFO, rec->id, "pausing at %s", VMSVC_CREATE_PAUSE_POINT);
            nanosleep(&pause, NULL);
        }
        /* Between the reservation and the lock a delete (or a start) of the
         * same VM may have run: start only from what the store says now. */
        struct vmsvc_lock *lock = vmsvc_lock(svc, rec->id);
        struct vm_record *locked = NULL;
        r = vmsvc_reload(svc, rec->id, &locked, err);
        if (r == -ENOENT)
            bg_fail(err, r, "VM '%s' was deleted while it was being created", rec->name);
        if (r == 0)
            r = vmsvc_start_locked(svc, locked, progress, ctx, err);
        vm_record_free(locked);
        vmsvc_unlock(svc, lock);
    }
    struct vm_record *fresh = NULL;
    struct banger_error e2 = { 0 };
    if (vmsvc_reload(svc, rec->id, &fresh, &e2) == 0) {
        vm_record_free(rec);
        rec = fresh;
    }
    if (r < 0) {
        vm_record_free(rec);
        return r;
    }
    *out = rec;
    return 0;
}

/* Find the VM, take its lock, and re-read the record under the lock. */
static int vmsvc_begin(struct vmsvc *svc, uid_t caller, const char *ref, struct vm_record **rec,
                       struct vmsvc_lock **lock, struct banger_error *err)
{
    struct vm_record *found = NULL;
    int r = vmsvc_find_record(svc, caller, ref, &found, err);
    if (r < 0)
        return r;
    *lock = vmsvc_lock(svc, found->id);
    r = vmsvc_reload(svc, found->id, rec, err);
    if (r == -ENOENT)
        bg_fail(err, r, "VM '%s' was deleted meanwhile", found->name);
    vm_record_free(found);
    if (r < 0) {
        vmsvc_unlock(svc, *lock);
        *lock = NULL;
    }
    return r;
}

static int vmsvc_finish(struct vmsvc *svc, struct vm_record *rec, struct vmsvc_lock *lock, int r,
                        struct vm_record **out, struct banger_error *err)
{
    if (r == 0 && out)
        r = vmsvc_reload(svc, rec->id, out, err);
    vm_record_free(rec);
    vmsvc_unlock(svc, lock);
    return r;
}

int vmsvc_start(struct vmsvc *svc, uid_t caller, const char *ref, vmsvc_progress_fn progress,
                void *ctx, struct vm_record **out, struct banger_error *err)
{
    struct vm_record *rec = NULL;
    struct vmsvc_lock *lock = NULL;
    int r = vmsvc_begin(svc, caller, ref, &rec, &lock, err);
    if (r < 0)
        return r;
    r = vmsvc_start_locked(svc, rec, progress, ctx, err);
    return vmsvc_finish(svc, rec, lock, r, out, err);
}

int vmsvc_stop(struct vmsvc *svc, uid_t caller, const char *ref, vmsvc_progress_fn progress,
               void *ctx, struct vm_record **out, struct banger_error *err)
{
    struct vm_record *rec = NULL;
    struct vmsvc_lock *lock = NULL;
    int r = vmsvc_begin(svc, caller, ref, &rec, &lock, err);
    if (r < 0)
        return r;
    if (progress)
        progress(ctx, "stop");
    r = vmsvc_stop_locked(svc, rec, err);
    return vmsvc_finish(svc, rec, lock, r, out, err);
}

int vmsvc_restart(struct vmsvc *svc, uid_t caller, const char *ref, vmsvc_progress_fn progress,
                  void *ctx, struct vm_record **out, struct banger_error *err)
{
    struct vm_record *rec = NULL;
    struct vmsvc_lock *lock = NULL;
    int r = vmsvc_begin(svc, caller, ref, &rec, &lock, err);
    if (r < 0)
        return r;
    if (progress)
        progress(ctx, "stop");
    r = vmsvc_stop_locked(svc, rec, err);
    if (r == 0) {
        struct vm_record *fresh = NULL;
        r = vmsvc_reload(svc, rec->id, &fresh, err);
        if (r == 0) {
            r = vmsvc_start_locked(svc, fresh, progress, ctx, err);
            vm_record_free(fresh);
        }
    }
    return vmsvc_finish(svc, rec, lock, r, out, err);
}

int vmsvc_kill(struct vmsvc *svc, uid_t caller, const char *ref, int sig, struct vm_record **out,
               struct banger_error *err)
{
    struct vm_record *rec = NULL;
    struct vmsvc_lock *lock = NULL;
    int r = vmsvc_begin(svc, caller, ref, &rec, &lock, err);
    if (r < 0)
        return r;
    struct banger_vm *vm = NULL;
    r = vmsvc_vm_object(svc, rec, &vm, err);
    if (r == 0 && svc->vmm.kill)
        r = svc->vmm.kill(svc->vmm.ctx, vm, sig, err);
    bg_vm_free(vm);
    /* Then the ordinary teardown; the VMM is gone, so it is quick. */
    if (r == 0)
        r = vmsvc_stop_locked(svc, rec, err);
    return vmsvc_finish(svc, rec, lock, r, out, err);
}

int vmsvc_delete(struct vmsvc *svc, uid_t caller, const char *ref, vmsvc_progress_fn progress,
                 void *ctx, struct vm_record **deleted, struct banger_error *err)
{
    struct vm_record *rec = NULL;
    struct vmsvc_lock *lock = NULL;
    char eb[512] = "";
    int r = vmsvc_begin(svc, caller, ref, &rec, &lock, err);
    if (r < 0)
        return r;
    if (progress)
        progress(ctx, "stop");
    struct banger_vm *vm = NULL;
    r = vmsvc_vm_object(svc, rec, &vm, err);
    if (r == 0)
        r = engine_stop(svc->plugins, &svc->vmm.launch, vm, err);
    if (r < 0) {
        /* Keep the record and the handles: a later delete finishes the job. */
        vmsvc_set_state(svc, rec->id, VM_STATE_ERROR, bg_error_text(err));
        bg_fail(err, r, "delete stopped half-way, the VM is kept so a retry can finish: %s",
                bg_error_text(err));
        goto done;
    }
    if (progress)
        progress(ctx, "destroy");
    r = engine_destroy(svc->plugins, &svc->vmm.launch, vm, err);
    if (r < 0) {
        vmsvc_set_state(svc, rec->id, VM_STATE_ERROR, bg_error_text(err));
        goto done;
    }
    r = fs_remove_tree(vm->info.state_dir, err);
    if (r == 0)
        r = fs_remove_tree(vm->info.runtime_dir, err);
    if (r == 0) {
        r = store_vm_delete(svc->store, rec->id, eb, sizeof(eb));
        if (r < 0)
            bg_fail(err, r, "%s", eb);
    }
    if (r == 0) {
        /* core/guest: the VM's pinned host key goes with it (IP and name are reused). */
        struct banger_error ke = { 0 };
        if (guest_host_forget(svc->cfg->state_dir, rec->name, rec->ip, &ke) < 0)
            bg_log(BANGER_LOG_WARNING, rec->id, "known_hosts: %s", bg_error_text(&ke));
        bg_log(BANGER_LOG_INFO, rec->id, "deleted VM '%s'", rec->name);
    }
done:
    bg_vm_free(vm);
    if (r == 0 && deleted) {
        *deleted = rec;
        rec = NULL;
    }
    vm_record_free(rec);
    vmsvc_unlock(svc, lock);
    return r;
}

int vmsvc_set(struct vmsvc *svc, uid_t caller, const char *ref, unsigned vcpu, uint64_t memory_mib,
              struct vm_record **out, struct banger_error *err)
{
    struct vm_record *rec = NULL;
    struct vmsvc_lock *lock = NULL;
    char eb[512] = "";
    if (vcpu > 32)
        return bg_fail(err, -EINVAL, "vcpu must be between 1 and 32, not %u", vcpu);
    if (memory_mib && (memory_mib < 128 || memory_mib > (1u << 20)))
        return bg_fail(err, -EINVAL, "memory must be between 128 and 1048576 MiB");
    if (!vcpu && !memory_mib)
        return bg_fail(err, -EINVAL, "nothing to change (give --vcpu or --memory)");
    int r = vmsvc_begin(svc, caller, ref, &rec, &lock, err);
    if (r < 0)
        return r;
    r = store_vm_set_resources(svc->store, rec->id, vcpu, memory_mib, eb, sizeof(eb));
    if (r == -EBUSY)
        bg_fail(err, r, "VM '%s' is running; stop it first", rec->name);
    else if (r < 0)
        bg_fail(err, r, "%s", eb);
    return vmsvc_finish(svc, rec, lock, r, out, err);
}

int vmsvc_show(struct vmsvc *svc, uid_t caller, const char *ref, struct vm_record **out, int *pid,
               struct banger_error *err)
{
    struct vm_record *rec = NULL;
    int r = vmsvc_find_record(svc, caller, ref, &rec, err);
    if (r < 0)
        return r;
    if (pid)
        *pid = rec->state == VM_STATE_RUNNING ? vmsvc_pid(svc, rec) : 0;
    *out = rec;
    return 0;
}

int vmsvc_logs(struct vmsvc *svc, uid_t caller, const char *ref, long long offset, char **data,
               size_t *len, long long *next, struct banger_error *err)
{
    struct vm_record *rec = NULL;
    struct fc_console_chunk chunk;
    int r = vmsvc_find_record(svc, caller, ref, &rec, err);
    if (r < 0)
        return r;
    /* The console ring the VM's log writer keeps (core/fc/fc_console_ring.c). */
    char *dir = fs_join(svc->vms_state_dir, rec->id);
    r = fc_console_read(dir, offset, VMSVC_LOG_READ_MAX, &chunk, err);
    if (r == 0) {
        *data = chunk.data;
        *len = chunk.len;
        *next = chunk.from + (long long)chunk.len;
    }
    free(dir);
    vm_record_free(rec);
    return r;
}

/* ---- reconcile ---------------------------------------------------------- */

static bool vmsvc_list_has(const struct vm_list *list, const char *id)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->items[i]->id, id) == 0)
            return true;
    return false;
}

/* A runtime dir whose VM is not in the store (deleted behind the daemon's
 * back, or a create that lost a race before this fix): stop its VMM, which
 * the driver identifies by the socket it listens on, then remove the dir.
 * The plugins' reconcile reaps the TAP, rules and DNS names afterwards. */
static unsigned vmsvc_reap_orphans(struct vmsvc *svc, const struct vm_list *list)
{
    unsigned reaped = 0;
    DIR *d = opendir(svc->vms_runtime_dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || vmsvc_list_has(list, de->d_name))
            continue;
        struct banger_vm_info info = {
            .struct_size = sizeof(info),
            .id = de->d_name,
            .name = de->d_name,
            .state_dir = fs_join(svc->vms_state_dir, de->d_name),
            .runtime_dir = fs_join(svc->vms_runtime_dir, de->d_name),
        };
        struct banger_vm *vm = NULL;
        struct banger_error e = { 0 };
        int r = bg_vm_new(&info, &vm, &e);
        int pid = r == 0 && svc->vmm.find ? svc->vmm.find(svc->vmm.ctx, vm) : 0;
        if (pid > 0)
            bg_log(BANGER_LOG_WARNING, info.id, "reconcile: VMM pid %d serves a VM that is not "
                   "in the store; killing it", pid);
        /* Also when none runs: the kill clears what the VMM left (its jail). */
        if (r == 0 && (pid > 0 || svc->vmm.kill))
            r = svc->vmm.kill ? svc->vmm.kill(svc->vmm.ctx, vm, SIGKILL, &e) : -ENOTSUP;
        if (r == 0)
            r = fs_remove_tree(info.runtime_dir, &e);
        if (r < 0)
            bg_log(BANGER_LOG_ERROR, info.id, "reconcile: orphan runtime dir %s: %s",
                   info.runtime_dir, bg_error_text(&e));
        else
            reaped++;
        bg_vm_free(vm);
        free((char *)info.state_dir);
        free((char *)info.runtime_dir);
    }
    closedir(d);
    return reaped;
}

int vmsvc_reconcile(struct vmsvc *svc, struct banger_error *err)
{
    char eb[512] = "";
    struct vm_list *list = NULL;
    int r = store_vm_list(svc->store, &list, eb, sizeof(eb));
    if (r < 0)
        return bg_fail(err, r, "%s", eb);
    struct banger_vm **live = xcalloc(list->count + 1, sizeof(*live));
    size_t n_live = 0;
    unsigned adopted = 0, cleaned = 0;

    for (size_t i = 0; i < list->count; i++) {
        const struct vm_record *rec = list->items[i];
        struct banger_vm *vm = NULL;
        struct banger_error e = { 0 };
        if (vmsvc_vm_object(svc, rec, &vm, &e) < 0) {
            bg_log(BANGER_LOG_ERROR, rec->id, "reconcile: %s", bg_error_text(&e));
            continue;
        }
        int pid = svc->vmm.find ? svc->vmm.find(svc->vmm.ctx, vm) : 0;
        if (rec->state == VM_STATE_RUNNING && pid > 0) {
            vm->vmm_pid = pid;
            live[n_live++] = vm;
            adopted++;
            bg_log(BANGER_LOG_INFO, rec->id, "adopted running VM '%s' (pid %d)", rec->name, pid);
            continue;
        }
        /* Not alive (or never finished starting): tear down from handles. */
        bool had_work = rec->state == VM_STATE_RUNNING || bg_vm_handle_count(vm) > 0 || pid > 0;
        if (had_work) {
            if (pid > 0 && svc->vmm.kill)
                svc->vmm.kill(svc->vmm.ctx, vm, SIGKILL, &e);
            bg_error_clear(&e);
            if (engine_stop(svc->plugins, &svc->vmm.launch, vm, &e) < 0) {
                bg_log(BANGER_LOG_ERROR, rec->id, "reconcile: teardown of '%s' incomplete: %s",
                       rec->name, bg_error_text(&e));
                vmsvc_set_state(svc, rec->id, VM_STATE_ERROR, bg_error_text(&e));
            } else {
                cleaned++;
                if (rec->state == VM_STATE_RUNNING)
                    vmsvc_set_state(svc, rec->id, VM_STATE_STOPPED, NULL);
                else if (rec->state == VM_STATE_CREATED)
                    vmsvc_set_state(svc, rec->id, VM_STATE_ERROR,
                                    "start was interrupted by a daemon restart; cleaned up");
                bg_log(BANGER_LOG_INFO, rec->id, "VM '%s' was not running; cleaned up", rec->name);
            }
        }
        bg_vm_free(vm);
    }
    unsigned orphans = vmsvc_reap_orphans(svc, list);
    struct banger_error e = { 0 };
    if (engine_reconcile(svc->plugins, live, n_live, &e) < 0)
        bg_log(BANGER_LOG_WARNING, NULL, "reconcile: %s", bg_error_text(&e));
    /* Watched only now, so the watcher never stops a VM that this reconcile
     * still counts as live; one that died meanwhile is handled at once. */
    for (size_t i = 0; i < n_live; i++)
        vmsvc_watch_add(svc, live[i]->info.id, live[i]->vmm_pid);
    bg_log(BANGER_LOG_INFO, NULL, "reconcile: %u VM(s) adopted, %u cleaned up, %u orphan(s) "
           "removed", adopted, cleaned, orphans);
    for (size_t i = 0; i < n_live; i++)
        bg_vm_free(live[i]);
    free(live);
    vm_list_free(list);
    return 0;
}
