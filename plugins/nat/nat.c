/* nat capability: the guard of every VM's TAP and outbound NAT for VMs
 * created with --nat. One nftables transaction per VM in banger's own
 * tables (bridge: the guard; ip: forward and masquerade, or no forwarding
 * at all); every rule carries the comment "banger:<vmid>", which is how
 * stop and reconcile find them. Forwarding is turned on per interface and
 * put back when the last --nat VM goes. */
#include "config.h"

#include "nat-forward.h"
#include "nat-nft.h"
#include "nat-rules.h"
#include "nat-sysctl.h"

#include <banger/capability.h>

#include <cjson/cJSON.h>

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAT_HANDLE_TAG "nat.tag"
#define NAT_HANDLE_RULES "nat.handles"
#define NAT_HANDLE_TAP "tap.dev"

struct nat_state {
    const struct banger_host_api *host;
    struct nat_nft *nft;
    char uplink[IFNAMSIZ];      /* "" = the default route's device */
    char bridge[IFNAMSIZ];
};

static int nat_init(const struct banger_host_api *host, const struct banger_cfg *cfg,
                    void **state, struct banger_error *err)
{
    static const char *const allowed[] = {"uplink", NULL};
    const char *uplink = "auto", *bridge = "br-banger";
    struct nat_state *st;
    char why[256];
    int r;

    if (!BANGER_HAS_FIELD(struct banger_host_api, host, cfg_group))
        return -ENOTSUP;
    r = host->cfg_check_keys(cfg, allowed, err);
    if (r < 0)
        return r;
    r = host->cfg_get_string(cfg, "uplink", &uplink, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (strcmp(uplink, "auto") != 0 && !nat_ifname_valid(uplink))
        return host->cfg_fail(cfg, "uplink", err, "not an interface name: \"%s\"", uplink);
    r = host->cfg_get_string(host->cfg_group("network"), "bridge", &bridge, err);
    if (r < 0 && r != -ENOENT)
        return r;
    st = calloc(1, sizeof(*st));
    if (!st)
        return host->fail(err, -ENOMEM, "out of memory");
    st->host = host;
    if (strcmp(uplink, "auto") != 0)
        snprintf(st->uplink, sizeof(st->uplink), "%s", uplink);
    snprintf(st->bridge, sizeof(st->bridge), "%s", bridge);
    r = nat_nft_new(&st->nft, why, sizeof(why));
    if (r < 0) {
        free(st);
        return host->fail(err, r, "%s", why);
    }
    *state = st;
    return 0;
}

static void nat_fini(void *state)
{
    struct nat_state *st = state;

    if (!st)
        return;
    nat_nft_free(st->nft);
    free(st);
}

static bool nat_rule_has_tag(void *ctx, const struct nat_rule *rule)
{
    return strcmp(rule->comment, (const char *)ctx) == 0;
}

/* Put the forwarding flags back when no --nat VM is left. Under the lock. */
static int nat_settle(struct nat_state *st, struct banger_vm *vm, char *why, size_t why_len)
{
    size_t restored = 0;
    int r = nat_forward_settle(st->nft, &restored, why, why_len);

    if (r == 0 && restored)
        st->host->log(BANGER_LOG_INFO, vm, "nat: restored %zu forwarding flags", restored);
    return r;
}

/* Delete this VM's rules, found by their tag (the recorded handles could
 * be stale if the table was recreated meanwhile). */
static int nat_stop(void *state, struct banger_vm *vm, struct banger_error *err)
{
    struct nat_state *st = state;
    const struct banger_vm_info *info = st->host->vm_info(vm);
    const char *tag_handle = st->host->get_handle(vm, NAT_HANDLE_TAG);
    const char *rules_handle = st->host->get_handle(vm, NAT_HANDLE_RULES);
    char tag[NAT_TAG_MAX], why[512];
    size_t deleted = 0;
    int r;

    if (!tag_handle && !rules_handle)
        return 0;
    if (tag_handle && strncmp(tag_handle, NAT_TAG_PREFIX, strlen(NAT_TAG_PREFIX)) == 0)
        snprintf(tag, sizeof(tag), "%s", tag_handle);
    else if (nat_make_tag(info->id, tag) < 0)
        return st->host->fail(err, -EINVAL, "VM id %s cannot tag rules", info->id);
    nat_nft_lock(st->nft);
    r = nat_nft_delete_where(st->nft, nat_rule_has_tag, tag, &deleted, why, sizeof(why));
    if (r == 0)
        r = nat_settle(st, vm, why, sizeof(why));
    nat_nft_unlock(st->nft);
    if (r < 0)
        return st->host->fail(err, r, "remove rules %s: %s", tag, why);
    if (deleted)
        st->host->log(BANGER_LOG_DEBUG, vm, "nat: removed %zu rules tagged %s", deleted, tag);
    r = st->host->set_handle(vm, NAT_HANDLE_RULES, NULL, err);
    if (r == 0)
        r = st->host->set_handle(vm, NAT_HANDLE_TAG, NULL, err);
    return r;
}

static int nat_rollback(void *state, struct banger_vm *vm, enum banger_phase phase,
                        struct banger_error *err)
{
    return nat_stop(state, vm, err);
}

/* What one VM's rules are made of. uplink is NULL for a VM without --nat. */
struct nat_vm_net {
    const char *tag, *ip, *mac, *tap, *bridge, *uplink;
};

/* Replace whatever this VM had with its rules, atomically; for a --nat VM
 * the same transaction records the forwarding flags about to change. */
static int nat_apply(struct nat_state *st, const struct nat_vm_net *net, char *handles,
                     size_t handles_len, char *why, size_t why_len)
{
    const char *const ifaces[] = {net->bridge, net->uplink, NULL};
    struct nat_rule *old = NULL;
    size_t n_old = 0, cap = 4096;
    char *cmds = NULL, *echo = NULL;
    int r;

    r = nat_nft_list(st->nft, &old, &n_old, why, why_len);
    if (r < 0)
        return r;
    cap += n_old * 96;
    cmds = calloc(1, cap);
    if (!cmds) {
        r = -ENOMEM;
        snprintf(why, why_len, "out of memory");
        goto cleanup;
    }
    /* Only the deletes: no table is emptied, new rules follow. */
    for (size_t i = 0; i < n_old; i++)
        if (strcmp(old[i].comment, net->tag) == 0)
            snprintf(cmds + strlen(cmds), cap - strlen(cmds),
                     "delete rule %s " NAT_TABLE " %s handle %llu\n", old[i].family,
                     old[i].chain, (unsigned long long)old[i].handle);
    r = nat_guard_text(cmds, cap, net->ip, net->mac, net->tap, net->tag);
    if (r == 0)
        r = net->uplink ? nat_rules_text(cmds, cap, net->ip, net->bridge, net->uplink, net->tag)
                        : nat_isolate_text(cmds, cap, net->ip, net->bridge, net->tag);
    if (r < 0) {
        snprintf(why, why_len, "cannot express rules for %s (%s) via %s/%s/%s", net->ip,
                 net->mac, net->tap, net->bridge, net->uplink ? net->uplink : "-");
        goto cleanup;
    }
    if (net->uplink) {
        r = nat_forward_save_text(cmds, cap, old, n_old, ifaces, why, why_len);
        if (r < 0)
            goto cleanup;
    }
    r = nat_nft_run(st->nft, cmds, true, &echo, why, why_len);
    if (r < 0)
        goto cleanup;
    r = nat_echo_handles(echo, net->tag, handles, handles_len);
    if (r < 0) {
        snprintf(why, why_len, "nftables did not echo the new rule handles");
        goto cleanup;
    }
    /* Only now: the previous values are on record. */
    if (net->uplink)
        r = nat_forward_enable(ifaces, why, why_len);
cleanup:
    free(echo);
    free(cmds);
    free(old);
    return r;
}

/* Every VM gets the guard of its TAP and, without --nat, a forward drop;
 * a --nat VM gets forwarding to the uplink and masquerade. */
static int nat_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                     struct banger_error *err)
{
    struct nat_state *st = state;
    const struct banger_vm_info *info = st->host->vm_info(vm);
    char uplink[IFNAMSIZ], tag[NAT_TAG_MAX], handles[512], why[512];
    struct nat_vm_net net = {.tag = tag};
    int r;

    if (phase != BANGER_PHASE_BEFORE_LAUNCH)
        return 0;
    net.tap = st->host->get_handle(vm, NAT_HANDLE_TAP);
    if (!net.tap || !net.tap[0])
        return st->host->fail(err, -EINVAL, "no TAP recorded (handle tap.dev): the tap "
                              "module must start first");
    if (nat_make_tag(info->id, tag) < 0)
        return st->host->fail(err, -EINVAL, "VM id %s cannot tag rules", info->id);
    net.ip = info->ip;
    net.mac = info->mac;
    net.bridge = info->bridge && info->bridge[0] ? info->bridge : st->bridge;
    if (info->nat) {
        if (st->uplink[0]) {
            snprintf(uplink, sizeof(uplink), "%s", st->uplink);
        } else {
            r = nat_default_uplink(uplink, sizeof(uplink), why, sizeof(why));
            if (r < 0)
                return st->host->fail(err, r, "%s", why);
        }
        net.uplink = uplink;
    }
    /* The tag is recorded before any rule exists: a crash after the apply
     * leaves stop enough to find the rules. */
    r = st->host->set_handle(vm, NAT_HANDLE_TAG, tag, err);
    if (r < 0)
        return r;
    r = st->host->fault_point(vm, "nat.record", err);
    if (r < 0)
        return r;
    nat_nft_lock(st->nft);
    r = nat_apply(st, &net, handles, sizeof(handles), why, sizeof(why));
    nat_nft_unlock(st->nft);
    if (r < 0)
        return st->host->fail(err, r, "%s%s", why,
                              r == -EPERM ? " (bangerd needs CAP_NET_ADMIN)" : "");
    r = st->host->fault_point(vm, "nat.apply", err);
    if (r < 0)
        return r;
    if (info->nat) {
        r = st->host->fault_point(vm, "nat.forward", err);
        if (r < 0)
            return r;
    }
    r = st->host->set_handle(vm, NAT_HANDLE_RULES, handles, err);
    if (r < 0)
        return r;
    st->host->log(BANGER_LOG_DEBUG, vm, "nat: %s on %s via %s: %s", info->ip, net.tap,
                  net.uplink ? net.uplink : "(no forwarding)", handles);
    return st->host->fault_point(vm, "nat.handles", err);
}

