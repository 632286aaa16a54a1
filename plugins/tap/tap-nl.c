#include "config.h"

#include "tap-nl.h"
#include "tap-addr.h"

#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* libnl reports its own codes; callers want errno values. */
static int tap_nl_errno(int nle)
{
    switch (nle < 0 ? -nle : nle) {
    case 0: return 0;
    case NLE_PERM: return -EPERM;
    case NLE_EXIST: return -EEXIST;
    case NLE_NOMEM: return -ENOMEM;
    case NLE_BUSY: return -EBUSY;
    case NLE_INVAL: return -EINVAL;
    case NLE_RANGE: return -ERANGE;
    case NLE_NODEV:
    case NLE_OBJ_NOTFOUND: return -ENODEV;
    case NLE_OPNOTSUPP: return -EOPNOTSUPP;
    case NLE_AGAIN: return -EAGAIN;
    case NLE_NOADDR: return -EADDRNOTAVAIL;
    default: return -EIO;
    }
}

static int tap_nl_fail(char *why, size_t why_len, int r, const char *what)
{
    snprintf(why, why_len, "%s: %s%s", what, strerror(-r),
             r == -EPERM ? " (bangerd needs CAP_NET_ADMIN)" : "");
    return r;
}

static int tap_nl_open(struct nl_sock **out, char *why, size_t why_len)
{
    struct nl_sock *sk = nl_socket_alloc();
    int r;

    if (!sk)
        return tap_nl_fail(why, why_len, -ENOMEM, "netlink");
    r = nl_connect(sk, NETLINK_ROUTE);
    if (r < 0) {
        nl_socket_free(sk);
        return tap_nl_fail(why, why_len, tap_nl_errno(r), "netlink");
    }
    *out = sk;
    return 0;
}

/* The kernel's view of `name`; -ENODEV when absent. */
static int tap_link_get(struct nl_sock *sk, const char *name, struct rtnl_link **out)
{
    return tap_nl_errno(rtnl_link_get_kernel(sk, 0, name, out));
}

static int tap_link_set_up(struct nl_sock *sk, struct rtnl_link *link, bool up, int master)
{
    struct rtnl_link *change = rtnl_link_alloc();
    int r;

    if (!change)
        return -ENOMEM;
    if (up)
        rtnl_link_set_flags(change, IFF_UP);
    else
        rtnl_link_unset_flags(change, IFF_UP);
    if (master > 0)
        rtnl_link_set_master(change, master);
    r = tap_nl_errno(rtnl_link_change(sk, link, change, 0));
    rtnl_link_put(change);
    return r;
}

static int tap_bridge_add_address(struct nl_sock *sk, int ifindex, uint32_t gateway,
                                  uint32_t prefix_len)
{
    struct rtnl_addr *addr = rtnl_addr_alloc();
    uint32_t be = htonl(gateway);
    struct nl_addr *local = nl_addr_build(AF_INET, &be, sizeof(be));
    int r = -ENOMEM;

    if (!addr || !local)
        goto cleanup;
    nl_addr_set_prefixlen(local, (int)prefix_len);
    rtnl_addr_set_ifindex(addr, ifindex);
    rtnl_addr_set_family(addr, AF_INET);
    r = rtnl_addr_set_local(addr, local);
    if (r < 0) {
        r = tap_nl_errno(r);
        goto cleanup;
    }
    rtnl_addr_set_prefixlen(addr, (int)prefix_len);
    r = tap_nl_errno(rtnl_addr_add(sk, addr, NLM_F_EXCL));
    if (r == -EEXIST)
        r = 0;
cleanup:
    nl_addr_put(local);
    rtnl_addr_put(addr);
    return r;
}

