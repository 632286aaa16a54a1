/* snapshot capability: the VM's root drive is a persistent device-mapper
 * snapshot of the image (read-only loop) on a sparse per-VM COW file
 * (read-write loop). The work disk is the core's (core/workdisk).
 *
 * Every host object is recorded as a handle before it is made, so a failure
 * or crash at any point can be undone from handles.json alone. The loops are
 * bound with autoclear: once the dm table holds them, removing the dm device
 * releases them; an explicit detach follows anyway. */
#include "config.h"

#include "snap-dm.h"
#include "snap-loop.h"
#include "snap-util.h"

#include <banger/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define SNAP_H_BASE "snapshot.base_loop"
#define SNAP_H_COW "snapshot.cow_loop"
#define SNAP_H_DM "snapshot.dm"
#define SNAP_COW_FILE "overlay.cow"
#define SNAP_MAX_RETRIES 1000

struct snap_state {
    const struct banger_host_api *host;
    long long remove_retries;
    /* Loop and dm set-up of concurrent starts run one at a time. */
    pthread_mutex_t setup_lock;
};

struct snap_pick_ctx {
    struct snap_state *st;
    struct banger_vm *vm;
    const char *key;
    struct banger_error *err;
};

static int snapshot_init(const struct banger_host_api *host, const struct banger_cfg *cfg,
                         void **state, struct banger_error *err)
{
    static const char *const allowed[] = {"remove_retries", NULL};
    struct snap_state *st;
    long long retries = 20;
    int r;

    if (!BANGER_HAS_FIELD(struct banger_host_api, host, cfg_group))
        return -ENOTSUP;
    r = host->cfg_check_keys(cfg, allowed, err);
    if (r < 0)
        return r;
    r = host->cfg_get_int(cfg, "remove_retries", &retries, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (retries < 0 || retries > SNAP_MAX_RETRIES)
        return host->cfg_fail(cfg, "remove_retries", err, "must be between 0 and %d, not %lld",
                              SNAP_MAX_RETRIES, retries);
    st = calloc(1, sizeof(*st));
    if (!st)
        return host->fail(err, -ENOMEM, "out of memory");
    st->host = host;
    st->remove_retries = retries;
    pthread_mutex_init(&st->setup_lock, NULL);
    snap_dm_setup();
    *state = st;
    return 0;
}

static void snapshot_fini(void *state)
{
    struct snap_state *st = state;

    if (!st)
        return;
    pthread_mutex_destroy(&st->setup_lock);
    free(st);
}

/* A size from the VM, else vm_defaults.<key>, else 8G. */
static uint64_t snapshot_size(struct snap_state *st, uint64_t vm_value, const char *key)
{
    struct banger_error *none = NULL;
    uint64_t v = 0;

    if (vm_value)
        return vm_value;
    if (st->host->cfg_get_size(st->host->cfg_group("vm_defaults"), key, &v, none) == 0 && v)
        return v;
    return SNAP_DEFAULT_SIZE;
}

static int snapshot_path(struct snap_state *st, struct banger_vm *vm, const char *file,
                         char *out, size_t out_len, struct banger_error *err)
{
    const struct banger_vm_info *info = st->host->vm_info(vm);

    if (!info->state_dir)
        return st->host->fail(err, -EINVAL, "VM has no state directory");
    if ((size_t)snprintf(out, out_len, "%s/%s", info->state_dir, file) >= out_len)
        return st->host->fail(err, -ENAMETOOLONG, "path too long: %s/%s", info->state_dir,
                              file);
    return 0;
}

/* The sparse COW file: made on first start, kept until destroy. */
static int snapshot_ensure_cow(struct snap_state *st, const char *path, uint64_t size,
                               struct banger_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0 && errno == EEXIST)
        return 0;
    if (fd < 0)
        return st->host->fail(err, -errno, "COW file %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0) {
        int r = -errno;
        close(fd);
        unlink(path);
        return st->host->fail(err, r, "COW file %s: sizing to %llu bytes: %s", path,
                              (unsigned long long)size, strerror(-r));
    }
    close(fd);
    return 0;
}

