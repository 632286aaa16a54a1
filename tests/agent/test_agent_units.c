/* In-process tests of the agent's pure parts: request parser, JSON writer,
 * dispatch. */
#include "config.h"

#include "agent-dispatch.h"
#include "agent-json.h"
#include "agent-proto.h"
#include "agent-request.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s, struct agent_request *req)
{
    char why[128];
    return agent_request_parse(s, strlen(s), req, why, sizeof(why));
}

START_TEST(request_accepts)
{
    static const struct {
        const char *in;
        enum agent_req_op op;
    } cases[] = {
        {"health", AGENT_REQ_HEALTH},
        {"ports", AGENT_REQ_PORTS},
        {"ping", AGENT_REQ_PING},
        {"  health \r", AGENT_REQ_HEALTH},
        {"{\"v\":1,\"op\":\"health\"}", AGENT_REQ_HEALTH},
        {"{\"op\":\"ports\"}", AGENT_REQ_PORTS},
        {" { \"op\" : \"ping\" , \"v\" : 1 } ", AGENT_REQ_PING},
        {"{\"op\":\"p\\u0069ng\"}", AGENT_REQ_PING},
        {"{\"x\":[1,2,{\"y\":\"z\"}],\"op\":\"ping\",\"b\":true,\"n\":null,\"f\":-1.5e3}",
         AGENT_REQ_PING},
        {"{\"a very long key that is not v or op\":\"\\\"\",\"op\":\"health\"}",
         AGENT_REQ_HEALTH},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agent_request req;
        ck_assert_msg(parse(cases[i].in, &req) == 0, "rejected: %s", cases[i].in);
        ck_assert_int_eq(req.op, cases[i].op);
        ck_assert_int_eq(req.version, 1);
    }
}
END_TEST

START_TEST(request_rejects_malformed)
{
    static const char *const cases[] = {
        "", "   ", "HEALTH", "health now", "{", "}", "{\"op\":}", "{\"op\":\"health\"",
        "{\"op\":\"health\"}x", "{\"op\":\"health\",}", "{op:\"health\"}", "{\"v\":1}",
        "{\"v\":\"1\",\"op\":\"health\"}", "{\"v\":1.0,\"op\":\"health\"}",
        "{\"v\":1,\"v\":1,\"op\":\"health\"}", "{\"op\":\"health\",\"op\":\"ports\"}",
        "{\"op\":1}", "{\"op\":\"he\nalth\"}", "{\"op\":\"\\x\"}", "{\"op\":\"\\u12\"}",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],\"op\":\"ping\"}",
        "{\"a\":01,\"op\":\"ping\"}", "{\"a\":tru,\"op\":\"ping\"}", "[\"health\"]",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agent_request req;
        ck_assert_msg(parse(cases[i], &req) == -EINVAL, "accepted: %s", cases[i]);
    }
    /* Embedded NUL. */
    {
        struct agent_request req;
        ck_assert_int_eq(agent_request_parse("heal\0th", 7, &req, NULL, 0), -EINVAL);
    }
}
END_TEST

START_TEST(request_unsupported)
{
    struct agent_request req;
    char why[128];

    ck_assert_int_eq(parse("exec", &req), -ENOTSUP);
    ck_assert_str_eq(req.op_name, "exec");
    ck_assert_int_eq(parse("{\"v\":2,\"op\":\"health\"}", &req), -ENOTSUP);
    ck_assert_int_eq(req.version, 2);
    ck_assert_int_eq(parse("{\"v\":99999999999999999999,\"op\":\"health\"}", &req), -EINVAL);
    ck_assert_int_eq(agent_request_parse("nope", 4, &req, why, sizeof(why)), -ENOTSUP);
    ck_assert_str_eq(why, "unknown op");
    ck_assert_int_eq(parse("{\"op\":\"h\\u00e9alth\"}", &req), -ENOTSUP);
    ck_assert_int_eq(parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &req), -ENOTSUP);
}
END_TEST

