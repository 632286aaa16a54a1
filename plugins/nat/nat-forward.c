#include "config.h"

#include "nat-forward.h"
#include "nat-sysctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool nat_has_record(const struct nat_rule *rules, size_t n, const char *iface)
{
    char name[16];
    int value;

    for (size_t i = 0; i < n; i++)
        if (nat_parse_saved(rules[i].comment, name, &value) == 0 && strcmp(name, iface) == 0)
            return true;
    return false;
}

int nat_forward_save_text(char *cmds, size_t cap, const struct nat_rule *rules, size_t n,
                          const char *const *ifaces, char *why, size_t why_len)
{
    for (size_t i = 0; ifaces[i]; i++) {
        int value, r;

        if (nat_has_record(rules, n, ifaces[i]))
            continue;
        /* Saved once per interface: a second one in this very list. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(ifaces[j], ifaces[i]) == 0)
                goto next;
        value = nat_forwarding_get(ifaces[i]);
        if (value == -ENOENT) {
            snprintf(why, why_len, "no interface %s to forward through", ifaces[i]);
            return -ENODEV;
        }
        if (value < 0) {
            snprintf(why, why_len, "read net.ipv4.conf.%s.forwarding: %s", ifaces[i],
                     strerror(-value));
            return value;
        }
        r = nat_saved_text(cmds, cap, ifaces[i], value);
        if (r < 0) {
            snprintf(why, why_len, "cannot record the forwarding flag of %s", ifaces[i]);
            return r;
        }
next:;
    }
    return 0;
}

int nat_forward_enable(const char *const *ifaces, char *why, size_t why_len)
{
    for (size_t i = 0; ifaces[i]; i++) {
        int r = nat_forwarding_set(ifaces[i], 1, why, why_len);
        if (r < 0)
            return r;
    }
    return 0;
}

static bool nat_rule_is_record(void *ctx, const struct nat_rule *rule)
{
    (void)ctx;
    return strcmp(rule->family, "ip") == 0 && strcmp(rule->chain, NAT_SAVED_CHAIN) == 0;
}

int nat_forward_settle(struct nat_nft *nft, size_t *restored, char *why, size_t why_len)
{
    struct nat_rule *rules = NULL;
    size_t n = 0, records = 0, deleted = 0;
    int r, host_wide;

    *restored = 0;
    r = nat_nft_list(nft, &rules, &n, why, why_len);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        /* Every --nat VM has a masquerade rule: one left, flags stay. */
        if (strcmp(rules[i].family, "ip") == 0 && strcmp(rules[i].chain, "postrouting") == 0)
            goto cleanup;
        records += nat_rule_is_record(NULL, &rules[i]);
    }
    if (records == 0)
        goto cleanup;
    host_wide = nat_ip_forward_state();
    for (size_t i = 0; i < n; i++) {
        char iface[16];
        int value, now, w;

        if (!nat_rule_is_record(NULL, &rules[i]) ||
            nat_parse_saved(rules[i].comment, iface, &value) < 0)
            continue;
        if (value == 0 && host_wide == 1)
            continue;
        now = nat_forwarding_get(iface);
        if (now == -ENOENT || now == value)
            continue;   /* the interface is gone, or nothing to undo */
        w = nat_forwarding_set(iface, value, why, why_len);
        if (w < 0) {
            /* The records stay: the next stop or reconcile tries again. */
            r = w;
            goto cleanup;
        }
        (*restored)++;
    }
    r = nat_nft_delete_where(nft, nat_rule_is_record, NULL, &deleted, why, why_len);
cleanup:
    free(rules);
    return r;
}
