/* The server thread. See dns-server.h. */
#include "config.h"

#include "dns-server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dns-query.h"

#define DNS_RCODE_SERVFAIL 2
/* How often "auto" looks at resolv.conf again. */
#define DNS_UPSTREAM_RECHECK_MS 2000
/* Packets read from one socket per wake-up, so one busy client can't starve others. */
#define DNS_BATCH 32

/* One query relayed upstream, waiting for its answer on its own connected
 * socket (a fresh source port per query). */
struct dns_pending {
    int fd;
    int listener_fd;               /* where the client asked */
    struct sockaddr_storage client;
    socklen_t client_len;
    uint16_t client_id, upstream_id;
    uint8_t *query;                /* as received, for SERVFAIL and the question check */
    size_t query_len;
    int64_t deadline_ms;
};

struct dns_server {
    pthread_mutex_t lock;          /* listener fds, upstream (read by other threads) */
    pthread_t thread;
    bool running;
    int wake[2];                   /* pipe: wake the loop (new listener, stop) */
    bool stopping;
    int listen_fd[DNS_LISTEN_COUNT];

    char *zone;
    struct dns_records *records;
    int forward_timeout_ms;
    bool upstream_auto;
    bool have_upstream;
    struct dns_addr upstream;
    char *resolv_conf, *resolved_conf;
    int64_t upstream_checked_ms;

    struct dns_pending pending[DNS_MAX_PENDING];
    size_t n_pending;
    uint8_t buf[DNS_MAX_PACKET + 1];
};

static int64_t dns_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void dns_server_send(int fd, const uint8_t *pkt, size_t len,
                            const struct sockaddr_storage *to, socklen_t to_len)
{
    /* UDP: a reply that can't be sent is a lost datagram; the client retries. */
    (void)sendto(fd, pkt, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)to, to_len);
}

static void dns_server_servfail(int fd, const uint8_t *query, size_t len,
                                const struct sockaddr_storage *to, socklen_t to_len)
{
    size_t n = 0;
    uint8_t *r = dns_error_reply(query, len, DNS_RCODE_SERVFAIL, true, &n);
    if (r)
        dns_server_send(fd, r, n, to, to_len);
    free(r);
}

static void dns_server_refresh_upstream(struct dns_server *srv)
{
    if (!srv->upstream_auto)
        return;
    int64_t now = dns_now_ms();
    if (srv->upstream_checked_ms && now - srv->upstream_checked_ms < DNS_UPSTREAM_RECHECK_MS)
        return;
    srv->upstream_checked_ms = now;
    struct dns_addr a;
    int r = dns_upstream_auto(srv->resolv_conf, srv->resolved_conf, &a, NULL, 0);
    pthread_mutex_lock(&srv->lock);
    srv->have_upstream = r == 0;
    if (r == 0)
        srv->upstream = a;
    pthread_mutex_unlock(&srv->lock);
}

static uint16_t dns_random_id(void)
{
    uint16_t id = 0;
    if (getrandom(&id, sizeof id, GRND_NONBLOCK) != sizeof id)
        id = (uint16_t)(dns_now_ms() * 2654435761u >> 7);
    return id;
}

static void dns_pending_drop(struct dns_server *srv, size_t i)
{
    struct dns_pending *p = &srv->pending[i];
    if (p->fd >= 0)
        close(p->fd);
    free(p->query);
    srv->pending[i] = srv->pending[--srv->n_pending];
}

/* Relay a query for an outside name: own socket, new id, remember the client. */
static void dns_server_forward(struct dns_server *srv, int listener_fd, const uint8_t *pkt,
                               size_t len, const struct sockaddr_storage *from, socklen_t from_len)
{
    dns_server_refresh_upstream(srv);
    if (!srv->have_upstream || srv->n_pending >= DNS_MAX_PENDING || len > DNS_MAX_PACKET) {
        dns_server_servfail(listener_fd, pkt, len, from, from_len);
        return;
    }
    struct dns_pending p = {
        .fd = -1,
        .listener_fd = listener_fd,
        .client = *from,
        .client_len = from_len,
        .client_id = dns_get_id(pkt),
        .upstream_id = dns_random_id(),
        .query_len = len,
        .deadline_ms = dns_now_ms() + srv->forward_timeout_ms,
    };
    p.query = malloc(len);
    if (!p.query)
        goto fail;
    memcpy(p.query, pkt, len);
    p.fd = socket(srv->upstream.sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p.fd < 0)
        goto fail;
    if (connect(p.fd, (const struct sockaddr *)&srv->upstream.sa, srv->upstream.len) < 0)
        goto fail;
    /* Upstream sees our id; the client's goes back on the answer. */
    dns_set_id(p.query, p.upstream_id);
    ssize_t sent = send(p.fd, p.query, len, MSG_NOSIGNAL);
    dns_set_id(p.query, p.client_id);
    if (sent != (ssize_t)len)
        goto fail;
    srv->pending[srv->n_pending++] = p;
    return;
fail:
    if (p.fd >= 0)
        close(p.fd);
    free(p.query);
    dns_server_servfail(listener_fd, pkt, len, from, from_len);
}

