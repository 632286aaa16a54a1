#include "config.h"

#include "hybrid-vsock.h"
#include "agent-proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

long long hvsock_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Milliseconds to the deadline, rounded up so poll() does not wake early. */
static long long hvsock_left_ms(const struct hvsock_conn *c)
{
    return (c->deadline_ns - hvsock_now_ns() + 999999) / 1000000;
}

/* Forget the line returned last, keeping what followed it. */
static void hvsock_drop_line(struct hvsock_conn *c)
{
    if (c->line_len == 0)
        return;
    memmove(c->buf, c->buf + c->line_len, c->len - c->line_len);
    c->len -= c->line_len;
    c->buf[c->len] = '\0';
    c->line_len = 0;
}

int hvsock_read_line(struct hvsock_conn *c, size_t max, char **line)
{
    size_t scanned = 0;

    hvsock_drop_line(c);
    for (;;) {
        char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        long long left_ms;
        ssize_t n;

        if (nl) {
            if ((size_t)(nl - c->buf) > max)
                return -EMSGSIZE;
            c->line_len = (size_t)(nl - c->buf) + 1;
            *nl = '\0';
            if (nl > c->buf && nl[-1] == '\r')
                nl[-1] = '\0';
            *line = c->buf;
            return 0;
        }
        scanned = c->len;
        if (c->len > max)
            return -EMSGSIZE;
        if (c->cap - c->len < 4096) {
            size_t cap = c->cap ? c->cap * 2 : 16384;
            char *grown;

            if (cap > max + 4096)
                cap = max + 4096;
            grown = realloc(c->buf, cap + 1);
            if (!grown)
                return -ENOMEM;
            c->buf = grown;
            c->cap = cap;
        }
        left_ms = hvsock_left_ms(c);
        if (left_ms <= 0)
            return -ETIMEDOUT;
        n = poll(&pfd, 1, left_ms > 1000000 ? 1000000 : (int)left_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ETIMEDOUT;
        n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            return errno == EPIPE ? -ECONNRESET : -errno;
        if (n == 0)
            return -ECONNRESET;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
}

/* Unix socket writes of a few bytes do not block for long; the deadline
 * still bounds a peer that stops reading. */
int hvsock_send_all(struct hvsock_conn *c, const char *s, size_t n)
{
    while (n > 0) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
        long long left_ms = hvsock_left_ms(c);
        ssize_t w;

        if (left_ms <= 0)
            return -ETIMEDOUT;
        if (poll(&pfd, 1, left_ms > 1000000 ? 1000000 : (int)left_ms) == 0)
            return -ETIMEDOUT;
        w = send(c->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w < 0)
            return errno == EPIPE ? -ECONNRESET : -errno;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

void hvsock_discard(struct hvsock_conn *c)
{
    c->len = 0;
    c->line_len = 0;
    if (c->buf)
        c->buf[0] = '\0';
}

void hvsock_close(struct hvsock_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = c->line_len = 0;
}

void hvsock_excerpt(const char *s, size_t max_chars, char *out, size_t out_len)
{
    size_t j = 0;

    for (size_t i = 0; s[i] && i < max_chars && j + 5 < out_len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch >= 0x20 && ch < 0x7f)
            out[j++] = (char)ch;
        else
            j += (size_t)snprintf(out + j, out_len - j, "\\x%02x", ch);
    }
    out[j < out_len ? j : out_len - 1] = '\0';
}

/* "OK <decimal>" exactly. */
static int hvsock_is_ok_line(const char *line)
{
    size_t digits;

    if (strncmp(line, AGENT_HYBRID_OK " ", sizeof(AGENT_HYBRID_OK)) != 0)
        return 0;
    line += sizeof(AGENT_HYBRID_OK);
    digits = strspn(line, "0123456789");
    return digits > 0 && digits <= 10 && line[digits] == '\0';
}

int hvsock_open(struct hvsock_conn *c, const char *uds_path, unsigned port,
                long long deadline_ns, enum hvsock_stage *stage)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char req[64], *line = NULL;
    int r;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->deadline_ns = deadline_ns;
    *stage = HVSOCK_STAGE_PATH;
    if (strlen(uds_path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, uds_path);
    *stage = HVSOCK_STAGE_SOCKET;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    /* A Unix connect does not wait for accept(); a full backlog is refused. */
    *stage = HVSOCK_STAGE_CONNECT;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -errno;
    *stage = HVSOCK_STAGE_SEND;
    snprintf(req, sizeof(req), AGENT_HYBRID_CONNECT " %u\n", port);
    r = hvsock_send_all(c, req, strlen(req));
    if (r < 0)
        return r;
    *stage = HVSOCK_STAGE_ANSWER;
    r = hvsock_read_line(c, AGENT_HYBRID_MAX_LINE, &line);
    if (r < 0)
        return r;
    return hvsock_is_ok_line(line) ? 0 : -EPROTO;
}
