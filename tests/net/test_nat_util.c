#include "config.h"

#include "test_nat_util.h"
#include "test_tap_util.h"

#include "../../plugins/nat/nat-rules.h"

#include <check.h>
#include <fcntl.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void net_run_ok(const char *const *argv)
{
    char *out = NULL;
    int st = net_run(argv, &out);

    ck_assert_msg(st == 0, "%s %s %s: exit %d", argv[0], argv[1], argv[2], st);
    free(out);
}

void net_uplink_veth(void)
{
    const char *add[] = {"ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0peer",
                         NULL};
    const char *peer_up[] = {"ip", "link", "set", "up0peer", "up", NULL};
    const char *addr[] = {"ip", "addr", "add", "198.18.0.1/24", "dev", "up0", NULL};
    const char *up[] = {"ip", "link", "set", "up0", "up", NULL};
    const char *route[] = {"ip", "route", "add", "default", "via", "198.18.0.2", NULL};

    net_run_ok(add);
    net_run_ok(addr);
    net_run_ok(up);
    net_run_ok(peer_up);
    net_run_ok(route);
}

static struct nat_rule *net_list_rules(size_t *n)
{
    const char *argv[] = {"nft", "-j", "list", "ruleset", NULL};
    struct nat_rule *rules = NULL;
    char *out = NULL;

    ck_assert_int_eq(net_run(argv, &out), 0);
    ck_assert_int_eq(nat_parse_rules(out, &rules, n), 0);
    free(out);
    return rules;
}

int net_rules_tagged(const char *id, size_t *total)
{
    size_t n = 0;
    struct nat_rule *rules = net_list_rules(&n);
    char tag[NAT_TAG_MAX];
    int count = 0;

    snprintf(tag, sizeof(tag), "banger:%s", id);
    for (size_t i = 0; i < n; i++)
        count += strcmp(rules[i].comment, tag) == 0;
    if (total)
        *total = n;
    free(rules);
    return count;
}

int net_saved_records(void)
{
    size_t n = 0;
    struct nat_rule *rules = net_list_rules(&n);
    int count = 0;

    for (size_t i = 0; i < n; i++)
        count += strcmp(rules[i].family, "ip") == 0 && strcmp(rules[i].chain, "saved") == 0;
    free(rules);
    return count;
}

bool net_table_exists(const char *family)
{
    const char *argv[] = {"nft", "list", "table", family, "banger", NULL};
    return net_run(argv, NULL) == 0;
}

int net_ns_new(int home)
{
    int fd;

    ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
    return fd;
}

void net_link_to_ns(const char *name, int ns)
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

void net_run_in(int ns, int home, const char *const *argv)
{
    /* The child inherits the thread's namespace. */
    ck_assert_int_eq(setns(ns, CLONE_NEWNET), 0);
    net_run_ok(argv);
    ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
}

static void net_forwarding_path(const char *iface, char *path, size_t len)
{
    /* /proc/sys/net belongs to the namespace of the thread that opens it. */
    snprintf(path, len, "/proc/sys/net/ipv4/conf/%s/forwarding", iface);
}

int net_forwarding(const char *iface)
{
    char path[128], c = 0;
    int fd;

    net_forwarding_path(iface, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "open %s", path);
    ck_assert_int_eq(read(fd, &c, 1), 1);
    close(fd);
    return c == '1';
}

void net_set_forwarding(const char *iface, int value)
{
    char path[128];
    int fd;

    net_forwarding_path(iface, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "open %s", path);
    ck_assert_int_eq(write(fd, value ? "1\n" : "0\n", 2), 2);
    close(fd);
}
