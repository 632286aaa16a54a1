/* nat module: rule sets of two VMs, stop from handles, reconcile, the
 * Docker forward-policy warning, a masqueraded packet through namespaces,
 * and rollback of every start step of tap+nat. Each test runs in its own
 * network namespace (Check forks each test). */
#include "config.h"

#include "test_tap_util.h"

#include "engine/engine.h"
#include "util/error.h"

#include "../../plugins/nat/nat-rules.h"

#include <arpa/inet.h>
#include <check.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONF_NAT "plugins = (\"tap\", \"nat\"); tap = { pool_size = 2; }; " \
                 "nat = { uplink = \"auto\"; };"
#define VM_A "0000000000aa"
#define VM_B "0000000000bb"

static const char *const tap_nat[] = {"tap", "nat", NULL};

static void run_ok(const char *const *argv)
{
    char *out = NULL;
    int st = net_run(argv, &out);
    ck_assert_msg(st == 0, "%s %s %s: exit %d", argv[0], argv[1], argv[2], st);
    free(out);
}

/* An uplink (a veth pair, both ends here) with the default route, inside
 * the test's namespace. */
static void uplink_veth(void)
{
    const char *add[] = {"ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0peer",
                         NULL};
    const char *peer_up[] = {"ip", "link", "set", "up0peer", "up", NULL};
    const char *addr[] = {"ip", "addr", "add", "198.18.0.1/24", "dev", "up0", NULL};
    const char *up[] = {"ip", "link", "set", "up0", "up", NULL};
    const char *route[] = {"ip", "route", "add", "default", "via", "198.18.0.2", NULL};

    run_ok(add);
    run_ok(addr);
    run_ok(up);
    run_ok(peer_up);
    run_ok(route);
}

/* Rules in banger's table with the tag of `id`, from `nft -j list ruleset`. */
static int rules_tagged(const char *id, size_t *total)
{
    const char *argv[] = {"nft", "-j", "list", "ruleset", NULL};
    struct nat_rule *rules = NULL;
    char *out = NULL, tag[NAT_TAG_MAX];
    size_t n = 0;
    int count = 0;

    ck_assert_int_eq(net_run(argv, &out), 0);
    ck_assert_int_eq(nat_parse_rules(out, &rules, &n), 0);
    snprintf(tag, sizeof(tag), "banger:%s", id);
    for (size_t i = 0; i < n; i++)
        count += strcmp(rules[i].comment, tag) == 0;
    if (total)
        *total = n;
    free(rules);
    free(out);
    return count;
}

static bool table_exists(void)
{
    const char *argv[] = {"nft", "list", "table", "ip", "banger", NULL};
    return net_run(argv, NULL) == 0;
}

START_TEST(test_rule_text)
{
    char buf[2048] = "", handles[128], tag[NAT_TAG_MAX];
    const char *echo = "{\"nftables\": [{\"add\": {\"table\": {\"family\": \"ip\", \"name\": "
                       "\"banger\", \"handle\": 1}}}, {\"add\": {\"rule\": {\"family\": \"ip\", "
                       "\"table\": \"banger\", \"chain\": \"postrouting\", \"handle\": 3, "
                       "\"comment\": \"banger:ab\"}}}, {\"add\": {\"rule\": {\"family\": \"ip\", "
                       "\"table\": \"banger\", \"chain\": \"forward\", \"handle\": 4, "
                       "\"comment\": \"banger:ab\"}}}]}";

    ck_assert_int_eq(nat_make_tag("0123456789ab", tag), 0);
    ck_assert_str_eq(tag, "banger:0123456789ab");
    ck_assert_int_eq(nat_make_tag("xyz\"", tag), -EINVAL);
    ck_assert_int_eq(nat_rules_text(buf, sizeof(buf), "172.29.0.2", "bgtap0", "eth0", tag), 0);
    ck_assert_ptr_nonnull(strstr(buf, "add rule ip banger postrouting ip saddr 172.29.0.2 "
                                      "oifname \"eth0\" masquerade comment "
                                      "\"banger:0123456789ab\"\n"));
    ck_assert_ptr_nonnull(strstr(buf, "iifname \"eth0\" oifname \"bgtap0\" ct state "
                                      "established,related accept"));
    buf[0] = '\0';
    ck_assert_int_eq(nat_rules_text(buf, sizeof(buf), "172.29.0.2", "bad\"name", "eth0", tag),
                     -EINVAL);
    ck_assert_int_eq(nat_echo_handles(echo, "banger:ab", handles, sizeof(handles)), 0);
    ck_assert_str_eq(handles, "postrouting:3,forward:4");
}
END_TEST

