#include "config.h"

#include "test_tap_util.h"

#include "runner/runner.h"
#include "util/error.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool net_has_prefix(const char *name, const char *prefix)
{
    size_t plen = strlen(prefix);
    return strncmp(name, prefix, plen) == 0 && name[plen] &&
           strspn(name + plen, "0123456789") == strlen(name + plen);
}

void net_private(void)
{
    struct ifreq ifr = {0};
    int fd;

    ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    ck_assert_int_eq(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    ck_assert_int_eq(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
    close(fd);
}

static int net_init_module(struct net_fixture *f, struct bg_plugin *p, const char *name,
                           struct banger_error *e)
{
    int r = loader_open(BUILDDIR "/plugins/" "tap/.libs", name, false, p, e);

    if (r < 0 && strcmp(name, "nat") == 0)
        r = loader_open(BUILDDIR "/plugins/nat/.libs", name, false, p, e);
    if (r < 0)
        return r;
    r = p->cap->init(bg_host_api(), config_group(f->cfg, name), &p->state, e);
    if (r == 0)
        p->inited = true;
    /* What the daemon does once it serves. */
    if (r == 0 && p->cap->activate)
        r = p->cap->activate(p->state, e);
    return r;
}

void net_fixture_up(struct net_fixture *f, const char *conf, const char *const *modules)
{
    struct banger_error e = {0};
    size_t n = 0;

    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/banger-net-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    ck_assert_msg(config_load_string(conf, "test.conf", &f->cfg, &e) == 0, "config: %s",
                  bg_error_text(&e));
    config_set_current(f->cfg);
    for (; modules[n]; n++)
        ck_assert_msg(net_init_module(f, &f->mods[n], modules[n], &e) == 0, "init %s: %s",
                      modules[n], bg_error_text(&e));
    f->set.v = f->mods;
    f->set.n = n;
}

void net_fixture_down(struct net_fixture *f)
{
    for (size_t i = f->set.n; i-- > 0;) {
        if (f->mods[i].inited && f->mods[i].cap->fini)
            f->mods[i].cap->fini(f->mods[i].state);
        loader_close(&f->mods[i]);
    }
    config_set_current(NULL);
    config_free(f->cfg);
    if (f->dir[0]) {
        const char *argv[] = {"rm", "-rf", f->dir, NULL};
        net_run(argv, NULL);
    }
}

int net_try_init(const char *conf, const char *module, char *msg, size_t msg_len)
{
    struct net_fixture f;
    struct banger_error e = {0};
    int r;

    memset(&f, 0, sizeof(f));
    r = config_load_string(conf, "test.conf", &f.cfg, &e);
    if (r == 0) {
        config_set_current(f.cfg);
        r = net_init_module(&f, &f.mods[0], module, &e);
        if (r == 0 && f.mods[0].cap->fini)
            f.mods[0].cap->fini(f.mods[0].state);
        loader_close(&f.mods[0]);
        config_set_current(NULL);
    }
    config_free(f.cfg);
    snprintf(msg, msg_len, "%s", bg_error_text(&e));
    return r;
}

struct banger_vm *net_vm(struct net_fixture *f, const char *id, const char *name, int host,
                         bool nat)
{
    char state[128], run[128], ip[32], mac[32];
    struct banger_error e = {0};
    struct banger_vm *vm = NULL;

    snprintf(state, sizeof(state), "%s/%s", f->dir, id);
    snprintf(run, sizeof(run), "%s/%s.run", f->dir, id);
    mkdir(state, 0700);
    mkdir(run, 0700);
    snprintf(ip, sizeof(ip), "172.29.0.%d", host);
    snprintf(mac, sizeof(mac), "06:00:ac:1d:00:%02x", host);
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .id = id, .name = name, .ip = ip, .mac = mac,
        .gateway = "172.29.0.1", .prefix_len = 24, .cid = 3, .nat = nat,
        .state_dir = state, .runtime_dir = run, .bridge = "br-banger",
    };
    ck_assert_msg(bg_vm_new(&info, &vm, &e) == 0, "vm: %s", bg_error_text(&e));
    return vm;
}

static struct nl_cache *net_link_cache(struct nl_sock **sk)
{
    struct nl_cache *cache = NULL;

    *sk = nl_socket_alloc();
    ck_assert_ptr_nonnull(*sk);
    ck_assert_int_eq(nl_connect(*sk, NETLINK_ROUTE), 0);
    ck_assert_int_eq(rtnl_link_alloc_cache(*sk, AF_UNSPEC, &cache), 0);
    return cache;
}

int net_count_prefixed(const char *prefix, const char *bridge, int *attached_up)
{
    struct nl_sock *sk;
    struct nl_cache *cache = net_link_cache(&sk);
    int n = 0, good = 0, br = rtnl_link_name2i(cache, bridge);

    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_link *l = (struct rtnl_link *)o;
        if (!net_has_prefix(rtnl_link_get_name(l), prefix))
            continue;
        n++;
        if (br > 0 && rtnl_link_get_master(l) == br && (rtnl_link_get_flags(l) & IFF_UP))
            good++;
    }
    nl_cache_free(cache);
    nl_socket_free(sk);
    if (attached_up)
        *attached_up = good;
    return n;
}

