#include "config.h"

#include "nat-nft.h"

#include <nftables/libnftables.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAT_IP_FORWARD "/proc/sys/net/ipv4/ip_forward"

struct nat_nft {
    struct nft_ctx *ctx;
    pthread_mutex_t lock;
};

int nat_nft_new(struct nat_nft **out, char *why, size_t why_len)
{
    struct nat_nft *nft = calloc(1, sizeof(*nft));

    if (!nft)
        goto nomem;
    nft->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft->ctx)
        goto nomem;
    if (nft_ctx_buffer_output(nft->ctx) < 0 || nft_ctx_buffer_error(nft->ctx) < 0)
        goto nomem;
    pthread_mutex_init(&nft->lock, NULL);
    *out = nft;
    return 0;
nomem:
    if (nft && nft->ctx)
        nft_ctx_free(nft->ctx);
    free(nft);
    snprintf(why, why_len, "nftables context: out of memory");
    return -ENOMEM;
}

void nat_nft_free(struct nat_nft *nft)
{
    if (!nft)
        return;
    nft_ctx_free(nft->ctx);
    pthread_mutex_destroy(&nft->lock);
    free(nft);
}

void nat_nft_lock(struct nat_nft *nft)
{
    pthread_mutex_lock(&nft->lock);
}

void nat_nft_unlock(struct nat_nft *nft)
{
    pthread_mutex_unlock(&nft->lock);
}

/* nft's error text ends with the command and a caret line; keep line one. */
static void nat_nft_reason(struct nat_nft *nft, char *why, size_t why_len)
{
    const char *text = nft_ctx_get_error_buffer(nft->ctx);
    size_t len;

    if (!text || !text[0])
        text = "nft command failed";
    len = strcspn(text, "\n");
    snprintf(why, why_len, "nftables: %.*s", (int)len, text);
}

static int nat_nft_errno(const char *why)
{
    if (strstr(why, "Operation not permitted"))
        return -EPERM;
    if (strstr(why, "No such file or directory"))
        return -ENOENT;
    return -EIO;
}

int nat_nft_run(struct nat_nft *nft, const char *cmds, bool echo, char **out, char *why,
                size_t why_len)
{
    unsigned flags = echo ? NFT_CTX_OUTPUT_HANDLE | NFT_CTX_OUTPUT_ECHO | NFT_CTX_OUTPUT_JSON
                          : NFT_CTX_OUTPUT_HANDLE | NFT_CTX_OUTPUT_JSON;

    if (out)
        *out = NULL;
    nft_ctx_output_set_flags(nft->ctx, flags);
    if (nft_run_cmd_from_buffer(nft->ctx, cmds) != 0) {
        nat_nft_reason(nft, why, why_len);
        /* Drain the buffers so the next command starts clean. */
        nft_ctx_get_output_buffer(nft->ctx);
        return nat_nft_errno(why);
    }
    if (out) {
        *out = strdup(nft_ctx_get_output_buffer(nft->ctx));
        if (!*out) {
            snprintf(why, why_len, "out of memory");
            return -ENOMEM;
        }
    } else {
        nft_ctx_get_output_buffer(nft->ctx);
    }
    return 0;
}

int nat_nft_list(struct nat_nft *nft, struct nat_rule **rules, size_t *n, char *why,
                 size_t why_len)
{
    char *json = NULL;
    int r;

    *rules = NULL;
    *n = 0;
    r = nat_nft_run(nft, "list table ip " NAT_TABLE, false, &json, why, why_len);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    r = nat_parse_rules(json, rules, n);
    if (r < 0)
        snprintf(why, why_len, "nftables: unreadable JSON listing: %s", strerror(-r));
    free(json);
    return r;
}

int nat_nft_ruleset(struct nat_nft *nft, char **out, char *why, size_t why_len)
{
    return nat_nft_run(nft, "list ruleset", false, out, why, why_len);
}

