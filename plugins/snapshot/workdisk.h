/* The per-VM work disk: a sparse ext4 file the guest mounts at /root. It
 * belongs to the snapshot capability (storage) rather than a module of its
 * own: it shares the VM's lifetime rules (kept across stop/start, removed on
 * delete) and needs no host object beyond a file. */
#ifndef BANGER_WORKDISK_H
#define BANGER_WORKDISK_H

#include <stdint.h>

#include <banger/capability.h>

#define WORKDISK_FILE "work.ext4"

/* Make `path` when missing: a file of exactly `size` bytes (sparse) holding a
 * fresh ext4 filesystem. An existing file is kept as it is. */
int workdisk_ensure(const struct banger_host_api *host, const char *path, uint64_t size,
                    struct banger_error *err);
/* Remove `path`; missing counts as done. */
int workdisk_remove(const struct banger_host_api *host, const char *path,
                    struct banger_error *err);

#endif
