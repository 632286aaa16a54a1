#include "config.h"

#include "reflink-copy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t reflink_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Errors with which FICLONE says "this filesystem (pair) cannot share". */
static bool reflink_clone_unsupported(int e)
{
    return e == EOPNOTSUPP || e == EXDEV || e == EINVAL || e == ENOTTY;
}

/* Copy [pos, end) with read and write: for file pairs copy_file_range
 * refuses (different filesystems on older kernels, some FUSE). */
static ssize_t reflink_copy_rw(int src_fd, int dst_fd, off_t pos, off_t end)
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
static int reflink_sparse_copy(int src_fd, int dst_fd, off_t size, uint64_t *copied,
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
            ssize_t n = use_rw ? reflink_copy_rw(src_fd, dst_fd, pos, hole)
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

int reflink_copy_file(const char *src, const char *dst, bool allow_fallback,
                      struct reflink_copy_stats *stats, char *why, size_t why_len)
{
    struct reflink_copy_stats s = { 0 };
    uint64_t t0 = reflink_now_ns();
    int src_fd = -1, dst_fd = -1, r = 0;
    bool made = false;
    struct stat sb;

    src_fd = open(src, O_RDONLY | O_CLOEXEC);
    if (src_fd < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", src, strerror(errno));
        goto cleanup;
    }
    if (fstat(src_fd, &sb) < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", src, strerror(errno));
        goto cleanup;
    }
    dst_fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (dst_fd < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", dst, strerror(errno));
        goto cleanup;
    }
    made = true;
    if (ioctl(dst_fd, FICLONE, src_fd) == 0) {
        s.cloned = true;
    } else if (!reflink_clone_unsupported(errno)) {
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
        r = reflink_sparse_copy(src_fd, dst_fd, sb.st_size, &s.bytes_copied, why, why_len);
        if (r < 0)
            goto cleanup;
    }
    if (fsync(dst_fd) < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: fsync: %s", dst, strerror(errno));
        goto cleanup;
    }
    s.nsec = reflink_now_ns() - t0;
cleanup:
    if (src_fd >= 0)
        close(src_fd);
    if (dst_fd >= 0)
        close(dst_fd);
    if (r < 0 && made)
        unlink(dst);
    if (r == 0 && stats)
        *stats = s;
    return r;
}

int reflink_probe_dir(const char *dir, char *why, size_t why_len)
{
    char a[4096], b[4096];
    int fa = -1, fb = -1, r;

    if ((size_t)snprintf(a, sizeof(a), "%s/.reflink-probe.XXXXXX", dir) >= sizeof(a) ||
        (size_t)snprintf(b, sizeof(b), "%s/.reflink-probe.XXXXXX", dir) >= sizeof(b)) {
        snprintf(why, why_len, "%s: path too long", dir);
        return -ENAMETOOLONG;
    }
    fa = mkostemp(a, O_CLOEXEC);
    if (fa < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", dir, strerror(errno));
        return r;
    }
    fb = mkostemp(b, O_CLOEXEC);
    if (fb < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", dir, strerror(errno));
        goto cleanup;
    }
    /* One block of data, so the clone has an extent to share. */
    {
        char block[4096];

        memset(block, 0x5a, sizeof(block));
        if (write(fa, block, sizeof(block)) != (ssize_t)sizeof(block)) {
            r = -EIO;
            snprintf(why, why_len, "%s: cannot write a probe file", dir);
            goto cleanup;
        }
    }
    if (ioctl(fb, FICLONE, fa) == 0) {
        r = 1;
    } else if (reflink_clone_unsupported(errno)) {
        r = 0;
        snprintf(why, why_len, "FICLONE: %s", strerror(errno));
    } else {
        r = -errno;
        snprintf(why, why_len, "FICLONE in %s: %s", dir, strerror(errno));
    }
cleanup:
    if (fa >= 0) {
        close(fa);
        unlink(a);
    }
    if (fb >= 0) {
        close(fb);
        unlink(b);
    }
    return r;
}

int reflink_check_ext4(const char *path, uint64_t *size_out, char *why, size_t why_len)
{
    unsigned char magic[2];
    struct stat st;
    int fd, r = 0;

    if (!path || !path[0]) {
        snprintf(why, why_len, "the VM's image has no root filesystem path");
        return -EINVAL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(why, why_len, "image %s: %s", path, r == -ENOENT ? "missing" : strerror(-r));
        return r;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "image %s: not a regular file", path);
        r = -EINVAL;
        goto cleanup;
    }
    /* The ext2/3/4 superblock magic 0xEF53 sits at byte 1080. */
    if (pread(fd, magic, sizeof(magic), 1080) != (ssize_t)sizeof(magic) || magic[0] != 0x53 ||
        magic[1] != 0xEF) {
        snprintf(why, why_len, "image %s: not an ext4 filesystem", path);
        r = -EINVAL;
        goto cleanup;
    }
    if (size_out)
        *size_out = (uint64_t)st.st_size;
cleanup:
    close(fd);
    return r;
}
