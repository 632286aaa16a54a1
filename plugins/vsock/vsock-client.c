#include "config.h"

#include "vsock-client.h"
#include "agent-proto.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define VSOCK_ATTEMPT_TIMEOUT_MS 3000
#define VSOCK_BACKOFF_FIRST_MS 50
#define VSOCK_BACKOFF_MAX_MS 1000

struct vsock_conn {
    int fd;
    char buf[AGENT_MAX_HEALTH_REPLY + 2];
    size_t len;
};

long long vsock_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read one '\n'-terminated line of at most `max` bytes into line (NUL-
 * terminated, newline stripped); bytes after it stay buffered. */
static int vsock_read_line(struct vsock_conn *c, size_t max, long long deadline_ms, char *line)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        long long left;
        ssize_t n;
        int ready;

        if (nl) {
            size_t l = (size_t)(nl - c->buf);
            if (l > max)
                return -EPROTO;
            memcpy(line, c->buf, l);
            line[l] = '\0';
            memmove(c->buf, nl + 1, c->len - l - 1);
            c->len -= l + 1;
            return 0;
        }
        if (c->len > max || c->len >= sizeof(c->buf))
            return -EPROTO;
        left = deadline_ms - vsock_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        ready = poll(&pfd, 1, (int)(left > 1000000 ? 1000000 : left));
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (ready == 0)
            return -ETIMEDOUT;
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return errno == EPIPE ? -ECONNRESET : -errno;
        }
        if (n == 0)
            return -ECONNRESET;
        c->len += (size_t)n;
    }
}

static int vsock_send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EPIPE ? -ECONNRESET : -errno;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Printable excerpt of unexpected bytes for an error message. */
static void vsock_excerpt(const char *s, char *out, size_t out_len)
{
    size_t j = 0;

    for (size_t i = 0; s[i] && j + 5 < out_len && i < 60; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[j++] = (char)ch;
        else
            j += (size_t)snprintf(out + j, out_len - j, "\\x%02x", ch);
    }
    out[j < out_len ? j : out_len - 1] = '\0';
}

/* "OK <decimal>" exactly. */
static int vsock_is_ok_line(const char *line)
{
    size_t digits;

    if (strncmp(line, AGENT_HYBRID_OK " ", 3) != 0)
        return 0;
    digits = strspn(line + 3, "0123456789");
    return digits > 0 && digits <= 10 && line[3 + digits] == '\0';
}

static void vsock_copy_str(const cJSON *obj, const char *key, char *out, size_t out_len)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    snprintf(out, out_len, "%s", cJSON_IsString(item) ? item->valuestring : "");
}

static int vsock_check_health(const char *line, struct vsock_health *health, char *why,
                              size_t why_len)
{
    const cJSON *v, *ok, *op, *boot_id, *uptime, *error;
    cJSON *root = cJSON_Parse(line);
    char excerpt[256];
    int r = -EPROTO;

    vsock_excerpt(line, excerpt, sizeof(excerpt));
    if (!cJSON_IsObject(root)) {
        snprintf(why, why_len, "not a JSON object: \"%s\"", excerpt);
        goto cleanup;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "v");
    ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
    op = cJSON_GetObjectItemCaseSensitive(root, "op");
    boot_id = cJSON_GetObjectItemCaseSensitive(root, "boot_id");
    uptime = cJSON_GetObjectItemCaseSensitive(root, "uptime_ms");
    error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (!cJSON_IsNumber(v) || v->valuedouble != AGENT_PROTO_VERSION) {
        snprintf(why, why_len, "protocol version is not %d: \"%s\"", AGENT_PROTO_VERSION, excerpt);
        goto cleanup;
    }
    if (!cJSON_IsTrue(ok)) {
        snprintf(why, why_len, "agent error: %s",
                 cJSON_IsString(error) ? error->valuestring : excerpt);
        goto cleanup;
    }
    if (!cJSON_IsString(op) || strcmp(op->valuestring, AGENT_OP_HEALTH) != 0 ||
        !cJSON_IsString(boot_id) || boot_id->valuestring[0] == '\0' || !cJSON_IsNumber(uptime)) {
        snprintf(why, why_len, "not a health reply: \"%s\"", excerpt);
        goto cleanup;
    }
    vsock_copy_str(root, "version", health->version, sizeof(health->version));
    vsock_copy_str(root, "boot_id", health->boot_id, sizeof(health->boot_id));
    vsock_copy_str(root, "hostname", health->hostname, sizeof(health->hostname));
    health->uptime_ms = (long long)uptime->valuedouble;
    r = 0;
cleanup:
    cJSON_Delete(root);
    return r;
}

