/* Copy a file the cheapest way the filesystem allows: a reflink clone, else
 * a sparse copy of the data regions. Shared by the core (image register)
 * and the reflink module, which links it without the rest of the core. */
#ifndef BANGER_UTIL_FILE_COPY_H
#define BANGER_UTIL_FILE_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How a copy was made. */
struct bg_copy_stats {
    bool cloned;             /* FICLONE shared every extent: no data moved */
    uint64_t bytes_copied;   /* data bytes written by the fallback (0 when cloned) */
    uint64_t nsec;           /* wall time of the clone or copy */
};

/* Make `dst` (must not exist; created with `mode`) a copy of `src` with the
 * same size: first ioctl(FICLONE), which on btrfs/xfs shares the extents;
 * when the filesystem cannot (bg_clone_unsupported) and `allow_fallback`,
 * a sparse copy of the data regions only (SEEK_DATA / SEEK_HOLE +
 * copy_file_range, read/write where the kernel refuses the pair), so holes
 * stay holes. The data is fsynced. On failure `dst` is removed and `why`
 * says what failed; -EOPNOTSUPP when cloning is impossible and no fallback
 * was allowed. `stats` may be NULL. */
int bg_copy_file(const char *src, const char *dst, mode_t mode, bool allow_fallback,
                 struct bg_copy_stats *stats, char *why, size_t why_len);

/* The same from an open descriptor (read from offset 0 whatever its file
 * position); `src` only names it in `why`. The descriptor stays open. */
int bg_copy_fd(int src_fd, const char *src, const char *dst, mode_t mode, bool allow_fallback,
               struct bg_copy_stats *stats, char *why, size_t why_len);

/* Whether an errno from FICLONE means "this filesystem (pair) cannot share
 * extents" rather than a real failure. */
bool bg_clone_unsupported(int e);

#endif
