/* Request parsing for the guest agent: bytes in, parsed request or error.
 * Pure (no I/O, no allocation) so that it can be fuzzed. */
#ifndef BANGER_AGENT_REQUEST_H
#define BANGER_AGENT_REQUEST_H

#include <stddef.h>

enum agent_req_op {
    AGENT_REQ_HEALTH = 1,
    AGENT_REQ_PORTS,
    AGENT_REQ_PING,
};

/* Longest operation name kept (longer names are unknown operations). */
#define AGENT_OP_NAME_MAX 32

struct agent_request {
    enum agent_req_op op;
    long version;               /* the request's "v", 1 for the plain form */
    int json;                   /* 1 when the request was a JSON object */
    char op_name[AGENT_OP_NAME_MAX]; /* as sent, NUL-terminated, for errors */
};

/* Parse one request line: `len` bytes at `buf`, without the terminating
 * newline (a trailing CR is ignored). Returns
 *   0         on success, *req filled;
 *   -EINVAL   for malformed input (the connection should be closed);
 *   -ENOTSUP  for a well-formed request the agent cannot serve (unknown op,
 *             other protocol version): reply with an error, keep going.
 * On error `why` (when given) receives a short reason; req->op_name and
 * req->version are filled as far as they were understood. */
int agent_request_parse(const char *buf, size_t len, struct agent_request *req,
                        char *why, size_t why_len);

#endif /* BANGER_AGENT_REQUEST_H */
