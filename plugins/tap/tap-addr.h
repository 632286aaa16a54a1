/* Pure helpers of the tap module: CIDR arithmetic, TAP name rules and the
 * guest kernel's ip= argument. No I/O, so tests compile them in directly. */
#ifndef BANGER_TAP_ADDR_H
#define BANGER_TAP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAP_PREFIX_MAX 8

/* "a.b.c.d/n" -> network address (host order, host bits must be zero) and
 * prefix length. Returns 0 or -EINVAL. */
int tap_parse_cidr(const char *text, uint32_t *net, uint32_t *prefix_len);

/* The gateway of a network: its first host address. -ERANGE when the
 * network has no room for a gateway and one guest (prefix > 30). */
int tap_cidr_gateway(uint32_t net, uint32_t prefix_len, uint32_t *gateway);

/* Dotted quad of a host-order address, or of the netmask of a prefix. */
void tap_format_ipv4(uint32_t addr, char out[16]);
void tap_format_netmask(uint32_t prefix_len, char out[16]);

/* A TAP prefix: 1..8 characters of [a-z0-9]. */
bool tap_prefix_valid(const char *prefix);

/* Is `name` exactly <prefix><decimal number>? */
bool tap_name_has_prefix(const char *name, const char *prefix);

/* "ip=<ip>::<gateway>:<netmask>:<hostname>:eth0:off:<dns>" into out.
 * Returns 0, or -ENAMETOOLONG when out is too small. */
int tap_kernel_ip_arg(char *out, size_t out_len, const char *guest_ip, const char *gateway,
                      uint32_t prefix_len, const char *hostname, const char *dns);

#endif