static int snapshot_record_pick(void *ctx, const char *dev)
{
    struct snap_pick_ctx *c = ctx;

    return c->st->host->set_handle(c->vm, c->key, dev, c->err);
}

static int snapshot_attach(struct snap_state *st, struct banger_vm *vm, const char *key,
                           const char *path, bool read_only, int *fd, dev_t *rdev,
                           const char *step, struct banger_error *err)
{
    struct snap_pick_ctx ctx = {.st = st, .vm = vm, .key = key, .err = err};
    char dev[32], why[512] = "";
    struct stat sb;
    int r;

    r = snap_loop_attach(path, read_only, snapshot_record_pick, &ctx, fd, dev, sizeof(dev), why,
                         sizeof(why));
    if (r < 0)
        return st->host->fail(err, r, "%s: %s", step, why);
    if (fstat(*fd, &sb) < 0)
        return st->host->fail(err, -errno, "%s: %s: %s", step, dev, strerror(errno));
    *rdev = sb.st_rdev;
    return 0;
}

static int snapshot_before_launch(struct snap_state *st, struct banger_vm *vm,
                                  struct banger_error *err)
{
    const struct banger_host_api *host = st->host;
    const struct banger_vm_info *info = host->vm_info(vm);
    char name[64], cow[PATH_MAX], mapper[96], why[512] = "";
    int base_fd = -1, cow_fd = -1, r;
    dev_t base_dev = 0, cow_dev = 0;
    uint64_t image_size = 0;
    bool locked = false;

    r = snap_dm_name(info->id, name, sizeof(name));
    if (r < 0)
        return host->fail(err, r, "VM id '%s' cannot name a dm device", info->id);
    r = snap_check_ext4(info->rootfs_path, &image_size, why, sizeof(why));
    if (r < 0)
        return host->fail(err, r, "%s", why);
    r = snapshot_path(st, vm, SNAP_COW_FILE, cow, sizeof(cow), err);
    if (r < 0)
        return r;
    r = snap_dm_check_snapshot_target(why, sizeof(why));
    if (r < 0)
        return host->fail(err, r, "%s", why);
    r = snapshot_ensure_cow(st, cow, snapshot_size(st, info->overlay_size, "overlay_size"), err);
    if (r < 0)
        return r;

    pthread_mutex_lock(&st->setup_lock);
    locked = true;
    r = snap_dm_exists(name);
    if (r != 0) {
        r = host->fail(err, r < 0 ? r : -EEXIST,
                       r < 0 ? "dm device %s: cannot query it"
                             : "dm device %s already exists (a previous run was not stopped)",
                       name);
        goto cleanup;
    }
    r = snapshot_attach(st, vm, SNAP_H_BASE, info->rootfs_path, true, &base_fd, &base_dev,
                        "base loop", err);
    if (r < 0)
        goto cleanup;
    r = host->fault_point(vm, "snapshot.base-loop", err);
    if (r < 0)
        goto cleanup;
    r = snapshot_attach(st, vm, SNAP_H_COW, cow, false, &cow_fd, &cow_dev, "COW loop", err);
    if (r < 0)
        goto cleanup;
    r = host->fault_point(vm, "snapshot.cow-loop", err);
    if (r < 0)
        goto cleanup;
    r = host->set_handle(vm, SNAP_H_DM, name, err);
    if (r < 0)
        goto cleanup;
    r = snap_dm_create_snapshot(name, base_dev, cow_dev, image_size / 512, SNAP_CHUNK_SECTORS,
                                why, sizeof(why));
    if (r < 0) {
        r = host->fail(err, r, "dm snapshot %s: %s", name, why);
        goto cleanup;
    }
    r = host->fault_point(vm, "snapshot.dm-create", err);
    if (r < 0)
        goto cleanup;
    snprintf(mapper, sizeof(mapper), "/dev/mapper/%s", name);
    if (access(mapper, F_OK) != 0) {
        r = host->fail(err, -ENOENT, "dm snapshot %s: %s did not appear", name, mapper);
        goto cleanup;
    }
cleanup:
    /* The dm table holds the loops now; without it autoclear releases them. */
    if (base_fd >= 0)
        close(base_fd);
    if (cow_fd >= 0)
        close(cow_fd);
    if (locked)
        pthread_mutex_unlock(&st->setup_lock);
    if (r < 0)
        return r;