static char *escape(const char *s, size_t n)
{
    static struct agent_buf b;

    agent_buf_free(&b);
    agent_buf_init(&b, 1024);
    ck_assert_int_eq(agent_buf_json_string(&b, s, n), 0);
    return b.data;
}

START_TEST(json_escaping)
{
    ck_assert_str_eq(escape("plain", 5), "\"plain\"");
    ck_assert_str_eq(escape("", 0), "\"\"");
    ck_assert_str_eq(escape("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(escape("\n\r\t\x01\x1f", 5), "\"\\n\\r\\t\\u0001\\u001f\"");
    ck_assert_str_eq(escape("n\0l", 3), "\"n\\u0000l\"");
    /* Valid UTF-8 passes; invalid bytes become U+FFFD. */
    ck_assert_str_eq(escape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15),
                     "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    ck_assert_str_eq(escape("\xff", 1), "\"\\ufffd\"");
    ck_assert_str_eq(escape("\xc3", 1), "\"\\ufffd\"");
    ck_assert_str_eq(escape("\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");       /* overlong */
    ck_assert_str_eq(escape("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    ck_assert_str_eq(escape("/", 1), "\"/\"");
}
END_TEST

START_TEST(json_escaping_roundtrips_all_bytes)
{
    char in[256];
    cJSON *root;
    char *out;

    for (int i = 0; i < 128; i++)
        in[i] = (char)(i + 1 == 128 ? 127 : i + 1);
    out = escape(in, 127);
    root = cJSON_Parse(out);
    ck_assert(cJSON_IsString(root));
    ck_assert_int_eq(memcmp(root->valuestring, in, 127), 0);
    cJSON_Delete(root);
}
END_TEST

START_TEST(buf_limit)
{
    struct agent_buf b;

    agent_buf_init(&b, 8);
    ck_assert_int_eq(agent_buf_puts(&b, "12345678"), 0);
    ck_assert_int_eq(agent_buf_puts(&b, "9"), -E2BIG);
    ck_assert_int_eq(agent_buf_puts(&b, ""), -E2BIG); /* sticky */
    agent_buf_reset(&b);
    ck_assert_int_eq(agent_buf_printf(&b, "%d-%s", 42, "x"), 0);
    ck_assert_str_eq(b.data, "42-x");
    agent_buf_consume(&b, 3);
    ck_assert_str_eq(b.data, "x");
    agent_buf_free(&b);
    agent_buf_free(NULL);
}
END_TEST

START_TEST(dispatch_replies)
{
    struct agent_buf b;

    agent_buf_init(&b, AGENT_MAX_REPLY);
    ck_assert_int_eq(agent_dispatch("ping", 4, &b, "/proc"), 0);
    ck_assert_str_eq(b.data, "{\"v\":1,\"ok\":true,\"op\":\"ping\"}\n");
    agent_buf_reset(&b);
    ck_assert_int_eq(agent_dispatch("}{", 2, &b, "/proc"), 1);
    ck_assert_ptr_nonnull(strstr(b.data, "\"ok\":false"));
    agent_buf_reset(&b);
    /* A missing /proc gives an error reply, not a crash. */
    ck_assert_int_eq(agent_dispatch("health", 6, &b, "/nonexistent"), 0);
    ck_assert_str_eq(b.data,
                     "{\"v\":1,\"ok\":false,\"op\":\"health\",\"error\":\"cannot read boot_id\"}\n");
    agent_buf_reset(&b);
    ck_assert_int_eq(agent_dispatch("ports", 5, &b, "/nonexistent"), 0);
    ck_assert_str_eq(b.data, "{\"v\":1,\"ok\":true,\"op\":\"ports\",\"ports\":[]}\n");
    agent_buf_free(&b);
}
END_TEST

static Suite *agent_units_suite(void)
{
    Suite *s = suite_create("agent-units");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, request_accepts);
    tcase_add_test(tc, request_rejects_malformed);
    tcase_add_test(tc, request_unsupported);
    tcase_add_test(tc, json_escaping);
    tcase_add_test(tc, json_escaping_roundtrips_all_bytes);
    tcase_add_test(tc, buf_limit);
    tcase_add_test(tc, dispatch_replies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(agent_units_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
