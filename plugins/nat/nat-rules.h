/* Pure text work of the nat module: the nft commands of one VM's rules and
 * the rule tag. No I/O, so tests compile it in directly. */
#ifndef BANGER_NAT_RULES_H
#define BANGER_NAT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAT_TABLE "banger"
#define NAT_TAG_PREFIX "banger:"
#define NAT_TAG_MAX 64

/* An interface name safe to quote in nft syntax. */
bool nat_ifname_valid(const char *name);

/* "banger:<vmid>" into tag; -EINVAL for an id that is not [0-9a-f]{1,32}. */
int nat_make_tag(const char *vm_id, char tag[NAT_TAG_MAX]);

/* Append the table and chain definitions and this VM's three rules
 * (masquerade, forward out, forward back) to buf. */
int nat_rules_text(char *buf, size_t len, const char *guest_ip, const char *tap,
                   const char *uplink, const char *tag);

/* One rule of banger's table as listed by nft. */
struct nat_rule {
    char chain[32];
    uint64_t handle;
    char comment[NAT_TAG_MAX];
};

/* Parse `nft -j list table ip banger` output. *out is malloc'd. */
int nat_parse_rules(const char *json, struct nat_rule **out, size_t *n);

/* Parse the handles of the rules in an echoed add transaction and format
 * them as "postrouting:3,forward:4,forward:5". */
int nat_echo_handles(const char *json, const char *tag, char *out, size_t len);

#endif