START_TEST(test_two_vms)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *a, *b, *a2;
    size_t total = 0;

    net_private();
    uplink_veth();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    a = net_vm(&f, VM_A, "alpha", 2, true);
    b = net_vm(&f, VM_B, "beta", 3, true);
    ck_assert_msg(engine_start(&f.set, NULL, a, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_msg(engine_start(&f.set, NULL, b, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(rules_tagged(VM_A, &total), 3);
    ck_assert_int_eq(rules_tagged(VM_B, NULL), 3);
    ck_assert_uint_eq(total, 6);
    ck_assert_ptr_nonnull(bg_vm_get_handle(a, "nat.handles"));
    ck_assert_msg(strncmp(bg_vm_get_handle(a, "nat.handles"), "postrouting:", 12) == 0, "%s",
                  bg_vm_get_handle(a, "nat.handles"));

    /* Starting again replaces, never duplicates. */
    ck_assert_int_eq(f.mods[1].cap->start(f.mods[1].state, a, BANGER_PHASE_BEFORE_LAUNCH, &e),
                     0);
    ck_assert_int_eq(rules_tagged(VM_A, &total), 3);
    ck_assert_uint_eq(total, 6);

    ck_assert_int_eq(engine_stop(&f.set, NULL, b, &e), 0);
    ck_assert_int_eq(rules_tagged(VM_B, &total), 0);
    ck_assert_int_eq(rules_tagged(VM_A, NULL), 3);
    ck_assert_uint_eq(total, 3);
    ck_assert_int_eq(engine_stop(&f.set, NULL, b, &e), 0);

    /* A daemon restart: a fresh VM object with handles.json only. */
    bg_vm_free(a);
    a2 = net_vm(&f, VM_A, "alpha", 2, true);
    ck_assert_ptr_nonnull(bg_vm_get_handle(a2, "nat.tag"));
    ck_assert_msg(engine_stop(&f.set, NULL, a2, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(!table_exists());
    ck_assert_int_eq(engine_stop(&f.set, NULL, a2, &e), 0);
    bg_vm_free(a2);
    bg_vm_free(b);
    net_fixture_down(&f);
}
END_TEST

START_TEST(test_nat_off_is_noop)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;

    net_private();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    vm = net_vm(&f, VM_A, "alpha", 2, false);
    ck_assert_msg(engine_start(&f.set, NULL, vm, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(!table_exists());
    ck_assert_ptr_null(bg_vm_get_handle(vm, "nat.tag"));
    ck_assert_int_eq(engine_stop(&f.set, NULL, vm, &e), 0);
    bg_vm_free(vm);
    net_fixture_down(&f);
}
END_TEST

START_TEST(test_reconcile_removes_dead)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *a, *b;

    net_private();
    uplink_veth();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    a = net_vm(&f, VM_A, "alpha", 2, true);
    b = net_vm(&f, VM_B, "beta", 3, true);
    ck_assert_int_eq(engine_start(&f.set, NULL, a, NULL, NULL, &e), 0);
    ck_assert_int_eq(engine_start(&f.set, NULL, b, NULL, NULL, &e), 0);
    /* Only a is alive after the "restart". */
    ck_assert_int_eq(f.mods[1].cap->reconcile(f.mods[1].state, &a, 1, &e), 0);
    ck_assert_int_eq(rules_tagged(VM_A, NULL), 3);
    ck_assert_int_eq(rules_tagged(VM_B, NULL), 0);
    ck_assert_int_eq(engine_stop(&f.set, NULL, b, &e), 0);
    ck_assert_int_eq(engine_stop(&f.set, NULL, a, &e), 0);
    ck_assert(!table_exists());
    bg_vm_free(a);
    bg_vm_free(b);
    net_fixture_down(&f);
}
END_TEST

START_TEST(test_doctor_forward_drop)
{
    struct net_fixture f;
    struct banger_doctor report;
    const char *table[] = {"nft", "add", "table", "ip", "filter", NULL};
    const char *chain[] = {"nft", "add chain ip filter FORWARD { type filter hook forward "
                           "priority 0; policy drop; }", NULL};
    bool warned = false;

    net_private();
    run_ok(table);
    run_ok(chain);
    net_fixture_up(&f, CONF_NAT, tap_nat);
    bg_doctor_init(&report);
    ck_assert_int_eq(f.mods[1].cap->doctor(f.mods[1].state, &report), 0);
    for (size_t i = 0; i < report.n; i++)
        if (report.rows[i].status == BANGER_DOCTOR_WARN &&
            strstr(report.rows[i].detail, "FORWARD") &&
            strstr(report.rows[i].detail, "nft add rule ip filter DOCKER-USER iifname "
                                          "br-banger accept"))
            warned = true;
    ck_assert(warned);
    bg_doctor_done(&report);
    net_fixture_down(&f);
}
END_TEST

/* ---- traffic ------------------------------------------------------------ */

/* A new network namespace, held by an fd; the caller stays where it was. */
static int ns_new(int home)
{
    int fd;

    ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
    return fd;
}

/* Move link `name` of this namespace into namespace ns. */
static void link_to_ns(const char *name, int ns)
{
    struct nl_sock *sk = nl_socket_alloc();
    struct rtnl_link *orig = NULL, *change = rtnl_link_alloc();

    ck_assert_int_eq(nl_connect(sk, NETLINK_ROUTE), 0);
    ck_assert_int_eq(rtnl_link_get_kernel(sk, 0, name, &orig), 0);
    rtnl_link_set_ns_fd(change, ns);
    ck_assert_int_eq(rtnl_link_change(sk, orig, change, 0), 0);
    rtnl_link_put(orig);
    rtnl_link_put(change);
    nl_socket_free(sk);
}

/* Run `ip` inside namespace ns (the child inherits the thread's ns). */
static void ip_in(int ns, int home, const char *const *argv)
{
    ck_assert_int_eq(setns(ns, CLONE_NEWNET), 0);
    run_ok(argv);
    ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
}

START_TEST(test_masquerade_traffic)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9999)};
    struct sockaddr_in from;
    socklen_t from_len = sizeof(from);
    char buf[64];
    int home, guest_ns, inet_ns, rx, tx;
    ssize_t got = -1;

    net_private();
    home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    guest_ns = ns_new(home);
    inet_ns = ns_new(home);
    net_fixture_up(&f, CONF_NAT, tap_nat);

    /* The uplink: up0 here, eth0 in the "internet" with 198.18.0.2. */
    const char *up_add[] = {"ip", "link", "add", "up0", "type", "veth", "peer", "name", "ieth0",
                            NULL};
    const char *up_addr[] = {"ip", "addr", "add", "198.18.0.1/24", "dev", "up0", NULL};
    const char *up_up[] = {"ip", "link", "set", "up0", "up", NULL};
    const char *def[] = {"ip", "route", "add", "default", "via", "198.18.0.2", NULL};
    const char *i_addr[] = {"ip", "addr", "add", "198.18.0.2/24", "dev", "ieth0", NULL};
    const char *i_up[] = {"ip", "link", "set", "ieth0", "up", NULL};
    const char *g_up[] = {"ip", "link", "set", "geth0", "up", NULL};
    const char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
    /* The guest: a veth port of the bridge standing in for the TAP. */
    const char *g_add[] = {"ip", "link", "add", "vguest", "type", "veth", "peer", "name",
                           "geth0", NULL};
    const char *g_master[] = {"ip", "link", "set", "vguest", "master", "br-banger", "up", NULL};
    const char *g_addr[] = {"ip", "addr", "add", "172.29.0.2/24", "dev", "geth0", NULL};
    const char *g_def[] = {"ip", "route", "add", "default", "via", "172.29.0.1", NULL};

    run_ok(up_add);
    link_to_ns("ieth0", inet_ns);
    run_ok(up_addr);
    run_ok(up_up);
    run_ok(def);
    ip_in(inet_ns, home, i_addr);
    ip_in(inet_ns, home, i_up);
    ip_in(inet_ns, home, lo_up);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    run_ok(g_add);
    link_to_ns("geth0", guest_ns);
    run_ok(g_master);
    ip_in(guest_ns, home, g_addr);
    ip_in(guest_ns, home, g_up);
    ip_in(guest_ns, home, lo_up);
    ip_in(guest_ns, home, g_def);

    /* nat alone, with the guest's port recorded as its TAP. */
    vm = net_vm(&f, VM_A, "alpha", 2, true);
    ck_assert_int_eq(bg_vm_set_handle(vm, "tap.dev", "vguest", &e), 0);
    ck_assert_msg(f.mods[1].cap->start(f.mods[1].state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e) == 0,
                  "%s", bg_error_text(&e));

    ck_assert_int_eq(setns(inet_ns, CLONE_NEWNET), 0);
    rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(rx, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(9999)};
    ck_assert_int_eq(bind(rx, (struct sockaddr *)&any, sizeof(any)), 0);
    ck_assert_int_eq(setns(guest_ns, CLONE_NEWNET), 0);
    tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(tx, 0);
    ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);

    inet_pton(AF_INET, "198.18.0.2", &to.sin_addr);
    /* Resend until it arrives (the first may wait on ARP); bounded. */
    for (int i = 0; i < 50 && got < 0; i++) {
        struct pollfd p = {.fd = rx, .events = POLLIN};
        sendto(tx, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to));
        if (poll(&p, 1, 200) == 1)
            got = recvfrom(rx, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);
    }
    ck_assert_int_eq(got, 5);
    inet_ntop(AF_INET, &from.sin_addr, buf, sizeof(buf));
    ck_assert_str_eq(buf, "198.18.0.1");

    close(rx);
    close(tx);
    ck_assert_int_eq(f.mods[1].cap->stop(f.mods[1].state, vm, &e), 0);
    ck_assert(!table_exists());
    bg_vm_free(vm);
    net_fixture_down(&f);
    close(guest_ns);
    close(inet_ns);
    close(home);
}
END_TEST

