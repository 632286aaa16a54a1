/* Helpers shared by the dns tests: building queries with ldns, a network
 * namespace with loopback up, UDP exchanges, running dig, and a tiny
 * upstream DNS responder thread. */
#ifndef BANGER_TEST_DNS_UTIL_H
#define BANGER_TEST_DNS_UTIL_H

#include <ldns/ldns.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wire-format query; returns its length (0 on failure). */
size_t dnst_query(uint8_t *buf, size_t size, uint16_t id, const char *name, ldns_rr_type type,
                  ldns_rr_class klass);
/* Parse a reply; NULL when it is not a DNS packet. */
ldns_pkt *dnst_parse(const uint8_t *buf, size_t len);
/* The first A answer of pkt as dotted quad into out ("" when none). */
void dnst_first_a(const ldns_pkt *pkt, char *out, size_t size);

/* unshare(CLONE_NEWNET) and bring lo up. */
void dnst_enter_netns(void);
/* Put `ip`/24 on a loopback alias (lo:N) inside the namespace. */
void dnst_add_lo_address(const char *label, const char *ip);

/* Send `q` to ip:port over UDP (again every second, like a stub resolver)
 * and wait up to `bound_ms` for a reply with the same id. Returns the reply length, or -1 (no reply in time). */
ssize_t dnst_exchange(const char *ip, uint16_t port, const uint8_t *q, size_t qlen,
                      uint8_t *reply, size_t size, int bound_ms);
/* Fire and forget. */
void dnst_send(const char *ip, uint16_t port, const uint8_t *q, size_t qlen);

/* Run dig (fork/exec, no shell); stdout into out. Returns dig's exit status
 * or -1 when it could not run. */
int dnst_dig(const char *server, uint16_t port, const char *name, const char *type, char *out,
             size_t size);

/* A test upstream on ip:port: answers every A query with `answer_ip`, or
 * stays silent when answer_ip is NULL. Counts what it received. */
struct dnst_upstream {
    int fd;
    int stop[2];
    pthread_t thread;
    const char *answer_ip;
    int received;          /* read after dnst_upstream_stop */
};
void dnst_upstream_start(struct dnst_upstream *u, const char *ip, uint16_t port,
                         const char *answer_ip);
void dnst_upstream_stop(struct dnst_upstream *u);

#endif