int nat_nft_delete_where(struct nat_nft *nft, nat_rule_pred doomed, void *ctx, size_t *deleted,
                         char *why, size_t why_len)
{
    struct nat_rule *rules = NULL;
    size_t n = 0, k = 0, used = 0, cap;
    char *cmds = NULL;
    int r;

    *deleted = 0;
    r = nat_nft_list(nft, &rules, &n, why, why_len);
    if (r < 0 || n == 0)
        goto cleanup;
    cap = (n + 1) * 96;
    cmds = malloc(cap);
    if (!cmds) {
        r = -ENOMEM;
        snprintf(why, why_len, "out of memory");
        goto cleanup;
    }
    cmds[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!doomed(ctx, &rules[i]))
            continue;
        used += (size_t)snprintf(cmds + used, cap - used,
                                 "delete rule ip " NAT_TABLE " %s handle %llu\n",
                                 rules[i].chain, (unsigned long long)rules[i].handle);
        k++;
    }
    if (k == 0)
        goto cleanup;
    /* Nothing of ours left: leave no empty table behind either. */
    if (k == n)
        snprintf(cmds + used, cap - used, "delete table ip " NAT_TABLE "\n");
    r = nat_nft_run(nft, cmds, false, NULL, why, why_len);
    if (r == 0)
        *deleted = k;
cleanup:
    free(cmds);
    free(rules);
    return r;
}

int nat_enable_ip_forward(char *why, size_t why_len)
{
    int fd = open(NAT_IP_FORWARD, O_WRONLY | O_CLOEXEC);
    int r = 0;

    if (fd < 0) {
        r = -errno;
        snprintf(why, why_len, "open " NAT_IP_FORWARD ": %s", strerror(-r));
        return r;
    }
    if (write(fd, "1\n", 2) != 2) {
        r = -errno;
        snprintf(why, why_len, "enable " NAT_IP_FORWARD ": %s", strerror(-r));
    }
    close(fd);
    return r;
}

int nat_ip_forward_state(void)
{
    char c = 0;
    int fd = open(NAT_IP_FORWARD, O_RDONLY | O_CLOEXEC);
    ssize_t got;

    if (fd < 0)
        return -errno;
    got = read(fd, &c, 1);
    close(fd);
    if (got != 1)
        return -EIO;
    return c == '1';
}

int nat_default_uplink(char *name, size_t name_len, char *why, size_t why_len)
{
    struct nl_sock *sk = nl_socket_alloc();
    struct nl_cache *cache = NULL;
    struct nl_object *obj;
    int r = -ENOENT, ifindex = 0;

    if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0) {
        snprintf(why, why_len, "netlink: cannot connect");
        r = -EIO;
        goto cleanup;
    }
    if (rtnl_route_alloc_cache(sk, AF_INET, 0, &cache) < 0) {
        snprintf(why, why_len, "netlink: cannot read the routing table");
        r = -EIO;
        goto cleanup;
    }
    for (obj = nl_cache_get_first(cache); obj && !ifindex; obj = nl_cache_get_next(obj)) {
        struct rtnl_route *route = (struct rtnl_route *)obj;
        struct nl_addr *dst = rtnl_route_get_dst(route);
        struct rtnl_nexthop *nh;

        if (rtnl_route_get_table(route) != RT_TABLE_MAIN ||
            rtnl_route_get_type(route) != RTN_UNICAST || (dst && nl_addr_get_prefixlen(dst)))
            continue;
        nh = rtnl_route_nexthop_n(route, 0);
        if (nh)
            ifindex = rtnl_route_nh_get_ifindex(nh);
    }
    if (ifindex <= 0) {
        snprintf(why, why_len, "no IPv4 default route to find the uplink: set nat.uplink");
        goto cleanup;
    }
    if (name_len < IFNAMSIZ || !if_indextoname((unsigned)ifindex, name)) {
        snprintf(why, why_len, "default route device %d has no name", ifindex);
        goto cleanup;
    }
    r = 0;
cleanup:
    nl_cache_free(cache);
    nl_socket_free(sk);
    return r;
}
