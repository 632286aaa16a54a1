#include "config.h"

#include "vsock-client.h"
#include "agent-proto.h"
#include "hybrid-vsock.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define VSOCK_ATTEMPT_TIMEOUT_MS 3000
#define VSOCK_BACKOFF_FIRST_MS 50
#define VSOCK_BACKOFF_MAX_MS 1000

/* Longest excerpt of unexpected bytes in a message. */
#define VSOCK_EXCERPT_CHARS 60

long long vsock_now_ms(void)
{
    return hvsock_now_ns() / 1000000;
}

static void vsock_excerpt(const char *s, char *out, size_t out_len)
{
    hvsock_excerpt(s, VSOCK_EXCERPT_CHARS, out, out_len);
}

/* Connect and do the CONNECT/OK handshake, wording failures for `why`. */
static int vsock_connect(struct hvsock_conn *c, const char *uds_path, unsigned port,
                         long long deadline_ms, char *why, size_t why_len)
{
    enum hvsock_stage stage;
    char excerpt[256];
    int r = hvsock_open(c, uds_path, port, deadline_ms * 1000000LL, &stage);

    if (r == 0)
        return 0;
    switch (stage) {
    case HVSOCK_STAGE_PATH:
        snprintf(why, why_len, "socket path too long: %s", uds_path);
        return r;
    case HVSOCK_STAGE_SOCKET:
        snprintf(why, why_len, "socket: %s", strerror(-r));
        return r;
    case HVSOCK_STAGE_CONNECT:
        snprintf(why, why_len, "connect %s: %s", uds_path, strerror(-r));
        return r;
    case HVSOCK_STAGE_SEND:
        snprintf(why, why_len, "sending CONNECT: %s", strerror(-r));
        return r;
    case HVSOCK_STAGE_ANSWER:
        break;
    }
    if (r == -EMSGSIZE || r == -EPROTO) {
        vsock_excerpt(c->buf, excerpt, sizeof(excerpt));
        snprintf(why, why_len, "expected \"OK <port>\" after CONNECT, got \"%s\"", excerpt);
        return -EPROTO;
    }
    snprintf(why, why_len, "%s after CONNECT %u",
             r == -ECONNRESET ? "connection closed" : strerror(-r), port);
    return r;
}

/* The guest's string, escaped: it goes into the daemon's log lines. */
static void vsock_copy_str(const cJSON *obj, const char *key, char *out, size_t out_len)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    hvsock_excerpt(cJSON_IsString(item) ? item->valuestring : "", out_len, out, out_len);
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
        /* The reason ends up in the VM's last_error and on a terminal. */
        if (cJSON_IsString(error))
            vsock_excerpt(error->valuestring, excerpt, sizeof(excerpt));
        snprintf(why, why_len, "agent error: %s", excerpt);
        goto cleanup;
    }
    if (!cJSON_IsString(op) || strcmp(op->valuestring, AGENT_OP_HEALTH) != 0 ||
        !cJSON_IsString(boot_id) || boot_id->valuestring[0] == '\0' || !cJSON_IsNumber(uptime) ||
        /* a long long, or the cast below is undefined */
        !(uptime->valuedouble >= 0 && uptime->valuedouble < 9223372036854775807.0)) {
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
    struct hvsock_conn c = { .fd = -1 };
    char req[64], *line = NULL;
    int r;

    r = vsock_connect(&c, uds_path, port, deadline_ms, why, why_len);
    if (r < 0)
        goto cleanup;

    snprintf(req, sizeof(req), "{\"v\":%d,\"op\":\"%s\"}\n", AGENT_PROTO_VERSION, AGENT_OP_HEALTH);
    r = hvsock_send_all(&c, req, strlen(req));
    if (r < 0) {
        snprintf(why, why_len, "sending the health request: %s", strerror(-r));
        goto cleanup;
    }
    r = hvsock_read_line(&c, AGENT_MAX_HEALTH_REPLY, &line);
    if (r == -EMSGSIZE) {
        r = -EPROTO;
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
    hvsock_close(&c);
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
