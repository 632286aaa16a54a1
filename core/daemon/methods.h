/* Helpers shared by the RPC method files (methods*.c): the parameter
 * checks every method starts with and the image result. */
#ifndef BANGER_DAEMON_METHODS_H
#define BANGER_DAEMON_METHODS_H

#include <stdbool.h>

#include "daemon/daemon.h"

/* One string parameter a method reads. */
struct bangerd_string_param {
    const char *key;
    bool required;
    const char **out;
};

/* Refuse parameters not in keys, then read the strings (an array ended by
 * a NULL key) in order, stopping at the first error. An absent optional
 * string leaves its *out alone. Returns 0 or a negative errno with
 * call->err filled by rpc_param_string(). */
int bangerd_params(struct rpc_call *call, const char *const *keys,
                   const struct bangerd_string_param *strings);

/* bangerd_params() for the methods whose only string is the required "vm". */
int bangerd_vm_ref(struct rpc_call *call, const char *const *keys, const char **ref);

/* Progress callback that forwards a stage to the calling client. */
void bangerd_progress(void *ctx, const char *stage);

/* Hand img (freed here) to the client as the result, unless r < 0. */
int bangerd_image_result(struct rpc_call *call, struct image_record *img, int r);

#endif