/* ---- rollback of every start step --------------------------------------- */

static const char *const fault_points[] = {
    "tap.bridge", "tap.acquire", "tap.attach", "tap.iface", "tap.start",
    "nat.forward", "nat.record", "nat.apply", "nat.handles", "nat.start", "launch",
};

START_TEST(test_fault_rollback)
{
    const char *point = fault_points[_i];
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *other, *vm;
    char *links_before, *rules_before, *links_after, *rules_after, expect[128];

    net_private();
    uplink_veth();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    /* Another VM is running: its rules and TAP must survive. */
    other = net_vm(&f, VM_B, "beta", 3, true);
    ck_assert_int_eq(engine_start(&f.set, NULL, other, NULL, NULL, &e), 0);
    ck_assert(net_wait_pool("bgtap", "br-banger", 3));
    links_before = net_snapshot_links("bgtap");
    rules_before = net_ruleset_text();

    vm = net_vm(&f, VM_A, "alpha", 2, true);
    setenv("BANGER_FAULTS", point, 1);
    ck_assert_int_eq(engine_start(&f.set, NULL, vm, NULL, NULL, &e), -EIO);
    unsetenv("BANGER_FAULTS");
    snprintf(expect, sizeof(expect), "injected fault at %s", point);
    ck_assert_msg(strstr(e.msg, expect), "%s", e.msg);
    ck_assert_msg(!strstr(e.msg, "rollback also failed"), "%s", e.msg);

    /* The pool settles back at its size plus the other VM's TAP. */
    ck_assert(net_wait_pool("bgtap", "br-banger", 3));
    links_after = net_snapshot_links("bgtap");
    rules_after = net_ruleset_text();
    ck_assert_str_eq(links_after, links_before);
    ck_assert_str_eq(rules_after, rules_before);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
    ck_assert_int_eq(rules_tagged(VM_A, NULL), 0);

    ck_assert_int_eq(engine_stop(&f.set, NULL, other, &e), 0);
    ck_assert(!table_exists());
    free(links_before);
    free(rules_before);
    free(links_after);
    free(rules_after);
    bg_vm_free(vm);
    bg_vm_free(other);
    net_fixture_down(&f);
}
END_TEST

static Suite *nat_suite(void)
{
    Suite *s = suite_create("nat");
    TCase *tc = tcase_create("nat");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rule_text);
    tcase_add_test(tc, test_two_vms);
    tcase_add_test(tc, test_nat_off_is_noop);
    tcase_add_test(tc, test_reconcile_removes_dead);
    tcase_add_test(tc, test_doctor_forward_drop);
    tcase_add_test(tc, test_masquerade_traffic);
    tcase_add_loop_test(tc, test_fault_rollback, 0,
                        (int)(sizeof(fault_points) / sizeof(fault_points[0])));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nat_suite());
    int failed;

    /* Each test owns a private network namespace in its forked child. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
