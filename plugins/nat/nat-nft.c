#include "config.h"

#include "nat-nft.h"

#include <nftables/libnftables.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Append the rules of one of banger's tables to *rules. */
static int nat_nft_list_table(struct nat_nft *nft, const char *family, struct nat_rule **rules,
                              size_t *n, char *why, size_t why_len)
{
    struct nat_rule *got = NULL, *grown;
    char cmd[64], *json = NULL;
    size_t k = 0;
    int r;

    snprintf(cmd, sizeof(cmd), "list table %s " NAT_TABLE, family);
    r = nat_nft_run(nft, cmd, false, &json, why, why_len);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    r = nat_parse_rules(json, &got, &k);
    free(json);
    if (r < 0) {
        snprintf(why, why_len, "nftables: unreadable JSON listing: %s", strerror(-r));
        return r;
    }
    grown = realloc(*rules, (*n + k + 1) * sizeof(**rules));
    if (!grown) {
        free(got);
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    if (k)
        memcpy(grown + *n, got, k * sizeof(*got));
    *rules = grown;
    *n += k;
    free(got);
    return 0;
}

int nat_nft_list(struct nat_nft *nft, struct nat_rule **rules, size_t *n, char *why,
                 size_t why_len)
{
    int r;

    *rules = NULL;
    *n = 0;
    r = nat_nft_list_table(nft, "ip", rules, n, why, why_len);
    if (r == 0)
        r = nat_nft_list_table(nft, "bridge", rules, n, why, why_len);
    if (r < 0) {
        free(*rules);
        *rules = NULL;
        *n = 0;
    }
    return r;
}

int nat_nft_ruleset(struct nat_nft *nft, char **out, char *why, size_t why_len)
{
    return nat_nft_run(nft, "list ruleset", false, out, why, why_len);
}

/* Append the deletes of the doomed rules, and of each table they empty, to
 * cmds (cap bytes, room for 96 per rule and per table); returns how many
 * rules they delete. */
static size_t nat_delete_text(char *cmds, size_t cap, const struct nat_rule *rules, size_t n,
                              nat_rule_pred doomed, void *ctx)
{
    static const char *const families[] = {"ip", "bridge"};
    size_t used = strlen(cmds), k = 0;

    for (size_t f = 0; f < 2; f++) {
        size_t in_family = 0, doomed_here = 0;

        for (size_t i = 0; i < n; i++) {
            if (strcmp(rules[i].family, families[f]) != 0)
                continue;
            in_family++;
            if (!doomed(ctx, &rules[i]))
                continue;
            used += (size_t)snprintf(cmds + used, cap - used,
                                     "delete rule %s " NAT_TABLE " %s handle %llu\n",
                                     families[f], rules[i].chain,
                                     (unsigned long long)rules[i].handle);
            doomed_here++;
        }
        /* Nothing of ours left: leave no empty table behind either. */
        if (doomed_here && doomed_here == in_family)
            used += (size_t)snprintf(cmds + used, cap - used,
                                     "delete table %s " NAT_TABLE "\n", families[f]);
        k += doomed_here;
    }
    return k;
}

int nat_nft_delete_where(struct nat_nft *nft, nat_rule_pred doomed, void *ctx, size_t *deleted,
                         char *why, size_t why_len)
{
    struct nat_rule *rules = NULL;
    size_t n = 0, k, cap;
    char *cmds = NULL;
    int r;

    *deleted = 0;
    r = nat_nft_list(nft, &rules, &n, why, why_len);
    if (r < 0 || n == 0)
        goto cleanup;
    cap = (n + 2) * 96;
    cmds = calloc(1, cap);
    if (!cmds) {
        r = -ENOMEM;
        snprintf(why, why_len, "out of memory");
        goto cleanup;
    }
    k = nat_delete_text(cmds, cap, rules, n, doomed, ctx);
    if (k == 0)
        goto cleanup;
    r = nat_nft_run(nft, cmds, false, NULL, why, why_len);
    if (r == 0)
        *deleted = k;
cleanup:
    free(cmds);
    free(rules);
    return r;
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
