/* tap module: pool warm-up, acquire/release cycles, the reaper, the VM's
 * contributions and clear errors. Every test runs in its own network
 * namespace (Check forks each test). */
#include "config.h"

#include "test_tap_util.h"

#include "engine/engine.h"
#include "util/error.h"

#include "../../plugins/tap/tap-addr.h"
#include "../../plugins/tap/tap-nl.h"
#include "../../plugins/tap/tap-pool.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <grp.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONF_TAP(pool) "plugins = (\"tap\"); tap = { pool_size = " #pool "; };"

static const char *const only_tap[] = {"tap", NULL};

START_TEST(test_addr_helpers)
{
    uint32_t net, len, gw;
    char buf[256];

    ck_assert_int_eq(tap_parse_cidr("172.29.0.0/24", &net, &len), 0);
    ck_assert_uint_eq(len, 24);
    ck_assert_int_eq(tap_cidr_gateway(net, len, &gw), 0);
    tap_format_ipv4(gw, buf);
    ck_assert_str_eq(buf, "172.29.0.1");
    ck_assert_int_eq(tap_parse_cidr("172.29.0.1/24", &net, &len), -EINVAL);
    ck_assert_int_eq(tap_parse_cidr("172.29.0.0/31", &net, &len), 0);
    ck_assert_int_eq(tap_cidr_gateway(net, len, &gw), -ERANGE);
    ck_assert(tap_prefix_valid("bgtap"));
    ck_assert(!tap_prefix_valid("bgtap123x"));
    ck_assert(!tap_prefix_valid("BG"));
    ck_assert(!tap_prefix_valid(""));
    ck_assert(tap_name_has_prefix("bgtap12", "bgtap"));
    ck_assert(!tap_name_has_prefix("bgtap", "bgtap"));
    ck_assert(!tap_name_has_prefix("bgtapx1", "bgtap"));
    ck_assert_int_eq(tap_kernel_ip_arg(buf, sizeof(buf), "10.0.0.2", "10.0.0.1", 16, "web",
                                       "10.0.0.1"), 0);
    ck_assert_str_eq(buf, "ip=10.0.0.2::10.0.0.1:255.255.0.0:web:eth0:off:10.0.0.1");
}
END_TEST

START_TEST(test_config_errors)
{
    char msg[1024];

    ck_assert_int_lt(net_try_init(CONF_TAP(300), "tap", msg, sizeof(msg)), 0);
    ck_assert_msg(strstr(msg, "pool_size") && strstr(msg, "between 0 and 256"), "%s", msg);
    ck_assert_int_lt(net_try_init("plugins = (\"tap\"); tap = { prefix = \"Bad!\"; };", "tap",
                                  msg, sizeof(msg)), 0);
    ck_assert_msg(strstr(msg, "prefix"), "%s", msg);
    ck_assert_int_lt(net_try_init("plugins = (\"tap\"); tap = { prefix = \"waytoolong\"; };",
                                  "tap", msg, sizeof(msg)), 0);
    ck_assert_int_lt(net_try_init("plugins = (\"tap\"); tap = { colour = 1; };", "tap", msg,
                                  sizeof(msg)), 0);
    ck_assert_msg(strstr(msg, "colour"), "%s", msg);
    ck_assert_int_lt(net_try_init("plugins = (\"tap\"); network = { cidr = \"172.29.0.0/31\"; "
                                  "};", "tap", msg, sizeof(msg)), 0);
    /* The core refuses it first; the module's own check is the same rule. */
    ck_assert_msg(strstr(msg, "cidr"), "%s", msg);
}
END_TEST

START_TEST(test_pool_warmup)
{
    struct net_fixture f;
    char *snap;

    net_private();
    net_fixture_up(&f, CONF_TAP(4), only_tap);
    ck_assert_msg(net_wait_pool("bgtap", "br-banger", 4), "pool never reached 4 TAPs");
    snap = net_snapshot_links("bgtap");
    ck_assert_msg(strstr(snap, "br-banger master=- up=1 addrs=172.29.0.1/24,"), "%s", snap);
    free(snap);
    net_fixture_down(&f);
    /* fini deletes the warm TAPs. */
    ck_assert_int_eq(net_count_prefixed("bgtap", "br-banger", NULL), 0);
}
END_TEST

