/* The vsock plugin's readiness logic against a hybrid-vsock shim in front
 * of the real agent. */
#include "config.h"

#include "agent-harness.h"
#include "agent-proto.h"
#include "vsock-client.h"
#include "vsock-shim.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TEST_PORT 10789u

static char dir[64], uds[100];

static void setup(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
    snprintf(uds, sizeof(uds), "%s/vsock.sock", dir);
}

static int wait_for(long long timeout_ms, struct vsock_health *h, char *why, size_t why_len,
                    int (*alive)(void *), void *ctx)
{
    struct vsock_wait_opts opts = {
        .uds_path = uds, .port = TEST_PORT, .timeout_ms = timeout_ms,
        .vmm_alive = alive, .ctx = ctx};

    return vsock_wait_ready(&opts, h, why, why_len);
}

START_TEST(agent_up)
{
    struct agent_proc agent;
    struct vsock_shim shim;
    struct vsock_health h;
    char why[1024] = "", boot_id[64];

    ck_assert_int_eq(agent_proc_start(&agent, 0), 0);
    ck_assert_int_eq(agent_proc_wait_ready(&agent), 0);
    ck_assert_int_eq(vsock_shim_start(&shim, uds, agent.sock, SHIM_FORWARD), 0);
    ck_assert_msg(wait_for(10000, &h, why, sizeof(why), NULL, NULL) == 0, "%s", why);
    ck_assert_int_eq(harness_read_file_line("/proc/sys/kernel/random/boot_id", boot_id,
                                            sizeof(boot_id)), 0);
    ck_assert_str_eq(h.boot_id, boot_id);
    ck_assert_str_eq(h.version, PACKAGE_VERSION);
    ck_assert_int_eq(h.attempts, 1);
    ck_assert_uint_eq(shim.last_port, TEST_PORT);
    vsock_shim_stop(&shim);
    ck_assert_int_eq(agent_proc_stop(&agent), 0);
}
END_TEST

START_TEST(agent_up_late)
{
    struct agent_proc agent;
    struct vsock_shim shim;
    struct vsock_health h;
    char why[1024] = "";

    /* The agent binds 2 s from now; until then the shim closes each CONNECT. */
    ck_assert_int_eq(agent_proc_start(&agent, 2000), 0);
    ck_assert_int_eq(vsock_shim_start(&shim, uds, agent.sock, SHIM_FORWARD), 0);
    ck_assert_msg(wait_for(20000, &h, why, sizeof(why), NULL, NULL) == 0, "%s", why);
    ck_assert_int_gt(h.attempts, 1);
    vsock_shim_stop(&shim);
    ck_assert_int_eq(agent_proc_stop(&agent), 0);
}
END_TEST

START_TEST(agent_never_up)
{
    struct vsock_shim shim;
    struct vsock_health h;
    char why[1024] = "", target[128];
    long long start;
    int r;

    snprintf(target, sizeof(target), "%s/agent.sock", dir);
    ck_assert_int_eq(vsock_shim_start(&shim, uds, target, SHIM_FORWARD), 0);
    start = vsock_now_ms();
    r = wait_for(1500, &h, why, sizeof(why), NULL, NULL);
    ck_assert_int_eq(r, -ETIMEDOUT);
    ck_assert_msg(strstr(why, "agent never answered") != NULL, "%s", why);
    /* It gave up at the deadline, not before. */
    ck_assert_int_ge(vsock_now_ms() - start, 1500);
    ck_assert_int_gt(h.attempts, 1);
    vsock_shim_stop(&shim);
}
END_TEST

START_TEST(garbage_handshake)
{
    struct vsock_shim shim;
    struct vsock_health h;
    char why[1024] = "";

    ck_assert_int_eq(vsock_shim_start(&shim, uds, "/nonexistent", SHIM_GARBAGE_HANDSHAKE), 0);
    ck_assert_int_eq(wait_for(10000, &h, why, sizeof(why), NULL, NULL), -EPROTO);
    ck_assert_msg(strstr(why, "wrong reply") && strstr(why, "HELLO THERE"), "%s", why);
    vsock_shim_stop(&shim);
}
END_TEST

START_TEST(garbage_reply)
{
    struct vsock_shim shim;
    struct vsock_health h;
    char why[1024] = "";

    ck_assert_int_eq(vsock_shim_start(&shim, uds, "/nonexistent", SHIM_GARBAGE_REPLY), 0);
    ck_assert_int_eq(wait_for(10000, &h, why, sizeof(why), NULL, NULL), -EPROTO);
    ck_assert_msg(strstr(why, "wrong reply") && strstr(why, "this is not json"), "%s", why);
    vsock_shim_stop(&shim);
}
END_TEST

