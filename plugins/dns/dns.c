/* dns capability module: a small DNS server inside bangerd that answers
 * <vm>.<zone> for running VMs and relays every other name to the host's
 * real resolver. Guests reach it on the bridge address (port 53), the host
 * on dns.listen_host; on systemd-resolved hosts the zone is routed to it. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <banger/capability.h>

#include "dns-query.h"
#include "dns-records.h"
#include "dns-server.h"
#include "dns-upstream.h"

#define DNS_DEFAULT_ZONE "vm"
#define DNS_DEFAULT_LISTEN_HOST "127.0.0.1:5353"
#define DNS_DEFAULT_BRIDGE "br-banger"
#define DNS_DEFAULT_CIDR "172.29.0.0/24"
#define DNS_DEFAULT_TIMEOUT_MS 2500

static const struct banger_host_api *host;

struct dns_state {
    struct dns_records records;
    struct dns_server *srv;
    pthread_mutex_t lock;               /* bridge listener retry, resolved routing */
    char zone[256];
    char bridge[IFNAMSIZ];
    char gateway[INET_ADDRSTRLEN];
    bool listen_bridge;
    struct dns_addr bridge_addr;
    bool listen_host;
    struct dns_addr host_addr;
    char listen_host_text[64];
    bool upstream_auto;
    bool use_resolved;                  /* dns.resolved and systemd-resolved present */
    bool resolved_routed;
};

/* ---- configuration ------------------------------------------------------ */

static int dns_cfg_string(const struct banger_cfg *g, const char *key, const char *def,
                          const char **out, struct banger_error *err)
{
    int r = host->cfg_get_string(g, key, out, err);
    if (r == -ENOENT) {
        *out = def;
        return 0;
    }
    return r;
}

static int dns_cfg_bool(const struct banger_cfg *g, const char *key, bool def, bool *out,
                        struct banger_error *err)
{
    int r = host->cfg_get_bool(g, key, out, err);
    if (r == -ENOENT) {
        *out = def;
        return 0;
    }
    return r;
}

/* Gateway = first host address of network.cidr; bridge = network.bridge. */
static int dns_network(struct dns_state *st, struct banger_error *err)
{
    const struct banger_cfg *net = host->cfg_group("network");
    const char *cidr, *bridge;
    int r = dns_cfg_string(net, "cidr", DNS_DEFAULT_CIDR, &cidr, err);
    if (r < 0)
        return r;
    r = dns_cfg_string(net, "bridge", DNS_DEFAULT_BRIDGE, &bridge, err);
    if (r < 0)
        return r;
    char addr_text[INET_ADDRSTRLEN];
    const char *slash = strchr(cidr, '/');
    size_t n = slash ? (size_t)(slash - cidr) : strlen(cidr);
    struct in_addr a;
    if (n >= sizeof addr_text)
        return host->fail(err, -EINVAL, "network.cidr '%s' is not an IPv4 network", cidr);
    memcpy(addr_text, cidr, n);
    addr_text[n] = '\0';
    if (inet_pton(AF_INET, addr_text, &a) != 1)
        return host->fail(err, -EINVAL, "network.cidr '%s' is not an IPv4 network", cidr);
    a.s_addr = htonl(ntohl(a.s_addr) + 1);
    inet_ntop(AF_INET, &a, st->gateway, sizeof st->gateway);
    snprintf(st->bridge, sizeof st->bridge, "%s", bridge);
    char gw_port[INET_ADDRSTRLEN + 4];
    snprintf(gw_port, sizeof gw_port, "%s:53", st->gateway);
    if (dns_addr_parse(gw_port, 53, &st->bridge_addr) < 0)
        return host->fail(err, -EINVAL, "bad gateway address %s", st->gateway);
    return 0;
}

