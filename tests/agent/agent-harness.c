#include "config.h"

#include "agent-harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_GUARD_MS 20000
#define HARNESS_MAX_TRACKED 16

/* Everything made here is undone at exit: Check's forked test process
 * exits through exit() on failure too. */
static pid_t harness_pids[HARNESS_MAX_TRACKED];
static char harness_dirs[HARNESS_MAX_TRACKED][64];
static int harness_atexit_set;

/* The test dirs are flat: remove every entry, then the dir. */
static void harness_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d) {
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

static void harness_cleanup(void)
{
    for (int i = 0; i < HARNESS_MAX_TRACKED; i++) {
        if (harness_pids[i] > 0) {
            kill(harness_pids[i], SIGKILL);
            waitpid(harness_pids[i], NULL, 0);
            harness_pids[i] = 0;
        }
    }
    for (int i = 0; i < HARNESS_MAX_TRACKED; i++) {
        if (harness_dirs[i][0]) {
            harness_rm_dir(harness_dirs[i]);
            harness_dirs[i][0] = '\0';
        }
    }
}

static void harness_track_dir(const char *dir)
{
    if (!harness_atexit_set) {
        atexit(harness_cleanup);
        harness_atexit_set = 1;
    }
    for (int i = 0; i < HARNESS_MAX_TRACKED; i++) {
        if (!harness_dirs[i][0]) {
            snprintf(harness_dirs[i], sizeof(harness_dirs[i]), "%s", dir);
            return;
        }
    }
}

int harness_tmpdir(char *out, size_t out_len)
{
    char tmpl[] = "/tmp/bg-agent-test-XXXXXX";

    if (!mkdtemp(tmpl))
        return -errno;
    snprintf(out, out_len, "%s", tmpl);
    harness_track_dir(out);
    return 0;
}

int agent_proc_start(struct agent_proc *p, int delay_ms)
{
    const char *bin = getenv("AGENT_BIN");
    char listen_arg[160];
    int r;

    memset(p, 0, sizeof(*p));
    if (!bin || access(bin, X_OK) < 0) {
        fprintf(stderr, "AGENT_BIN (%s) is not an executable; build agent/ first\n",
                bin ? bin : "unset");
        return -ENOENT;
    }
    r = harness_tmpdir(p->dir, sizeof(p->dir));
    if (r < 0)
        return r;
    snprintf(p->sock, sizeof(p->sock), "%s/agent.sock", p->dir);
    snprintf(listen_arg, sizeof(listen_arg), "unix:%s", p->sock);
    p->pid = fork();
    if (p->pid < 0)
        return -errno;
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (delay_ms > 0) {
            struct timespec ts = {.tv_sec = delay_ms / 1000,
                                  .tv_nsec = (delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        execl(bin, bin, "--listen", listen_arg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < HARNESS_MAX_TRACKED; i++) {
        if (harness_pids[i] == 0) {
            harness_pids[i] = p->pid;
            break;
        }
    }
    return 0;
}

int agent_proc_wait_ready(const struct agent_proc *p)
{
    for (int i = 0; i < HARNESS_GUARD_MS / 20; i++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
        int fd = harness_connect(p->sock);

        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
            return -ECHILD;
        nanosleep(&ts, NULL);
    }
    return -ETIMEDOUT;
}

int agent_proc_stop(struct agent_proc *p)
{
    int status = -1;

    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        if (waitpid(p->pid, &status, 0) < 0)
            status = -1;
        for (int i = 0; i < HARNESS_MAX_TRACKED; i++)
            if (harness_pids[i] == p->pid)
                harness_pids[i] = 0;
        p->pid = 0;
    }
    return status;
}

int harness_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

int harness_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t harness_read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    /* One byte at a time keeps bytes after the line in the socket. */
    while (len + 1 < cap) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        char ch;

        if (poll(&pfd, 1, HARNESS_GUARD_MS) == 0)
            return -ETIMEDOUT;
        n = recv(fd, &ch, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -ECONNRESET;
        if (ch == '\n') {
            buf[len] = '\0';
            return (ssize_t)len;
        }
        buf[len++] = ch;
    }
    return -E2BIG;
}

int harness_peer_closed(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char ch;
    ssize_t n;

    if (poll(&pfd, 1, HARNESS_GUARD_MS) == 0)
        return 0;
    n = recv(fd, &ch, 1, 0);
    return n <= 0;
}

ssize_t harness_roundtrip(const char *path, const char *req, char *buf, size_t cap)
{
    ssize_t r;
    int fd = harness_connect(path);

    if (fd < 0)
        return fd;
    r = harness_send(fd, req, strlen(req));
    if (r == 0)
        r = harness_read_line(fd, buf, cap);
    close(fd);
    return r;
}

int harness_read_file_line(const char *path, char *buf, size_t cap)
{
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}