START_TEST(test_pool_cycles_leak_nothing)
{
    struct tap_pool_cfg cfg = {.prefix = "bgtap", .size = 4, .bridge = "br-banger",
                               .gateway = 0xac1d0001, .prefix_len = 24};
    struct tap_pool *pool = NULL;
    char name[IFNAMSIZ], why[256];
    int links, fds;

    net_private();
    ck_assert_int_eq(tap_pool_new(&cfg, &pool), 0);
    ck_assert_int_eq(tap_pool_start(pool, why, sizeof(why)), 0);
    ck_assert_uint_eq(tap_pool_wait_full(pool, 10000), 4);
    links = net_count_links();
    fds = net_count_fds();
    for (int i = 0; i < 1000; i++) {
        ck_assert_msg(tap_pool_acquire(pool, name, why, sizeof(why)) == 0, "%s", why);
        ck_assert_msg(tap_pool_release(pool, name, why, sizeof(why)) == 0, "%s", why);
    }
    ck_assert_msg(net_wait_pool("bgtap", "br-banger", 4), "pool did not settle at 4");
    ck_assert_int_eq(net_count_links(), links);
    ck_assert_msg(net_wait_fds(fds), "fds: %d, before: %d", net_count_fds(), fds);
    tap_pool_free(pool);
    ck_assert_int_eq(net_count_prefixed("bgtap", "br-banger", NULL), 0);
}
END_TEST

START_TEST(test_start_stop_cycles)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;
    int links, fds;

    net_private();
    net_fixture_up(&f, CONF_TAP(2), only_tap);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    vm = net_vm(&f, "0123456789ab", "web", 2, false);
    links = net_count_links();
    fds = net_count_fds();
    for (int i = 0; i < 100; i++) {
        ck_assert_msg(engine_start(&f.set, NULL, vm, NULL, NULL, &e) == 0, "%s",
                      bg_error_text(&e));
        ck_assert_msg(engine_stop(&f.set, NULL, vm, &e) == 0, "%s", bg_error_text(&e));
    }
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    ck_assert_int_eq(net_count_links(), links);
    ck_assert_msg(net_wait_fds(fds), "fds: %d, before: %d", net_count_fds(), fds);
    bg_vm_free(vm);
    net_fixture_down(&f);
}
END_TEST

