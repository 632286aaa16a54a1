/* File-level work of the reflink capability, without the host table, so
 * tests and the benchmark can drive it directly. */
#ifndef BANGER_REFLINK_COPY_H
#define BANGER_REFLINK_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a copy was made. */
struct reflink_copy_stats {
    bool cloned;             /* FICLONE shared every extent: no data moved */
    uint64_t bytes_copied;   /* data bytes written by the fallback (0 when cloned) */
    uint64_t nsec;           /* wall time of the clone or copy */
};

/* Make `dst` (must not exist; created 0600) a copy of `src` with the same
 * size: first ioctl(FICLONE), which on btrfs/xfs shares the extents;
 * when the filesystem cannot (EOPNOTSUPP, EXDEV, EINVAL, ENOTTY) and
 * `allow_fallback`, a sparse copy of the data regions only (SEEK_DATA /
 * SEEK_HOLE + copy_file_range), so holes stay holes. The data is fsynced.
 * On failure `dst` is removed and `why` says what failed; -EOPNOTSUPP when
 * cloning is impossible and no fallback was allowed. */
int reflink_copy_file(const char *src, const char *dst, bool allow_fallback,
                      struct reflink_copy_stats *stats, char *why, size_t why_len);

/* Can the filesystem holding directory `dir` clone files? 1 yes, 0 no,
 * negative errno when the probe itself failed (why says). Makes and removes
 * two small temporary files in `dir`. */
int reflink_probe_dir(const char *dir, char *why, size_t why_len);

/* 0 when `path` is a regular file holding an ext2/3/4 superblock; its size
 * in *size_out. */
int reflink_check_ext4(const char *path, uint64_t *size_out, char *why, size_t why_len);

#endif
