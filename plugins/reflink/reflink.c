/* reflink capability: each VM's root drive is its own copy of the image's
 * rootfs.ext4 in the VM's state dir, made with ioctl(FICLONE): on btrfs or
 * xfs (reflink=1) that takes milliseconds and no space until the guest
 * writes. Elsewhere it falls back to a sparse copy (data regions only) and
 * says in the log what that cost; `require_reflink = true` refuses instead.
 * Needs no device-mapper and no loop devices.
 *
 * Lifetime matches the snapshot module's COW file: the copy is made on the
 * VM's first start, kept across stop/start (it is the VM's root filesystem),
 * removed on delete (destroy). A copy in progress is built under a
 * temporary name recorded as a handle first, so stop (from handles.json
 * alone) removes what a crash or a failed start left half-made.
 *
 * No reconcile: the module makes no host object outside the VM's state
 * dir, which the core removes with the VM, and a stopped VM's root is
 * legitimately there although the VM is not live.
 *
 * The root keeps the image's size: overlay_size bounds the snapshot
 * module's COW space, and a reflinked copy can never take more than the
 * image's size from the host; growing the guest's filesystem would need
 * resize2fs on every first start. A bigger root is a bigger image. */
#include "config.h"

#include "reflink-copy.h"

#include <banger/capability.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REFLINK_ROOT_FILE "root.ext4"
#define REFLINK_PARTIAL_SUFFIX ".tmp"
#define REFLINK_H_PARTIAL "reflink.partial"
#ifndef REFLINK_DEFAULT_STATE_DIR
#define REFLINK_DEFAULT_STATE_DIR "/var/lib/banger"
#endif

struct reflink_state {
    const struct banger_host_api *host;
    bool require_reflink;
    char state_dir[PATH_MAX]; /* the daemon's state_dir, for doctor's probe */
};

static int reflink_init(const struct banger_host_api *host, const struct banger_cfg *cfg,
                        void **state, struct banger_error *err)
{
    static const char *const allowed[] = {"require_reflink", NULL};
    struct reflink_state *st;
    const char *state_dir = NULL;
    bool require = false;
    int r;

    if (!BANGER_HAS_FIELD(struct banger_host_api, host, cfg_group))
        return -ENOTSUP;
    r = host->cfg_check_keys(cfg, allowed, err);
    if (r < 0)
        return r;
    r = host->cfg_get_bool(cfg, "require_reflink", &require, err);
    if (r < 0 && r != -ENOENT)
        return r;
    /* The top level of the config (group ""), for state_dir. */
    if (host->cfg_get_string(host->cfg_group(""), "state_dir", &state_dir, NULL) < 0 ||
        !state_dir || !state_dir[0])
        state_dir = REFLINK_DEFAULT_STATE_DIR;
    st = calloc(1, sizeof(*st));
    if (!st)
        return host->fail(err, -ENOMEM, "out of memory");
    st->host = host;
    st->require_reflink = require;
    snprintf(st->state_dir, sizeof(st->state_dir), "%s", state_dir);
    *state = st;
    return 0;
}

static void reflink_fini(void *state)
{
    free(state);
}

static int reflink_paths(struct reflink_state *st, struct banger_vm *vm, char *root,
                         char *partial, struct banger_error *err)
{
    const struct banger_vm_info *info = st->host->vm_info(vm);

    if (!info->state_dir || !info->state_dir[0])
        return st->host->fail(err, -EINVAL, "VM has no state directory");
    if ((size_t)snprintf(root, PATH_MAX, "%s/" REFLINK_ROOT_FILE, info->state_dir) >= PATH_MAX ||
        (size_t)snprintf(partial, PATH_MAX, "%s/" REFLINK_ROOT_FILE REFLINK_PARTIAL_SUFFIX,
                         info->state_dir) >= PATH_MAX)
        return st->host->fail(err, -ENAMETOOLONG, "path too long: %s", info->state_dir);
    return 0;
}

/* Copy the image to `partial` and rename it to `root`; the partial name is
 * a handle before it exists. */
static int reflink_make_root(struct reflink_state *st, struct banger_vm *vm, const char *image,
                             const char *root, const char *partial, struct banger_error *err)
{
    const struct banger_host_api *host = st->host;
    struct bg_copy_stats stats;
    char why[512] = "";
    int r;

    r = host->set_handle(vm, REFLINK_H_PARTIAL, partial, err);
    if (r < 0)
        return r;
    if (unlink(partial) < 0 && errno != ENOENT)
        return host->fail(err, -errno, "%s: %s", partial, strerror(errno));
    r = bg_copy_file(image, partial, 0600, !st->require_reflink, &stats, why, sizeof(why));
    if (r == -EOPNOTSUPP)
        return host->fail(err, r, "%s; require_reflink is set, so no full copy is made", why);
    if (r < 0)
        return host->fail(err, r, "root copy: %s", why);
    if (stats.cloned)
        host->log(BANGER_LOG_INFO, vm, "root %s cloned from %s in %.1f ms", root, image,
                  (double)stats.nsec / 1e6);
    else
        host->log(BANGER_LOG_WARNING, vm,
                  "the filesystem of %s cannot clone files (reflink): root %s is a full copy, "
                  "%llu bytes written in %.1f ms; put state_dir on btrfs or xfs "
                  "(mkfs.xfs -m reflink=1) for instant roots that share the image's blocks",
                  root, root, (unsigned long long)stats.bytes_copied, (double)stats.nsec / 1e6);
    r = host->fault_point(vm, "reflink.copy", err);
    if (r < 0)
        goto cleanup;
    if (rename(partial, root) < 0) {
        r = host->fail(err, -errno, "%s: %s", root, strerror(errno));
        goto cleanup;
    }
    r = host->set_handle(vm, REFLINK_H_PARTIAL, NULL, err);
cleanup:
    if (r < 0)
        unlink(partial);
    return r;
}