static int dns_config(struct dns_state *st, const struct banger_cfg *cfg, struct dns_addr *upstream,
                      long long *timeout_ms, struct banger_error *err)
{
    static const char *const keys[] = {
        "zone", "listen_host", "upstream", "listen_bridge", "forward_timeout_ms", "resolved", NULL,
    };
    const char *zone, *listen_host, *up;
    bool resolved;
    int r = host->cfg_check_keys(cfg, keys, err);
    if (r < 0)
        return r;

    r = dns_cfg_string(cfg, "zone", DNS_DEFAULT_ZONE, &zone, err);
    if (r < 0)
        return r;
    if (!dns_zone_name_valid(zone))
        return host->cfg_fail(cfg, "zone", err,
                              "'%s' is not a zone name (lowercase labels of a-z, 0-9 and '-', "
                              "separated by dots, no trailing dot)", zone);
    snprintf(st->zone, sizeof st->zone, "%s", zone);

    r = dns_cfg_string(cfg, "listen_host", DNS_DEFAULT_LISTEN_HOST, &listen_host, err);
    if (r < 0)
        return r;
    st->listen_host = listen_host[0] != '\0'; /* "" turns the host listener off */
    if (st->listen_host && dns_addr_parse(listen_host, 53, &st->host_addr) < 0)
        return host->cfg_fail(cfg, "listen_host", err,
                              "'%s' is not IP[:port] (e.g. \"127.0.0.1:5353\"; \"\" for none)",
                              listen_host);
    snprintf(st->listen_host_text, sizeof st->listen_host_text, "%s", listen_host);

    r = dns_cfg_string(cfg, "upstream", "auto", &up, err);
    if (r < 0)
        return r;
    st->upstream_auto = strcmp(up, "auto") == 0;
    if (!st->upstream_auto && dns_addr_parse(up, 53, upstream) < 0)
        return host->cfg_fail(cfg, "upstream", err,
                              "'%s' is neither \"auto\" nor IP[:port] (e.g. \"192.0.2.1:53\")", up);

    r = dns_cfg_bool(cfg, "listen_bridge", true, &st->listen_bridge, err);
    if (r < 0)
        return r;
    r = dns_cfg_bool(cfg, "resolved", true, &resolved, err);
    if (r < 0)
        return r;

    *timeout_ms = DNS_DEFAULT_TIMEOUT_MS;
    r = host->cfg_get_int(cfg, "forward_timeout_ms", timeout_ms, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (*timeout_ms < 100 || *timeout_ms > 30000)
        return host->cfg_fail(cfg, "forward_timeout_ms", err, "%lld is outside 100..30000",
                              *timeout_ms);

    st->use_resolved = resolved && st->listen_bridge;
    return dns_network(st, err);
}

/* ---- systemd-resolved routing ------------------------------------------- */

static bool dns_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/sbin:/usr/bin:/sbin:/bin";
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char file[512];
        if (n > 0 && n + strlen(prog) + 2 < sizeof file) {
            snprintf(file, sizeof file, "%.*s/%s", (int)n, p, prog);
            if (access(file, X_OK) == 0)
                return true;
        }
        p += n + (colon ? 1 : 0);
    }
    return false;
}

static bool dns_resolved_present(void)
{
    struct stat sb;
    return stat(DNS_RESOLVED_DIR, &sb) == 0 && S_ISDIR(sb.st_mode) && dns_on_path("resolvectl");
}

/* Run resolvectl; on failure log what it said. The error object is the
 * host's (opaque here), so the reason comes from the captured stderr. */
static int dns_resolvectl(const char *const *argv, bool quiet)
{
    struct banger_run_opts opts = { .struct_size = sizeof opts, .timeout_ms = 10000 };
    struct banger_run_result res = { .struct_size = sizeof res };
    int r = host->run(argv, &opts, &res, NULL);
    if (r < 0 && !quiet)
        host->log(BANGER_LOG_WARNING, NULL, "dns: resolvectl %s %s failed: %s", argv[1], argv[2],
                  res.err && res.err[0] ? res.err : strerror(-r));
    host->run_result_clear(&res);
    return r;
}

/* Send the zone's names on the bridge link to our bridge listener. Called
 * with st->lock held once the bridge listener is up. A failure only logs:
 * guests are unaffected, only host-side lookups of VM names miss. */
static void dns_resolved_route(struct dns_state *st)
{
    if (!st->use_resolved || st->resolved_routed)
        return;
    char domain[260];
    snprintf(domain, sizeof domain, "~%s", st->zone);
    const char *const dns_argv[] = { "resolvectl", "dns", st->bridge, st->gateway, NULL };
    const char *const domain_argv[] = { "resolvectl", "domain", st->bridge, domain, NULL };
    const char *const noroute_argv[] = { "resolvectl", "default-route", st->bridge, "false", NULL };
    if (dns_resolvectl(dns_argv, false) < 0 || dns_resolvectl(domain_argv, false) < 0)
        return;
    /* Keep other names off the bridge link; older resolvectl lacks this verb. */
    (void)dns_resolvectl(noroute_argv, true);
    st->resolved_routed = true;
    host->log(BANGER_LOG_INFO, NULL, "dns: systemd-resolved sends *.%s to %s on %s", st->zone,
              st->gateway, st->bridge);
}

