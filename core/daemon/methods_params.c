/* The parameter checks every RPC method starts with (methods.h), apart from
 * the daemon so they can be fuzzed without one (tests/fuzz). */
#include "config.h"

#include "daemon/methods.h"

#include <errno.h>

int bangerd_params(struct rpc_call *call, const char *const *keys,
                   const struct bangerd_string_param *strings)
{
    int r = rpc_params_check(call, keys);
    for (size_t i = 0; r == 0 && strings && strings[i].key; i++) {
        r = rpc_param_string(call, strings[i].key, strings[i].required, strings[i].out);
        if (r == -ENOENT && !strings[i].required)
            r = 0;
    }
    return r;
}

int bangerd_vm_ref(struct rpc_call *call, const char *const *keys, const char **ref)
{
    const struct bangerd_string_param vm[] = { { "vm", true, ref }, { NULL, false, NULL } };
    return bangerd_params(call, keys, vm);
}
