/* The RPC server: JSON lines over a Unix socket, one request per
 * connection, a thread per connection, peer credentials checked before a
 * request is read. See docs/rpc-protocol.md. */
#ifndef BANGER_RPC_SERVER_H
#define BANGER_RPC_SERVER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/caller_open.h"
#include "util/error.h"

#define RPC_PROTOCOL_VERSION 1
#define RPC_MAX_REQUEST (1024 * 1024)
#define RPC_MAX_CONNECTIONS 256
/* Slots only root may take, so members can never lock root out. */
#define RPC_ROOT_RESERVED_CONNECTIONS 16

/* Bounds of the server (config group `rpc`, docs/configuration.md). */
struct rpc_limits {
    int send_timeout_ms;          /* one line to a client that stops reading */
    unsigned max_per_uid;         /* open connections of one non-root uid */
    int shutdown_grace_ms;        /* rpc_server_stop: wait this long for calls */
};
#define RPC_LIMITS_DEFAULT { .send_timeout_ms = 5000, .max_per_uid = 32, .shutdown_grace_ms = 3000 }

struct rpc_call {
    const char *method;
    const cJSON *params;     /* an object, never NULL */
    char op_id[32];
    uid_t peer_uid;
    /* The peer as the kernel saw it at connect: paths it names are opened
     * with these credentials (bg_caller_open). */
    struct bg_caller caller;
    /* Filled by the handler. */
    cJSON *result;           /* owned by the call once set */
    const char *error_code;  /* NULL: derived from err.code */
    struct banger_error err;
    /* private */
    int fd;
    bool client_gone;
    int send_timeout_ms;
    long long started_ms;
};

/* Returns 0 with call->result set, or a negative errno with call->err. */
typedef int (*rpc_handler_fn)(void *ctx, struct rpc_call *call);

/* Send a progress event to the client (ignored when it went away). */
void rpc_call_progress(struct rpc_call *call, const char *stage);
/* Has the client gone away (closed its connection, or a send to it
 * failed)? Never blocks. A client that only shut down its writing side
 * still waits for the reply and is not gone. */
bool rpc_call_cancelled(const struct rpc_call *call);

struct rpc_server;

/* Bind `path` (a stale socket file is replaced), mode 0660, group `gid`
 * when `have_gid`. Peers must be root or members of that group. `limits`
 * NULL: RPC_LIMITS_DEFAULT. */
int rpc_server_start(const char *path, bool have_gid, gid_t gid, const struct rpc_limits *limits,
                     rpc_handler_fn handler, void *ctx, struct rpc_server **out,
                     struct banger_error *err);
/* Stop accepting, unlink the socket, shut down every open connection (its
 * client sees EOF, its sends fail at once) and wait up to
 * limits.shutdown_grace_ms for the running calls. Returns how many calls
 * are still running then; the server is freed only when that is 0 (their
 * threads still use it), so the caller must then exit without freeing what
 * the handlers use. */
unsigned rpc_server_stop(struct rpc_server *server);

/* Is `uid` (with primary `gid`) root or a member of `group`? */
bool rpc_peer_authorized(uid_t uid, gid_t gid, bool have_group, gid_t group);

/* One request line, parsed: a JSON object with "v" (RPC_PROTOCOL_VERSION),
 * a non-empty "method" string and "params" (an object; absent or null
 * becomes an empty one). method and params point into root or empty. */
struct rpc_request {
    cJSON *root;
    cJSON *empty;
    const char *method;
    const cJSON *params;
};

/* Returns 0 with *out filled (free it with rpc_request_clear), or -EINVAL
 * with the reason in why (rpc/request.c, like the helpers below). */
int rpc_request_parse(const char *text, struct rpc_request *out, char *why, size_t why_len);
void rpc_request_clear(struct rpc_request *req);

/* Helpers for handlers reading params: 0 / -ENOENT (absent) / -EINVAL. */
int rpc_param_string(struct rpc_call *call, const char *key, bool required, const char **out);
int rpc_param_uint(struct rpc_call *call, const char *key, unsigned long long max,
                   unsigned long long *out);
int rpc_param_bool(struct rpc_call *call, const char *key, bool *out);
/* Refuse params other than `allowed` (NULL-terminated). */
int rpc_params_check(struct rpc_call *call, const char *const *allowed);

#endif