START_TEST(test_contributions)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;
    const char *dev;

    net_private();
    net_fixture_up(&f, CONF_TAP(2), only_tap);
    vm = net_vm(&f, "0123456789ab", "web", 2, false);
    ck_assert_msg(engine_start(&f.set, NULL, vm, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    dev = bg_vm_get_handle(vm, "tap.dev");
    ck_assert_ptr_nonnull(dev);
    ck_assert_msg(tap_name_has_prefix(dev, "bgtap"), "%s", dev);
    ck_assert(vm->contrib.has_net);
    ck_assert_str_eq(vm->contrib.net.iface_id, "eth0");
    ck_assert_str_eq(vm->contrib.net.host_dev_name, dev);
    ck_assert_str_eq(vm->contrib.net.guest_mac, "06:00:ac:1d:00:02");
    ck_assert_uint_eq(vm->contrib.n_kernel_args, 1);
    ck_assert_str_eq(vm->contrib.kernel_args[0],
                     "ip=172.29.0.2::172.29.0.1:255.255.255.0:web:eth0:off:172.29.0.1");
    ck_assert_int_eq(engine_stop(&f.set, NULL, vm, &e), 0);
    ck_assert_ptr_null(bg_vm_get_handle(vm, "tap.dev"));
    bg_vm_free(vm);
    net_fixture_down(&f);
}
END_TEST

/* Stop after a daemon restart: a fresh VM object has only handles.json. */
START_TEST(test_stop_from_handles)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;
    char dev[IFNAMSIZ];

    net_private();
    net_fixture_up(&f, CONF_TAP(0), only_tap);
    vm = net_vm(&f, "0123456789ab", "web", 2, false);
    ck_assert_msg(engine_start(&f.set, NULL, vm, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    snprintf(dev, sizeof(dev), "%s", bg_vm_get_handle(vm, "tap.dev"));
    bg_vm_free(vm);
    ck_assert(net_link_exists(dev));
    vm = net_vm(&f, "0123456789ab", "web", 2, false);
    ck_assert_str_eq(bg_vm_get_handle(vm, "tap.dev"), dev);
    ck_assert_msg(engine_stop(&f.set, NULL, vm, &e) == 0, "%s", bg_error_text(&e));
    /* pool_size 0: a released TAP is deleted. */
    ck_assert(!net_link_exists(dev));
    ck_assert_int_eq(engine_stop(&f.set, NULL, vm, &e), 0);
    bg_vm_free(vm);
    net_fixture_down(&f);
}
END_TEST

/* A TAP some process still holds open is deleted, never pooled. */
START_TEST(test_release_in_use_deletes)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;
    struct ifreq ifr = {0};
    char dev[IFNAMSIZ];
    int fd;

    net_private();
    net_fixture_up(&f, CONF_TAP(2), only_tap);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    vm = net_vm(&f, "0123456789ab", "web", 2, false);
    ck_assert_int_eq(engine_start(&f.set, NULL, vm, NULL, NULL, &e), 0);
    snprintf(dev, sizeof(dev), "%s", bg_vm_get_handle(vm, "tap.dev"));
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
    ck_assert_int_eq(engine_stop(&f.set, NULL, vm, &e), 0);
    close(fd);
    ck_assert(!net_link_exists(dev));
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    bg_vm_free(vm);
    net_fixture_down(&f);
}
END_TEST

START_TEST(test_reaper)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;
    char why[256], dev[IFNAMSIZ];
    const char *ip_dummy[] = {"ip", "link", "add", "bgtapx", "type", "veth", "peer",
                              "name", "othrpeer0", NULL};

    net_private();
    net_fixture_up(&f, CONF_TAP(2), only_tap);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    vm = net_vm(&f, "0123456789ab", "web", 2, false);
    ck_assert_int_eq(engine_start(&f.set, NULL, vm, NULL, NULL, &e), 0);
    snprintf(dev, sizeof(dev), "%s", bg_vm_get_handle(vm, "tap.dev"));
    ck_assert(net_wait_pool("bgtap", "br-banger", 3));
    /* Planted: an orphan of ours, a TAP and a veth that are not ours. */
    ck_assert_msg(tap_dev_create("bgtap900", why, sizeof(why)) == 0, "%s", why);
    ck_assert_msg(tap_dev_create("othertap0", why, sizeof(why)) == 0, "%s", why);
    ck_assert_int_eq(net_run(ip_dummy, NULL), 0);
    ck_assert_int_eq(f.mods[0].cap->reconcile(f.mods[0].state, &vm, 1, &e), 0);
    ck_assert(!net_link_exists("bgtap900"));
    ck_assert(net_link_exists("othertap0"));
    ck_assert(net_link_exists("bgtapx"));
    ck_assert(net_link_exists(dev));
    ck_assert_int_eq(net_count_prefixed("bgtap", "br-banger", NULL), 3);
    /* With no live VM, the VM's TAP is an orphan too; the pool stays. */
    ck_assert_int_eq(f.mods[0].cap->reconcile(f.mods[0].state, NULL, 0, &e), 0);
    ck_assert(!net_link_exists(dev));
    ck_assert_int_eq(net_count_prefixed("bgtap", "br-banger", NULL), 2);
    ck_assert_int_eq(engine_stop(&f.set, NULL, vm, &e), 0);
    tap_dev_delete("othertap0", why, sizeof(why));
    bg_vm_free(vm);
    net_fixture_down(&f);
}
END_TEST