int vsock_probe_once(const char *uds_path, unsigned port, long long deadline_ms,
                     struct vsock_health *health, char *why, size_t why_len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct vsock_conn *c = NULL;
    char line[AGENT_MAX_HEALTH_REPLY + 1], excerpt[256], req[64];
    int r;

    if (strlen(uds_path) >= sizeof(sa.sun_path)) {
        snprintf(why, why_len, "socket path too long: %s", uds_path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, uds_path);
    c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        r = -errno;
        snprintf(why, why_len, "socket: %s", strerror(errno));
        goto cleanup;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        snprintf(why, why_len, "connect %s: %s", uds_path, strerror(errno));
        goto cleanup;
    }

    snprintf(req, sizeof(req), AGENT_HYBRID_CONNECT " %u\n", port);
    r = vsock_send_all(c->fd, req, strlen(req));
    if (r < 0) {
        snprintf(why, why_len, "sending CONNECT: %s", strerror(-r));
        goto cleanup;
    }
    r = vsock_read_line(c, AGENT_HYBRID_MAX_LINE, deadline_ms, line);
    if (r == -EPROTO) {
        c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
        vsock_excerpt(c->buf, excerpt, sizeof(excerpt));
        snprintf(why, why_len, "expected \"OK <port>\" after CONNECT, got \"%s\"", excerpt);
        goto cleanup;
    }
    if (r < 0) {
        snprintf(why, why_len, "%s after CONNECT %u",
                 r == -ECONNRESET ? "connection closed" : strerror(-r), port);
        goto cleanup;
    }
    if (!vsock_is_ok_line(line)) {
        vsock_excerpt(line, excerpt, sizeof(excerpt));
        snprintf(why, why_len, "expected \"OK <port>\" after CONNECT, got \"%s\"", excerpt);
        r = -EPROTO;
        goto cleanup;
    }

    snprintf(req, sizeof(req), "{\"v\":%d,\"op\":\"%s\"}\n", AGENT_PROTO_VERSION, AGENT_OP_HEALTH);
    r = vsock_send_all(c->fd, req, strlen(req));
    if (r < 0) {
        snprintf(why, why_len, "sending the health request: %s", strerror(-r));
        goto cleanup;
    }
    r = vsock_read_line(c, AGENT_MAX_HEALTH_REPLY, deadline_ms, line);
    if (r == -EPROTO) {
        snprintf(why, why_len, "health reply longer than %u bytes", AGENT_MAX_HEALTH_REPLY);
        goto cleanup;
    }
    if (r < 0) {
        snprintf(why, why_len, "%s waiting for the health reply",
                 r == -ECONNRESET ? "connection closed" : strerror(-r));
        goto cleanup;
    }
    r = vsock_check_health(line, health, why, why_len);
cleanup:
    if (c && c->fd >= 0)
        close(c->fd);
    free(c);
    return r;
}

static void vsock_sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int vsock_wait_ready(const struct vsock_wait_opts *opts, struct vsock_health *health,
                     char *why, size_t why_len)
{
    long long start = vsock_now_ms(), deadline = start + opts->timeout_ms, backoff;
    int attempt_ms = opts->attempt_timeout_ms > 0 ? opts->attempt_timeout_ms
                                                  : VSOCK_ATTEMPT_TIMEOUT_MS;
    char last[512] = "no attempt made";
    int r = -ETIMEDOUT, ever_existed = 0;

    memset(health, 0, sizeof(*health));
    backoff = VSOCK_BACKOFF_FIRST_MS;
    for (;;) {
        long long now = vsock_now_ms(), attempt_deadline;

        if (opts->vmm_alive && !opts->vmm_alive(opts->ctx)) {
            snprintf(why, why_len,
                     "firecracker exited while waiting for the guest agent (last: %s)", last);
            return -ESRCH;
        }
        attempt_deadline = now + attempt_ms < deadline ? now + attempt_ms : deadline;
        health->attempts++;
        r = vsock_probe_once(opts->uds_path, opts->port, attempt_deadline, health, last,
                             sizeof(last));
        if (r == 0)
            return 0;
        if (r != -ENOENT)
            ever_existed = 1;
        if (r == -EPROTO) {
            snprintf(why, why_len, "wrong reply from the guest agent on vsock port %u: %s",
                     opts->port, last);
            return r;
        }
        if (r == -ENAMETOOLONG || r == -ENOMEM) {
            snprintf(why, why_len, "%s", last);
            return r;
        }
        now = vsock_now_ms();
        if (now >= deadline)
            break;
        vsock_sleep_ms(backoff < deadline - now ? backoff : deadline - now);
        backoff = backoff * 2 > VSOCK_BACKOFF_MAX_MS ? VSOCK_BACKOFF_MAX_MS : backoff * 2;
    }
    /* The VMM may have died during the last attempt. */
    if (opts->vmm_alive && !opts->vmm_alive(opts->ctx)) {
        snprintf(why, why_len, "firecracker exited while waiting for the guest agent (last: %s)",
                 last);
        return -ESRCH;
    }
    if (!ever_existed) {
        snprintf(why, why_len, "vsock socket missing: %s did not appear within %lld ms",
                 opts->uds_path, opts->timeout_ms);
        return -ENOENT;
    }
    snprintf(why, why_len,
             "agent never answered on vsock port %u within %lld ms (%d attempts, last: %s)",
             opts->port, opts->timeout_ms, health->attempts, last);
    return -ETIMEDOUT;
}
