#include "config.h"

#include "daemon/agent_client.h"
/* Wire constants shared with the agent itself. */
#include "../agent/agent-proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct agent_conn {
    int fd;
    char *buf;
    size_t len, cap;
    long long deadline_ns;
};

static long long agent_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Read one '\n'-terminated line of at most `max` bytes; *line points into
 * the buffer (NUL-terminated, newline stripped) until the next read. */
static int agent_read_line(struct agent_conn *c, size_t max, char **line)
{
    size_t scanned = 0;

    for (;;) {
        char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        long long left_ms;
        ssize_t n;

        if (nl) {
            if ((size_t)(nl - c->buf) > max)
                return -EMSGSIZE;
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
        left_ms = (c->deadline_ns - agent_now_ns() + 999999) / 1000000;
        if (left_ms <= 0)
            return -ETIMEDOUT;
        n = poll(&pfd, 1, (int)left_ms);
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
static int agent_send_all(struct agent_conn *c, const char *s, size_t n)
{
    while (n > 0) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
        long long left_ms = (c->deadline_ns - agent_now_ns() + 999999) / 1000000;
        ssize_t w;

        if (left_ms <= 0)
            return -ETIMEDOUT;
        if (poll(&pfd, 1, (int)left_ms) == 0)
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

/* Printable excerpt of unexpected bytes for a message. */
static void agent_excerpt(const char *s, char *out, size_t out_len)
{
    size_t j = 0;

    for (size_t i = 0; s[i] && i < 80 && j + 5 < out_len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch >= 0x20 && ch < 0x7f)
            out[j++] = (char)ch;
        else
            j += (size_t)snprintf(out + j, out_len - j, "\\x%02x", ch);
    }
    out[j < out_len ? j : out_len - 1] = '\0';
}

/* "OK <decimal>" exactly. */
static int agent_is_ok_line(const char *line)
{
    size_t digits;

    if (strncmp(line, AGENT_HYBRID_OK " ", sizeof(AGENT_HYBRID_OK)) != 0)
        return 0;
    line += sizeof(AGENT_HYBRID_OK);
    digits = strspn(line, "0123456789");
    return digits > 0 && digits <= 10 && line[digits] == '\0';
}

static int agent_connect(struct agent_conn *c, const char *uds_path, unsigned port, int timeout_ms,
                         struct banger_error *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char req[64], excerpt[256], *line = NULL;
    int r;

    if (strlen(uds_path) >= sizeof(sa.sun_path))
        return bg_fail(err, -ENAMETOOLONG, "vsock socket path too long: %s", uds_path);
    strcpy(sa.sun_path, uds_path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return bg_fail_errno(err, -errno, "socket");
    /* A Unix connect does not wait for accept(); a full backlog is refused. */
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        if (r == -ENOENT)
            return bg_fail(err, r, "vsock socket missing: %s", uds_path);
        if (r == -ECONNREFUSED)
            return bg_fail(err, r, "nothing listens on %s: firecracker is gone", uds_path);
        return bg_fail_errno(err, r, "connect %s", uds_path);
    }
    snprintf(req, sizeof(req), AGENT_HYBRID_CONNECT " %u\n", port);
    r = agent_send_all(c, req, strlen(req));
    if (r < 0)
        return bg_fail_errno(err, r, "sending CONNECT %u on %s", port, uds_path);
    r = agent_read_line(c, AGENT_HYBRID_MAX_LINE, &line);
    if (r == -ECONNRESET)
        return bg_fail(err, r, "agent not answering on vsock port %u: connection closed after "
                       "CONNECT (nothing listens in the guest)", port);
    if (r == -ETIMEDOUT)
        return bg_fail(err, r, "agent not answering on vsock port %u: no OK within %d ms", port,
                       timeout_ms);
    if (r == -EMSGSIZE) {
        agent_excerpt(c->buf, excerpt, sizeof(excerpt));
        return bg_fail(err, -EPROTO, "expected \"OK <port>\" after CONNECT, got \"%s\"", excerpt);
    }
    if (r < 0)
        return bg_fail_errno(err, r, "reading the answer to CONNECT %u", port);
    if (!agent_is_ok_line(line)) {
        agent_excerpt(line, excerpt, sizeof(excerpt));
        return bg_fail(err, -EPROTO, "expected \"OK <port>\" after CONNECT, got \"%s\"", excerpt);
    }
    /* Drop the OK line; nothing follows it before the request is sent. */
    c->len = 0;
    return 0;
}

/* The reply must be {"v":1,"ok":true,"op":<op>,...}. */
static int agent_check_reply(const char *line, const char *op, cJSON **out,
                             struct banger_error *err)
{
    const cJSON *v, *ok, *rop, *why;
    cJSON *root = cJSON_Parse(line);
    char excerpt[256];
    int r = -EPROTO;

    agent_excerpt(line, excerpt, sizeof(excerpt));
    if (!cJSON_IsObject(root)) {
        bg_fail(err, r, "bad reply from the guest agent: not a JSON object: \"%s\"", excerpt);
        goto cleanup;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "v");
    ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
    rop = cJSON_GetObjectItemCaseSensitive(root, "op");
    why = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (!cJSON_IsNumber(v) || v->valuedouble != AGENT_PROTO_VERSION || !cJSON_IsBool(ok)) {
        bg_fail(err, r, "bad reply from the guest agent (protocol version %d expected): \"%s\"",
                AGENT_PROTO_VERSION, excerpt);
        goto cleanup;
    }
    if (!cJSON_IsTrue(ok)) {
        r = -EREMOTEIO;
        if (cJSON_IsString(why) && strcmp(why->valuestring, "unknown op") == 0)
            bg_fail(err, r, "the guest agent does not know '%s' (an older agent?)", op);
        else
            bg_fail(err, r, "guest agent error: %s",
                    cJSON_IsString(why) ? why->valuestring : excerpt);
        goto cleanup;
    }
    if (!cJSON_IsString(rop) || strcmp(rop->valuestring, op) != 0) {
        bg_fail(err, r, "bad reply from the guest agent: not a '%s' reply: \"%s\"", op, excerpt);
        goto cleanup;
    }
    *out = root;
    root = NULL;
    r = 0;
cleanup:
    cJSON_Delete(root);
    return r;
}

int agent_request(const char *uds_path, unsigned port, const char *op, int timeout_ms,
                  struct agent_reply *out, struct banger_error *err)
{
    struct agent_conn c = { .fd = -1 };
    long long t0 = agent_now_ns(), t1;
    char req[128], *line = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    c.deadline_ns = t0 + (long long)timeout_ms * 1000000LL;
    r = agent_connect(&c, uds_path, port, timeout_ms, err);
    if (r < 0)
        goto cleanup;
    t1 = agent_now_ns();
    out->connect_ms = (double)(t1 - t0) / 1e6;

    snprintf(req, sizeof(req), "{\"v\":%d,\"op\":\"%s\"}\n", AGENT_PROTO_VERSION, op);
    r = agent_send_all(&c, req, strlen(req));
    if (r < 0) {
        bg_fail_errno(err, r, "sending the %s request to the guest agent", op);
        goto cleanup;
    }
    r = agent_read_line(&c, AGENT_MAX_REPLY, &line);
    if (r == -ETIMEDOUT) {
        bg_fail(err, r, "guest agent did not answer '%s' within %d ms", op, timeout_ms);
        goto cleanup;
    }
    if (r == -ECONNRESET) {
        bg_fail(err, r, "guest agent closed the connection without answering '%s'", op);
        goto cleanup;
    }
    if (r == -EMSGSIZE) {
        r = bg_fail(err, -EPROTO, "bad reply from the guest agent: longer than %u bytes",
                    AGENT_MAX_REPLY);
        goto cleanup;
    }
    if (r < 0) {
        bg_fail_errno(err, r, "reading the guest agent's '%s' reply", op);
        goto cleanup;
    }
    out->latency_ms = (double)(agent_now_ns() - t1) / 1e6;
    r = agent_check_reply(line, op, &out->json, err);
cleanup:
    if (c.fd >= 0)
        close(c.fd);
    free(c.buf);
    return r;
}

void agent_reply_done(struct agent_reply *reply)
{
    if (!reply)
        return;
    cJSON_Delete(reply->json);
    reply->json = NULL;
}
