#include "config.h"

#include "workdisk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int workdisk_ensure(const struct banger_host_api *host, const char *path, uint64_t size,
                    struct banger_error *err)
{
    /* The size comes from the file: mkfs.ext4 reads a positional size in
     * 1 KiB blocks, an easy way to get a quarter-size filesystem. */
    static const char *const mkfs_opts =
        "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1";
    const struct banger_run_opts opts = {.struct_size = sizeof(opts), .timeout_ms = 300000};
    char tmp[PATH_MAX];
    struct stat st;
    int fd, r;

    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return host->fail(err, -EINVAL, "work disk %s: not a regular file", path);
        return 0;
    }
    if (errno != ENOENT)
        return host->fail(err, -errno, "work disk %s: %s", path, strerror(errno));
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return host->fail(err, -ENAMETOOLONG, "work disk path too long: %s", path);
    /* Built under a temporary name so a crash never leaves a half-made disk
     * that a later start would keep. */
    if (unlink(tmp) < 0 && errno != ENOENT)
        return host->fail(err, -errno, "work disk %s: %s", tmp, strerror(errno));
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return host->fail(err, -errno, "work disk %s: %s", tmp, strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0) {
        r = host->fail(err, -errno, "work disk %s: sizing to %llu bytes: %s", tmp,
                       (unsigned long long)size, strerror(errno));
        close(fd);
        goto cleanup;
    }
    close(fd);
    {
        const char *const argv[] = {"mkfs.ext4", "-F", "-E", mkfs_opts, tmp, NULL};
        r = host->run(argv, &opts, NULL, err);
        if (r < 0)
            goto cleanup;
    }
    if (rename(tmp, path) < 0) {
        r = host->fail(err, -errno, "work disk %s: %s", path, strerror(errno));
        goto cleanup;
    }
    return 0;
cleanup:
    unlink(tmp);
    return r;
}

int workdisk_remove(const struct banger_host_api *host, const char *path,
                    struct banger_error *err)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return host->fail(err, -errno, "removing work disk %s: %s", path, strerror(errno));
    return 0;
}
