/* Helpers of the nat and guard tests: programs that must succeed, an
 * uplink veth, banger's rules as nft lists them, namespaces for guests and
 * an "internet", and the forwarding flags. */
#ifndef BANGER_TEST_NAT_UTIL_H
#define BANGER_TEST_NAT_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Run argv, asserting exit 0. */
void net_run_ok(const char *const *argv);

/* An uplink up0 (a veth pair, both ends here) carrying the default route
 * via 198.18.0.2. */
void net_uplink_veth(void);

/* Rules of banger's tables tagged "banger:<id>"; *total, when given,
 * receives the number of all their rules. */
int net_rules_tagged(const char *id, size_t *total);
/* Rules of banger's ip table in chain "saved" (the forwarding records). */
int net_saved_records(void);
/* Does `nft list table <family> banger` succeed? */
bool net_table_exists(const char *family);

/* A new network namespace held by an fd; the caller stays in home. */
int net_ns_new(int home);
/* Move link `name` of this namespace into namespace ns. */
void net_link_to_ns(const char *name, int ns);
/* Run argv (asserting exit 0) inside namespace ns. */
void net_run_in(int ns, int home, const char *const *argv);

/* net.ipv4.conf.<iface>.forwarding of this namespace (iface "all" is the
 * host-wide ip_forward). */
int net_forwarding(const char *iface);
void net_set_forwarding(const char *iface, int value);

#endif