START_TEST(test_bridge_name_taken)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;
    const char *ip_dummy[] = {"ip", "link", "add", "br-banger", "type", "veth", "peer",
                              "name", "othrpeer0", NULL};

    net_private();
    ck_assert_int_eq(net_run(ip_dummy, NULL), 0);
    net_fixture_up(&f, CONF_TAP(0), only_tap);
    vm = net_vm(&f, "0123456789ab", "web", 2, false);
    ck_assert_int_lt(engine_start(&f.set, NULL, vm, NULL, NULL, &e), 0);
    ck_assert_msg(strstr(e.msg, "tap: bridge br-banger: the name is taken by a veth interface"),
                  "%s", e.msg);
    ck_assert_int_eq(net_count_prefixed("bgtap", "br-banger", NULL), 0);
    bg_vm_free(vm);
    net_fixture_down(&f);
}
END_TEST

static void drop_net_admin(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[2];

    ck_assert_int_eq(syscall(SYS_capget, &hdr, data), 0);
    data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    ck_assert_int_eq(syscall(SYS_capset, &hdr, data), 0);
}

START_TEST(test_no_net_admin)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *vm;

    net_private();
    drop_net_admin();
    net_fixture_up(&f, CONF_TAP(0), only_tap);
    vm = net_vm(&f, "0123456789ab", "web", 2, false);
    ck_assert_int_eq(engine_start(&f.set, NULL, vm, NULL, NULL, &e), -EPERM);
    ck_assert_str_eq(e.msg, "tap: bridge br-banger: Operation not permitted (bangerd needs "
                            "CAP_NET_ADMIN)");
    bg_vm_free(vm);
    net_fixture_down(&f);
}
END_TEST

/* A pooled TAP waits on the bridge for its VM: a local user must not be able
 * to attach to it (and so sniff or send as the next VM). */
START_TEST(test_pool_taps_are_roots)
{
    struct net_fixture f;

    net_private();
    net_fixture_up(&f, CONF_TAP(1), only_tap);
    ck_assert_msg(net_wait_pool("bgtap", "br-banger", 1), "pool never reached 1 TAP");
    char name[IFNAMSIZ] = "";
    for (int i = 0; i < 64 && !name[0]; i++) {
        char cand[IFNAMSIZ];
        snprintf(cand, sizeof(cand), "bgtap%d", i);
        if (if_nametoindex(cand) != 0)
            memcpy(name, cand, sizeof(name));
    }
    ck_assert_msg(name[0], "no pooled TAP found");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* As nobody, with no capabilities: open the TAP as a VMM would. */
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(2);
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
            _exit(3);
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
        memcpy(ifr.ifr_name, name, sizeof(ifr.ifr_name));
        _exit(ioctl(fd, TUNSETIFF, &ifr) == 0 ? 0 : errno == EPERM ? 1 : 4);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
                  "uid 65534 attaching to %s: exit %d (0: attached, 1: EPERM as wanted)", name,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    net_fixture_down(&f);
}
END_TEST

static Suite *tap_suite(void)
{
    Suite *s = suite_create("tap");
    TCase *tc = tcase_create("tap");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_addr_helpers);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_pool_warmup);
    tcase_add_test(tc, test_pool_cycles_leak_nothing);
    tcase_add_test(tc, test_start_stop_cycles);
    tcase_add_test(tc, test_contributions);
    tcase_add_test(tc, test_stop_from_handles);
    tcase_add_test(tc, test_release_in_use_deletes);
    tcase_add_test(tc, test_reaper);
    tcase_add_test(tc, test_bridge_name_taken);
    tcase_add_test(tc, test_no_net_admin);
    tcase_add_test(tc, test_pool_taps_are_roots);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tap_suite());
    int failed;

    /* Every test must run in its own forked child: that child owns the
     * private network namespace. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
