/* Finding, signalling and waiting for a Firecracker that is not our child. */
#include "config.h"

#include "fc/fc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FC_PROC_CMDLINE_MAX 8192
#define FC_PROC_POLL_MS 10

static long long fc_proc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Does /proc/<pid>/cmdline carry `--api-sock <api_sock>`? Anyone can name
 * any path there: this alone never identifies a VMM. */
static bool fc_proc_cmdline_names(pid_t pid, const char *api_sock)
{
    char path[64], buf[FC_PROC_CMDLINE_MAX];
    size_t len = 0;
    bool found = false;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    while (len < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';

    size_t sock_len = strlen(api_sock);
    for (size_t off = 0; off < len && !found;) {
        const char *arg = buf + off;
        size_t arg_len = strlen(arg);
        size_t next = off + arg_len + 1;
        if (strcmp(arg, "--api-sock") == 0 && next < len)
            found = strcmp(buf + next, api_sock) == 0;
        else if (strncmp(arg, "--api-sock=", 11) == 0)
            found = arg_len == 11 + sock_len && strcmp(arg + 11, api_sock) == 0;
        off = next;
    }
    return found;
}

/* The uid a VMM serving api_sock runs as. Root's, unless the socket's
 * directory was lent to a jailed VMM (fc_jail.c): then its owner. Only root
 * can give a directory away, and only when the directory above is root's
 * and closed to others does the owner say who bound the socket. */
static uid_t fc_proc_vmm_uid(const char *api_sock)
{
    char *dir = strdup(api_sock);
    uid_t uid = 0;
    struct stat st, parent;
    if (!dir)
        return 0;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        goto cleanup;
    *slash = '\0';
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid == 0 ||
        (st.st_mode & (S_IWGRP | S_IWOTH)))
        goto cleanup;
    slash = strrchr(dir, '/');
    if (!slash)
        goto cleanup;
    *(slash == dir ? slash + 1 : slash) = '\0';
    if (lstat(dir, &parent) == 0 && S_ISDIR(parent.st_mode) && parent.st_uid == 0 &&
        !(parent.st_mode & (S_IWGRP | S_IWOTH)))
        uid = st.st_uid;
cleanup:
    free(dir);
    return uid;
}

/* Do the real and the effective uid of pid (/proc/<pid>/status) both say `uid`? */
static bool fc_proc_runs_as(pid_t pid, uid_t uid)
{
    char path[64], line[256];
    bool root = false;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long real, effective;
        if (sscanf(line, "Uid: %lu %lu", &real, &effective) == 2) {
            root = real == uid && effective == uid;
            break;
        }
    }
    fclose(f);
    return root;
}

/* The process listening on api_sock, from SO_PEERCRED of a connection to it.
 * The socket's directory is root-only (or lent by root to one jailed VMM's
 * uid), so only root or that VMM could have bound it, and the kernel, not
 * the process, names the listener. 0 and *listener set when
 * one listens (pid 0 when it is outside our pid namespace); -ENOENT,
 * -ECONNREFUSED or -EAGAIN (backlog full: a hung VMM) when the path cannot
 * tell. */
static int fc_proc_listener(const char *api_sock, pid_t *listener)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct ucred cred = { 0 };
    socklen_t len = sizeof(cred);
    int r = 0;

    if (strlen(api_sock) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, api_sock, strlen(api_sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        goto cleanup;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        r = -errno;
        goto cleanup;
    }
    *listener = cred.uid == fc_proc_vmm_uid(api_sock) ? cred.pid : 0;
cleanup:
    close(fd);
    return r;
}

/* Is pid the VMM serving api_sock? When something listens on the socket, only
 * the listener named by the kernel is (and only when it runs as the VMM's uid,
 * fc_proc_vmm_uid). When nothing answers there (socket gone, not bound yet,
 * VMM hung), a process of that uid whose command line names the socket is: a
 * user cannot become root or a jail uid by naming a path. Callers ask this
 * only of the listener or the recorded pid. */
/* A jailed VMM's root is its jail: the directory above the socket's
 * (<jail>/run/api.sock). */
