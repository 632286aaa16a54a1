/* The dns module's server: one thread with a poll loop serving UDP queries
 * on up to two listeners (the bridge address for guests, a host address),
 * answering the zone from the record table and relaying other names to the
 * upstream resolver without blocking on it. */
#ifndef BANGER_DNS_SERVER_H
#define BANGER_DNS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "dns-records.h"
#include "dns-upstream.h"

/* Queries waiting for upstream at once; more get SERVFAIL straight away. */
#define DNS_MAX_PENDING 256

enum dns_listener {
    DNS_LISTEN_BRIDGE = 0,
    DNS_LISTEN_HOST = 1,
    DNS_LISTEN_COUNT
};

struct dns_server;

struct dns_server_opts {
    const char *zone;                /* copied */
    struct dns_records *records;     /* outlives the server */
    int forward_timeout_ms;          /* bounded wait for upstream, then SERVFAIL */
    /* Upstream: `upstream` when given; otherwise discovered ("auto") from
     * these files, re-read while the server runs so a changed resolv.conf
     * is followed. */
    const struct dns_addr *upstream;
    const char *resolv_conf;
    const char *resolved_conf;
};

int dns_server_new(const struct dns_server_opts *opts, struct dns_server **out);
/* Start the thread. */
int dns_server_start(struct dns_server *srv);
/* Stop the thread, close every socket, free. Accepts NULL. */
void dns_server_free(struct dns_server *srv);

/* Bind `which` to `addr` (UDP) and serve it. Returns 0 or the negative errno
 * of socket/bind; -EALREADY when that listener is up already. */
int dns_server_listen(struct dns_server *srv, enum dns_listener which, const struct dns_addr *addr);
bool dns_server_listening(struct dns_server *srv, enum dns_listener which);
/* The upstream currently in use; false when none was found. */
bool dns_server_upstream(struct dns_server *srv, struct dns_addr *out);

#endif
