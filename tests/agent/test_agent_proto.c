/* The agent binary over a Unix socket: real health fields, ports with the
 * owning process, hostile input, many clients at once. */
#include "config.h"

#include "agent-harness.h"
#include "agent-proto.h"

#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPLY_MAX (AGENT_MAX_REPLY + 2)

static struct agent_proc agent;
static char *reply;

static void setup(void)
{
    reply = malloc(REPLY_MAX);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(agent_proc_start(&agent, 0), 0);
    ck_assert_int_eq(agent_proc_wait_ready(&agent), 0);
}

static void teardown(void)
{
    /* A clean SIGTERM exit also proves the agent survived the test. */
    int status = agent_proc_stop(&agent);
    ck_assert_int_eq(status, 0);
    free(reply);
}

static cJSON *request_json(const char *req)
{
    ssize_t n = harness_roundtrip(agent.sock, req, reply, REPLY_MAX);
    cJSON *root;

    ck_assert_msg(n > 0, "no reply to %s: %zd", req, n);
    root = cJSON_Parse(reply);
    ck_assert_msg(cJSON_IsObject(root), "reply is not a JSON object: %s", reply);
    ck_assert_int_eq(cJSON_GetObjectItem(root, "v")->valueint, AGENT_PROTO_VERSION);
    return root;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void assert_served(void)
{
    cJSON *root = request_json("ping\n");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(root, "ok")));
    cJSON_Delete(root);
}

static void check_health(const char *req)
{
    char boot_id[64], host[256];
    cJSON *root = request_json(req);
    const cJSON *uptime = cJSON_GetObjectItem(root, "uptime_ms");

    ck_assert_int_eq(harness_read_file_line("/proc/sys/kernel/random/boot_id", boot_id,
                                            sizeof(boot_id)), 0);
    ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(root, "ok")));
    ck_assert_str_eq(jstr(root, "op"), "health");
    ck_assert_str_eq(jstr(root, "agent"), "banger-vsock-agent");
    ck_assert_str_eq(jstr(root, "version"), PACKAGE_VERSION);
    ck_assert_str_eq(jstr(root, "boot_id"), boot_id);
    ck_assert_str_eq(jstr(root, "hostname"), host);
    ck_assert(cJSON_IsNumber(uptime) && uptime->valuedouble > 0);
    cJSON_Delete(root);
}

START_TEST(health_plain_and_json)
{
    check_health("health\n");
    check_health("{\"v\":1,\"op\":\"health\"}\n");
    check_health("  {\"op\" : \"health\", \"future\": [1, {\"x\": null}]}\r\n");
}
END_TEST

/* Find an entry of `proto` on addr:port in a ports reply. */
static const cJSON *find_port(const cJSON *root, const char *proto, const char *addr, int port)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, cJSON_GetObjectItem(root, "ports")) {
        if (strcmp(jstr(item, "proto"), proto) == 0 && strcmp(jstr(item, "addr"), addr) == 0 &&
            cJSON_GetObjectItem(item, "port")->valueint == port)
            return item;
    }
    return NULL;
}

static int bound_socket(int family, int type, const char *addr, int *port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int fd = socket(family, type | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &sin->sin_addr);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &sin6->sin6_addr);
        len = sizeof(*sin6);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
        (type == SOCK_STREAM && listen(fd, 4) < 0) ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static void assert_owned_by_me(const cJSON *entry)
{
    char comm[64];

    ck_assert_ptr_nonnull(entry);
    ck_assert_int_eq(harness_read_file_line("/proc/self/comm", comm, sizeof(comm)), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(entry, "pid")->valueint, getpid());
    ck_assert_str_eq(jstr(entry, "comm"), comm);
}

START_TEST(ports_lists_our_listeners)
{
    int tcp_port = 0, udp_port = 0, tcp6_port = 0;
    int tcp = bound_socket(AF_INET, SOCK_STREAM, "127.0.0.1", &tcp_port);
    int udp = bound_socket(AF_INET, SOCK_DGRAM, "127.0.0.1", &udp_port);
    /* IPv6 loopback may be disabled; then that part is skipped. */
    int tcp6 = bound_socket(AF_INET6, SOCK_STREAM, "::1", &tcp6_port);
    cJSON *root;

    ck_assert_int_ge(tcp, 0);
    ck_assert_int_ge(udp, 0);
    root = request_json("{\"v\":1,\"op\":\"ports\"}\n");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(root, "ok")));
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(root, "ports")));
    assert_owned_by_me(find_port(root, "tcp", "127.0.0.1", tcp_port));
    assert_owned_by_me(find_port(root, "udp", "127.0.0.1", udp_port));
    if (tcp6 >= 0)
        assert_owned_by_me(find_port(root, "tcp6", "::1", tcp6_port));
    cJSON_Delete(root);

    /* Closed listeners disappear. */
    close(tcp);
    root = request_json("ports\n");
    ck_assert_ptr_null(find_port(root, "tcp", "127.0.0.1", tcp_port));
    cJSON_Delete(root);
    close(udp);
    if (tcp6 >= 0)
        close(tcp6);
}
END_TEST

