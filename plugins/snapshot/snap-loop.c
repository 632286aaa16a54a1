#include "config.h"

#include "snap-loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Another process may take the device we were offered before we bind it. */
#define SNAP_LOOP_PICK_TRIES 16

int snap_loop_backing(const char *name, char *out, size_t out_len)
{
    char p[128];
    ssize_t n;
    int fd;

    snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", name);
    fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENXIO;
    n = read(fd, out, out_len - 1);
    close(fd);
    if (n <= 0)
        return -ENXIO;
    out[n] = '\0';
    if (out[n - 1] == '\n')
        out[n - 1] = '\0';
    return 0;
}

int snap_loop_attach(const char *path, bool read_only, snap_loop_pick_fn pick, void *ctx,
                     int *fd_out, char *dev_out, size_t dev_len, char *why, size_t why_len)
{
    int ctl = -1, file = -1, lfd = -1, r = 0;
    char dev[32];

    ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
        r = -errno;
        snprintf(why, why_len, "/dev/loop-control: %s (is the loop module loaded?)",
                 strerror(-r));
        goto cleanup;
    }
    file = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (file < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", path, strerror(-r));
        goto cleanup;
    }
    for (int tries = 0;; tries++) {
        struct loop_config cfg;
        int idx = ioctl(ctl, LOOP_CTL_GET_FREE);

        if (idx < 0) {
            r = -errno;
            snprintf(why, why_len, "no loop device free: %s", strerror(-r));
            goto cleanup;
        }
        snprintf(dev, sizeof(dev), "/dev/loop%d", idx);
        if (pick) {
            r = pick(ctx, dev);
            if (r < 0) {
                snprintf(why, why_len, "recording %s failed", dev);
                goto cleanup;
            }
        }
        lfd = open(dev, O_RDWR | O_CLOEXEC);
        if (lfd < 0) {
            r = -errno;
            snprintf(why, why_len, "%s: %s", dev, strerror(-r));
            goto cleanup;
        }
        memset(&cfg, 0, sizeof(cfg));
        cfg.fd = (unsigned)file;
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
        snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", path);
        if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
            break;
        r = -errno;
        close(lfd);
        lfd = -1;
        if (r != -EBUSY || tries + 1 >= SNAP_LOOP_PICK_TRIES) {
            snprintf(why, why_len, "binding %s to %s: %s", dev, path, strerror(-r));
            goto cleanup;
        }
        r = 0;
    }
    snprintf(dev_out, dev_len, "%s", dev);
    *fd_out = lfd;
    lfd = -1;
cleanup:
    if (lfd >= 0)
        close(lfd);
    if (file >= 0)
        close(file);
    if (ctl >= 0)
        close(ctl);
    return r;
}

/* Does the kernel's view of the backing file name `expect`? A file deleted
 * since shows as "<path> (deleted)". */
static int snap_loop_same_file(const char *backing, const char *expect)
{
    char real[PATH_MAX];
    size_t n;

    if (realpath(expect, real))
        expect = real;
    n = strlen(expect);
    return strncmp(backing, expect, n) == 0 &&
           (backing[n] == '\0' || strcmp(backing + n, " (deleted)") == 0);
}

int snap_loop_detach(const char *dev, const char *expect_backing, char *why, size_t why_len)
{
    char backing[PATH_MAX];
    const char *name;
    int fd, r = 0;

    if (!dev || strncmp(dev, "/dev/loop", 9) != 0 || strspn(dev + 9, "0123456789") == 0 ||
        dev[9 + strspn(dev + 9, "0123456789")] != '\0') {
        snprintf(why, why_len, "'%s' is not a loop device", dev ? dev : "(null)");
        return -EINVAL;
    }
    name = dev + 5;
    if (snap_loop_backing(name, backing, sizeof(backing)) < 0)
        return 0; /* not bound: done */
    if (expect_backing && !snap_loop_same_file(backing, expect_backing))
        return 0; /* reused by someone else since: not ours */
    fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        if (r == -ENOENT || r == -ENXIO)
            return 0;
        snprintf(why, why_len, "%s: %s", dev, strerror(-r));
        return r;
    }
    if (ioctl(fd, LOOP_CLR_FD, 0) < 0 && errno != ENXIO) {
        r = -errno;
        snprintf(why, why_len, "detaching %s: %s", dev, strerror(-r));
    }
    close(fd);
    return r;
}
