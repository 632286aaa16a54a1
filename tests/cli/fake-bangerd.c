#define _GNU_SOURCE
#include "config.h"

#include "fake-bangerd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <cjson/cJSON.h>

struct fake_sink {
    int fd;
    char *data;
    size_t len;
};

static int fake_listen(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_uint_lt(strlen(path), sizeof(addr.sun_path));
    strcpy(addr.sun_path, path);
    unlink(path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    return fd;
}

static char *fake_method_of(const char *request)
{
    cJSON *doc = cJSON_Parse(request);
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(doc, "method");
    char *out = strdup(cJSON_IsString(method) ? method->valuestring : "");

    cJSON_Delete(doc);
    return out;
}

static const char *fake_pick(const struct fake_reply *replies, const char *method, int seen)
{
    const char *last = NULL;
    int n = 0;

    for (const struct fake_reply *r = replies; r && r->method; r++) {
        if (strcmp(r->method, method) != 0)
            continue;
        last = r->lines;
        if (n++ == seen)
            return r->lines;
    }
    return last;
}

static void fake_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the client went away: its problem, not the fake's */
        buf += n;
        len -= (size_t)n;
    }
}

/* One connection: read the request line, answer, close. */
static void fake_serve(int fd, const struct fake_reply *replies, struct fake_result *res)
{
    struct timeval timeout = { .tv_sec = 10 };
    char *buf = calloc(1, 1 << 20);
    size_t len = 0;
    char *method;
    const char *lines;
    char fallback[256];
    int seen = 0;

    ck_assert_ptr_nonnull(buf);
    res->connections++;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    while (len < (1 << 20) - 1) {
        ssize_t n = read(fd, buf + len, (1 << 20) - 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len))
            break;
    }
    buf[len] = '\0';
    if (len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    method = fake_method_of(buf);
    for (int i = 0; i < res->nrequests; i++) {
        char *m = fake_method_of(res->requests[i]);

        seen += strcmp(m, method) == 0;
        free(m);
    }
    if (res->nrequests < FAKE_MAX_REQUESTS)
        res->requests[res->nrequests++] = strdup(buf);
    lines = fake_pick(replies, method, seen);
    if (!lines) {
        snprintf(fallback, sizeof(fallback),
                 "{\"v\":1,\"error\":{\"code\":\"bad_request\",\"message\":\"fake: no reply for %s\"}}\n",
                 method);
        lines = fallback;
    }
    fake_write_all(fd, lines, strlen(lines));
    free(method);
    free(buf);
    close(fd);
}

static void fake_drain(struct fake_sink *sink)
{
    char chunk[4096];
    ssize_t n = read(sink->fd, chunk, sizeof(chunk));

    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0) { /* EOF, or EIO from a pty whose other side closed */
        close(sink->fd);
        sink->fd = -1;
        return;
    }
    sink->data = realloc(sink->data, sink->len + (size_t)n + 1);
    ck_assert_ptr_nonnull(sink->data);
    memcpy(sink->data + sink->len, chunk, (size_t)n);
    sink->len += (size_t)n;
    sink->data[sink->len] = '\0';
}

/* A pseudo-terminal pair; the child gets the terminal side as stderr. */
static void fake_open_pty(int *ret_master, int *ret_slave)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

    ck_assert_int_ge(master, 0);
    ck_assert_int_eq(grantpt(master), 0);
    ck_assert_int_eq(unlockpt(master), 0);
    *ret_slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(*ret_slave, 0);
    *ret_master = master;
}

static void fake_child(const struct fake_opts *opts, const char *const *argv, int out_fd, int err_fd)
{
    const char *args[64];
    int n = 0;
    int devnull = open("/dev/null", O_RDONLY);

    args[n++] = "banger";
    for (; argv[n - 1] && n < 63; n++)
        args[n] = argv[n - 1];
    args[n] = NULL;
    if (opts->env_socket)
        setenv("BANGER_SOCKET", opts->env_socket, 1);
    else
        unsetenv("BANGER_SOCKET");
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        _exit(126);
    execv(BANGER_BIN, (char *const *)args);
    _exit(127);
}

void fake_run(const struct fake_opts *opts, const char *const *argv, struct fake_result *res)
{
    struct fake_sink out = { .fd = -1 };
    struct fake_sink err = { .fd = -1 };
    int out_pipe[2];
    int err_pipe[2];
    int listen_fd = -1;
    int status;
    pid_t pid;

    memset(res, 0, sizeof(*res));
    if (opts->socket_path)
        listen_fd = fake_listen(opts->socket_path);
    ck_assert_int_eq(pipe2(out_pipe, O_CLOEXEC), 0);
    if (opts->stderr_tty)
        fake_open_pty(&err_pipe[0], &err_pipe[1]);
    else
        ck_assert_int_eq(pipe2(err_pipe, O_CLOEXEC), 0);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        fake_child(opts, argv, out_pipe[1], err_pipe[1]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    out.fd = out_pipe[0];
    err.fd = err_pipe[0];

    /* Serve until the child has closed its output: it cannot exit while it
     * waits for an answer, so every connection is served in turn. */
    while (out.fd >= 0 || err.fd >= 0) {
        struct pollfd pfd[3] = {
            { .fd = out.fd, .events = POLLIN },
            { .fd = err.fd, .events = POLLIN },
            { .fd = listen_fd, .events = POLLIN },
        };

        if (poll(pfd, 3, -1) < 0) {
            ck_assert_int_eq(errno, EINTR);
            continue;
        }
        if (pfd[2].revents & POLLIN) {
            int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

            if (conn >= 0)
                fake_serve(conn, opts->replies, res);
        }
        if (pfd[0].revents)
            fake_drain(&out);
        if (pfd[1].revents)
            fake_drain(&err);
    }
    while (waitpid(pid, &status, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    res->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

    /* A connection the child made but nobody served still counts. */
    if (listen_fd >= 0) {
        int conn;

        while ((conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
            res->connections++;
            close(conn);
        }
        close(listen_fd);
        unlink(opts->socket_path);
    }
    res->out = out.data ? out.data : strdup("");
    res->out_len = out.len;
    res->err = err.data ? err.data : strdup("");
}

void fake_result_free(struct fake_result *res)
{
    free(res->out);
    free(res->err);
    for (int i = 0; i < res->nrequests; i++)
        free(res->requests[i]);
    memset(res, 0, sizeof(*res));
}