START_TEST(unknown_op_keeps_connection)
{
    int fd = harness_connect(agent.sock);
    cJSON *root;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(harness_send(fd, "nope\n{\"v\":2,\"op\":\"health\"}\nping\n", 32), 0);
    ck_assert_int_gt(harness_read_line(fd, reply, REPLY_MAX), 0);
    root = cJSON_Parse(reply);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(root, "ok")));
    ck_assert_str_eq(jstr(root, "error"), "unknown op");
    cJSON_Delete(root);
    ck_assert_int_gt(harness_read_line(fd, reply, REPLY_MAX), 0);
    ck_assert_ptr_nonnull(strstr(reply, "unsupported protocol version 2"));
    ck_assert_int_gt(harness_read_line(fd, reply, REPLY_MAX), 0);
    ck_assert_str_eq(reply, "{\"v\":1,\"ok\":true,\"op\":\"ping\"}");
    close(fd);
}
END_TEST

START_TEST(garbage_closes_only_that_connection)
{
    static const char garbage[] = "\x01\x02\xff{]garbage\n";
    int idle = harness_connect(agent.sock);
    int fd = harness_connect(agent.sock);
    cJSON *root;

    ck_assert_int_ge(idle, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(harness_send(fd, garbage, sizeof(garbage) - 1), 0);
    ck_assert_int_gt(harness_read_line(fd, reply, REPLY_MAX), 0);
    root = cJSON_Parse(reply);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(root, "ok")));
    cJSON_Delete(root);
    ck_assert(harness_peer_closed(fd));
    close(fd);

    /* The other (idle) connection and new ones still work. */
    ck_assert_int_eq(harness_send(idle, "ping\n", 5), 0);
    ck_assert_int_gt(harness_read_line(idle, reply, REPLY_MAX), 0);
    close(idle);
    assert_served();
}
END_TEST

START_TEST(oversized_request_closes)
{
    size_t big = AGENT_MAX_REQUEST + 1000;
    char *buf = malloc(big + 1);
    int fd;

    ck_assert_ptr_nonnull(buf);
    /* Exactly AGENT_MAX_REQUEST bytes is still a request (an unknown op). */
    memset(buf, 'a', AGENT_MAX_REQUEST);
    buf[AGENT_MAX_REQUEST] = '\n';
    fd = harness_connect(agent.sock);
    ck_assert_int_eq(harness_send(fd, buf, AGENT_MAX_REQUEST + 1), 0);
    ck_assert_int_gt(harness_read_line(fd, reply, REPLY_MAX), 0);
    ck_assert_ptr_nonnull(strstr(reply, "unknown op"));
    close(fd);

    /* One byte more without a newline: closed (error line optional, as the
     * unread rest may turn the close into a reset). */
    memset(buf, 'a', big);
    fd = harness_connect(agent.sock);
    harness_send(fd, buf, big);
    if (harness_read_line(fd, reply, REPLY_MAX) > 0) {
        ck_assert_ptr_nonnull(strstr(reply, "request too long"));
        ck_assert(harness_peer_closed(fd));
    }
    close(fd);
    free(buf);
    assert_served();
}
END_TEST

START_TEST(half_closed_input)
{
    int fd = harness_connect(agent.sock);

    /* A partial request then EOF: dropped, connection closed, no reply. */
    ck_assert_int_eq(harness_send(fd, "hea", 3), 0);
    ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
    ck_assert(harness_peer_closed(fd));
    close(fd);

    /* A complete request then EOF: answered, then closed. */
    fd = harness_connect(agent.sock);
    ck_assert_int_eq(harness_send(fd, "ping\nping\n", 10), 0);
    ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
    ck_assert_int_gt(harness_read_line(fd, reply, REPLY_MAX), 0);
    ck_assert_int_gt(harness_read_line(fd, reply, REPLY_MAX), 0);
    ck_assert(harness_peer_closed(fd));
    close(fd);

    /* Connect and vanish at once. */
    fd = harness_connect(agent.sock);
    close(fd);
    assert_served();
}
END_TEST

#define N_CLIENTS 50

START_TEST(fifty_concurrent_clients)
{
    int fds[N_CLIENTS];

    /* All connected and each holding half a request before anyone finishes:
     * the agent must serve them side by side. */
    for (int i = 0; i < N_CLIENTS; i++) {
        fds[i] = harness_connect(agent.sock);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(harness_send(fds[i], "{\"v\":1,", 7), 0);
    }
    for (int i = N_CLIENTS - 1; i >= 0; i--)
        ck_assert_int_eq(harness_send(fds[i], "\"op\":\"health\"}\n", 16), 0);
    for (int i = 0; i < N_CLIENTS; i++) {
        cJSON *root;

        ck_assert_int_gt(harness_read_line(fds[i], reply, REPLY_MAX), 0);
        root = cJSON_Parse(reply);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(root, "ok")));
        cJSON_Delete(root);
        close(fds[i]);
    }
}
END_TEST

static Suite *agent_proto_suite(void)
{
    Suite *s = suite_create("agent-proto");
    TCase *tc = tcase_create("unix");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, health_plain_and_json);
    tcase_add_test(tc, ports_lists_our_listeners);
    tcase_add_test(tc, unknown_op_keeps_connection);
    tcase_add_test(tc, garbage_closes_only_that_connection);
    tcase_add_test(tc, oversized_request_closes);
    tcase_add_test(tc, half_closed_input);
    tcase_add_test(tc, fifty_concurrent_clients);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(agent_proto_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
