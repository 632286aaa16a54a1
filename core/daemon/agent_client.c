#include "config.h"

#include "daemon/agent_client.h"
/* Wire constants and the hybrid vsock transport, shared with the agent and
 * the vsock module. */
#include "../agent/agent-proto.h"
#include "../agent/hybrid-vsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Longest excerpt of unexpected bytes in a message. */
#define AGENT_EXCERPT_CHARS 80

static void agent_excerpt(const char *s, char *out, size_t out_len)
{
    hvsock_excerpt(s, AGENT_EXCERPT_CHARS, out, out_len);
}

static int agent_connect(struct hvsock_conn *c, const char *uds_path, unsigned port,
                         long long deadline_ns, int timeout_ms, struct banger_error *err)
{
    enum hvsock_stage stage;
    char excerpt[256];
    int r = hvsock_open(c, uds_path, port, deadline_ns, &stage);

    if (r == 0) {
        /* Drop the OK line; nothing follows it before the request is sent. */
        hvsock_discard(c);
        return 0;
    }
    switch (stage) {
    case HVSOCK_STAGE_PATH:
        return bg_fail(err, r, "vsock socket path too long: %s", uds_path);
    case HVSOCK_STAGE_SOCKET:
        return bg_fail_errno(err, r, "socket");
    case HVSOCK_STAGE_CONNECT:
        if (r == -ENOENT)
            return bg_fail(err, r, "vsock socket missing: %s", uds_path);
        if (r == -ECONNREFUSED)
            return bg_fail(err, r, "nothing listens on %s: firecracker is gone", uds_path);
        return bg_fail_errno(err, r, "connect %s", uds_path);
    case HVSOCK_STAGE_SEND:
        return bg_fail_errno(err, r, "sending CONNECT %u on %s", port, uds_path);
    case HVSOCK_STAGE_ANSWER:
        break;
    }
    if (r == -ECONNRESET)
        return bg_fail(err, r, "agent not answering on vsock port %u: connection closed after "
                       "CONNECT (nothing listens in the guest)", port);
    if (r == -ETIMEDOUT)
        return bg_fail(err, r, "agent not answering on vsock port %u: no OK within %d ms", port,
                       timeout_ms);
    if (r == -EMSGSIZE || r == -EPROTO) {
        agent_excerpt(c->buf, excerpt, sizeof(excerpt));
        return bg_fail(err, -EPROTO, "expected \"OK <port>\" after CONNECT, got \"%s\"", excerpt);
    }
    return bg_fail_errno(err, r, "reading the answer to CONNECT %u", port);
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
        /* The guest's reason goes to the client's terminal: escaped. */
        if (cJSON_IsString(why))
            agent_excerpt(why->valuestring, excerpt, sizeof(excerpt));
        if (cJSON_IsString(why) && strcmp(why->valuestring, "unknown op") == 0)
            bg_fail(err, r, "the guest agent does not know '%s' (an older agent?)", op);
        else
            bg_fail(err, r, "guest agent error: %s", excerpt);
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
    struct hvsock_conn c = { .fd = -1 };
    long long t0 = hvsock_now_ns(), t1;
    char req[128], *line = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    r = agent_connect(&c, uds_path, port, t0 + (long long)timeout_ms * 1000000LL, timeout_ms,
                      err);
    if (r < 0)
        goto cleanup;
    t1 = hvsock_now_ns();
    out->connect_ms = (double)(t1 - t0) / 1e6;

    snprintf(req, sizeof(req), "{\"v\":%d,\"op\":\"%s\"}\n", AGENT_PROTO_VERSION, op);
    r = hvsock_send_all(&c, req, strlen(req));
    if (r < 0) {
        bg_fail_errno(err, r, "sending the %s request to the guest agent", op);
        goto cleanup;
    }
    r = hvsock_read_line(&c, AGENT_MAX_REPLY, &line);
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
    out->latency_ms = (double)(hvsock_now_ns() - t1) / 1e6;
    r = agent_check_reply(line, op, &out->json, err);
cleanup:
    hvsock_close(&c);
    return r;
}

void agent_reply_done(struct agent_reply *reply)
{
    if (!reply)
        return;
    cJSON_Delete(reply->json);
    reply->json = NULL;
}