static void dns_resolved_revert(struct dns_state *st)
{
    if (!st->resolved_routed)
        return;
    const char *const argv[] = { "resolvectl", "revert", st->bridge, NULL };
    (void)dns_resolvectl(argv, false);
    st->resolved_routed = false;
}

/* ---- listeners ---------------------------------------------------------- */

/* Bind the bridge listener if it is wanted and not up yet. The bridge
 * address may not exist yet at init (EADDRNOTAVAIL): then VM starts retry. */
static int dns_bridge_listen(struct dns_state *st)
{
    if (!st->listen_bridge)
        return 0;
    pthread_mutex_lock(&st->lock);
    int r = dns_server_listen(st->srv, DNS_LISTEN_BRIDGE, &st->bridge_addr);
    if (r == -EALREADY)
        r = 0;
    if (r == 0) {
        dns_resolved_route(st);
    }
    pthread_mutex_unlock(&st->lock);
    return r;
}

/* ---- callbacks ------------------------------------------------------------ */

static void dns_state_free(struct dns_state *st)
{
    if (!st)
        return;
    dns_server_free(st->srv); /* joins the thread before the table goes */
    dns_records_destroy(&st->records);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static int dns_init(const struct banger_host_api *h, const struct banger_cfg *cfg, void **state,
                    struct banger_error *err)
{
    if (!BANGER_HAS_FIELD(struct banger_host_api, h, doctor_row))
        return h->fail(err, -ENOTSUP, "host API too old");
    host = h;
    struct dns_addr upstream;
    long long timeout_ms = DNS_DEFAULT_TIMEOUT_MS;
    int r;
    struct dns_state *st = calloc(1, sizeof *st);
    if (!st)
        return host->fail(err, -ENOMEM, "out of memory");
    dns_records_init(&st->records);
    pthread_mutex_init(&st->lock, NULL);

    r = dns_config(st, cfg, &upstream, &timeout_ms, err);
    if (r < 0)
        goto cleanup;
    if (st->use_resolved && !dns_resolved_present())
        st->use_resolved = false; /* not a systemd-resolved host: nothing to route */

    struct dns_server_opts opts = {
        .zone = st->zone,
        .records = &st->records,
        .forward_timeout_ms = (int)timeout_ms,
        .upstream = st->upstream_auto ? NULL : &upstream,
        .resolv_conf = DNS_RESOLV_CONF,
        .resolved_conf = DNS_RESOLVED_CONF,
    };
    r = dns_server_new(&opts, &st->srv);
    if (r < 0) {
        host->fail(err, r, "cannot set up the DNS server: %s", strerror(-r));
        goto cleanup;
    }
    if (!dns_server_upstream(st->srv, NULL))
        host->log(BANGER_LOG_WARNING, NULL,
                  "dns: no upstream nameserver found in %s; names outside .%s will fail",
                  DNS_RESOLV_CONF, st->zone);

    *state = st;
    st = NULL;
cleanup:
    dns_state_free(st);
    return r;
}

/* The listeners and the server thread: host changes, so not in init
 * (`bangerd --check` runs init). */
static int dns_activate(void *state, struct banger_error *err)
{
    struct dns_state *st = state;
    int r = 0;
    if (st->listen_host) {
        r = dns_server_listen(st->srv, DNS_LISTEN_HOST, &st->host_addr);
        if (r < 0) {
            host->fail(err, r, "cannot listen on %s (dns.listen_host): %s",
                       st->listen_host_text, strerror(-r));
            return r;
        }
    }
    r = dns_server_start(st->srv);
    if (r < 0) {
        host->fail(err, r, "cannot start the DNS thread: %s", strerror(-r));
        return r;
    }
    r = dns_bridge_listen(st);
    if (r == -EADDRNOTAVAIL) {
        host->log(BANGER_LOG_INFO, NULL,
                  "dns: %s is not on %s yet; will listen there when a VM starts", st->gateway,
                  st->bridge);
        r = 0;
    } else if (r < 0) {
        host->fail(err, r, "cannot listen on %s:53 (the bridge address; set "
                   "dns.listen_bridge = false to turn this off): %s", st->gateway, strerror(-r));
        return r;
    }
    return 0;
}

static void dns_fini(void *state)
{
    struct dns_state *st = state;
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    dns_resolved_revert(st);
    pthread_mutex_unlock(&st->lock);
    dns_state_free(st);
}

static int dns_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                     struct banger_error *err)
{
    struct dns_state *st = state;
    const struct banger_vm_info *info = host->vm_info(vm);
    if (st->listen_bridge && !dns_server_listening(st->srv, DNS_LISTEN_BRIDGE)) {
        int r = dns_bridge_listen(st);
        if (r < 0) /* the VM still runs; only its name lookups fail */
            host->log(BANGER_LOG_WARNING, vm, "dns: cannot listen on %s:53: %s", st->gateway,
                      strerror(-r));
    }
    int r = dns_records_set(&st->records, info->id, info->name, info->ip);
    if (r < 0)
        return host->fail(err, r, "cannot add %s.%s -> %s", info->name ? info->name : "?",
                          st->zone, info->ip ? info->ip : "?");
    host->log(BANGER_LOG_DEBUG, vm, "dns: %s.%s -> %s", info->name, st->zone, info->ip);
    return host->fault_point(vm, "dns.add", err);
}

