/* The request line's JSON and the parameter helpers handlers read it with:
 * pure functions of the bytes a client sent (no socket), so they can be
 * tested and fuzzed on their own (tests/fuzz/fuzz_rpc_request.c). */
#include "config.h"

#include "rpc/server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int rpc_request_parse(const char *text, struct rpc_request *out, char *why, size_t why_len)
{
    cJSON *root = cJSON_Parse(text);
    int r = -EINVAL;

    if (!cJSON_IsObject(root)) {
        snprintf(why, why_len, "request is not a JSON object");
        goto cleanup;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (!cJSON_IsNumber(v) || v->valuedouble != RPC_PROTOCOL_VERSION) {
        if (cJSON_IsNumber(v))
            snprintf(why, why_len, "protocol version %g is not supported (bangerd speaks %d)",
                     v->valuedouble, RPC_PROTOCOL_VERSION);
        else
            snprintf(why, why_len, "request has no protocol version \"v\" (bangerd speaks %d)",
                     RPC_PROTOCOL_VERSION);
        goto cleanup;
    }
    if (!cJSON_IsString(method) || !method->valuestring[0]) {
        snprintf(why, why_len, "request has no \"method\" string");
        goto cleanup;
    }
    if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params)) {
        snprintf(why, why_len, "\"params\" must be an object");
        goto cleanup;
    }
    out->empty = NULL;
    if (!params || cJSON_IsNull(params))
        params = out->empty = cJSON_CreateObject();
    out->root = root;
    out->method = method->valuestring;
    out->params = params;
    root = NULL;
    r = 0;
cleanup:
    cJSON_Delete(root);
    return r;
}

void rpc_request_clear(struct rpc_request *req)
{
    if (!req)
        return;
    cJSON_Delete(req->root);
    cJSON_Delete(req->empty);
    *req = (struct rpc_request){ 0 };
}

/* ---- params ------------------------------------------------------------- */

int rpc_param_string(struct rpc_call *call, const char *key, bool required, const char **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(call->params, key);
    if (!it || cJSON_IsNull(it)) {
        if (required)
            return bg_fail(&call->err, -EINVAL, "%s: missing parameter \"%s\"", call->method, key);
        return -ENOENT;
    }
    if (!cJSON_IsString(it))
        return bg_fail(&call->err, -EINVAL, "%s: parameter \"%s\" must be a string", call->method, key);
    *out = it->valuestring;
    return 0;
}

int rpc_param_uint(struct rpc_call *call, const char *key, unsigned long long max,
                   unsigned long long *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(call->params, key);
    if (!it || cJSON_IsNull(it))
        return -ENOENT;
    /* Not `d > (double)max`: for large bounds (double)max rounds up (2^63 - 1
     * becomes 2^63). The bound is checked on the integer, once the double is
     * known to fit one (casting 2^64 or more is undefined). */
    double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
    bool fits = d >= 0 && d < 18446744073709551616.0;
    unsigned long long v = fits ? (unsigned long long)d : 0;
    if (!fits || (double)v != d || v > max)
        return bg_fail(&call->err, -EINVAL, "%s: parameter \"%s\" must be a whole number between 0 and %llu",
                       call->method, key, max);
    *out = v;
    return 0;
}

int rpc_param_bool(struct rpc_call *call, const char *key, bool *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(call->params, key);
    if (!it || cJSON_IsNull(it))
        return -ENOENT;
    if (!cJSON_IsBool(it))
        return bg_fail(&call->err, -EINVAL, "%s: parameter \"%s\" must be true or false", call->method, key);
    *out = cJSON_IsTrue(it);
    return 0;
}

int rpc_params_check(struct rpc_call *call, const char *const *allowed)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, call->params) {
        bool ok = false;
        for (size_t i = 0; allowed && allowed[i]; i++)
            if (strcmp(allowed[i], it->string) == 0)
                ok = true;
        if (!ok)
            return bg_fail(&call->err, -EINVAL, "%s: unknown parameter \"%s\"", call->method, it->string);
    }
    return 0;
}
