/* Pure helpers of the snapshot capability (no kernel objects): names,
 * image checks, retry backoff. Unit-tested on the host. */
#ifndef BANGER_SNAP_UTIL_H
#define BANGER_SNAP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define SNAP_DM_PREFIX "banger-"
#define SNAP_CHUNK_SECTORS 8u
#define SNAP_DEFAULT_SIZE (8ull << 30)

/* "banger-<id>" for a VM id of [0-9a-z]{1,32}. Returns 0 or -EINVAL. */
int snap_dm_name(const char *vm_id, char *out, size_t out_len);
/* Is `name` a dm name this module made (banger-<something>)? */
int snap_is_own_dm_name(const char *name);
/* 0 when `path` is a regular file holding an ext4 (or ext2/3) superblock
 * (magic 0xEF53 at byte 1080) and a whole number of 512-byte sectors;
 * otherwise a negative errno and the reason in why. *size_out gets the size. */
int snap_check_ext4(const char *path, uint64_t *size_out, char *why, size_t why_len);
/* Milliseconds to wait before remove attempt `attempt` (1-based). */
unsigned snap_backoff_ms(unsigned attempt);

#endif