int tap_bridge_ensure(const char *bridge, uint32_t gateway, uint32_t prefix_len, int *ifindex,
                      char *why, size_t why_len)
{
    struct nl_sock *sk = NULL;
    struct rtnl_link *link = NULL, *fresh = NULL;
    char what[64];
    int r;

    snprintf(what, sizeof(what), "bridge %s", bridge);
    r = tap_nl_open(&sk, why, why_len);
    if (r < 0)
        return r;
    r = tap_link_get(sk, bridge, &link);
    if (r == -ENODEV) {
        fresh = rtnl_link_bridge_alloc();
        if (!fresh) {
            r = tap_nl_fail(why, why_len, -ENOMEM, what);
            goto cleanup;
        }
        rtnl_link_set_name(fresh, bridge);
        r = tap_nl_errno(rtnl_link_add(sk, fresh, NLM_F_CREATE | NLM_F_EXCL));
        if (r < 0 && r != -EEXIST) {
            tap_nl_fail(why, why_len, r, what);
            goto cleanup;
        }
        r = tap_link_get(sk, bridge, &link);
    }
    if (r < 0) {
        tap_nl_fail(why, why_len, r, what);
        goto cleanup;
    }
    if (!rtnl_link_get_type(link) || strcmp(rtnl_link_get_type(link), "bridge") != 0) {
        snprintf(why, why_len, "%s: the name is taken by a %s interface, not a bridge "
                 "(rename or delete it, or set network.bridge)", what,
                 rtnl_link_get_type(link) ? rtnl_link_get_type(link) : "non-bridge");
        r = -EEXIST;
        goto cleanup;
    }
    r = tap_bridge_add_address(sk, rtnl_link_get_ifindex(link), gateway, prefix_len);
    if (r < 0) {
        char addr_text[16];
        tap_format_ipv4(gateway, addr_text);
        snprintf(what, sizeof(what), "bridge %s: address %s/%u", bridge, addr_text,
                 prefix_len);
        if (r == -EPERM)
            snprintf(what, sizeof(what), "bridge %s", bridge);
        tap_nl_fail(why, why_len, r, what);
        goto cleanup;
    }
    if (!(rtnl_link_get_flags(link) & IFF_UP)) {
        r = tap_link_set_up(sk, link, true, 0);
        if (r < 0) {
            tap_nl_fail(why, why_len, r, what);
            goto cleanup;
        }
    }
    if (ifindex)
        *ifindex = rtnl_link_get_ifindex(link);
cleanup:
    rtnl_link_put(fresh);
    rtnl_link_put(link);
    nl_socket_free(sk);
    return r;
}

int tap_bridge_query(const char *bridge, struct tap_bridge_status *st, char *why, size_t why_len)
{
    struct nl_sock *sk = NULL;
    struct rtnl_link *link = NULL;
    int r;

    memset(st, 0, sizeof(*st));
    r = tap_nl_open(&sk, why, why_len);
    if (r < 0)
        return r;
    r = tap_link_get(sk, bridge, &link);
    if (r == -ENODEV) {
        r = 0;
        goto cleanup;
    }
    if (r < 0) {
        tap_nl_fail(why, why_len, r, bridge);
        goto cleanup;
    }
    st->present = true;
    st->is_bridge = rtnl_link_get_type(link) && strcmp(rtnl_link_get_type(link), "bridge") == 0;
    st->up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
    st->ifindex = rtnl_link_get_ifindex(link);
cleanup:
    rtnl_link_put(link);
    nl_socket_free(sk);
    return r;
}

int tap_dev_create(const char *name, char *why, size_t why_len)
{
    struct ifreq ifr;
    int fd, r = 0;

    if (strlen(name) >= IFNAMSIZ) {
        snprintf(why, why_len, "TAP name %s too long", name);
        return -ENAMETOOLONG;
    }
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(why, why_len, "open /dev/net/tun: %s", strerror(-r));
        return r;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    /* IFF_TUN_EXCL: never adopt an existing device of that name. */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        r = -errno;
        tap_nl_fail(why, why_len, r, name);
        goto cleanup;
    }
    /* A persistent TAP with neither owner nor group may be attached by any
     * local user (the kernel then asks for no CAP_NET_ADMIN): make it root's,
     * so that only root, or a jailed VMM it is lent to, can open it. */
    if (ioctl(fd, TUNSETOWNER, 0UL) < 0 || ioctl(fd, TUNSETGROUP, 0UL) < 0 ||
        ioctl(fd, TUNSETPERSIST, 1) < 0) {
        r = -errno;
        tap_nl_fail(why, why_len, r, name);
    }
cleanup:
    close(fd);
    return r;
}

