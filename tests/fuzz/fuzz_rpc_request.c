/* libFuzzer target: one request line as bangerd reads it from a client
 * (core/rpc/request.c), then the parameter checks the methods run on it:
 * bangerd_params with the methods' own key lists (core/daemon/methods_params.c)
 * and the typed helpers with the bounds the methods use. */
#include "config.h"

#include <errno.h>
#include <stdint.h>

#include "daemon/methods.h"
#include "fuzz-util.h"
#include "rpc/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The methods' key lists and strings, as in core/daemon/methods*.c. */
static const char *const fuzz_create_keys[] = { "name", "image", "vcpu", "memory_mib",
                                                "disk_size", "nat", "start", NULL };
static const char *const fuzz_register_keys[] = { "name", "rootfs", "kernel", "initrd", NULL };
static const char *const fuzz_agent_keys[] = { "vm", "op", "timeout_ms", NULL };
static const char *const fuzz_vm_keys[] = { "vm", NULL };

static void fuzz_check_failed(struct rpc_call *call, int r)
{
    FUZZ_CHECK(r == -EINVAL);
    FUZZ_CHECK(call->err.code == -EINVAL);
    fuzz_check_message(call->err.msg, sizeof(call->err.msg), 0);
    memset(&call->err, 0, sizeof(call->err));
}

static void fuzz_strings(struct rpc_call *call, const char *const *keys, const char *a,
                         bool a_required, const char *b)
{
    const char *va = NULL, *vb = NULL;
    const struct bangerd_string_param strings[] = {
        { a, a_required, &va }, { b, false, &vb }, { NULL, false, NULL }
    };
    int r = bangerd_params(call, keys, strings);
    if (r < 0) {
        fuzz_check_failed(call, r);
        return;
    }
    /* Every key present is allowed, and what was read is a string. */
    const cJSON *it;
    cJSON_ArrayForEach(it, call->params) {
        bool known = false;
        for (size_t i = 0; keys[i]; i++)
            known = known || strcmp(keys[i], it->string) == 0;
        FUZZ_CHECK(known);
    }
    FUZZ_CHECK(!a_required || va != NULL);
    FUZZ_CHECK(!va || cJSON_IsString(cJSON_GetObjectItemCaseSensitive(call->params, a)));
}

static void fuzz_uint(struct rpc_call *call, const char *key, unsigned long long max)
{
    unsigned long long v = 0;
    int r = rpc_param_uint(call, key, max, &v);
    if (r == -ENOENT)
        return;
    if (r < 0) {
        fuzz_check_failed(call, r);
        return;
    }
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(v <= max);
    /* The number the client sent, exactly. */
    FUZZ_CHECK((double)v == cJSON_GetObjectItemCaseSensitive(call->params, key)->valuedouble);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rpc_request req = { 0 };
    struct rpc_call call = { 0 };
    char why[256];
    char *text = fuzz_strndup(data, size);
    bool b;
    int r;

    if (!text)
        return 0;
    memset(why, 0, sizeof(why));
    r = rpc_request_parse(text, &req, why, sizeof(why));
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL);
        FUZZ_CHECK(req.root == NULL && req.empty == NULL);
        fuzz_check_message(why, sizeof(why), 0);
        free(text);
        return 0;
    }
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(req.method && req.method[0]);
    FUZZ_CHECK(cJSON_IsObject(req.params));
    call.method = req.method;
    call.params = req.params;

    fuzz_strings(&call, fuzz_create_keys, "name", false, "image");
    fuzz_strings(&call, fuzz_register_keys, "name", true, "initrd");
    fuzz_strings(&call, fuzz_agent_keys, "vm", true, "op");
    const char *ref = NULL;
    r = bangerd_vm_ref(&call, fuzz_vm_keys, &ref);
    if (r < 0)
        fuzz_check_failed(&call, r);
    else
        FUZZ_CHECK(ref != NULL);

    /* The bounds the methods pass. */
    fuzz_uint(&call, "vcpu", 1024);
    fuzz_uint(&call, "memory_mib", 1ull << 30);
    fuzz_uint(&call, "offset", 1ull << 50);
    fuzz_uint(&call, "disk_size", UINT64_MAX >> 1);
    fuzz_uint(&call, "timeout_ms", 60000);
    r = rpc_param_bool(&call, "nat", &b);
    if (r < 0 && r != -ENOENT)
        fuzz_check_failed(&call, r);

    rpc_request_clear(&req);
    FUZZ_CHECK(req.root == NULL);
    free(text);
    return 0;
}
