/* nat module: rule sets of two VMs and of a VM without --nat, stop from
 * handles, reconcile, the Docker forward-policy warning, a masqueraded
 * packet through namespaces, and rollback of every start step of tap+nat. Each test runs in its own
 * network namespace (Check forks each test). */
#include "config.h"

#include "test_nat_util.h"
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

START_TEST(test_rule_text)
{
    char buf[4096] = "", handles[128], tag[NAT_TAG_MAX], iface[16];
    const char *echo = "{\"nftables\": [{\"add\": {\"table\": {\"family\": \"ip\", \"name\": "
                       "\"banger\", \"handle\": 1}}}, {\"add\": {\"rule\": {\"family\": "
                       "\"bridge\", \"table\": \"banger\", \"chain\": \"prerouting\", "
                       "\"handle\": 2, "
                       "\"comment\": \"banger:ab\"}}}, {\"add\": {\"rule\": {\"family\": \"ip\", "
                       "\"table\": \"banger\", \"chain\": \"postrouting\", \"handle\": 3, "
                       "\"comment\": \"banger:ab\"}}}, {\"add\": {\"rule\": {\"family\": \"ip\", "
                       "\"table\": \"banger\", \"chain\": \"saved\", \"handle\": 4, "
                       "\"comment\": \"forwarding:eth0=0\"}}}]}";
    int value = -1;

    ck_assert_int_eq(nat_make_tag("0123456789ab", tag), 0);
    ck_assert_str_eq(tag, "banger:0123456789ab");
    ck_assert_int_eq(nat_make_tag("xyz\"", tag), -EINVAL);
    ck_assert_int_eq(nat_rules_text(buf, sizeof(buf), "172.29.0.2", "br-banger", "eth0", tag), 0);
    ck_assert_ptr_nonnull(strstr(buf, "add rule ip banger postrouting oifname \"eth0\" ip saddr "
                                      "172.29.0.2 masquerade comment \"banger:0123456789ab\"\n"));
    ck_assert_ptr_nonnull(strstr(buf, "forward iifname \"br-banger\" oifname \"eth0\" ip saddr "
                                      "172.29.0.2 accept"));
    ck_assert_ptr_nonnull(strstr(buf, "iifname \"eth0\" oifname \"br-banger\" ip daddr "
                                      "172.29.0.2 ct state established,related accept"));
    buf[0] = '\0';
    ck_assert_int_eq(nat_guard_text(buf, sizeof(buf), "172.29.0.2", "06:00:ac:1d:00:02",
                                    "bgtap0", tag), 0);
    ck_assert_ptr_nonnull(strstr(buf, "add rule bridge banger prerouting iifname \"bgtap0\" "
                                      "ether saddr 06:00:ac:1d:00:02 ether type ip ip saddr "
                                      "172.29.0.2 accept"));
    ck_assert_ptr_nonnull(strstr(buf, "ether type arp arp saddr ether 06:00:ac:1d:00:02 arp "
                                      "saddr ip "
                                      "172.29.0.2 accept"));
    ck_assert_ptr_nonnull(strstr(buf, "prerouting iifname \"bgtap0\" drop comment "
                                      "\"banger:0123456789ab\"\n"));
    buf[0] = '\0';
    ck_assert_int_eq(nat_isolate_text(buf, sizeof(buf), "172.29.0.3", "br-banger", tag), 0);
    ck_assert_ptr_nonnull(strstr(buf, "forward iifname \"br-banger\" oifname != \"br-banger\" "
                                      "ip saddr 172.29.0.3 drop"));
    ck_assert_ptr_nonnull(strstr(buf, "forward iifname != \"br-banger\" oifname \"br-banger\" "
                                      "ip daddr 172.29.0.3 drop"));
    /* Nothing unvalidated reaches nft's syntax. */
    buf[0] = '\0';
    ck_assert_int_eq(nat_rules_text(buf, sizeof(buf), "172.29.0.2", "bad\"name", "eth0", tag),
                     -EINVAL);
    ck_assert_int_eq(nat_guard_text(buf, sizeof(buf), "172.29.0.2", "06:00:ac:1d:00:0\"",
                                    "bgtap0", tag), -EINVAL);
    ck_assert_int_eq(nat_guard_text(buf, sizeof(buf), "172.29.0.2 ", "06:00:ac:1d:00:02",
                                    "bgtap0", tag), -EINVAL);
    ck_assert(!nat_mac_valid("06:00:ac:1d:00:2"));
    ck_assert(nat_mac_valid("06:00:AC:1d:00:02"));
    ck_assert_int_eq(nat_saved_text(buf, sizeof(buf), "up0", 2), -EINVAL);
    ck_assert_int_eq(nat_saved_text(buf, sizeof(buf), "up0", 0), 0);
    ck_assert_ptr_nonnull(strstr(buf, "add rule ip banger saved counter comment "
                                      "\"forwarding:up0=0\"\n"));
    ck_assert_int_eq(nat_parse_saved("forwarding:eth0.100=1", iface, &value), 0);
    ck_assert_str_eq(iface, "eth0.100");
    ck_assert_int_eq(value, 1);
    ck_assert_int_eq(nat_parse_saved("forwarding:../x=1", iface, &value), -EINVAL);
    ck_assert_int_eq(nat_parse_saved("forwarding:eth0=2", iface, &value), -EINVAL);
    ck_assert_int_eq(nat_parse_saved("banger:ab", iface, &value), -EINVAL);
    ck_assert_int_eq(nat_echo_handles(echo, "banger:ab", handles, sizeof(handles)), 0);
    ck_assert_str_eq(handles, "prerouting:2,postrouting:3");
}
END_TEST

