/* Reading the console ring that banger-console-log writes in the VM's state
 * dir: firecracker.log.1 (older) then firecracker.log (newer), and
 * firecracker.log.start, the stream offset of firecracker.log's first byte.
 * Offsets are stream offsets -- they count every byte the VM's VMMs ever
 * wrote -- so a reader that follows keeps its place across rotations. A
 * shared flock on firecracker.log keeps a rotation from happening mid-read. */
#include "config.h"

#include "fc/fc.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const fc_ring_names[] = { FC_CONSOLE_LOG_NAME, FC_CONSOLE_LOG_NAME ".1",
                                             FC_CONSOLE_LOG_NAME ".start" };

void fc_console_ring_close(struct fc_console_ring *ring)
{
    int *fds[] = { &ring->cur, &ring->old, &ring->start };
    for (size_t i = 0; i < 3; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

int fc_console_ring_open(const char *state_dir, bool create, struct fc_console_ring *ring,
                         struct banger_error *err)
{
    int *fds[] = { &ring->cur, &ring->old, &ring->start };
    int flags = O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | (create ? O_RDWR | O_CREAT : O_RDONLY);
    int r = 0;

    ring->cur = ring->old = ring->start = -1;
    for (size_t i = 0; i < 3; i++) {
        char *path = fs_join(state_dir, fc_ring_names[i]);
        *fds[i] = open(path, flags, 0600);
        struct stat st;
        if (*fds[i] < 0 && (create || errno != ENOENT))
            r = bg_fail_errno(err, -errno, "console log: open %s", path);
        else if (*fds[i] >= 0 && (fstat(*fds[i], &st) < 0 || !S_ISREG(st.st_mode)))
            r = bg_fail(err, -EINVAL, "console log: %s is not a regular file", path);
        free(path);
        if (r < 0) {
            fc_console_ring_close(ring);
            return r;
        }
    }
    return 0;
}

static off_t fc_ring_size(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 ? st.st_size : 0;
}

void fc_console_ring_geometry(const struct fc_console_ring *ring, long long *ring_start,
                              long long *cur_start, long long *end)
{
    long long start = 0;
    char text[32];
    ssize_t n = ring->start >= 0 ? pread(ring->start, text, sizeof(text) - 1, 0) : 0;
    if (n > 0) {
        text[n] = '\0';
        char *stop = NULL;
        start = strtoll(text, &stop, 10);
        if (stop == text || start < 0)
            start = 0;
    }
    long long old = (long long)fc_ring_size(ring->old);
    if (old > start)
        old = start; /* the older part cannot begin before the stream did */
    *cur_start = start;
    *ring_start = start - old;
    *end = start + (long long)fc_ring_size(ring->cur);
}

/* pread exactly len bytes (a shorter file reads as less). */
static size_t fc_ring_pread(int fd, char *buf, size_t len, off_t at)
{
    size_t got = 0;
    while (fd >= 0 && got < len) {
        ssize_t n = pread(fd, buf + got, len - got, at + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

int fc_console_read(const char *state_dir, long long from, size_t max,
                    struct fc_console_chunk *out, struct banger_error *err)
{
    struct fc_console_ring ring;
    long long ring_start, cur_start, end;

    memset(out, 0, sizeof(*out));
    int r = fc_console_ring_open(state_dir, false, &ring, err);
    if (r < 0)
        return r;
    if (ring.cur >= 0)
        while (flock(ring.cur, LOCK_SH) < 0 && errno == EINTR)
            ;
    fc_console_ring_geometry(&ring, &ring_start, &cur_start, &end);
    if (from < 0)
        from = end + from;
    if (from < ring_start)
        from = ring_start; /* older bytes were overwritten */
    if (from > end)
        from = end; /* the log was reset: go on from its end */
    size_t want = (size_t)(end - from) < max ? (size_t)(end - from) : max;
    out->data = xmalloc(want + 1);
    size_t got = 0;
    if (from < cur_start && want > 0) {
        size_t in_old = (size_t)(cur_start - from) < want ? (size_t)(cur_start - from) : want;
        got = fc_ring_pread(ring.old, out->data, in_old, (off_t)(from - ring_start));
        if (got < in_old)
            want = got; /* a short older part: stop there, in order */
    }
    if (got < want)
        got += fc_ring_pread(ring.cur, out->data + got, want - got,
                             (off_t)(from + (long long)got - cur_start));
    out->data[got] = '\0';
    out->len = got;
    out->from = from;
    out->end = end;
    fc_console_ring_close(&ring); /* drops the flock */
    return 0;
}
