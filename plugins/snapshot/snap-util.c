#include "config.h"

#include "snap-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int snap_dm_name(const char *vm_id, char *out, size_t out_len)
{
    size_t n = vm_id ? strlen(vm_id) : 0;

    if (n == 0 || n > 32 || strspn(vm_id, "0123456789abcdefghijklmnopqrstuvwxyz") != n)
        return -EINVAL;
    if ((size_t)snprintf(out, out_len, SNAP_DM_PREFIX "%s", vm_id) >= out_len)
        return -ENAMETOOLONG;
    return 0;
}

int snap_is_own_dm_name(const char *name)
{
    return name && strncmp(name, SNAP_DM_PREFIX, strlen(SNAP_DM_PREFIX)) == 0 &&
           name[strlen(SNAP_DM_PREFIX)] != '\0';
}

int snap_check_ext4(const char *path, uint64_t *size_out, char *why, size_t why_len)
{
    unsigned char magic[2];
    struct stat st;
    int fd, r = 0;
    ssize_t n;

    if (!path || !path[0]) {
        snprintf(why, why_len, "the VM's image has no root filesystem path");
        return -EINVAL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(why, why_len, "image %s: %s", path,
                 r == -ENOENT ? "missing" : strerror(-r));
        return r;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "image %s: not a regular file", path);
        r = -EINVAL;
        goto cleanup;
    }
    n = pread(fd, magic, sizeof(magic), 1080);
    if (n != (ssize_t)sizeof(magic) || magic[0] != 0x53 || magic[1] != 0xEF) {
        snprintf(why, why_len,
                 "image %s: not an ext4 filesystem (no superblock magic 0xEF53 at byte 1080)",
                 path);
        r = -EINVAL;
        goto cleanup;
    }
    if (st.st_size % 512 != 0) {
        snprintf(why, why_len, "image %s: size %lld is not a multiple of 512 bytes", path,
                 (long long)st.st_size);
        r = -EINVAL;
        goto cleanup;
    }
    if (size_out)
        *size_out = (uint64_t)st.st_size;
cleanup:
    close(fd);
    return r;
}

unsigned snap_backoff_ms(unsigned attempt)
{
    unsigned ms = 10;

    while (attempt-- > 1 && ms < 500)
        ms *= 2;
    return ms > 500 ? 500 : ms;
}
