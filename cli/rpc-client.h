/* Client side of the bangerd RPC protocol (docs/rpc-protocol.md): one
 * request per connection, progress events, then one final line. */
#ifndef BANGER_CLI_RPC_CLIENT_H
#define BANGER_CLI_RPC_CLIENT_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "util/error.h"

#define RPC_PROTOCOL_VERSION 1
#define RPC_LINE_MAX (1024 * 1024)

struct rpc_reply {
    cJSON *doc;           /* the final line, owned */
    const cJSON *result;  /* inside doc when the call succeeded */
    bool failed;          /* the daemon answered with an error */
    const char *code;     /* inside doc, on error */
    const char *message;  /* inside doc, on error */
    const char *op_id;    /* inside doc, or NULL when the daemon sent none */
};

typedef void (*rpc_progress_fn)(const char *stage, double elapsed_ms, void *userdata);

/* Sends one request and reads the answer. Takes ownership of params (may be
 * NULL). Returns 0 once a final line arrived (check reply->failed), or a
 * negative errno with the reason in err when the daemon could not be asked. */
int rpc_call(const char *socket_path, const char *method, cJSON *params,
             rpc_progress_fn on_progress, void *userdata, struct rpc_reply *reply,
             struct banger_error *err);

void rpc_reply_done(struct rpc_reply *reply);

#endif