/* Per --nat VM: three guard rules (bridge table), masquerade, forward out,
 * forward back (ip table). Two forwarding records: bridge and uplink. */
#define NAT_VM_RULES 6
#define PLAIN_VM_RULES 5

START_TEST(test_two_vms)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *a, *b, *a2;
    size_t total = 0;

    net_private();
    net_uplink_veth();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    a = net_vm(&f, VM_A, "alpha", 2, true);
    b = net_vm(&f, VM_B, "beta", 3, true);
    ck_assert_msg(engine_start(&f.set, NULL, a, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_msg(engine_start(&f.set, NULL, b, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(net_rules_tagged(VM_A, &total), NAT_VM_RULES);
    ck_assert_int_eq(net_rules_tagged(VM_B, NULL), NAT_VM_RULES);
    ck_assert_int_eq(net_saved_records(), 2);
    ck_assert_uint_eq(total, 2 * NAT_VM_RULES + 2);
    ck_assert_ptr_nonnull(bg_vm_get_handle(a, "nat.handles"));
    ck_assert_msg(strncmp(bg_vm_get_handle(a, "nat.handles"), "prerouting:", 11) == 0, "%s",
                  bg_vm_get_handle(a, "nat.handles"));

    /* Starting again replaces, never duplicates. */
    ck_assert_int_eq(f.mods[1].cap->start(f.mods[1].state, a, BANGER_PHASE_BEFORE_LAUNCH, &e),
                     0);
    ck_assert_int_eq(net_rules_tagged(VM_A, &total), NAT_VM_RULES);
    ck_assert_uint_eq(total, 2 * NAT_VM_RULES + 2);

    ck_assert_int_eq(engine_stop(&f.set, NULL, b, &e), 0);
    ck_assert_int_eq(net_rules_tagged(VM_B, &total), 0);
    ck_assert_int_eq(net_rules_tagged(VM_A, NULL), NAT_VM_RULES);
    ck_assert_uint_eq(total, NAT_VM_RULES + 2);
    ck_assert_int_eq(engine_stop(&f.set, NULL, b, &e), 0);

    /* A daemon restart: a fresh VM object with handles.json only. */
    bg_vm_free(a);
    a2 = net_vm(&f, VM_A, "alpha", 2, true);
    ck_assert_ptr_nonnull(bg_vm_get_handle(a2, "nat.tag"));
    ck_assert_msg(engine_stop(&f.set, NULL, a2, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));
    ck_assert_int_eq(engine_stop(&f.set, NULL, a2, &e), 0);
    bg_vm_free(a2);
    bg_vm_free(b);
    net_fixture_down(&f);
}
END_TEST

/* Without --nat: the guard and a forward drop, and no forwarding flag
 * touched. */
START_TEST(test_plain_vm_guarded)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;
    size_t total = 0;

    net_private();
    net_uplink_veth();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    vm = net_vm(&f, VM_A, "alpha", 2, false);
    ck_assert_msg(engine_start(&f.set, NULL, vm, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(net_rules_tagged(VM_A, &total), PLAIN_VM_RULES);
    ck_assert_uint_eq(total, PLAIN_VM_RULES);
    ck_assert_int_eq(net_forwarding("all"), 0);
    ck_assert_int_eq(net_forwarding("br-banger"), 0);
    ck_assert_int_eq(net_forwarding("up0"), 0);
    ck_assert_ptr_nonnull(bg_vm_get_handle(vm, "nat.tag"));
    ck_assert_int_eq(engine_stop(&f.set, NULL, vm, &e), 0);
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));
    ck_assert_ptr_null(bg_vm_get_handle(vm, "nat.tag"));
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
    net_uplink_veth();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    a = net_vm(&f, VM_A, "alpha", 2, true);
    b = net_vm(&f, VM_B, "beta", 3, true);
    ck_assert_int_eq(engine_start(&f.set, NULL, a, NULL, NULL, &e), 0);
    ck_assert_int_eq(engine_start(&f.set, NULL, b, NULL, NULL, &e), 0);
    /* Only a is alive after the "restart". */
    ck_assert_int_eq(f.mods[1].cap->reconcile(f.mods[1].state, &a, 1, &e), 0);
    ck_assert_int_eq(net_rules_tagged(VM_A, NULL), NAT_VM_RULES);
    ck_assert_int_eq(net_rules_tagged(VM_B, NULL), 0);
    ck_assert_int_eq(engine_stop(&f.set, NULL, b, &e), 0);
    ck_assert_int_eq(engine_stop(&f.set, NULL, a, &e), 0);
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));
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
    bool warned = false, forwarding = false;

    net_private();
    net_run_ok(table);
    net_run_ok(chain);
    net_fixture_up(&f, CONF_NAT, tap_nat);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    bg_doctor_init(&report);
    ck_assert_int_eq(f.mods[1].cap->doctor(f.mods[1].state, &report), 0);
    for (size_t i = 0; i < report.n; i++) {
        if (report.rows[i].status == BANGER_DOCTOR_WARN &&
            strstr(report.rows[i].detail, "FORWARD") &&
            strstr(report.rows[i].detail, "nft add rule ip filter DOCKER-USER iifname "
                                          "br-banger accept"))
            warned = true;
        /* The flags as they are: per interface, not host-wide. */
        if (strstr(report.rows[i].detail, "host-wide ip_forward off; br-banger off"))
            forwarding = true;
    }
    ck_assert(warned);
    ck_assert(forwarding);
    bg_doctor_done(&report);
    net_fixture_down(&f);
}
END_TEST

