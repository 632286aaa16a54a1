#include "config.h"

#include "nat-rules.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool nat_ifname_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;

    return len > 0 && len < IFNAMSIZ &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@") ==
               len;
}

int nat_make_tag(const char *vm_id, char tag[NAT_TAG_MAX])
{
    size_t len = vm_id ? strlen(vm_id) : 0;

    if (len < 1 || len > 32 || strspn(vm_id, "0123456789abcdef") != len)
        return -EINVAL;
    snprintf(tag, NAT_TAG_MAX, NAT_TAG_PREFIX "%s", vm_id);
    return 0;
}

bool nat_mac_valid(const char *mac)
{
    if (!mac || strlen(mac) != 17)
        return false;
    for (size_t i = 0; i < 17; i++) {
        bool colon = i % 3 == 2;
        if (colon ? mac[i] != ':' : !strchr("0123456789abcdefABCDEF", mac[i]))
            return false;
    }
    return true;
}

static bool nat_ipv4_valid(const char *ip)
{
    struct in_addr a;

    return ip && inet_pton(AF_INET, ip, &a) == 1;
}

/* Append formatted text at the end of buf; -ENAMETOOLONG when it does not fit. */
static int nat_append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int nat_append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len - used)
        return -ENAMETOOLONG;
    return 0;
}

int nat_guard_text(char *buf, size_t len, const char *guest_ip, const char *mac,
                   const char *tap, const char *tag)
{
    if (!nat_ipv4_valid(guest_ip) || !nat_mac_valid(mac) || !nat_ifname_valid(tap))
        return -EINVAL;
    /* Bridge-family prerouting sees every frame a port brings in, whether
     * it is bridged to another guest or passed up to the host. Frames are
     * accepted by a whitelist; the guest has a static address, so it needs
     * no DHCP, and IPv6 is dropped: banger gives guests none, and link-local
     * IPv6 would be a path to the host and other guests past these checks.
     * "ether type" is explicit: the kernel reads it as the frame carried it,
     * so a VLAN-tagged frame is not taken for IPv4 (the implicit check
     * looks at the protocol inside the tag). */
    return nat_append(buf, len,
                      "add table bridge " NAT_TABLE "\n"
                      "add chain bridge " NAT_TABLE " prerouting { type filter hook prerouting "
                      "priority filter; policy accept; }\n"
                      "add rule bridge " NAT_TABLE " prerouting iifname \"%s\" ether saddr %s "
                      "ether type ip ip saddr %s accept comment \"%s\"\n"
                      "add rule bridge " NAT_TABLE " prerouting iifname \"%s\" ether saddr %s "
                      "ether type arp arp saddr ether %s arp saddr ip %s accept comment "
                      "\"%s\"\n"
                      "add rule bridge " NAT_TABLE " prerouting iifname \"%s\" drop comment "
                      "\"%s\"\n",
                      tap, mac, guest_ip, tag, tap, mac, mac, guest_ip, tag, tap, tag);
}

#define NAT_IP_CHAINS                                                                          \
    "add table ip " NAT_TABLE "\n"                                                              \
    "add chain ip " NAT_TABLE " postrouting { type nat hook postrouting priority srcnat; "      \
    "policy accept; }\n"                                                                        \
    "add chain ip " NAT_TABLE " forward { type filter hook forward priority filter; policy "   \
    "accept; }\n"

int nat_rules_text(char *buf, size_t len, const char *guest_ip, const char *bridge,
                   const char *uplink, const char *tag)
{
    if (!nat_ipv4_valid(guest_ip) || !nat_ifname_valid(bridge) || !nat_ifname_valid(uplink))
        return -EINVAL;
    /* A routed packet's input device is the bridge, not the port it came
     * in on: the guard binds the address to the VM's TAP, these rules bind
     * it to the bridge and the uplink. */
    return nat_append(buf, len,
                      NAT_IP_CHAINS
                      "add rule ip " NAT_TABLE " postrouting oifname \"%s\" ip saddr %s "
                      "masquerade comment \"%s\"\n"
                      "add rule ip " NAT_TABLE " forward iifname \"%s\" oifname \"%s\" ip saddr "
                      "%s accept comment \"%s\"\n"
                      "add rule ip " NAT_TABLE " forward iifname \"%s\" oifname \"%s\" ip daddr "
                      "%s ct state established,related accept comment \"%s\"\n",
                      uplink, guest_ip, tag, bridge, uplink, guest_ip, tag, uplink, bridge,
                      guest_ip, tag);
}

int nat_isolate_text(char *buf, size_t len, const char *guest_ip, const char *bridge,
                     const char *tag)
{
    if (!nat_ipv4_valid(guest_ip) || !nat_ifname_valid(bridge))
        return -EINVAL;
    /* Bridge to bridge is guest to guest: with br_netfilter loaded (Docker)
     * bridged frames pass this hook too, and they stay allowed. */
    return nat_append(buf, len,
                      NAT_IP_CHAINS
                      "add rule ip " NAT_TABLE " forward iifname \"%s\" oifname != \"%s\" ip "
                      "saddr %s drop comment \"%s\"\n"
                      "add rule ip " NAT_TABLE " forward iifname != \"%s\" oifname \"%s\" ip "
                      "daddr %s drop comment \"%s\"\n",
                      bridge, bridge, guest_ip, tag, bridge, bridge, guest_ip, tag);
}

