#include "config.h"

#include "nat-rules.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <net/if.h>
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

int nat_rules_text(char *buf, size_t len, const char *guest_ip, const char *tap,
                   const char *uplink, const char *tag)
{
    struct in_addr a;
    size_t used = strlen(buf);
    int n;

    if (!guest_ip || inet_pton(AF_INET, guest_ip, &a) != 1 || !nat_ifname_valid(tap) ||
        !nat_ifname_valid(uplink))
        return -EINVAL;
    n = snprintf(buf + used, len - used,
                 "add table ip " NAT_TABLE "\n"
                 "add chain ip " NAT_TABLE " postrouting { type nat hook postrouting priority "
                 "srcnat; policy accept; }\n"
                 "add chain ip " NAT_TABLE " forward { type filter hook forward priority "
                 "filter; policy accept; }\n"
                 "add rule ip " NAT_TABLE " postrouting ip saddr %s oifname \"%s\" masquerade "
                 "comment \"%s\"\n"
                 "add rule ip " NAT_TABLE " forward iifname \"%s\" oifname \"%s\" accept "
                 "comment \"%s\"\n"
                 "add rule ip " NAT_TABLE " forward iifname \"%s\" oifname \"%s\" ct state "
                 "established,related accept comment \"%s\"\n",
                 guest_ip, uplink, tag, tap, uplink, tag, uplink, tap, tag);
    if (n < 0 || (size_t)n >= len - used)
        return -ENAMETOOLONG;
    return 0;
}

static int nat_rule_from_json(const cJSON *rule, struct nat_rule *out)
{
    const cJSON *family = cJSON_GetObjectItemCaseSensitive(rule, "family");
    const cJSON *table = cJSON_GetObjectItemCaseSensitive(rule, "table");
    const cJSON *chain = cJSON_GetObjectItemCaseSensitive(rule, "chain");
    const cJSON *handle = cJSON_GetObjectItemCaseSensitive(rule, "handle");
    const cJSON *comment = cJSON_GetObjectItemCaseSensitive(rule, "comment");

    if (!cJSON_IsString(family) || strcmp(family->valuestring, "ip") != 0 ||
        !cJSON_IsString(table) || strcmp(table->valuestring, NAT_TABLE) != 0 ||
        !cJSON_IsString(chain) || !cJSON_IsNumber(handle) || handle->valuedouble < 1)
        return -ENOENT;
    memset(out, 0, sizeof(*out));
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