/* A hostile guest's agent: what it says reaches the daemon's log, the VM's
 * last_error and the user's terminal only escaped, and numbers that do not
 * fit are refused (found by tests/fuzz/fuzz_vsock_health). */
START_TEST(hostile_reply)
{
    struct vsock_shim shim;
    struct vsock_health h;
    char why[1024] = "";

    ck_assert_int_eq(vsock_shim_start_reply(&shim, uds, "{\"v\":1,\"ok\":false,\"op\":\"health\","
                                            "\"error\":\"busy\\u001b[2J\\nroot# \"}"), 0);
    ck_assert_int_eq(wait_for(10000, &h, why, sizeof(why), NULL, NULL), -EPROTO);
    ck_assert_msg(strstr(why, "agent error: busy\\x1b[2J\\x0aroot# "), "%s", why);
    for (const char *p = why; *p; p++)
        ck_assert_int_ge((unsigned char)*p, 0x20);
    vsock_shim_stop(&shim);

    ck_assert_int_eq(vsock_shim_start_reply(&shim, uds, "{\"v\":1,\"ok\":true,\"op\":\"health\","
                                            "\"version\":\"1\\r\\nfake log line\",\"boot_id\":\"b\","
                                            "\"uptime_ms\":5,\"hostname\":\"\\u001b]0;x\\u0007\"}"), 0);
    ck_assert_int_eq(wait_for(10000, &h, why, sizeof(why), NULL, NULL), 0);
    ck_assert_str_eq(h.version, "1\\x0d\\x0afake log line");
    ck_assert_str_eq(h.hostname, "\\x1b]0;x\\x07");
    vsock_shim_stop(&shim);

    ck_assert_int_eq(vsock_shim_start_reply(&shim, uds, "{\"v\":1,\"ok\":true,\"op\":\"health\","
                                            "\"boot_id\":\"b\",\"uptime_ms\":1e300}"), 0);
    ck_assert_int_eq(wait_for(10000, &h, why, sizeof(why), NULL, NULL), -EPROTO);
    ck_assert_msg(strstr(why, "not a health reply"), "%s", why);
    vsock_shim_stop(&shim);
}
END_TEST

START_TEST(socket_missing)
{
    struct vsock_health h;
    char why[1024] = "";

    ck_assert_int_eq(wait_for(1500, &h, why, sizeof(why), NULL, NULL), -ENOENT);
    ck_assert_msg(strstr(why, "socket missing") && strstr(why, uds), "%s", why);
}
END_TEST

static int vmm_dead(void *ctx)
{
    int *calls = ctx;
    return ++*calls <= 3; /* alive for three checks, then gone */
}

START_TEST(firecracker_exited)
{
    struct vsock_shim shim;
    struct vsock_health h;
    char why[1024] = "", target[128];
    int calls = 0;

    snprintf(target, sizeof(target), "%s/agent.sock", dir);
    ck_assert_int_eq(vsock_shim_start(&shim, uds, target, SHIM_FORWARD), 0);
    ck_assert_int_eq(wait_for(20000, &h, why, sizeof(why), vmm_dead, &calls), -ESRCH);
    ck_assert_msg(strstr(why, "firecracker exited") != NULL, "%s", why);
    ck_assert_int_eq(h.attempts, 3);
    vsock_shim_stop(&shim);
}
END_TEST

START_TEST(refused_is_never_answered)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct vsock_health h;
    char why[1024] = "";
    int fd;

    /* A socket file nobody listens on: Firecracker died and left it. */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(wait_for(1500, &h, why, sizeof(why), NULL, NULL), -ETIMEDOUT);
    ck_assert_msg(strstr(why, "agent never answered") && strstr(why, "refused"), "%s", why);
    close(fd);
    unlink(uds);
}
END_TEST

static Suite *vsock_client_suite(void)
{
    Suite *s = suite_create("vsock-client");
    TCase *tc = tcase_create("readiness");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, agent_up);
    tcase_add_test(tc, agent_up_late);
    tcase_add_test(tc, agent_never_up);
    tcase_add_test(tc, garbage_handshake);
    tcase_add_test(tc, garbage_reply);
    tcase_add_test(tc, hostile_reply);
    tcase_add_test(tc, socket_missing);
    tcase_add_test(tc, firecracker_exited);
    tcase_add_test(tc, refused_is_never_answered);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vsock_client_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