int nat_saved_text(char *buf, size_t len, const char *iface, int value)
{
    if (!nat_ifname_valid(iface) || (value != 0 && value != 1))
        return -EINVAL;
    return nat_append(buf, len,
                      "add table ip " NAT_TABLE "\n"
                      "add chain ip " NAT_TABLE " " NAT_SAVED_CHAIN "\n"
                      "add rule ip " NAT_TABLE " " NAT_SAVED_CHAIN " counter comment \""
                      NAT_SAVED_PREFIX "%s=%d\"\n",
                      iface, value);
}

int nat_parse_saved(const char *comment, char iface[16], int *value)
{
    size_t plen = strlen(NAT_SAVED_PREFIX);
    const char *eq;

    if (!comment || strncmp(comment, NAT_SAVED_PREFIX, plen) != 0)
        return -EINVAL;
    eq = strrchr(comment + plen, '=');
    if (!eq || eq - (comment + plen) >= 16 || (strcmp(eq, "=0") != 0 && strcmp(eq, "=1") != 0))
        return -EINVAL;
    snprintf(iface, 16, "%.*s", (int)(eq - (comment + plen)), comment + plen);
    if (!nat_ifname_valid(iface))
        return -EINVAL;
    *value = eq[1] - '0';
    return 0;
}

static int nat_rule_from_json(const cJSON *rule, struct nat_rule *out)
{
    const cJSON *family = cJSON_GetObjectItemCaseSensitive(rule, "family");
    const cJSON *table = cJSON_GetObjectItemCaseSensitive(rule, "table");
    const cJSON *chain = cJSON_GetObjectItemCaseSensitive(rule, "chain");
    const cJSON *handle = cJSON_GetObjectItemCaseSensitive(rule, "handle");
    const cJSON *comment = cJSON_GetObjectItemCaseSensitive(rule, "comment");

    if (!cJSON_IsString(family) ||
        (strcmp(family->valuestring, "ip") != 0 && strcmp(family->valuestring, "bridge") != 0) ||
        !cJSON_IsString(table) || strcmp(table->valuestring, NAT_TABLE) != 0 ||
        !cJSON_IsString(chain) || !cJSON_IsNumber(handle) || handle->valuedouble < 1)
        return -ENOENT;
    memset(out, 0, sizeof(*out));
    snprintf(out->family, sizeof(out->family), "%s", family->valuestring);
    snprintf(out->chain, sizeof(out->chain), "%s", chain->valuestring);
    out->handle = (uint64_t)handle->valuedouble;
    if (cJSON_IsString(comment))
        snprintf(out->comment, sizeof(out->comment), "%s", comment->valuestring);
    return 0;
}

/* Every "rule" object in an nftables JSON document, found directly in the
 * array or wrapped in {"add": ...}. */
static int nat_collect_rules(const char *json, struct nat_rule **out, size_t *n)
{
    cJSON *doc = cJSON_Parse(json), *items, *it;
    struct nat_rule *v = NULL;
    size_t count = 0, cap = 0;
    int r = 0;

    *out = NULL;
    *n = 0;
    if (!doc)
        return -EBADMSG;
    items = cJSON_GetObjectItemCaseSensitive(doc, "nftables");
    if (!cJSON_IsArray(items)) {
        r = -EBADMSG;
        goto cleanup;
    }
    cJSON_ArrayForEach(it, items) {
        const cJSON *rule = cJSON_GetObjectItemCaseSensitive(it, "rule");
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(it, "add");

        if (!rule && add)
            rule = cJSON_GetObjectItemCaseSensitive(add, "rule");
        if (!cJSON_IsObject(rule))
            continue;
        if (count == cap) {
            struct nat_rule *grown;
            cap = cap ? cap * 2 : 8;
            grown = realloc(v, cap * sizeof(*v));
            if (!grown) {
                r = -ENOMEM;
                goto cleanup;
            }
            v = grown;
        }
        if (nat_rule_from_json(rule, &v[count]) == 0)
            count++;
    }
    *out = v;
    *n = count;
    v = NULL;
cleanup:
    free(v);
    cJSON_Delete(doc);
    return r;
}

int nat_parse_rules(const char *json, struct nat_rule **out, size_t *n)
{
    return nat_collect_rules(json, out, n);
}

int nat_echo_handles(const char *json, const char *tag, char *out, size_t len)
{
    struct nat_rule *rules = NULL;
    size_t n = 0, used = 0;
    int r;

    out[0] = '\0';
    r = nat_collect_rules(json, &rules, &n);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        int w;

        if (strcmp(rules[i].comment, tag) != 0)
            continue;
        w = snprintf(out + used, len - used, "%s%s:%llu", used ? "," : "", rules[i].chain,
                     (unsigned long long)rules[i].handle);
        if (w < 0 || (size_t)w >= len - used) {
            r = -ENAMETOOLONG;
            break;
        }
        used += (size_t)w;
    }
    free(rules);
    if (r == 0 && used == 0)
        r = -ENOENT;
    return r;
}
