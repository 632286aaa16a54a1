/* libFuzzer target: a guest agent's reply as the daemon reads it for
 * vm.agent (core/daemon/agent_client.c). The first byte picks the request
 * (ping, health, ports); the rest is what the other end of the vsock sends:
 * the handshake answer, then the reply line. */
#include "config.h"

#include <errno.h>

#include "daemon/agent_client.h"
#include "fuzz-peer.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ops[] = { "ping", "health", "ports" };
    struct banger_error err = { 0 };
    struct agent_reply reply;
    const char *op;
    int r;

    if (size < 1)
        return 0;
    op = ops[data[0] % 3];
    if (fuzz_peer_prepare(data + 1, size - 1) < 0)
        return 0;
    r = agent_request("/nonexistent/fuzz/vsock.sock", 10789, op, 10000, &reply, &err);
    if (r == 0) {
        /* Only a well-formed, successful reply to this very request. */
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(reply.json, "v");
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply.json, "ok");
        const cJSON *rop = cJSON_GetObjectItemCaseSensitive(reply.json, "op");
        FUZZ_CHECK(cJSON_IsObject(reply.json));
        FUZZ_CHECK(cJSON_IsNumber(v) && v->valuedouble == 1);
        FUZZ_CHECK(cJSON_IsTrue(ok));
        FUZZ_CHECK(cJSON_IsString(rop) && strcmp(rop->valuestring, op) == 0);
    } else {
        FUZZ_CHECK(reply.json == NULL);
        FUZZ_CHECK(r == -ECONNRESET || r == -EPROTO || r == -EREMOTEIO);
        /* The message goes to the user's terminal: guest bytes escaped. */
        fuzz_check_message(bg_error_text(&err), sizeof(err.msg), 1);
    }
    agent_reply_done(&reply);
    fuzz_peer_done();
    return 0;
}