static int dns_stop(void *state, struct banger_vm *vm, struct banger_error *err)
{
    struct dns_state *st = state;
    const struct banger_vm_info *info = host->vm_info(vm);
    dns_records_remove(&st->records, info->id); /* gone counts as done */
    return 0;
}

static int dns_reconcile(void *state, struct banger_vm *const *live, size_t n,
                         struct banger_error *err)
{
    struct dns_state *st = state;
    dns_records_clear(&st->records);
    for (size_t i = 0; i < n; i++) {
        const struct banger_vm_info *info = host->vm_info(live[i]);
        if (dns_records_set(&st->records, info->id, info->name, info->ip) < 0)
            host->log(BANGER_LOG_WARNING, live[i], "dns: no record for '%s' (%s)",
                      info->name ? info->name : "?", info->ip ? info->ip : "?");
    }
    return 0;
}

static int dns_doctor(void *state, struct banger_doctor *report)
{
    struct dns_state *st = state;
    char text[128];
    if (st->listen_host)
        host->doctor_row(report,
                         dns_server_listening(st->srv, DNS_LISTEN_HOST) ? BANGER_DOCTOR_PASS
                                                                        : BANGER_DOCTOR_FAIL,
                         "host listener", "%s", st->listen_host_text);
    if (st->listen_bridge) {
        bool up = dns_server_listening(st->srv, DNS_LISTEN_BRIDGE);
        host->doctor_row(report, up ? BANGER_DOCTOR_PASS : BANGER_DOCTOR_WARN, "bridge listener",
                         up ? "%s:53 on %s" : "%s:53 on %s not bound yet (waits for the address)",
                         st->gateway, st->bridge);
    }
    struct dns_addr up;
    if (dns_server_upstream(st->srv, &up)) {
        dns_addr_format(&up, text, sizeof text);
        host->doctor_row(report, BANGER_DOCTOR_PASS, "upstream", "%s%s", text,
                         st->upstream_auto ? " (auto)" : "");
    } else {
        host->doctor_row(report, BANGER_DOCTOR_FAIL, "upstream",
                         "no nameserver found in %s or %s; set dns.upstream", DNS_RESOLV_CONF,
                         DNS_RESOLVED_CONF);
    }
    if (st->use_resolved)
        host->doctor_row(report, st->resolved_routed ? BANGER_DOCTOR_PASS : BANGER_DOCTOR_WARN,
                         "systemd-resolved", "*.%s %s", st->zone,
                         st->resolved_routed ? "routed to the bridge" : "not routed yet");
    host->doctor_row(report, BANGER_DOCTOR_PASS, "records", "%zu VM name(s) in .%s",
                     dns_records_count(&st->records), st->zone);
    return 0;
}

static const struct banger_capability dns_capability = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = "dns",
    .version = PACKAGE_VERSION,
    .description = "DNS for <vm>.<zone> on the bridge, other names relayed upstream",
    .phases = BANGER_PHASE_BEFORE_LAUNCH,
    .requires = (const char *const[]){ "tap", NULL },
    .init = dns_init,
    .activate = dns_activate,
    .fini = dns_fini,
    .start = dns_start,
    .rollback = NULL,
    .stop = dns_stop,
    .reconcile = dns_reconcile,
    .doctor = dns_doctor,
};

BANGER_CAPABILITY_DEFINE(dns_capability)