    {
        const struct banger_drive root = {.struct_size = sizeof(root), .is_root_device = true,
                                          .drive_id = BANGER_DRIVE_ROOT, .path_on_host = mapper};
        return host->add_drive(vm, &root, err);
    }
}

static int snapshot_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                          struct banger_error *err)
{
    if (phase != BANGER_PHASE_BEFORE_LAUNCH)
        return 0;
    return snapshot_before_launch(state, vm, err);
}

static void snapshot_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Remove dm device `name`, retrying while it is busy. Gone counts as done. */
static int snapshot_remove_dm(struct snap_state *st, struct banger_vm *vm, const char *name,
                              struct banger_error *err)
{
    char why[512] = "";
    int r;

    for (long long attempt = 0;; attempt++) {
        r = snap_dm_remove(name, why, sizeof(why));
        if (r == 0 || r == -ENXIO)
            return 0;
        if (r != -EBUSY)
            return st->host->fail(err, r, "dm device %s: %s", name, why);
        if (attempt >= st->remove_retries)
            break;
        st->host->log(BANGER_LOG_DEBUG, vm, "dm device %s busy, retry %lld of %lld", name,
                      attempt + 1, st->remove_retries);
        snapshot_sleep_ms(snap_backoff_ms((unsigned)attempt + 1));
    }
    return st->host->fail(err, -EBUSY,
                          "dm device %s still busy after %lld retries (something holds "
                          "/dev/mapper/%s open); its handles are kept for a later stop",
                          name, st->remove_retries, name);
}

static int snapshot_detach(struct snap_state *st, struct banger_vm *vm, const char *key,
                           const char *backing, struct banger_error *err)
{
    const char *dev = st->host->get_handle(vm, key);
    char why[512] = "";
    int r;

    if (!dev)
        return 0;
    r = snap_loop_detach(dev, backing, why, sizeof(why));
    if (r < 0)
        return st->host->fail(err, r, "%s", why);
    return st->host->set_handle(vm, key, NULL, err);
}

static int snapshot_stop(void *state, struct banger_vm *vm, struct banger_error *err)
{
    struct snap_state *st = state;
    const struct banger_vm_info *info = st->host->vm_info(vm);
    const char *dm = st->host->get_handle(vm, SNAP_H_DM);
    char cow[PATH_MAX];
    int r, first = 0;

    if (dm) {
        char name[64];

        snprintf(name, sizeof(name), "%s", dm);
        if (!snap_is_own_dm_name(name))
            return st->host->fail(err, -EINVAL, "recorded dm device '%s' is not banger's",
                                  name);
        r = snapshot_remove_dm(st, vm, name, err);
        /* The loops are still under the dm device: keep every handle. */
        if (r < 0)
            return r;
        r = st->host->set_handle(vm, SNAP_H_DM, NULL, err);
        if (r < 0)
            return r;
    }
    cow[0] = '\0';
    if (info->state_dir)
        snprintf(cow, sizeof(cow), "%s/" SNAP_COW_FILE, info->state_dir);
    r = snapshot_detach(st, vm, SNAP_H_COW, cow[0] ? cow : NULL, err);
    if (r < 0)
        first = r;
    r = snapshot_detach(st, vm, SNAP_H_BASE, info->rootfs_path, first < 0 ? NULL : err);
    if (r < 0 && first == 0)
        first = r;
    return first;
}

