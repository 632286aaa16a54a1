/* Test-only capability "workdisk": each VM gets state_dir/work.ext4 (made
 * once with mkfs.ext4 -L banger-work) as drive "work", like the snapshot plugin's work
 * disk, for hosts without device-mapper. */
#include "config.h"

#include <banger/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define WORKDISK_SIZE (64ll << 20)

static int workdisk_init(const struct banger_host_api *host, const struct banger_cfg *cfg,
                         void **state, struct banger_error *err)
{
    (void)cfg;
    (void)err;
    *state = (void *)host;
    return 0;
}

static int workdisk_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                          struct banger_error *err)
{
    const struct banger_host_api *host = state;
    const struct banger_vm_info *info = host->vm_info(vm);
    char path[4096];
    (void)phase;

    snprintf(path, sizeof(path), "%s/work.ext4", info->state_dir);
    if (access(path, F_OK) != 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return host->fail(err, -errno, "create %s", path);
        int r = ftruncate(fd, WORKDISK_SIZE) < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
            return host->fail(err, r, "size %s", path);
        /* Labelled like banger's work disks: the guest mounts it by label. */
        const char *const argv[] = { "mkfs.ext4", "-q", "-F", "-L", "banger-work", path, NULL };
        r = host->run(argv, NULL, NULL, err);
        if (r < 0) {
            unlink(path);
            return r;
        }
    }
    struct banger_drive drive = { .struct_size = sizeof(drive), .drive_id = "work",
                                  .path_on_host = path };
    return host->add_drive(vm, &drive, err);
}

static const struct banger_capability workdisk_cap = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = "workdisk",
    .version = "test",
    .description = "test-only work disk",
    .phases = BANGER_PHASE_BEFORE_LAUNCH,
    .init = workdisk_init,
    .start = workdisk_start,
};

BANGER_CAPABILITY_DEFINE(workdisk_cap)
