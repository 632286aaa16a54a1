/* The VM's work disk, a core step that runs with any root module: a sparse
 * ext4 file (state_dir/vms/<id>/work.ext4, label BANGER_WORK_LABEL) that the
 * guest mounts at /root. Made on the VM's first start, kept across stop and
 * start (it holds the user's files), removed when the VM is deleted.
 *
 * It wraps the launch step, outside core/guest's wrapper, so the disk exists
 * and is drive BANGER_DRIVE_WORK before the ssh key is written into it. */
#ifndef BANGER_WORKDISK_H
#define BANGER_WORKDISK_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "host/vm.h"
#include "util/error.h"

#define WORKDISK_FILE "work.ext4"
/* The ext4 label the guest image mounts at /root (LABEL=banger-work). */
#define BANGER_WORK_LABEL "banger-work"

/* Make `path` when missing: a sparse file of exactly `size` bytes holding a
 * fresh ext4 filesystem labelled BANGER_WORK_LABEL, built under a temporary
 * name so no half-made disk is ever kept. An existing file is kept as it is.
 * *created (may be NULL) tells whether this call made it. Fault points
 * (vm may be NULL: none): workdisk.size, workdisk.mkfs. */
int workdisk_ensure(struct banger_vm *vm, const char *path, uint64_t size, bool *created,
                    struct banger_error *err);
/* Remove `path` and a leftover temporary; missing counts as done. */
int workdisk_remove(const char *path, struct banger_error *err);

/* The launch wrapper: before the inner launch, ensure the VM's work disk and
 * add it as drive BANGER_DRIVE_WORK (cache Writeback, so a guest's fsync
 * reaches the host disk). undo and stop pass through (the disk is kept);
 * destroy removes it. */
struct workdisk_launch {
    struct engine_launch_ops inner;
};
void workdisk_launch_wrap(struct workdisk_launch *wl, struct engine_launch_ops *ops);

#endif