bool net_wait_pool(const char *prefix, const char *bridge, int n)
{
    /* Bounded wait for the refill thread (not a timing assertion). */
    for (int i = 0; i < 400; i++) {
        int good = 0, have = net_count_prefixed(prefix, bridge, &good);
        if (have == n && good == n)
            return true;
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

int net_count_links(void)
{
    struct nl_sock *sk;
    struct nl_cache *cache = net_link_cache(&sk);
    int n = nl_cache_nitems(cache);

    nl_cache_free(cache);
    nl_socket_free(sk);
    return n;
}

int net_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

bool net_wait_fds(int n)
{
    /* A background thread may still be closing its netlink socket. */
    for (int i = 0; i < 200; i++) {
        if (net_count_fds() == n)
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

bool net_link_exists(const char *name)
{
    return if_nametoindex(name) != 0;
}

static int net_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *net_snapshot_links(const char *prefix)
{
    struct nl_sock *sk;
    struct nl_cache *links = net_link_cache(&sk), *addrs = NULL;
    char *rows[512], *out;
    size_t n = 0, len = 1;

    ck_assert_int_eq(rtnl_addr_alloc_cache(sk, &addrs), 0);
    for (struct nl_object *o = nl_cache_get_first(links); o && n < 512;
         o = nl_cache_get_next(o)) {
        struct rtnl_link *l = (struct rtnl_link *)o;
        char row[1024], buf[64], master[IFNAMSIZ] = "-";
        size_t used;

        if (net_has_prefix(rtnl_link_get_name(l), prefix))
            continue;
        if (rtnl_link_get_master(l) > 0)
            rtnl_link_i2name(links, rtnl_link_get_master(l), master, sizeof(master));
        used = (size_t)snprintf(row, sizeof(row), "%s master=%s up=%d addrs=",
                                rtnl_link_get_name(l), master,
                                (rtnl_link_get_flags(l) & IFF_UP) != 0);
        for (struct nl_object *a = nl_cache_get_first(addrs); a; a = nl_cache_get_next(a)) {
            struct rtnl_addr *ad = (struct rtnl_addr *)a;
            if (rtnl_addr_get_ifindex(ad) != rtnl_link_get_ifindex(l) ||
                rtnl_addr_get_family(ad) != AF_INET)
                continue;
            nl_addr2str(rtnl_addr_get_local(ad), buf, sizeof(buf));
            used += (size_t)snprintf(row + used, sizeof(row) - used, "%s,", buf);
        }
        rows[n++] = strdup(row);
        len += strlen(row) + 1;
    }
    qsort(rows, n, sizeof(rows[0]), net_cmp);
    out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(out, rows[i]);
        strcat(out, "\n");
        free(rows[i]);
    }
    nl_cache_free(addrs);
    nl_cache_free(links);
    nl_socket_free(sk);
    return out;
}

int net_run(const char *const *argv, char **out)
{
    struct banger_run_result res = {.struct_size = sizeof(res)};
    struct banger_error e = {0};
    int status;

    runner_run(argv, NULL, &res, &e);
    status = res.exit_status;
    if (out)
        *out = strdup(res.out ? res.out : "");
    runner_result_clear(&res);
    return status;
}

char *net_ruleset_text(void)
{
    const char *argv[] = {"nft", "list", "ruleset", NULL};
    char *out = NULL;

    ck_assert_int_eq(net_run(argv, &out), 0);
    return out;
}