int tap_dev_attach_up(const char *name, int br_ifindex, char *why, size_t why_len)
{
    struct nl_sock *sk = NULL;
    struct rtnl_link *link = NULL;
    int r, ifindex = (int)if_nametoindex(name);

    if (ifindex == 0) {
        r = -errno;
        return tap_nl_fail(why, why_len, r, name);
    }
    r = tap_nl_open(&sk, why, why_len);
    if (r < 0)
        return r;
    link = rtnl_link_alloc();
    if (!link) {
        r = tap_nl_fail(why, why_len, -ENOMEM, name);
        goto cleanup;
    }
    rtnl_link_set_ifindex(link, ifindex);
    rtnl_link_set_name(link, name);
    r = tap_link_set_up(sk, link, true, br_ifindex);
    if (r < 0)
        tap_nl_fail(why, why_len, r, name);
cleanup:
    rtnl_link_put(link);
    nl_socket_free(sk);
    return r;
}

static int tap_flush_addresses(struct nl_sock *sk, int ifindex)
{
    struct nl_cache *cache = NULL;
    struct nl_object *obj;
    int r = tap_nl_errno(rtnl_addr_alloc_cache(sk, &cache));

    if (r < 0)
        return r;
    for (obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
        struct rtnl_addr *a = (struct rtnl_addr *)obj;
        int d;

        if (rtnl_addr_get_ifindex(a) != ifindex)
            continue;
        d = tap_nl_errno(rtnl_addr_delete(sk, a, 0));
        if (d < 0 && d != -EADDRNOTAVAIL && d != -ENODEV && r == 0)
            r = d;
    }
    nl_cache_free(cache);
    return r;
}

int tap_dev_reset(const char *name, int br_ifindex, bool *in_use, char *why, size_t why_len)
{
    struct nl_sock *sk = NULL;
    struct rtnl_link *link = NULL;
    int r;

    *in_use = false;
    r = tap_nl_open(&sk, why, why_len);
    if (r < 0)
        return r;
    r = tap_link_get(sk, name, &link);
    if (r < 0) {
        tap_nl_fail(why, why_len, r, name);
        goto cleanup;
    }
    if (!rtnl_link_get_type(link) || strcmp(rtnl_link_get_type(link), "tun") != 0) {
        snprintf(why, why_len, "%s: not a TAP device", name);
        r = -EINVAL;
        goto cleanup;
    }
    /* A holder of the TUN fd keeps the carrier on. */
    *in_use = rtnl_link_get_carrier(link) != 0;
    r = tap_link_set_up(sk, link, false, 0);
    if (r == 0)
        r = tap_flush_addresses(sk, rtnl_link_get_ifindex(link));
    if (r == 0)
        r = tap_link_set_up(sk, link, true, br_ifindex);
    if (r < 0)
        tap_nl_fail(why, why_len, r, name);
cleanup:
    rtnl_link_put(link);
    nl_socket_free(sk);
    return r;
}

int tap_dev_delete(const char *name, char *why, size_t why_len)
{
    struct nl_sock *sk = NULL;
    struct rtnl_link *link = NULL;
    int r;

    r = tap_nl_open(&sk, why, why_len);
    if (r < 0)
        return r;
    link = rtnl_link_alloc();
    if (!link) {
        r = tap_nl_fail(why, why_len, -ENOMEM, name);
        goto cleanup;
    }
    rtnl_link_set_name(link, name);
    r = tap_nl_errno(rtnl_link_delete(sk, link));
    if (r == -ENODEV)
        r = 0;
    if (r < 0)
        tap_nl_fail(why, why_len, r, name);
cleanup:
    rtnl_link_put(link);
    nl_socket_free(sk);
    return r;
}

int tap_dev_list(const char *prefix, tap_link_fn fn, void *ctx, char *why, size_t why_len)
{
    struct nl_sock *sk = NULL;
    struct nl_cache *cache = NULL;
    struct nl_object *obj;
    int r;

    r = tap_nl_open(&sk, why, why_len);
    if (r < 0)
        return r;
    r = tap_nl_errno(rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache));
    if (r < 0) {
        tap_nl_fail(why, why_len, r, "list links");
        goto cleanup;
    }
    for (obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
        const char *name = rtnl_link_get_name((struct rtnl_link *)obj);

        if (name && tap_name_has_prefix(name, prefix))
            fn(ctx, name);
    }
cleanup:
    nl_cache_free(cache);
    nl_socket_free(sk);
    return r;
}
