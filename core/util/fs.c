#include "config.h"

#include "util/fs.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *fs_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la && a[la - 1] == '/')
        return xasprintf("%s%s", a, b);
    return xasprintf("%s/%s", a, b);
}

static int fs_fsync_parent(const char *path)
{
    char *copy = xstrdup(path);
    int r = 0;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        r = -errno;
    if (fd >= 0)
        close(fd);
    free(copy);
    return r;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                    struct banger_error *err)
{
    char *tmp = xasprintf("%s.tmp.XXXXXX", path);
    int fd = -1;
    int r;

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        r = bg_fail_errno(err, -errno, "create %s", tmp);
        free(tmp);
        return r;
    }
    if (fchmod(fd, mode) < 0) {
        r = bg_fail_errno(err, -errno, "chmod %s", tmp);
        goto cleanup;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            r = bg_fail_errno(err, -errno, "write %s", tmp);
            goto cleanup;
        }
        done += (size_t)w;
    }
    if (fsync(fd) < 0) {
        r = bg_fail_errno(err, -errno, "fsync %s", tmp);
        goto cleanup;
    }
    if (close(fd) < 0) {
        fd = -1;
        r = bg_fail_errno(err, -errno, "close %s", tmp);
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        r = bg_fail_errno(err, -errno, "rename %s", path);
        goto cleanup;
    }
    r = fs_fsync_parent(path);
    if (r < 0)
        bg_fail_errno(err, r, "fsync directory of %s", path);
    free(tmp);
    return r;

cleanup:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return r;
}

int fs_read_all(const char *path, size_t max, char **out, size_t *out_len,
                struct banger_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bg_fail_errno(err, -errno, "open %s", path);
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    int r = 0;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= max) {
                r = bg_fail(err, -EFBIG, "%s is larger than %zu bytes", path, max);
                goto cleanup;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = bg_fail_errno(err, -errno, "read %s", path);
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
    if (out_len)
        *out_len = len;
cleanup:
    free(buf);
    close(fd);
    return r;
}

int fs_ensure_private_dir(const char *path, mode_t mode, struct banger_error *err)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT)
            return bg_fail_errno(err, -errno, "stat %s", path);
        char *parent = xstrdup(path);
        char *p = dirname(parent);
        int r = 0;
        if (strcmp(p, path) != 0 && strcmp(p, "/") != 0 && strcmp(p, ".") != 0 &&
            access(p, F_OK) < 0)
            r = fs_ensure_private_dir(p, 0755, err);
        free(parent);
        if (r < 0)
            return r;
        if (mkdir(path, mode) < 0 && errno != EEXIST)
            return bg_fail_errno(err, -errno, "create directory %s", path);
        if (lstat(path, &st) < 0)
            return bg_fail_errno(err, -errno, "stat %s", path);
    }
    if (S_ISLNK(st.st_mode))
        return bg_fail(err, -ELOOP, "%s is a symlink; refusing to use it", path);
    if (!S_ISDIR(st.st_mode))
        return bg_fail(err, -ENOTDIR, "%s is not a directory", path);
    if (st.st_uid != geteuid())
        return bg_fail(err, -EPERM, "%s is owned by uid %u, expected %u", path,
                       (unsigned)st.st_uid, (unsigned)geteuid());
    if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
        return bg_fail_errno(err, -errno, "chmod %s", path);
    return 0;
}

static int fs_remove_entry(const char *fpath, const struct stat *sb, int typeflag,
                           struct FTW *ftwbuf)
{
    (void)sb;
    (void)ftwbuf;
    int r = typeflag == FTW_DP ? rmdir(fpath) : unlink(fpath);
    return r < 0 && errno != ENOENT ? -errno : 0;
}

int fs_remove_tree(const char *path, struct banger_error *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : bg_fail_errno(err, -errno, "stat %s", path);
    int r = nftw(path, fs_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (r != 0)
        return bg_fail_errno(err, r < 0 ? r : -EIO, "remove %s", path);
    return 0;
}