/* ---- traffic ------------------------------------------------------------ */

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
    guest_ns = net_ns_new(home);
    inet_ns = net_ns_new(home);
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
    const char *g_mac[] = {"ip", "link", "set", "geth0", "address", "06:00:ac:1d:00:02", NULL};
    const char *g_def[] = {"ip", "route", "add", "default", "via", "172.29.0.1", NULL};

    net_run_ok(up_add);
    net_link_to_ns("ieth0", inet_ns);
    net_run_ok(up_addr);
    net_run_ok(up_up);
    net_run_ok(def);
    net_run_in(inet_ns, home, i_addr);
    net_run_in(inet_ns, home, i_up);
    net_run_in(inet_ns, home, lo_up);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    net_run_ok(g_add);
    net_link_to_ns("geth0", guest_ns);
    net_run_ok(g_master);
    net_run_in(guest_ns, home, g_mac);
    net_run_in(guest_ns, home, g_addr);
    net_run_in(guest_ns, home, g_up);
    net_run_in(guest_ns, home, lo_up);
    net_run_in(guest_ns, home, g_def);

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
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));
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

#define N_FAULT_POINTS (sizeof(fault_points) / sizeof(fault_points[0]))

/* Three ways to start: a --nat VM beside a running --nat VM, a VM without
 * --nat beside it, and the first --nat VM alone (its rollback must also
 * put the forwarding flags back). */
