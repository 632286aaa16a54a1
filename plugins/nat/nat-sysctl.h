/* IPv4 forwarding flags: the host-wide net.ipv4.ip_forward and one
 * interface's net.ipv4.conf.<iface>.forwarding. For IPv4 the kernel decides
 * by the flag of the interface a packet came in on, so banger turns on only
 * the bridge's and the uplink's. */
#ifndef BANGER_NAT_SYSCTL_H
#define BANGER_NAT_SYSCTL_H

#include <stddef.h>

/* 1 when on, 0 when off, negative errno when unreadable. */
int nat_ip_forward_state(void);

/* The interface's flag: 1, 0, or a negative errno (-ENOENT: no such
 * interface). */
int nat_forwarding_get(const char *iface);

/* Set the interface's flag to value (0 or 1). */
int nat_forwarding_set(const char *iface, int value, char *why, size_t why_len);

#endif
