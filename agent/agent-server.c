/* Each client has a bounded input buffer (one request line) and an output
 * buffer holding at most one reply: a client is read from only when its
 * previous reply is fully written, which bounds memory per connection.
 * Whatever a client does (garbage, oversized lines, half-close, vanishing)
 * affects only its own connection. */
#include "config.h"

#include "agent-server.h"
#include "agent-dispatch.h"
#include "agent-info.h"
#include "agent-json.h"
#include "agent-proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct agent_client {
    int fd;
    char in[AGENT_MAX_REQUEST + 1];   /* a request line and its newline */
    size_t in_len;
    struct agent_buf out;
    int eof;                    /* the peer shut its write side */
    int closing;                /* close once `out` is written */
    long long last_active_ms;
};

static long long agent_server_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void agent_client_free(struct agent_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    agent_buf_free(&c->out);
    free(c);
}

/* Turn buffered complete lines into replies, one at a time. */
static void agent_client_process(struct agent_client *c, const char *proc_root)
{
    while (!c->closing && c->out.len == 0) {
        char *nl = memchr(c->in, '\n', c->in_len);
        size_t used;
        int r;

        if (!nl) {
            if (c->in_len >= sizeof(c->in)) {
                agent_error_reply(&c->out, NULL, "request too long");
                agent_buf_append(&c->out, "\n", 1);
                c->closing = 1;
            } else if (c->eof) {
                c->closing = 1; /* a partial line at EOF is dropped */
            }
            return;
        }
        used = (size_t)(nl - c->in) + 1;
        r = agent_dispatch(c->in, used - 1, &c->out, proc_root);
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        if (r != 0)
            c->closing = 1;
        if (r < 0)
            agent_buf_reset(&c->out);
    }
}

/* Returns 0 to keep the client, -1 to drop it. */
static int agent_client_read(struct agent_client *c, const char *proc_root)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);

    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    if (n == 0)
        c->eof = 1;
    c->in_len += (size_t)n;
    agent_client_process(c, proc_root);
    return 0;
}

static int agent_client_write(struct agent_client *c, const char *proc_root)
{
    ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);

    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    agent_buf_consume(&c->out, (size_t)n);
    if (c->out.len == 0)
        agent_client_process(c, proc_root);
    return 0;
}

/* Returns 0 when a client was added, -1 when there was none to add. */
static int agent_server_accept(int listen_fd, struct agent_client **clients, size_t *n,
                               long long now)
{
    struct agent_client *c;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return -1; /* EAGAIN, a peer that left, or EMFILE: try again later */
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    agent_buf_init(&c->out, AGENT_MAX_REPLY + 1);
    c->last_active_ms = now;
    clients[(*n)++] = c;
    return 0;
}

int agent_server_run(const struct agent_server_opts *opts, char *why, size_t why_len)
{
    struct agent_client **clients = NULL;
    struct pollfd *pfds = NULL;
    size_t n_clients = 0;
    int r = 0;

    clients = calloc(opts->max_clients, sizeof(*clients));
    pfds = calloc(opts->max_clients + 2, sizeof(*pfds));
    if (!clients || !pfds) {
        r = -ENOMEM;
        snprintf(why, why_len, "out of memory");
        goto cleanup;
    }
    for (;;) {
        size_t nfds = 0, first_client;
        long long now;
        int ready;

        pfds[nfds++] = (struct pollfd){.fd = opts->stop_fd, .events = POLLIN};
        /* At the limit, leave new connections in the kernel's backlog. */
        pfds[nfds++] = (struct pollfd){
            .fd = n_clients < opts->max_clients ? opts->listen_fd : -1, .events = POLLIN};
        first_client = nfds;
        for (size_t i = 0; i < n_clients; i++)
            pfds[nfds++] = (struct pollfd){
                .fd = clients[i]->fd,
                .events = clients[i]->out.len > 0 ? POLLOUT : POLLIN};

        ready = poll(pfds, nfds, opts->idle_timeout_ms > 0 ? 1000 : -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            snprintf(why, why_len, "poll: %s", strerror(errno));
            goto cleanup;
        }
        if (pfds[0].revents)
            break;
        now = agent_server_now_ms();

        /* Serve clients first, then compact the array, then accept. */
        for (size_t i = 0; i < n_clients; i++) {
            struct agent_client *c = clients[i];
            short rev = pfds[first_client + i].revents;
            int drop = 0;

            if (rev & (POLLIN | POLLHUP | POLLERR)) {
                if (c->out.len == 0)
                    drop = agent_client_read(c, opts->proc_root) < 0;
                else
                    drop = agent_client_write(c, opts->proc_root) < 0;
                c->last_active_ms = now;
            } else if (rev & POLLOUT) {
                drop = agent_client_write(c, opts->proc_root) < 0;
                c->last_active_ms = now;
            }
            if (!drop && c->closing && c->out.len == 0)
                drop = 1;
            if (!drop && opts->idle_timeout_ms > 0 &&
                now - c->last_active_ms > opts->idle_timeout_ms)
                drop = 1;
            if (drop) {
                agent_client_free(c);
                clients[i] = NULL;
            }
        }
        {
            size_t kept = 0;
            for (size_t i = 0; i < n_clients; i++)
                if (clients[i])
                    clients[kept++] = clients[i];
            n_clients = kept;
        }
        if (pfds[1].revents & POLLIN)
            while (n_clients < opts->max_clients &&
                   agent_server_accept(opts->listen_fd, clients, &n_clients, now) == 0)
                ;
    }
cleanup:
    for (size_t i = 0; i < n_clients; i++)
        agent_client_free(clients[i]);
    free(clients);
    free(pfds);
    return r;
}