struct nat_live {
    char (*tags)[NAT_TAG_MAX];
    size_t n;
};

static bool nat_rule_orphaned(void *ctx, const struct nat_rule *rule)
{
    const struct nat_live *live = ctx;

    if (strncmp(rule->comment, NAT_TAG_PREFIX, strlen(NAT_TAG_PREFIX)) != 0)
        return false;
    for (size_t i = 0; i < live->n; i++)
        if (strcmp(live->tags[i], rule->comment) == 0)
            return false;
    return true;
}

static int nat_reconcile(void *state, struct banger_vm *const *live, size_t n,
                         struct banger_error *err)
{
    struct nat_state *st = state;
    struct nat_live alive = {0};
    size_t deleted = 0;
    char why[512];
    int r;

    alive.tags = calloc(n ? n : 1, sizeof(*alive.tags));
    if (!alive.tags)
        return st->host->fail(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (nat_make_tag(st->host->vm_info(live[i])->id, alive.tags[alive.n]) == 0)
            alive.n++;
    nat_nft_lock(st->nft);
    r = nat_nft_delete_where(st->nft, nat_rule_orphaned, &alive, &deleted, why, sizeof(why));
    /* After a crash the last --nat VM may be gone with its flags still on. */
    if (r == 0)
        r = nat_settle(st, NULL, why, sizeof(why));
    nat_nft_unlock(st->nft);
    free(alive.tags);
    if (r < 0)
        return st->host->fail(err, r, "remove orphaned rules: %s", why);
    if (deleted)
        st->host->log(BANGER_LOG_INFO, NULL, "nat: removed %zu orphaned rules", deleted);
    return 0;
}

/* A base chain on the forward hook with policy drop in someone else's
 * table (Docker's iptables-nft "filter FORWARD") drops guest traffic even
 * though our chain accepts it. */
static void nat_doctor_forward_policy(struct nat_state *st, struct banger_doctor *report,
                                      const char *json)
{
    cJSON *doc = cJSON_Parse(json), *it;
    const cJSON *items = doc ? cJSON_GetObjectItemCaseSensitive(doc, "nftables") : NULL;
    bool found = false;

    cJSON_ArrayForEach(it, items) {
        const cJSON *chain = cJSON_GetObjectItemCaseSensitive(it, "chain");
        const cJSON *hook = cJSON_GetObjectItemCaseSensitive(chain, "hook");
        const cJSON *policy = cJSON_GetObjectItemCaseSensitive(chain, "policy");
        const cJSON *table = cJSON_GetObjectItemCaseSensitive(chain, "table");
        const cJSON *family = cJSON_GetObjectItemCaseSensitive(chain, "family");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(chain, "name");

        if (!cJSON_IsString(hook) || strcmp(hook->valuestring, "forward") != 0 ||
            !cJSON_IsString(policy) || strcmp(policy->valuestring, "drop") != 0 ||
            !cJSON_IsString(table) || !cJSON_IsString(family) || !cJSON_IsString(name))
            continue;
        if (strcmp(table->valuestring, NAT_TABLE) == 0)
            continue;
        found = true;
        st->host->doctor_row(
            report, BANGER_DOCTOR_WARN, "forward policy",
            "chain %s %s %s drops forwarded traffic (Docker sets this): NAT'd guests get no "
            "replies. Fix: nft add rule ip filter DOCKER-USER iifname %s accept; nft add rule "
            "ip filter DOCKER-USER oifname %s ct state established,related accept "
            "(iptables: iptables -I DOCKER-USER -i %s -j ACCEPT; iptables -I DOCKER-USER -o %s "
            "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT)",
            family->valuestring, table->valuestring, name->valuestring, st->bridge, st->bridge,
            st->bridge, st->bridge);
    }
    if (!found)
        st->host->doctor_row(report, BANGER_DOCTOR_PASS, "forward policy",
                             "no forward chain with policy drop");
    cJSON_Delete(doc);
}

static int nat_doctor(void *state, struct banger_doctor *report)
{
    struct nat_state *st = state;
    char uplink[IFNAMSIZ], why[512];
    char *json = NULL;
    int fwd, br_fwd;

    if (st->uplink[0])
        st->host->doctor_row(report, BANGER_DOCTOR_PASS, "uplink", "%s (configured)",
                             st->uplink);
    else if (nat_default_uplink(uplink, sizeof(uplink), why, sizeof(why)) == 0)
        st->host->doctor_row(report, BANGER_DOCTOR_PASS, "uplink", "%s (default route)", uplink);
    else
        st->host->doctor_row(report, BANGER_DOCTOR_WARN, "uplink", "%s", why);
    fwd = nat_ip_forward_state();
    br_fwd = nat_forwarding_get(st->bridge);
    st->host->doctor_row(report, fwd < 0 ? BANGER_DOCTOR_WARN : BANGER_DOCTOR_PASS,
                         "forwarding", "host-wide ip_forward %s; %s %s (banger turns on the "
                         "bridge's and the uplink's own flag while a --nat VM runs)",
                         fwd == 1 ? "on" : fwd == 0 ? "off" : "unreadable", st->bridge,
                         br_fwd == 1 ? "on" : br_fwd == 0 ? "off" : "absent");
    nat_nft_lock(st->nft);
    if (nat_nft_ruleset(st->nft, &json, why, sizeof(why)) < 0)
        st->host->doctor_row(report, BANGER_DOCTOR_WARN, "nftables", "%s", why);
    else
        nat_doctor_forward_policy(st, report, json);
    nat_nft_unlock(st->nft);
    free(json);
    return 0;
}

static const struct banger_capability nat_capability = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = "nat",
    .version = PACKAGE_VERSION,
    .description = "TAP anti-spoofing for every VM, outbound NAT for --nat VMs (nftables)",
    .phases = BANGER_PHASE_BEFORE_LAUNCH,
    .requires = (const char *const[]){"tap", NULL},
    .init = nat_init,
    .fini = nat_fini,
    .start = nat_start,
    .rollback = nat_rollback,
    .stop = nat_stop,
    .reconcile = nat_reconcile,
    .doctor = nat_doctor,
};

BANGER_CAPABILITY_DEFINE(nat_capability)