static bool dns_same_question(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    size_t ea = dns_question_end(a, a_len), eb = dns_question_end(b, b_len);
    if (!ea || ea != eb)
        return false;
    for (size_t i = DNS_HEADER_LEN; i < ea; i++) {
        uint8_t x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (uint8_t)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (uint8_t)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

/* Pending i's socket is readable: relay the answer if it is the one.
 * True when the query is done with (answered, or upstream refused it). */
static bool dns_pending_read(struct dns_server *srv, size_t i)
{
    struct dns_pending *p = &srv->pending[i];
    for (int k = 0; k < DNS_BATCH; k++) {
        ssize_t n = recv(p->fd, srv->buf, sizeof srv->buf, MSG_DONTWAIT);
        if (n < 0 && errno == ECONNREFUSED) { /* ICMP port unreachable: nobody there */
            dns_server_servfail(p->listener_fd, p->query, p->query_len, &p->client,
                                p->client_len);
            return true;
        }
        if (n < 0)
            return false;
        size_t len = (size_t)n;
        if (len < DNS_HEADER_LEN || len > DNS_MAX_PACKET || !(srv->buf[2] & 0x80) ||
            dns_get_id(srv->buf) != p->upstream_id)
            continue;
        /* Some servers leave the question out of errors; when present it must match. */
        bool has_question = (srv->buf[4] << 8 | srv->buf[5]) != 0;
        if (has_question && !dns_same_question(srv->buf, len, p->query, p->query_len))
            continue;
        dns_set_id(srv->buf, p->client_id);
        dns_server_send(p->listener_fd, srv->buf, len, &p->client, p->client_len);
        return true;
    }
    return false;
}

static void dns_server_handle(struct dns_server *srv, int fd)
{
    struct dns_zone zone = { .name = srv->zone, .lookup = dns_records_lookup, .ctx = srv->records };
    for (int k = 0; k < DNS_BATCH; k++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(fd, srv->buf, sizeof srv->buf, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&from, &from_len);
        if (n < 0)
            return;
        size_t len = (size_t)n > sizeof srv->buf ? sizeof srv->buf : (size_t)n;
        uint8_t *reply = NULL;
        size_t reply_len = 0;
        switch (dns_query_answer(&zone, srv->buf, len, &reply, &reply_len)) {
        case DNS_REPLY:
            dns_server_send(fd, reply, reply_len, &from, from_len);
            break;
        case DNS_FORWARD:
            dns_server_forward(srv, fd, srv->buf, len, &from, from_len);
            break;
        case DNS_DROP:
            break;
        }
        free(reply);
    }
}

static void *dns_server_loop(void *arg)
{
    struct dns_server *srv = arg;
    struct pollfd pfd[1 + DNS_LISTEN_COUNT + DNS_MAX_PENDING];
    for (;;) {
        int listen_fd[DNS_LISTEN_COUNT];
        pthread_mutex_lock(&srv->lock);
        bool stop = srv->stopping;
        memcpy(listen_fd, srv->listen_fd, sizeof listen_fd);
        pthread_mutex_unlock(&srv->lock);
        if (stop)
            break;

        nfds_t n = 0;
        pfd[n++] = (struct pollfd){ .fd = srv->wake[0], .events = POLLIN };
        for (int i = 0; i < DNS_LISTEN_COUNT; i++)
            pfd[n++] = (struct pollfd){ .fd = listen_fd[i], .events = POLLIN };
        size_t n_pending = srv->n_pending;
        int64_t now = dns_now_ms(), next = -1;
        for (size_t i = 0; i < n_pending; i++) {
            pfd[n++] = (struct pollfd){ .fd = srv->pending[i].fd, .events = POLLIN };
            int64_t left = srv->pending[i].deadline_ms - now;
            if (left < 0)
                left = 0;
            if (next < 0 || left < next)
                next = left;
        }
        int r = poll(pfd, n, next < 0 ? -1 : (int)next);
        if (r < 0 && errno != EINTR)
            break;

        if (r > 0 && (pfd[0].revents & POLLIN)) {
            char drain[64];
            while (read(srv->wake[0], drain, sizeof drain) > 0)
                ;
        }
        /* Answers first (they free slots), in reverse so removal keeps indexes valid. */
        for (size_t i = n_pending; r > 0 && i-- > 0;)
            if (pfd[1 + DNS_LISTEN_COUNT + i].revents && dns_pending_read(srv, i))
                dns_pending_drop(srv, i);
        now = dns_now_ms();
        for (size_t i = srv->n_pending; i-- > 0;) {
            struct dns_pending *p = &srv->pending[i];
            if (p->deadline_ms <= now) {
                dns_server_servfail(p->listener_fd, p->query, p->query_len, &p->client,
                                    p->client_len);
                dns_pending_drop(srv, i);
            }
        }
        for (int i = 0; r > 0 && i < DNS_LISTEN_COUNT; i++)
            if (listen_fd[i] >= 0 && pfd[1 + i].revents)
                dns_server_handle(srv, listen_fd[i]);
    }
    return NULL;
}

int dns_server_new(const struct dns_server_opts *opts, struct dns_server **out)
{
    struct dns_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    pthread_mutex_init(&srv->lock, NULL);
    srv->wake[0] = srv->wake[1] = -1;
    for (int i = 0; i < DNS_LISTEN_COUNT; i++)
        srv->listen_fd[i] = -1;
    srv->records = opts->records;
    srv->forward_timeout_ms = opts->forward_timeout_ms > 0 ? opts->forward_timeout_ms : 2000;
    srv->zone = strdup(opts->zone);
    srv->resolv_conf = strdup(opts->resolv_conf ? opts->resolv_conf : DNS_RESOLV_CONF);
    srv->resolved_conf = strdup(opts->resolved_conf ? opts->resolved_conf : DNS_RESOLVED_CONF);
    if (!srv->zone || !srv->resolv_conf || !srv->resolved_conf ||
        pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        int r = errno ? -errno : -ENOMEM;
        dns_server_free(srv);
        return r;
    }
    if (opts->upstream) {
        srv->upstream = *opts->upstream;
        srv->have_upstream = true;
    } else {
        srv->upstream_auto = true;
        dns_server_refresh_upstream(srv);
    }
    *out = srv;
    return 0;
}

int dns_server_start(struct dns_server *srv)
{
    int r = pthread_create(&srv->thread, NULL, dns_server_loop, srv);
    if (r != 0)
        return -r;
    srv->running = true;
    return 0;
}

static void dns_server_wake(struct dns_server *srv)
{
    char c = 1;
    (void)!write(srv->wake[1], &c, 1); /* a full pipe already means "wake up" */
}

void dns_server_free(struct dns_server *srv)
{
    if (!srv)
        return;
    if (srv->running) {
        pthread_mutex_lock(&srv->lock);
        srv->stopping = true;
        pthread_mutex_unlock(&srv->lock);
        dns_server_wake(srv);
        pthread_join(srv->thread, NULL);
    }
    while (srv->n_pending)
        dns_pending_drop(srv, srv->n_pending - 1);
    for (int i = 0; i < DNS_LISTEN_COUNT; i++)
        if (srv->listen_fd[i] >= 0)
            close(srv->listen_fd[i]);
    for (int i = 0; i < 2; i++)
        if (srv->wake[i] >= 0)
            close(srv->wake[i]);
    free(srv->zone);
    free(srv->resolv_conf);
    free(srv->resolved_conf);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

int dns_server_listen(struct dns_server *srv, enum dns_listener which, const struct dns_addr *addr)
{
    if (dns_server_listening(srv, which))
        return -EALREADY;
    int fd = socket(addr->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Room for bursts while a batch is answered; the kernel caps it at rmem_max. */
    int rcvbuf = 1 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    pthread_mutex_lock(&srv->lock);
    bool taken = srv->listen_fd[which] >= 0;
    if (!taken)
        srv->listen_fd[which] = fd;
    pthread_mutex_unlock(&srv->lock);
    if (taken) { /* another VM start bound it meanwhile */
        close(fd);
        return -EALREADY;
    }
    dns_server_wake(srv);
    return 0;
}

bool dns_server_listening(struct dns_server *srv, enum dns_listener which)
{
    pthread_mutex_lock(&srv->lock);
    bool up = srv->listen_fd[which] >= 0;
    pthread_mutex_unlock(&srv->lock);
    return up;
}

bool dns_server_upstream(struct dns_server *srv, struct dns_addr *out)
{
    pthread_mutex_lock(&srv->lock);
    bool have = srv->have_upstream;
    if (have && out)
        *out = srv->upstream;
    pthread_mutex_unlock(&srv->lock);
    return have;
}