static int reflink_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                         struct banger_error *err)
{
    struct reflink_state *st = state;
    const struct banger_host_api *host = st->host;
    const struct banger_vm_info *info = host->vm_info(vm);
    char root[PATH_MAX], partial[PATH_MAX], why[512] = "";
    bool created = false;
    struct stat sb;
    int r;

    if (phase != BANGER_PHASE_BEFORE_LAUNCH)
        return 0;
    r = reflink_paths(st, vm, root, partial, err);
    if (r < 0)
        return r;
    r = bg_check_ext4_image(info->rootfs_path, NULL, why, sizeof(why));
    if (r < 0)
        return host->fail(err, r, "%s", why);
    if (stat(root, &sb) == 0) {
        /* The VM's root from an earlier start: it holds the guest's changes. */
        if (!S_ISREG(sb.st_mode))
            return host->fail(err, -EINVAL, "root %s: not a regular file", root);
    } else if (errno != ENOENT) {
        return host->fail(err, -errno, "root %s: %s", root, strerror(errno));
    } else {
        r = reflink_make_root(st, vm, info->rootfs_path, root, partial, err);
        if (r < 0)
            return r;
        created = true;
    }
    {
        const struct banger_drive drive = {.struct_size = sizeof(drive),
                                           .is_root_device = true,
                                           .drive_id = BANGER_DRIVE_ROOT,
                                           .path_on_host = root,
                                           .cache = BANGER_DRIVE_CACHE_WRITEBACK};
        r = host->add_drive(vm, &drive, err);
    }
    if (r == 0)
        r = host->fault_point(vm, "reflink.add-drive", err);
    /* A root made by this very start goes again: a failed first start
     * leaves nothing. An older root is the guest's and stays. */
    if (r < 0 && created)
        unlink(root);
    return r;
}

/* Nothing runs while a VM is stopped: only a half-made copy, named by its
 * handle, has to go. Idempotent, works from handles.json alone. */
static int reflink_stop(void *state, struct banger_vm *vm, struct banger_error *err)
{
    struct reflink_state *st = state;
    const char *partial = st->host->get_handle(vm, REFLINK_H_PARTIAL);
    const char *suffix = "/" REFLINK_ROOT_FILE REFLINK_PARTIAL_SUFFIX;
    size_t n, ns = strlen(suffix);

    if (!partial)
        return 0;
    n = strlen(partial);
    /* A handle is data from disk: remove only what this module names so. */
    if (n <= ns || strcmp(partial + n - ns, suffix) != 0)
        return st->host->fail(err, -EINVAL, "recorded partial root '%s' is not this module's",
                              partial);
    if (unlink(partial) < 0 && errno != ENOENT)
        return st->host->fail(err, -errno, "removing %s: %s", partial, strerror(errno));
    return st->host->set_handle(vm, REFLINK_H_PARTIAL, NULL, err);
}

static int reflink_destroy(void *state, struct banger_vm *vm, struct banger_error *err)
{
    struct reflink_state *st = state;
    char root[PATH_MAX], partial[PATH_MAX];
    int r;

    r = reflink_paths(st, vm, root, partial, err);
    if (r < 0)
        return r;
    if (unlink(partial) < 0 && errno != ENOENT)
        return st->host->fail(err, -errno, "removing %s: %s", partial, strerror(errno));
    if (unlink(root) < 0 && errno != ENOENT)
        return st->host->fail(err, -errno, "removing root %s: %s", root, strerror(errno));
    return 0;
}

static int reflink_doctor(void *state, struct banger_doctor *report)
{
    struct reflink_state *st = state;
    char why[512] = "";
    int r = reflink_probe_dir(st->state_dir, why, sizeof(why));

    if (r > 0)
        st->host->doctor_row(report, BANGER_DOCTOR_PASS, "reflink",
                             "%s clones files: VM roots are instant and share the image",
                             st->state_dir);
    else if (r == 0)
        st->host->doctor_row(report, st->require_reflink ? BANGER_DOCTOR_FAIL : BANGER_DOCTOR_WARN,
                             "reflink",
                             "%s cannot clone files (%s): %s", st->state_dir, why,
                             st->require_reflink ? "every VM start will fail (require_reflink)"
                                                 : "each VM root is a full sparse copy of the "
                                                   "image; use btrfs or xfs with reflink=1");
    else
        st->host->doctor_row(report, BANGER_DOCTOR_FAIL, "reflink", "%s", why);
    return 0;
}

static const struct banger_capability reflink_desc = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = "reflink",
    .version = PACKAGE_VERSION,
    .description = "root drive: a reflink (FICLONE) copy of the image per VM, no device-mapper",
    .phases = BANGER_PHASE_BEFORE_LAUNCH,
    .requires = NULL,
    .init = reflink_init,
    .fini = reflink_fini,
    .start = reflink_start,
    .rollback = NULL,
    .stop = reflink_stop,
    .destroy = reflink_destroy,
    .doctor = reflink_doctor,
    .reconcile = NULL,
};

BANGER_CAPABILITY_DEFINE(reflink_desc)
