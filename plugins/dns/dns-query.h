/* Pure DNS query handling for the dns module: bytes in plus a name lookup,
 * bytes out (or "forward this upstream"). No sockets, no threads, so tests
 * and the fuzzer can drive it directly. */
#ifndef BANGER_DNS_QUERY_H
#define BANGER_DNS_QUERY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN 12
#define DNS_MAX_PACKET 65535
/* TTL of the zone's answers: VMs come and go, keep caches short. */
#define DNS_ZONE_TTL 5

/* Find `label` (lowercase, one DNS label) among the running VMs. Returns true
 * and sets *addr when found. */
typedef bool (*dns_lookup_fn)(void *ctx, const char *label, struct in_addr *addr);

struct dns_zone {
    const char *name;      /* lowercase, no trailing dot, e.g. "vm" */
    dns_lookup_fn lookup;
    void *ctx;
};

enum dns_verdict {
    DNS_DROP = 0,     /* unreadable, or a response: send nothing */
    DNS_REPLY,        /* *reply holds the answer to send back */
    DNS_FORWARD,      /* a query for a name outside the zone */
};

/* Handle one received packet. On DNS_REPLY *reply is malloc'ed (free it). */
enum dns_verdict dns_query_answer(const struct dns_zone *zone, const uint8_t *pkt, size_t len,
                                  uint8_t **reply, size_t *reply_len);

/* A header-only reply with `rcode` to the query in `pkt` (len >= 12): same id,
 * opcode and RD, QR set, counts zero except the question when `keep_question`
 * and the question section can be delimited. malloc'ed; NULL when len < 12. */
uint8_t *dns_error_reply(const uint8_t *pkt, size_t len, unsigned rcode, bool keep_question,
                         size_t *reply_len);

/* End offset of the first question (name, type, class) when the packet has
 * one uncompressed question, or 0. */
size_t dns_question_end(const uint8_t *pkt, size_t len);

/* Does `zone_name` hold a valid zone ("vm", "banger.internal")? */
bool dns_zone_name_valid(const char *zone_name);

static inline uint16_t dns_get_id(const uint8_t *pkt) { return (uint16_t)(pkt[0] << 8 | pkt[1]); }
static inline void dns_set_id(uint8_t *pkt, uint16_t id)
{
    pkt[0] = (uint8_t)(id >> 8);
    pkt[1] = (uint8_t)id;
}

#endif
