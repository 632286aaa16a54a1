/* tap capability: the bridge, a warm pool of persistent TAPs, and each VM's
 * network interface plus its ip= kernel argument. */
#include "config.h"

#include "tap-addr.h"
#include "tap-nl.h"
#include "tap-pool.h"

#include <banger/capability.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_HANDLE_DEV "tap.dev"
#define TAP_DEFAULT_BRIDGE "br-banger"
#define TAP_DEFAULT_CIDR "172.29.0.0/24"

struct tap_state {
    const struct banger_host_api *host;
    struct tap_pool *pool;
    struct tap_pool_cfg cfg;
    char cidr[64];
};

static int tap_read_network(const struct banger_host_api *host, struct tap_pool_cfg *pc,
                            char *cidr_out, size_t cidr_len, struct banger_error *err)
{
    const struct banger_cfg *net = host->cfg_group("network");
    const char *bridge = TAP_DEFAULT_BRIDGE, *cidr = TAP_DEFAULT_CIDR;
    uint32_t net_addr, prefix_len;
    int r;

    r = host->cfg_get_string(net, "bridge", &bridge, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (!bridge[0] || strlen(bridge) >= IFNAMSIZ || strpbrk(bridge, "/ \t:"))
        return host->cfg_fail(net, "bridge", err, "not a valid interface name: \"%s\"", bridge);
    r = host->cfg_get_string(net, "cidr", &cidr, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (tap_parse_cidr(cidr, &net_addr, &prefix_len) < 0)
        return host->cfg_fail(net, "cidr", err, "expected a network like 172.29.0.0/24, not "
                              "\"%s\"", cidr);
    if (tap_cidr_gateway(net_addr, prefix_len, &pc->gateway) < 0)
        return host->cfg_fail(net, "cidr", err, "%s is too small: a gateway and at least one "
                              "guest need /30 or larger", cidr);
    pc->prefix_len = prefix_len;
    snprintf(pc->bridge, sizeof(pc->bridge), "%s", bridge);
    snprintf(cidr_out, cidr_len, "%s", cidr);
    return 0;
}

static int tap_init(const struct banger_host_api *host, const struct banger_cfg *cfg,
                    void **state, struct banger_error *err)
{
    static const char *const allowed[] = {"pool_size", "prefix", NULL};
    struct tap_state *st = NULL;
    long long pool_size = 8;
    const char *prefix = "bgtap";
    int r;

    if (!BANGER_HAS_FIELD(struct banger_host_api, host, cfg_group))
        return -ENOTSUP;
    r = host->cfg_check_keys(cfg, allowed, err);
    if (r < 0)
        return r;
    r = host->cfg_get_int(cfg, "pool_size", &pool_size, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (pool_size < 0 || pool_size > TAP_POOL_MAX)
        return host->cfg_fail(cfg, "pool_size", err, "must be between 0 and %d, not %lld",
                              TAP_POOL_MAX, pool_size);
    r = host->cfg_get_string(cfg, "prefix", &prefix, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (!tap_prefix_valid(prefix))
        return host->cfg_fail(cfg, "prefix", err, "must be 1 to %d characters of [a-z0-9] "
                              "(TAP names must fit IFNAMSIZ), not \"%s\"", TAP_PREFIX_MAX,
                              prefix);
    st = calloc(1, sizeof(*st));
    if (!st)
        return host->fail(err, -ENOMEM, "out of memory");
    st->host = host;
    r = tap_read_network(host, &st->cfg, st->cidr, sizeof(st->cidr), err);
    if (r < 0)
        goto cleanup;
    snprintf(st->cfg.prefix, sizeof(st->cfg.prefix), "%s", prefix);
    st->cfg.size = (unsigned)pool_size;
    r = tap_pool_new(&st->cfg, &st->pool);
    if (r < 0) {
        host->fail(err, r, "out of memory");
        goto cleanup;
    }
    *state = st;
    st = NULL;
cleanup:
    if (st)
        tap_pool_free(st->pool);
    free(st);
    return r;
}

/* The bridge and the warm pool with its refill thread: host changes, so
 * not in init (`bangerd --check` runs init). */
static int tap_activate(void *state, struct banger_error *err)
{
    struct tap_state *st = state;
    char why[256];
    int r = tap_pool_start(st->pool, why, sizeof(why));
    if (r < 0)
        return st->host->fail(err, r, "%s", why);
    return 0;
}

static void tap_fini(void *state)
{
    struct tap_state *st = state;

    if (!st)
        return;
    tap_pool_free(st->pool);
    free(st);
}

/* Hand the TAP back; the handle goes only once the TAP is dealt with. */
static int tap_stop(void *state, struct banger_vm *vm, struct banger_error *err)
{
    struct tap_state *st = state;
    const char *handle = st->host->get_handle(vm, TAP_HANDLE_DEV);
    char name[IFNAMSIZ], why[256];
    int r;

    if (!handle || !handle[0])
        return 0;
    snprintf(name, sizeof(name), "%s", handle);
    r = tap_pool_release(st->pool, name, why, sizeof(why));
    if (r < 0)
        return st->host->fail(err, r, "release TAP %s: %s", name, why);
    return st->host->set_handle(vm, TAP_HANDLE_DEV, NULL, err);
}

static int tap_rollback(void *state, struct banger_vm *vm, enum banger_phase phase,
                        struct banger_error *err)
{
    return tap_stop(state, vm, err);
}

static int tap_contribute(struct tap_state *st, struct banger_vm *vm, const char *dev,
                          struct banger_error *err)
{
    const struct banger_vm_info *info = st->host->vm_info(vm);
    struct banger_net_iface iface = {
        .struct_size = sizeof(iface),
        .iface_id = "eth0",
        .host_dev_name = dev,
        .guest_mac = info->mac,
    };
    char gateway[16], arg[512];
    int r;

    r = st->host->set_net_iface(vm, &iface, err);
    if (r < 0)
        return r;
    r = st->host->fault_point(vm, "tap.iface", err);
    if (r < 0)
        return r;
    /* The VM info's gateway is the core's view of the same network. */
    if (info->gateway && info->gateway[0])
        snprintf(gateway, sizeof(gateway), "%s", info->gateway);
    else
        tap_format_ipv4(st->cfg.gateway, gateway);
    /* The DNS module answers on the gateway address. */
    r = tap_kernel_ip_arg(arg, sizeof(arg), info->ip, gateway,
                          info->prefix_len ? info->prefix_len : st->cfg.prefix_len, info->name,
                          gateway);
    if (r < 0)
        return st->host->fail(err, r, "ip= kernel argument too long");
    return st->host->add_kernel_arg(vm, arg, err);
}

static int tap_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                     struct banger_error *err)
{
    struct tap_state *st = state;
    const struct banger_vm_info *info = st->host->vm_info(vm);
    char name[IFNAMSIZ], why[256];
    int br, r;

    if (phase != BANGER_PHASE_BEFORE_LAUNCH)
        return 0;
    if (!info || !info->ip || !info->name || !info->mac)
        return st->host->fail(err, -EINVAL, "VM has no IP, name or MAC");
    r = tap_pool_bridge(st->pool, &br, why, sizeof(why));
    if (r < 0)
        return st->host->fail(err, r, "%s", why);
    r = st->host->fault_point(vm, "tap.bridge", err);
    if (r < 0)
        return r;
    /* A TAP left by an earlier start (crash before stop) is released first. */
    r = tap_stop(st, vm, err);
    if (r < 0)
        return r;
    r = tap_pool_acquire(st->pool, name, why, sizeof(why));
    if (r < 0)
        return st->host->fail(err, r, "%s", why);
    r = st->host->set_handle(vm, TAP_HANDLE_DEV, name, err);
    if (r < 0) {
        tap_pool_release(st->pool, name, why, sizeof(why));
        return r;
    }
    r = st->host->fault_point(vm, "tap.acquire", err);
    if (r < 0)
        return r;
    /* Repairs a pool TAP someone detached or downed meanwhile. */
    r = tap_dev_attach_up(name, br, why, sizeof(why));
    if (r < 0)
        return st->host->fail(err, r, "attach to bridge %s: %s", st->cfg.bridge, why);
    r = st->host->fault_point(vm, "tap.attach", err);
    if (r < 0)
        return r;
    return tap_contribute(st, vm, name, err);
}

struct tap_reap_ctx {
    struct tap_state *st;
    char (*live)[IFNAMSIZ];
    size_t n_live;
    int first_error;
    char why[256];
};

static void tap_reap_one(void *ctx, const char *name)
{
    struct tap_reap_ctx *c = ctx;
    char why[256];
    int r;

    for (size_t i = 0; i < c->n_live; i++)
        if (strcmp(c->live[i], name) == 0)
            return;
    if (tap_pool_owns(c->st->pool, name))
        return;
    c->st->host->log(BANGER_LOG_INFO, NULL, "tap: deleting orphan TAP %s", name);
    r = tap_dev_delete(name, why, sizeof(why));
    if (r < 0 && c->first_error == 0) {
        c->first_error = r;
        snprintf(c->why, sizeof(c->why), "%s", why);
    }
}

static int tap_reconcile(void *state, struct banger_vm *const *live, size_t n,
                         struct banger_error *err)
{
    struct tap_state *st = state;
    struct tap_reap_ctx ctx = {.st = st};
    char why[256];
    int r;

    ctx.live = calloc(n ? n : 1, sizeof(*ctx.live));
    if (!ctx.live)
        return st->host->fail(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *dev = st->host->get_handle(live[i], TAP_HANDLE_DEV);
        if (dev && dev[0])
            snprintf(ctx.live[ctx.n_live++], IFNAMSIZ, "%s", dev);
    }
    r = tap_dev_list(st->cfg.prefix, tap_reap_one, &ctx, why, sizeof(why));
    if (r < 0)
        st->host->fail(err, r, "%s", why);
    else if (ctx.first_error < 0)
        r = st->host->fail(err, ctx.first_error, "reap orphan TAPs: %s", ctx.why);
    free(ctx.live);
    return r;
}

static int tap_doctor(void *state, struct banger_doctor *report)
{
    struct tap_state *st = state;
    struct tap_bridge_status bs;
    char why[256], last[256];
    size_t n;

    if (tap_bridge_query(st->cfg.bridge, &bs, why, sizeof(why)) < 0)
        st->host->doctor_row(report, BANGER_DOCTOR_FAIL, "bridge", "%s", why);
    else if (!bs.present)
        st->host->doctor_row(report, BANGER_DOCTOR_WARN, "bridge",
                             "%s missing (created at the next VM start)", st->cfg.bridge);
    else if (!bs.is_bridge)
        st->host->doctor_row(report, BANGER_DOCTOR_FAIL, "bridge",
                             "%s exists but is not a bridge", st->cfg.bridge);
    else
        st->host->doctor_row(report, bs.up ? BANGER_DOCTOR_PASS : BANGER_DOCTOR_WARN,
                             "bridge", "%s (%s) is %s", st->cfg.bridge, st->cidr,
                             bs.up ? "up" : "down");
    n = tap_pool_count(st->pool, last, sizeof(last));
    if (last[0])
        st->host->doctor_row(report, BANGER_DOCTOR_WARN, "pool",
                             "%zu of %u warm TAPs; refill failing: %s", n, st->cfg.size, last);
    else
        st->host->doctor_row(report, BANGER_DOCTOR_PASS, "pool", "%zu of %u warm TAPs (%s*)", n,
                             st->cfg.size, st->cfg.prefix);
    return 0;
}

static const struct banger_capability tap_capability = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = "tap",
    .version = PACKAGE_VERSION,
    .description = "bridge, warm TAP pool and the VM's network interface",
    .phases = BANGER_PHASE_BEFORE_LAUNCH,
    .requires = NULL,
    .init = tap_init,
    .activate = tap_activate,
    .fini = tap_fini,
    .start = tap_start,
    .rollback = tap_rollback,
    .stop = tap_stop,
    .reconcile = tap_reconcile,
    .doctor = tap_doctor,
};

BANGER_CAPABILITY_DEFINE(tap_capability)