enum fault_mode { FAULT_NAT_BESIDE, FAULT_PLAIN_BESIDE, FAULT_NAT_ALONE, FAULT_MODES };

START_TEST(test_fault_rollback)
{
    const char *point = fault_points[(size_t)_i % N_FAULT_POINTS];
    enum fault_mode mode = (enum fault_mode)(_i / (int)N_FAULT_POINTS);
    bool nat = mode != FAULT_PLAIN_BESIDE;
    int pool = mode == FAULT_NAT_ALONE ? 2 : 3;
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *other = NULL, *vm;
    char *links_before, *rules_before, *links_after, *rules_after, expect[128];
    int fwd_before;

    /* Only a --nat VM passes this point. */
    if (!nat && strcmp(point, "nat.forward") == 0)
        return;
    net_private();
    net_uplink_veth();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    /* Another VM is running: its rules and TAP must survive. */
    if (mode != FAULT_NAT_ALONE) {
        other = net_vm(&f, VM_B, "beta", 3, true);
        ck_assert_int_eq(engine_start(&f.set, NULL, other, NULL, NULL, &e), 0);
    }
    ck_assert(net_wait_pool("bgtap", "br-banger", pool));
    links_before = net_snapshot_links("bgtap");
    rules_before = net_ruleset_text();
    fwd_before = net_forwarding("br-banger");

    vm = net_vm(&f, VM_A, "alpha", 2, nat);
    setenv("BANGER_FAULTS", point, 1);
    ck_assert_int_eq(engine_start(&f.set, NULL, vm, NULL, NULL, &e), -EIO);
    unsetenv("BANGER_FAULTS");
    snprintf(expect, sizeof(expect), "injected fault at %s", point);
    ck_assert_msg(strstr(e.msg, expect), "%s", e.msg);
    ck_assert_msg(!strstr(e.msg, "rollback also failed"), "%s", e.msg);

    /* The pool settles back at its size plus the other VM's TAP. */
    ck_assert(net_wait_pool("bgtap", "br-banger", pool));
    links_after = net_snapshot_links("bgtap");
    rules_after = net_ruleset_text();
    ck_assert_str_eq(links_after, links_before);
    ck_assert_str_eq(rules_after, rules_before);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
    ck_assert_int_eq(net_rules_tagged(VM_A, NULL), 0);
    ck_assert_int_eq(net_forwarding("br-banger"), fwd_before);

    if (other)
        ck_assert_int_eq(engine_stop(&f.set, NULL, other, &e), 0);
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));
    ck_assert_int_eq(net_forwarding("br-banger"), 0);
    ck_assert_int_eq(net_forwarding("up0"), 0);
    ck_assert_int_eq(net_forwarding("all"), 0);
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
    tcase_add_test(tc, test_plain_vm_guarded);
    tcase_add_test(tc, test_reconcile_removes_dead);
    tcase_add_test(tc, test_doctor_forward_drop);
    tcase_add_test(tc, test_masquerade_traffic);
    tcase_add_loop_test(tc, test_fault_rollback, 0, (int)(N_FAULT_POINTS * FAULT_MODES));
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
