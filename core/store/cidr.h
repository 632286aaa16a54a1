/* IPv4 helpers for the VM network: CIDR parsing, address formatting and the
 * MAC address a VM gets from its IP. Addresses are uint32_t in host byte
 * order (172.29.0.5 == 0xAC1D0005). */
#ifndef BANGER_STORE_CIDR_H
#define BANGER_STORE_CIDR_H

#include <stddef.h>
#include <stdint.h>

/* Room for "255.255.255.255/32" and its NUL. */
#define IP4_STR_MAX 19
/* "06:00:AC:1D:00:05" and its NUL. */
#define MAC_STR_MAX 18

/* Smallest and largest prefix a VM network may use: /31 and /32 leave no
 * room for the gateway (first host) plus one VM. */
#define CIDR_PREFIX_MIN 8
#define CIDR_PREFIX_MAX 30

/* Parse "a.b.c.d/p". Returns 0, or -EINVAL with the reason in errbuf for a
 * malformed string, host bits set, or a prefix outside
 * CIDR_PREFIX_MIN..CIDR_PREFIX_MAX. Outputs are set only on success. */
int cidr_parse(const char *text, uint32_t *net, unsigned *prefix, char *errbuf, size_t errlen);

/* Check an already-parsed network the same way cidr_parse does. */
int cidr_validate(uint32_t net, unsigned prefix, char *errbuf, size_t errlen);

/* Netmask for a prefix (0..32). */
uint32_t cidr_mask(unsigned prefix);

/* The gateway (bridge) address: the first host address of the network. */
uint32_t cidr_gateway(uint32_t net);

/* Parse a dotted quad strictly. Returns 0 or -EINVAL. */
int ip4_parse(const char *text, uint32_t *addr);

/* Format a dotted quad into buf (at least IP4_STR_MAX bytes). */
void ip4_format(uint32_t addr, char *buf, size_t len);

/* The VM's MAC: locally administered unicast prefix 06:00, then the four
 * IPv4 bytes, e.g. 172.29.0.5 -> 06:00:AC:1D:00:05. */
void mac_from_ip4(uint32_t addr, char *buf, size_t len);

#endif
