/* Finding the host's real upstream resolver and parsing "IP[:port]". */
#ifndef BANGER_DNS_UPSTREAM_H
#define BANGER_DNS_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_RESOLV_CONF "/etc/resolv.conf"
#define DNS_RESOLVED_DIR "/run/systemd/resolve"
#define DNS_RESOLVED_CONF "/run/systemd/resolve/resolv.conf"

struct dns_addr {
    struct sockaddr_storage sa;
    socklen_t len;
};

/* "192.0.2.1", "192.0.2.1:5300", "2001:db8::1", "[2001:db8::1]:53". */
int dns_addr_parse(const char *text, uint16_t default_port, struct dns_addr *out);
/* "192.0.2.1:53" / "[2001:db8::1]:53". */
void dns_addr_format(const struct dns_addr *a, char *buf, size_t size);
bool dns_addr_equal(const struct dns_addr *a, const struct sockaddr *sa, socklen_t len);
bool dns_addr_is_loopback(const struct dns_addr *a);

/* The first `nameserver` of resolv.conf at `path` that is not on loopback
 * (or, with allow_loopback, the first one at all). 0, -ENOENT when none,
 * or the negative errno of opening the file. */
int dns_upstream_from_resolv(const char *path, bool allow_loopback, struct dns_addr *out);

/* "auto": /etc/resolv.conf's first non-loopback server; when it lists only
 * a local stub (systemd-resolved's 127.0.0.53), the real servers from
 * systemd-resolved's own file; as a last resort the local stub itself (the
 * daemon forwards, so guests never see it). Paths are parameters for tests.
 * `how` (may be NULL) gets a short note on where it came from. */
int dns_upstream_auto(const char *resolv_conf, const char *resolved_conf, struct dns_addr *out,
                      char *how, size_t how_size);

#endif
