/* The VM's work disk (see workdisk.h). */
#include "config.h"

#include "host/host.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/log.h"
#include "workdisk/workdisk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkfs.ext4 on a sparse 8G file takes well under a second; allow for slow disks. */
#define WORKDISK_MKFS_TIMEOUT_MS 300000

static int workdisk_fault(struct banger_vm *vm, const char *point, struct banger_error *err)
{
    return vm ? bg_host_api()->fault_point(vm, point, err) : 0;
}

int workdisk_ensure(struct banger_vm *vm, const char *path, uint64_t size, bool *created,
                    struct banger_error *err)
{
    /* Lazy init keeps mkfs fast and the file sparse; the root of the
     * filesystem is the guest's /root, so root owns it. */
    static const char *const mkfs_opts =
        "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1";
    const struct banger_run_opts opts = { .struct_size = sizeof(opts),
                                          .timeout_ms = WORKDISK_MKFS_TIMEOUT_MS };
    char *tmp = NULL;
    struct stat st;
    int fd = -1, r = 0;

    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return bg_fail(err, -EINVAL, "work disk %s: not a regular file", path);
        if (created)
            *created = false;
        return 0;
    }
    if (errno != ENOENT)
        return bg_fail_errno(err, -errno, "work disk %s", path);
    tmp = malloc(strlen(path) + sizeof(".tmp"));
    if (!tmp)
        return bg_fail(err, -ENOMEM, "out of memory");
    sprintf(tmp, "%s.tmp", path);
    /* A temporary left by a crash is a half-made disk: start over. */
    if (unlink(tmp) < 0 && errno != ENOENT) {
        r = bg_fail_errno(err, -errno, "work disk %s", tmp);
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = bg_fail_errno(err, -errno, "work disk %s", tmp);
        goto cleanup;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        r = bg_fail_errno(err, -errno, "work disk %s: sizing to %llu bytes", tmp,
                          (unsigned long long)size);
        goto cleanup;
    }
    r = workdisk_fault(vm, "workdisk.size", err);
    if (r < 0)
        goto cleanup;
    {
        const char *const argv[] = { "mkfs.ext4", "-q", "-F", "-L", BANGER_WORK_LABEL,
                                     "-E", mkfs_opts, tmp, NULL };
        r = runner_run(argv, &opts, NULL, err);
        if (r < 0) {
            bg_error_prefix(err, "work disk %s", path);
            goto cleanup;
        }
    }
    r = workdisk_fault(vm, "workdisk.mkfs", err);
    if (r < 0)
        goto cleanup;
    if (fsync(fd) < 0) {
        r = bg_fail_errno(err, -errno, "work disk %s: fsync", tmp);
        goto cleanup;
    }
    if (rename(tmp, path) < 0) {
        r = bg_fail_errno(err, -errno, "work disk %s", path);
        goto cleanup;
    }
    if (created)
        *created = true;
cleanup:
    if (fd >= 0)
        close(fd);
    if (r < 0)
        unlink(tmp);
    free(tmp);
    return r;
}

int workdisk_remove(const char *path, struct banger_error *err)
{
    char *tmp = malloc(strlen(path) + sizeof(".tmp"));
    int r = 0;

    if (!tmp)
        return bg_fail(err, -ENOMEM, "out of memory");
    sprintf(tmp, "%s.tmp", path);
    if (unlink(path) < 0 && errno != ENOENT)
        r = bg_fail_errno(err, -errno, "removing work disk %s", path);
    if (unlink(tmp) < 0 && errno != ENOENT && r == 0)
        r = bg_fail_errno(err, -errno, "removing work disk %s", tmp);
    free(tmp);
    return r;
}

/* Ensure the disk and contribute the drive. A disk made by this very call is
 * removed again when a later sub-step fails, so a failed first start leaves
 * nothing; an existing disk (the user's files) is never removed here. */
static int workdisk_prepare(struct banger_vm *vm, struct banger_error *err)
{
    char *path = fs_join(vm->info.state_dir, WORKDISK_FILE);
    bool created = false;
    int r;

    r = workdisk_ensure(vm, path, vm->info.disk_size, &created, err);
    if (r < 0)
        goto cleanup;
    if (created)
        bg_log(BANGER_LOG_INFO, vm->info.id, "made work disk %s (%llu bytes, label %s)", path,
               (unsigned long long)vm->info.disk_size, BANGER_WORK_LABEL);
    {
        const struct banger_drive work = { .struct_size = sizeof(work),
                                           .drive_id = BANGER_DRIVE_WORK,
                                           .path_on_host = path,
                                           .cache = BANGER_DRIVE_CACHE_WRITEBACK };
        r = bg_host_api()->add_drive(vm, &work, err);
    }
    if (r == 0)
        r = workdisk_fault(vm, "workdisk.add-drive", err);
cleanup:
    if (r < 0 && created) {
        struct banger_error e = { 0 };
        if (workdisk_remove(path, &e) < 0)
            bg_log(BANGER_LOG_WARNING, vm->info.id, "%s", bg_error_text(&e));
    }
    free(path);
    return r;
}

static int workdisk_launch_launch(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct workdisk_launch *wl = ctx;
    int r;

    if (!vm->info.state_dir || !vm->info.state_dir[0])
        return bg_fail(err, -EINVAL, "work disk: the VM has no state directory");
    if (vm->info.disk_size == 0)
        return bg_fail(err, -EINVAL, "work disk: the VM has no disk size");
    r = workdisk_prepare(vm, err);
    if (r < 0)
        return r;
    return wl->inner.launch ? wl->inner.launch(wl->inner.ctx, vm, err) : 0;
}

static int workdisk_launch_undo(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct workdisk_launch *wl = ctx;
    return wl->inner.undo ? wl->inner.undo(wl->inner.ctx, vm, err) : 0;
}

static int workdisk_launch_stop(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct workdisk_launch *wl = ctx;
    return wl->inner.stop ? wl->inner.stop(wl->inner.ctx, vm, err) : 0;
}

static int workdisk_launch_destroy(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct workdisk_launch *wl = ctx;
    int r = 0;

    if (vm->info.state_dir && vm->info.state_dir[0]) {
        char *path = fs_join(vm->info.state_dir, WORKDISK_FILE);
        r = workdisk_remove(path, err);
        free(path);
    }
    if (wl->inner.destroy) {
        struct banger_error e = { 0 };
        int ri = wl->inner.destroy(wl->inner.ctx, vm, &e);
        if (ri < 0 && r == 0) {
            *err = e;
            r = ri;
        }
    }
    return r;
}

void workdisk_launch_wrap(struct workdisk_launch *wl, struct engine_launch_ops *ops)
{
    wl->inner = *ops;
    *ops = (struct engine_launch_ops){
        .ctx = wl,
        .launch = workdisk_launch_launch,
        .undo = workdisk_launch_undo,
        .stop = workdisk_launch_stop,
        .destroy = workdisk_launch_destroy,
    };
}
