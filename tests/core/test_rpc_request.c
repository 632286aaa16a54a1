/* The RPC request line and the parameter helpers (core/rpc/request.c), on
 * the bytes a client could send. */
#include "config.h"

#include "rpc/server.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse `text` into req and a call over its params. */
static int parse(const char *text, struct rpc_request *req, struct rpc_call *call, char *why)
{
    memset(req, 0, sizeof(*req));
    memset(call, 0, sizeof(*call));
    int r = rpc_request_parse(text, req, why, 256);
    if (r == 0) {
        call->method = req->method;
        call->params = req->params;
    }
    return r;
}

START_TEST(request_line)
{
    struct rpc_request req;
    struct rpc_call call;
    char why[256];

    ck_assert_int_eq(parse("{\"v\":1,\"method\":\"vm.list\"}", &req, &call, why), 0);
    ck_assert_str_eq(req.method, "vm.list");
    ck_assert(cJSON_IsObject(req.params) && !req.params->child);
    rpc_request_clear(&req);
    ck_assert_int_eq(parse("{\"v\":1,\"method\":\"vm.stop\",\"params\":null}", &req, &call, why), 0);
    rpc_request_clear(&req);

    ck_assert_int_eq(parse("[1]", &req, &call, why), -EINVAL);
    ck_assert_str_eq(why, "request is not a JSON object");
    ck_assert_int_eq(parse("{\"v\":2,\"method\":\"vm.list\"}", &req, &call, why), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "protocol version 2 is not supported"));
    ck_assert_int_eq(parse("{\"v\":1,\"method\":\"\"}", &req, &call, why), -EINVAL);
    ck_assert_str_eq(why, "request has no \"method\" string");
    ck_assert_int_eq(parse("{\"v\":1,\"method\":\"vm.stop\",\"params\":[\"web\"]}", &req, &call, why),
                     -EINVAL);
    ck_assert_str_eq(why, "\"params\" must be an object");
    ck_assert_ptr_null(req.root);
}
END_TEST

/* rpc_param_uint(key "n", max) on the number `json`. */
static int uint_of(const char *json, unsigned long long max, unsigned long long *out)
{
    char text[256];
    struct rpc_request req;
    struct rpc_call call;
    char why[256];

    snprintf(text, sizeof(text), "{\"v\":1,\"method\":\"m\",\"params\":{\"n\":%s}}", json);
    ck_assert_int_eq(parse(text, &req, &call, why), 0);
    int r = rpc_param_uint(&call, "n", max, out);
    if (r == -EINVAL)
        ck_assert_ptr_nonnull(strstr(call.err.msg, "must be a whole number between 0 and"));
    rpc_request_clear(&req);
    return r;
}

START_TEST(uint_bounds)
{
    unsigned long long v = 0;

    ck_assert_int_eq(uint_of("1024", 1024, &v), 0);
    ck_assert_uint_eq(v, 1024);
    ck_assert_int_eq(uint_of("1025", 1024, &v), -EINVAL);
    ck_assert_int_eq(uint_of("-1", 1024, &v), -EINVAL);
    ck_assert_int_eq(uint_of("1.5", 1024, &v), -EINVAL);
    ck_assert_int_eq(uint_of("\"3\"", 1024, &v), -EINVAL);
    ck_assert_int_eq(uint_of("1e300", 1024, &v), -EINVAL);
    /* The largest bound the methods use (sizes): 2^63 - 1. A client's
     * 9223372036854775807 is the double 2^63, one more than the bound; it
     * used to pass, as the bound was compared as a double (rounded up to
     * 2^63 too). Found by tests/fuzz/fuzz_rpc_request. */
    v = 0;
    ck_assert_int_eq(uint_of("9223372036854775807", UINT64_MAX >> 1, &v), -EINVAL);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(uint_of("9223372036854774784", UINT64_MAX >> 1, &v), 0);
    ck_assert_uint_eq(v, 9223372036854774784ull);
    /* With the widest bound, 2^64 does not fit: refused, not cast. */
    ck_assert_int_eq(uint_of("18446744073709551616", UINT64_MAX, &v), -EINVAL);
    ck_assert_int_eq(uint_of("1e19", UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 10000000000000000000ull);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rpc_request");
    TCase *tc = tcase_create("request");
    tcase_add_test(tc, request_line);
    tcase_add_test(tc, uint_bounds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
