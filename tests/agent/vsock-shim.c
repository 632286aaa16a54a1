#include "config.h"

#include "vsock-shim.h"
#include "agent-harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SHIM_GUARD_MS 20000

/* Read the CONNECT line like Firecracker: at most 32 bytes up to '\n'. */
static int shim_read_connect(int fd, unsigned *port)
{
    char line[33];
    size_t len = 0;

    while (len < sizeof(line) - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char ch;

        if (poll(&pfd, 1, SHIM_GUARD_MS) <= 0 || recv(fd, &ch, 1, 0) != 1)
            return -EIO;
        if (ch == '\n') {
            line[len] = '\0';
            return sscanf(line, "CONNECT %u", port) == 1 ? 0 : -EPROTO;
        }
        line[len++] = ch;
    }
    return -EPROTO;
}

/* Copy bytes both ways until one side closes or the shim stops. */
static void shim_relay(struct vsock_shim *s, int a, int b)
{
    char buf[4096];

    for (;;) {
        struct pollfd pfds[3] = {
            {.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN},
            {.fd = s->stop_pipe[0], .events = POLLIN}};

        if (poll(pfds, 3, SHIM_GUARD_MS) <= 0 || pfds[2].revents)
            return;
        for (int i = 0; i < 2; i++) {
            if (pfds[i].revents) {
                ssize_t n = recv(pfds[i].fd, buf, sizeof(buf), 0);
                if (n <= 0 || harness_send(i == 0 ? b : a, buf, (size_t)n) < 0)
                    return;
            }
        }
    }
}

static void shim_serve(struct vsock_shim *s, int fd)
{
    static const char ok[] = "OK 1073741824\n";
    unsigned port;
    int agent;

    if (shim_read_connect(fd, &port) < 0)
        return;
    s->last_port = port;
    switch (s->mode) {
    case SHIM_GARBAGE_HANDSHAKE:
        harness_send(fd, "HELLO THERE\n", 12);
        return;
    case SHIM_GARBAGE_REPLY: {
        char req[256];
        harness_send(fd, ok, sizeof(ok) - 1);
        if (harness_read_line(fd, req, sizeof(req)) >= 0)
            harness_send(fd, "this is not json\n", 17);
        return;
    }
    case SHIM_SCRIPTED_REPLY: {
        char req[256];
        harness_send(fd, ok, sizeof(ok) - 1);
        if (harness_read_line(fd, req, sizeof(req)) >= 0) {
            harness_send(fd, s->reply, strlen(s->reply));
            harness_send(fd, "\n", 1);
        }
        return;
    }
    case SHIM_FORWARD:
        agent = harness_connect(s->target);
        if (agent < 0)
            return; /* no guest listener: Firecracker just closes */
        harness_send(fd, ok, sizeof(ok) - 1);
        shim_relay(s, fd, agent);
        close(agent);
        return;
    }
}

static void *shim_main(void *arg)
{
    struct vsock_shim *s = arg;

    for (;;) {
        struct pollfd pfds[2] = {
            {.fd = s->listen_fd, .events = POLLIN}, {.fd = s->stop_pipe[0], .events = POLLIN}};
        int fd;

        if (poll(pfds, 2, -1) < 0 && errno != EINTR)
            break;
        if (pfds[1].revents)
            break;
        if (!(pfds[0].revents & POLLIN))
            continue;
        fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        shim_serve(s, fd);
        close(fd);
    }
    return NULL;
}

static int shim_start(struct vsock_shim *s, const char *path, const char *target,
                      enum shim_mode mode, const char *reply)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int r;

    memset(s, 0, sizeof(*s));
    s->mode = mode;
    snprintf(s->reply, sizeof(s->reply), "%s", reply);
    snprintf(s->path, sizeof(s->path), "%s", path);
    snprintf(s->target, sizeof(s->target), "%s", target);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (pipe2(s->stop_pipe, O_CLOEXEC) < 0)
        return -errno;
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(s->listen_fd, 16) < 0)
        return -errno;
    r = pthread_create(&s->thread, NULL, shim_main, s);
    return -r;
}

int vsock_shim_start(struct vsock_shim *s, const char *path, const char *target,
                     enum shim_mode mode)
{
    return shim_start(s, path, target, mode, "");
}

int vsock_shim_start_reply(struct vsock_shim *s, const char *path, const char *reply)
{
    return shim_start(s, path, "/nonexistent", SHIM_SCRIPTED_REPLY, reply);
}

void vsock_shim_stop(struct vsock_shim *s)
{
    if (write(s->stop_pipe[1], "x", 1) == 1)
        pthread_join(s->thread, NULL);
    close(s->listen_fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    unlink(s->path);
}
