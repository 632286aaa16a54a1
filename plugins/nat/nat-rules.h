/* Pure text work of the nat module: the nft commands of one VM's rules, the
 * rule tag and the saved forwarding flags. No I/O, so tests compile it in
 * directly. */
#ifndef BANGER_NAT_RULES_H
#define BANGER_NAT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAT_TABLE "banger"
#define NAT_TAG_PREFIX "banger:"
#define NAT_TAG_MAX 64

/* The chain of the ip table that records the forwarding flags found
 * before banger changed them; never hooked, so never evaluated. */
#define NAT_SAVED_CHAIN "saved"
#define NAT_SAVED_PREFIX "forwarding:"

/* An interface name safe to quote in nft syntax. */
bool nat_ifname_valid(const char *name);

/* Exactly six colon-separated pairs of hex digits. */
bool nat_mac_valid(const char *mac);

/* "banger:<vmid>" into tag; -EINVAL for an id that is not [0-9a-f]{1,32}. */
int nat_make_tag(const char *vm_id, char tag[NAT_TAG_MAX]);

/* Append the guard of one VM's TAP, for every VM: in the bridge table,
 * frames from `tap` pass only as IPv4 from ip/mac or as ARP whose sender
 * is ip/mac; everything else from the TAP is dropped. */
int nat_guard_text(char *buf, size_t len, const char *guest_ip, const char *mac,
                   const char *tap, const char *tag);

/* Append the ip table's rules of a --nat VM: forward from the bridge to the
 * uplink with the VM's address, replies back, masquerade. */
int nat_rules_text(char *buf, size_t len, const char *guest_ip, const char *bridge,
                   const char *uplink, const char *tag);

/* Append the ip table's rules of a VM without --nat: nothing is forwarded
 * from or to its address. */
int nat_isolate_text(char *buf, size_t len, const char *guest_ip, const char *bridge,
                     const char *tag);

/* Append a record "forwarding:<iface>=<0|1>" to the saved chain. */
int nat_saved_text(char *buf, size_t len, const char *iface, int value);
/* Parse such a record's comment; -EINVAL when it is not one. */
int nat_parse_saved(const char *comment, char iface[16], int *value);

/* One rule of banger's tables as listed by nft. */
struct nat_rule {
    char family[8];             /* "ip" or "bridge" */
    char chain[32];
    uint64_t handle;
    char comment[NAT_TAG_MAX];
};

/* Parse `nft -j list table ...` output (rules of banger's tables only).
 * *out is malloc'd. */
int nat_parse_rules(const char *json, struct nat_rule **out, size_t *n);

/* Parse the handles of the rules in an echoed add transaction and format
 * them as "prerouting:2,postrouting:3,forward:4". */
int nat_echo_handles(const char *json, const char *tag, char *out, size_t len);

#endif
