/* One request to a VM's guest agent through Firecracker's hybrid vsock
 * (docs/agent-protocol.md): connect to uds_path, "CONNECT <port>\n",
 * expect "OK <n>\n", send the request, read one reply line. Every step is
 * bounded by one overall deadline. */
#ifndef BANGER_DAEMON_AGENT_CLIENT_H
#define BANGER_DAEMON_AGENT_CLIENT_H

#include <cjson/cJSON.h>

#include "util/error.h"

struct agent_reply {
    cJSON *json;         /* the agent's reply object (ok:true), owned */
    double connect_ms;   /* connect + CONNECT/OK handshake */
    double latency_ms;   /* request written -> reply line read */
};

/* Ask `op` ("ping", "health", "ports"). Returns 0 with *out filled, or
 *   -ENOENT        the vsock socket does not exist,
 *   -ECONNREFUSED  nobody listens on it (the VMM is gone),
 *   -ECONNRESET    closed after CONNECT (nothing listens in the guest) or
 *                  before the reply,
 *   -ETIMEDOUT     no OK or no reply within timeout_ms,
 *   -EPROTO        bytes that are not the protocol,
 *   -EREMOTEIO     the agent answered ok:false (its reason in err),
 * or another negative errno; err says which step failed. */
int agent_request(const char *uds_path, unsigned port, const char *op, int timeout_ms,
                  struct agent_reply *out, struct banger_error *err);

void agent_reply_done(struct agent_reply *reply);

#endif