static int snapshot_destroy(void *state, struct banger_vm *vm, struct banger_error *err)
{
    struct snap_state *st = state;
    char cow[PATH_MAX];
    int r;

    r = snapshot_path(st, vm, SNAP_COW_FILE, cow, sizeof(cow), err);
    if (r < 0)
        return r;
    if (unlink(cow) < 0 && errno != ENOENT)
        return st->host->fail(err, -errno, "removing COW file %s: %s", cow, strerror(errno));
    return 0;
}

static int snapshot_doctor(void *state, struct banger_doctor *report)
{
    struct snap_state *st = state;
    char why[512] = "";

    if (access("/dev/loop-control", R_OK | W_OK) == 0)
        st->host->doctor_row(report, BANGER_DOCTOR_PASS, "loop", "/dev/loop-control usable");
    else
        st->host->doctor_row(report, BANGER_DOCTOR_FAIL, "loop", "/dev/loop-control: %s",
                             strerror(errno));
    if (snap_dm_check_snapshot_target(why, sizeof(why)) == 0)
        st->host->doctor_row(report, BANGER_DOCTOR_PASS, "dm", "device-mapper snapshot target");
    else
        st->host->doctor_row(report, BANGER_DOCTOR_FAIL, "dm", "%s", why);
    return 0;
}

/* Detach the loop devices a dm table used (its dependencies, major 7). */
static void snapshot_detach_deps(const dev_t *deps, size_t n)
{
    char dev[32], why[256];

    for (size_t i = 0; i < n; i++) {
        if (major(deps[i]) != 7)
            continue;
        snprintf(dev, sizeof(dev), "/dev/loop%u", minor(deps[i]));
        (void)snap_loop_detach(dev, NULL, why, sizeof(why));
    }
}

static int snapshot_reconcile(void *state, struct banger_vm *const *live, size_t n,
                              struct banger_error *err)
{
    struct snap_state *st = state;
    char **names = NULL, why[512] = "";
    int r, first = 0;

    if (snap_dm_check_snapshot_target(why, sizeof(why)) < 0)
        return 0; /* no dm here: nothing of ours can exist */
    r = snap_dm_list(SNAP_DM_PREFIX, &names, why, sizeof(why));
    if (r < 0)
        return st->host->fail(err, r, "%s", why);
    for (char **p = names; *p; p++) {
        char own[64];
        dev_t deps[8];
        size_t n_deps = 0;
        bool owned = false;

        for (size_t i = 0; i < n && !owned; i++)
            owned = snap_dm_name(st->host->vm_info(live[i])->id, own, sizeof(own)) == 0 &&
                    strcmp(own, *p) == 0;
        if (owned)
            continue;
        st->host->log(BANGER_LOG_INFO, NULL, "removing orphaned dm device %s", *p);
        (void)snap_dm_deps(*p, deps, 8, &n_deps);
        r = snapshot_remove_dm(st, NULL, *p, first < 0 ? NULL : err);
        if (r < 0) {
            if (first == 0)
                first = r;
            continue;
        }
        snapshot_detach_deps(deps, n_deps);
    }
    snap_dm_list_free(names);
    return first;
}

static const struct banger_capability snapshot_desc = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = "snapshot",
    .version = PACKAGE_VERSION,
    .description = "root drive: dm snapshot of the image on a per-VM COW file",
    .phases = BANGER_PHASE_BEFORE_LAUNCH,
    .requires = NULL,
    .init = snapshot_init,
    .fini = snapshot_fini,
    .start = snapshot_start,
    .rollback = NULL,
    .stop = snapshot_stop,
    .destroy = snapshot_destroy,
    .doctor = snapshot_doctor,
    .reconcile = snapshot_reconcile,
};

BANGER_CAPABILITY_DEFINE(snapshot_desc)