static bool fc_proc_rooted_in_jail(pid_t pid, const char *api_sock)
{
    char *jail = strdup(api_sock);
    char proc_root[64];
    struct stat a, b;
    bool ok = false;
    if (!jail)
        return false;
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(jail, '/');
        if (!slash || slash == jail)
            goto cleanup;
        *slash = '\0';
    }
    snprintf(proc_root, sizeof(proc_root), "/proc/%d/root/", (int)pid);
    ok = stat(proc_root, &a) == 0 && stat(jail, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
cleanup:
    free(jail);
    return ok;
}

static bool fc_proc_is_vmm(pid_t pid, const char *api_sock)
{
    pid_t listener = 0;

    uid_t uid = fc_proc_vmm_uid(api_sock);
    if (pid <= 0 || fc_pid_exited(pid) || !fc_proc_runs_as(pid, uid))
        return false;
    if (uid != 0 && !fc_proc_rooted_in_jail(pid, api_sock))
        return false;
    if (fc_proc_listener(api_sock, &listener) == 0)
        return listener == pid;
    return fc_proc_cmdline_names(pid, api_sock);
}

bool fc_pid_exited(pid_t pid)
{
    char path[64], buf[512];

    if (pid <= 0)
        return true;
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may contain ')' so take the last one. */
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return false;
    return p[2] == 'Z' || p[2] == 'X' || p[2] == 'x';
}

pid_t fc_find_pid(const char *api_sock, pid_t recorded)
{
    pid_t listener = 0;

    if (!api_sock || !api_sock[0])
        return 0;
    /* A listener answers for itself. */
    if (fc_proc_listener(api_sock, &listener) == 0)
        return fc_proc_is_vmm(listener, api_sock) ? listener : 0;
    /* Nothing answers: only the pid the daemon recorded (handles.json is
     * root's) may still be the VMM. No scan of /proc: any root process could
     * name the socket there, and none but ours may be signalled. */
    if (recorded > 0 && fc_proc_is_vmm(recorded, api_sock))
        return recorded;
    return 0;
}

/* Wait for the exit of pid (through pidfd when we have one). */
static bool fc_proc_wait_exit(pid_t pid, int pidfd, int wait_ms)
{
    long long deadline = fc_proc_now_ms() + (wait_ms > 0 ? wait_ms : 0);

    for (;;) {
        if (pidfd >= 0) {
            struct pollfd p = { .fd = pidfd, .events = POLLIN };
            long long left = deadline - fc_proc_now_ms();
            int n = poll(&p, 1, left > 0 ? (int)left : 0);
            if (n > 0)
                return true;
            if (n < 0 && errno != EINTR)
                pidfd = -1; /* fall back to polling /proc */
        } else if (fc_pid_exited(pid)) {
            return true;
        } else {
            struct timespec ts = { 0, FC_PROC_POLL_MS * 1000000L };
            nanosleep(&ts, NULL);
        }
        if (fc_proc_now_ms() >= deadline)
            return fc_pid_exited(pid);
    }
}

int fc_signal_and_wait(const char *api_sock, pid_t recorded, int sig, int wait_ms,
                       struct banger_error *err)
{
    int pidfd = -1;
    int r = 0;

    pid_t pid = fc_find_pid(api_sock, recorded);
    if (pid == 0)
        goto cleanup;
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0 && errno == ESRCH)
        goto cleanup;
    /* Between the scan and pidfd_open the pid may have been recycled: look
     * again now that the pidfd pins the process. */
    if (!fc_proc_is_vmm(pid, api_sock))
        goto cleanup;
    if (sig > 0) {
        int s = pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0)
                           : kill(pid, sig);
        if (s < 0 && errno != ESRCH) {
            r = bg_fail_errno(err, -errno, "firecracker: signal %d to pid %d", sig, (int)pid);
            goto cleanup;
        }
    }
    if (!fc_proc_wait_exit(pid, pidfd, wait_ms)) {
        if (sig > 0)
            r = bg_fail(err, -ETIMEDOUT, "firecracker: pid %d still runs %d ms after signal %d",
                        (int)pid, wait_ms, sig);
        else
            r = bg_fail(err, -ETIMEDOUT, "firecracker: pid %d still runs after %d ms", (int)pid,
                        wait_ms);
    }
cleanup:
    if (pidfd >= 0)
        close(pidfd);
    return r;
}
