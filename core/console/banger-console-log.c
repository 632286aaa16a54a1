/* banger-console-log: keeps a VM's console output in a bounded ring.
 *
 *   banger-console-log MAX_BYTES [UID]
 *     fd 0  the read end of the VMM's stdout/stderr pipe
 *     fd 3  firecracker.log        (newest part of the ring, read-write)
 *     fd 4  firecracker.log.1      (the part before it, read-write)
 *     fd 5  firecracker.log.start  (text: the stream offset of firecracker.log's first byte)
 *
 * bangerd opens the three files as root and starts this program, detached
 * like the VMM so that it outlives daemon restarts. It drops to UID (gid the
 * same; bangerd gives each VM a uid of its own) or, without one, to "nobody"
 * before it reads a byte, keeps only the descriptors it was given,
 * and exits when the pipe reports end of file (the VMM, and anything that
 * inherited its stdout, has exited).
 *
 * firecracker.log grows to MAX_BYTES/2; then, under an exclusive flock on it,
 * its content is copied over firecracker.log.1, it is truncated, and the start
 * offset moves on by what it held. Readers take a shared flock on
 * firecracker.log, so they see the pair and the offset consistently: the ring
 * is never more than MAX_BYTES, whatever the guest writes. Write errors (a full
 * disk) drop the data rather than stall the guest. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONSOLE_IN_FD 0
#define CONSOLE_CUR_FD 3
#define CONSOLE_OLD_FD 4
#define CONSOLE_START_FD 5
#define CONSOLE_MIN_BYTES (8 * 1024)
#define CONSOLE_BUF_BYTES (64 * 1024)
#define CONSOLE_NOBODY_ID 65534

static void console_die(const char *what)
{
    fprintf(stderr, "banger-console-log: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Become `own_uid` (a uid no other user's process has, so none can signal
 * the writer), or nobody when 0; no groups, no way back, not dumpable. Only
 * when started as root. */
static void console_drop_privileges(uid_t own_uid)
{
    uid_t uid = CONSOLE_NOBODY_ID;
    gid_t gid = CONSOLE_NOBODY_ID;

    if (geteuid() != 0)
        return;
    const struct passwd *pw = own_uid ? NULL : getpwnam("nobody");
    if (own_uid) {
        uid = own_uid;
        gid = (gid_t)own_uid;
    } else if (pw && pw->pw_uid != 0) {
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        console_die("dropping to nobody");
    uid_t r, e, s;
    if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid)
        console_die("still privileged");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        console_die("prctl");
    if (chdir("/") < 0)
        console_die("chdir /");
}

static bool console_pwrite_all(int fd, const char *buf, size_t len, off_t at)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
        at += n;
    }
    return true;
}

static long long console_read_start(void)
{
    char text[32] = "";
    ssize_t n = pread(CONSOLE_START_FD, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    return end != text && v >= 0 ? v : 0;
}

static void console_write_start(long long start)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%lld\n", start);
    if (console_pwrite_all(CONSOLE_START_FD, text, (size_t)n, 0))
        (void)ftruncate(CONSOLE_START_FD, n);
}

/* Copy the last `len` bytes of cur (ending at cur_size) to the start of old. */
static void console_copy_tail(off_t cur_size, off_t len)
{
    static char buf[CONSOLE_BUF_BYTES];
    off_t in = cur_size - len, out = 0;

    while (out < len) {
        size_t want = (size_t)(len - out) < sizeof(buf) ? (size_t)(len - out) : sizeof(buf);
        ssize_t n = pread(CONSOLE_CUR_FD, buf, want, in);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || !console_pwrite_all(CONSOLE_OLD_FD, buf, (size_t)n, out))
            return;
        in += n;
        out += n;
    }
}

/* firecracker.log becomes firecracker.log.1 (its last `half` bytes at most)
 * and starts again empty; the start offset moves past what it held. */
static void console_rotate(off_t *cur_size, long long *start, off_t half)
{
    while (flock(CONSOLE_CUR_FD, LOCK_EX) < 0 && errno == EINTR)
        ;
    off_t keep = *cur_size < half ? *cur_size : half;
    (void)ftruncate(CONSOLE_OLD_FD, 0);
    console_copy_tail(*cur_size, keep);
    (void)ftruncate(CONSOLE_CUR_FD, 0);
    *start += *cur_size;
    *cur_size = 0;
    console_write_start(*start);
    flock(CONSOLE_CUR_FD, LOCK_UN);
}

int main(int argc, char **argv)
{
    static char buf[CONSOLE_BUF_BYTES];
    char *end = NULL;
    struct stat st;

    if (argc != 2 && argc != 3) {
        fprintf(stderr,
                "usage: banger-console-log MAX_BYTES [UID] (fds 0, 3, 4, 5: see the source)\n");
        return 2;
    }
    errno = 0;
    unsigned long long max = strtoull(argv[1], &end, 10);
    if (errno || *end || max < CONSOLE_MIN_BYTES || max > (1ull << 40)) {
        fprintf(stderr, "banger-console-log: MAX_BYTES '%s' is not %d..2^40\n", argv[1],
                CONSOLE_MIN_BYTES);
        return 2;
    }
    uid_t own_uid = 0;
    if (argc == 3) {
        errno = 0;
        unsigned long long u = strtoull(argv[2], &end, 10);
        if (errno || *end || u == 0 || u >= (uid_t)-1) {
            fprintf(stderr, "banger-console-log: UID '%s' is not a uid above 0\n", argv[2]);
            return 2;
        }
        own_uid = (uid_t)u;
    }
    console_drop_privileges(own_uid);
    for (int fd = CONSOLE_CUR_FD; fd <= CONSOLE_START_FD; fd++)
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
            console_die("fds 3, 4 and 5 must be regular files");
    const off_t half = (off_t)(max / 2);
    long long start = console_read_start();
    if (fstat(CONSOLE_CUR_FD, &st) < 0)
        console_die("fstat firecracker.log");
    off_t cur_size = st.st_size;
    /* A log from before the cap (or a bigger cap) is cut down at once. */
    if (cur_size >= half)
        console_rotate(&cur_size, &start, half);

    for (;;) {
        ssize_t n = read(CONSOLE_IN_FD, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return 0;
        if (n < 0)
            console_die("read");
        const char *p = buf;
        size_t left = (size_t)n;
        while (left > 0) {
            if (cur_size >= half)
                console_rotate(&cur_size, &start, half);
            size_t room = (size_t)(half - cur_size);
            size_t k = left < room ? left : room;
            /* A failed write (disk full) loses these bytes, not the guest's time;
             * the offset still moves, so readers never see bytes out of place. */
            if (!console_pwrite_all(CONSOLE_CUR_FD, p, k, cur_size))
                (void)ftruncate(CONSOLE_CUR_FD, cur_size + (off_t)k);
            cur_size += (off_t)k;
            p += k;
            left -= k;
        }
    }
}
