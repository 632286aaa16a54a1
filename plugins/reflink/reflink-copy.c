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
#include <unistd.h>

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
    } else if (bg_clone_unsupported(errno)) {
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
