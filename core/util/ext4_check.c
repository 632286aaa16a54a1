#include "config.h"

#include "util/ext4_check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bg_check_ext4_image(const char *path, uint64_t *size_out, char *why, size_t why_len)
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
    /* The ext2/3/4 superblock starts at 1024; s_magic is at offset 56 in it. */
    n = pread(fd, magic, sizeof(magic), 1080);
    if (n != (ssize_t)sizeof(magic) || magic[0] != 0x53 || magic[1] != 0xEF) {
        snprintf(why, why_len,
                 "image %s: not an ext4 filesystem (no superblock magic 0xEF53 at byte 1080)",
                 path);
        r = -EINVAL;
        goto cleanup;
    }
    if (size_out)
        *size_out = (uint64_t)st.st_size;
cleanup:
    close(fd);
    return r;
}
