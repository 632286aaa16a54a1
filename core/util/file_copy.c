#include "config.h"

#include "util/file_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t bg_copy_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Errors with which FICLONE says "this filesystem (pair) cannot share". */
bool bg_clone_unsupported(int e)
{
    return e == EOPNOTSUPP || e == EXDEV || e == EINVAL || e == ENOTTY;
}

/* Copy [pos, end) with read and write: for file pairs copy_file_range
 * refuses (different filesystems on older kernels, some FUSE). */
static ssize_t bg_copy_rw(int src_fd, int dst_fd, off_t pos, off_t end)
{
    static __thread char buf[1 << 16];
    size_t want = (size_t)(end - pos) < sizeof(buf) ? (size_t)(end - pos) : sizeof(buf);
    ssize_t n = pread(src_fd, buf, want, pos);

    if (n <= 0)
        return n;
    for (ssize_t done = 0; done < n;) {
        ssize_t w = pwrite(dst_fd, buf + done, (size_t)(n - done), pos + done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        done += w;
    }
    return n;
}

/* Copy the data regions of src_fd into dst_fd (already sized): holes are
 * skipped and stay holes in the destination. */
static int bg_copy_sparse(int src_fd, int dst_fd, off_t size, uint64_t *copied,
                               char *why, size_t why_len)
{
    off_t data = 0;
    uint64_t total = 0;
    bool use_rw = false;

    while (data < size) {
        off_t hole, pos;

        data = lseek(src_fd, data, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* only a hole remains */
        if (data < 0) {
            snprintf(why, why_len, "SEEK_DATA: %s", strerror(errno));
            return -errno;
        }
        hole = lseek(src_fd, data, SEEK_HOLE);
        if (hole < 0) {
            snprintf(why, why_len, "SEEK_HOLE: %s", strerror(errno));
            return -errno;
        }
        for (pos = data; pos < hole;) {
            off_t in = pos, out = pos;
            ssize_t n = use_rw ? bg_copy_rw(src_fd, dst_fd, pos, hole)
                               : copy_file_range(src_fd, &in, dst_fd, &out,
                                                 (size_t)(hole - pos), 0);

            if (n < 0 && !use_rw && (errno == EXDEV || errno == EOPNOTSUPP || errno == EINVAL ||
                                     errno == ENOSYS)) {
                use_rw = true;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(why, why_len, "copying at byte %lld: %s", (long long)pos,
                         strerror(errno));
                return -errno;
            }
            if (n == 0) {
                snprintf(why, why_len, "source shrank during the copy at %lld", (long long)pos);
                return -EIO;
            }
            pos += n;
            total += (uint64_t)n;
        }
        data = hole;
    }
    *copied = total;
    return 0;
}

int bg_copy_fd(int src_fd, const char *src, const char *dst, mode_t mode, bool allow_fallback,
               struct bg_copy_stats *stats, char *why, size_t why_len)
{
    struct bg_copy_stats s = { 0 };
    uint64_t t0 = bg_copy_now_ns();
    int dst_fd = -1, r = 0;
    bool made = false;
    struct stat sb;

    if (fstat(src_fd, &sb) < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", src, strerror(errno));
        goto cleanup;
    }
    dst_fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (dst_fd < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", dst, strerror(errno));
        goto cleanup;
    }
    made = true;
    if (ioctl(dst_fd, FICLONE, src_fd) == 0) {
        s.cloned = true;
    } else if (!bg_clone_unsupported(errno)) {
        r = -errno;
        snprintf(why, why_len, "cloning %s to %s: %s", src, dst, strerror(errno));
        goto cleanup;
    } else if (!allow_fallback) {
        r = -EOPNOTSUPP;
        snprintf(why, why_len, "the filesystem of %s cannot clone %s (FICLONE: %s)", dst, src,
                 strerror(errno));
        goto cleanup;
    } else {
        if (ftruncate(dst_fd, sb.st_size) < 0) {
            r = -errno;
            snprintf(why, why_len, "%s: sizing: %s", dst, strerror(errno));
            goto cleanup;
        }
        r = bg_copy_sparse(src_fd, dst_fd, sb.st_size, &s.bytes_copied, why, why_len);
        if (r < 0)
            goto cleanup;
    }
    if (fsync(dst_fd) < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: fsync: %s", dst, strerror(errno));
        goto cleanup;
    }
    s.nsec = bg_copy_now_ns() - t0;
cleanup:
    if (dst_fd >= 0)
        close(dst_fd);
    if (r < 0 && made)
        unlink(dst);
    if (r == 0 && stats)
        *stats = s;
    return r;
}

int bg_copy_file(const char *src, const char *dst, mode_t mode, bool allow_fallback,
                 struct bg_copy_stats *stats, char *why, size_t why_len)
{
    int src_fd = open(src, O_RDONLY | O_CLOEXEC);
    int r;

    if (src_fd < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", src, strerror(-r));
        return r;
    }
    r = bg_copy_fd(src_fd, src, dst, mode, allow_fallback, stats, why, why_len);
    close(src_fd);
    return r;
}
