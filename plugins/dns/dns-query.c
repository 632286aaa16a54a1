/* Answering one DNS query for the VM zone. See dns-query.h. */
#include "config.h"

#include "dns-query.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#define DNS_MAX_LABELS 128

/* Labels of a wire-format name: pointers into it and their lengths. */
struct dns_labels {
    const uint8_t *label[DNS_MAX_LABELS];
    uint8_t len[DNS_MAX_LABELS];
    size_t n;
};

static bool dns_split_wire_name(const uint8_t *wire, size_t size, struct dns_labels *out)
{
    size_t pos = 0;
    out->n = 0;
    while (pos < size) {
        uint8_t l = wire[pos];
        if (l == 0)
            return true;
        if (l > 63 || pos + 1 + l > size || out->n >= DNS_MAX_LABELS)
            return false;
        out->label[out->n] = wire + pos + 1;
        out->len[out->n] = l;
        out->n++;
        pos += 1u + l;
    }
    return false;
}

/* Case-insensitive match of one wire label against text of length n. */
static bool dns_label_eq(const uint8_t *label, size_t len, const char *text, size_t n)
{
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = label[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)text[i])
            return false;
    }
    return true;
}

/* How many trailing labels of `name` spell `zone`; -1 when it is not inside. */
static int dns_zone_match(const struct dns_labels *name, const char *zone)
{
    const char *zl[DNS_MAX_LABELS];
    size_t zlen[DNS_MAX_LABELS];
    size_t nz = 0;
    for (const char *p = zone; *p && nz < DNS_MAX_LABELS;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        zl[nz] = p;
        zlen[nz++] = l;
        p += l + (dot ? 1 : 0);
    }
    if (nz == 0 || name->n < nz)
        return -1;
    for (size_t i = 0; i < nz; i++) {
        size_t k = name->n - nz + i;
        if (!dns_label_eq(name->label[k], name->len[k], zl[i], zlen[i]))
            return -1;
    }
    return (int)nz;
}

bool dns_zone_name_valid(const char *zone_name)
{
    if (!zone_name || !zone_name[0] || strlen(zone_name) > 200)
        return false;
    size_t label = 0;
    for (const char *p = zone_name; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

size_t dns_question_end(const uint8_t *pkt, size_t len)
{
    if (len < DNS_HEADER_LEN || (pkt[4] << 8 | pkt[5]) != 1)
        return 0;
    size_t pos = DNS_HEADER_LEN;
    for (;;) {
        if (pos >= len)
            return 0;
        uint8_t l = pkt[pos];
        if (l == 0)
            break;
        if (l > 63) /* compression or reserved bits: not in a question we relay */
            return 0;
        pos += 1u + l;
    }
    pos += 1 + 4; /* root label, type, class */
    return pos <= len ? pos : 0;
}

uint8_t *dns_error_reply(const uint8_t *pkt, size_t len, unsigned rcode, bool keep_question,
                         size_t *reply_len)
{
    if (len < DNS_HEADER_LEN)
        return NULL;
    size_t qend = keep_question ? dns_question_end(pkt, len) : 0;
    size_t n = qend ? qend : DNS_HEADER_LEN;
    uint8_t *r = calloc(1, n);
    if (!r)
        return NULL;
    r[0] = pkt[0];
    r[1] = pkt[1];
    /* QR, the query's opcode and RD; RA because we recurse via upstream. */
    r[2] = (uint8_t)(0x80 | (pkt[2] & 0x78) | (pkt[2] & 0x01));
    r[3] = (uint8_t)(0x80 | (rcode & 0x0f));
    if (qend) {
        r[5] = 1;
        memcpy(r + DNS_HEADER_LEN, pkt + DNS_HEADER_LEN, qend - DNS_HEADER_LEN);
    }
    *reply_len = n;
    return r;
}

static enum dns_verdict dns_error_verdict(const uint8_t *pkt, size_t len, unsigned rcode,
                                          bool keep_question, uint8_t **reply, size_t *reply_len)
{
    *reply = dns_error_reply(pkt, len, rcode, keep_question, reply_len);
    return *reply ? DNS_REPLY : DNS_DROP;
}

/* "<zone>. SOA ns.<zone>. hostmaster.<zone>. ..." for authority sections. */
static ldns_rr *dns_soa_rr(const char *zone)
{
    char text[768];
    ldns_rr *rr = NULL;
    snprintf(text, sizeof text,
             "%s. %d IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 %d",
             zone, DNS_ZONE_TTL, zone, zone, DNS_ZONE_TTL);
    if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
        return NULL;
    return rr;
}

static ldns_rr *dns_a_rr(const ldns_rdf *owner, struct in_addr addr)
{
    ldns_rr *rr = ldns_rr_new();
    if (!rr)
        return NULL;
    ldns_rdf *owner_copy = ldns_rdf_clone(owner);
    ldns_rdf *rdata = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, sizeof addr, &addr);
    if (!owner_copy || !rdata) {
        ldns_rdf_deep_free(owner_copy);
        ldns_rdf_deep_free(rdata);
        ldns_rr_free(rr);
        return NULL;
    }
    ldns_rr_set_owner(rr, owner_copy);
    ldns_rr_set_type(rr, LDNS_RR_TYPE_A);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, DNS_ZONE_TTL);
    ldns_rr_push_rdf(rr, rdata);
    return rr;
}

/* The answer for a name inside the zone: A record, NODATA or NXDOMAIN. */
static enum dns_verdict dns_zone_reply(const struct dns_zone *zone, const ldns_pkt *query,
                                       const ldns_rr *question, const struct dns_labels *labels,
                                       int zone_labels, uint8_t **reply, size_t *reply_len)
{
    enum dns_verdict v = DNS_DROP;
    ldns_pkt *ans = ldns_pkt_new();
    ldns_rr *q = ldns_rr_clone(question);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    if (!ans || !q)
        goto cleanup;
    ldns_pkt_set_id(ans, ldns_pkt_id(query));
    ldns_pkt_set_qr(ans, true);
    ldns_pkt_set_aa(ans, true);
    ldns_pkt_set_rd(ans, ldns_pkt_rd(query));
    ldns_pkt_set_ra(ans, true);
    ldns_pkt_set_opcode(ans, LDNS_PACKET_QUERY);
    ldns_pkt_push_rr(ans, LDNS_SECTION_QUESTION, q);
    q = NULL;

    ldns_rr_type type = ldns_rr_get_type(question);
    size_t extra = labels->n - (size_t)zone_labels;
    bool exists = extra == 0; /* the apex exists (SOA only) */
    ldns_rr *answer = NULL;
    ldns_rr *soa_answer = NULL;
    if (extra == 1) {
        char label[64];
        size_t l = labels->len[0];
        bool ok = true;
        for (size_t i = 0; i < l; i++) {
            uint8_t c = labels->label[0][i];
            if (c >= 'A' && c <= 'Z')
                c = (uint8_t)(c - 'A' + 'a');
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                ok = false;
            label[i] = (char)c;
        }
        label[l] = '\0';
        struct in_addr addr;
        if (ok && zone->lookup && zone->lookup(zone->ctx, label, &addr)) {
            exists = true;
            if (type == LDNS_RR_TYPE_A || type == LDNS_RR_TYPE_ANY) {
                answer = dns_a_rr(ldns_rr_owner(question), addr);
                if (!answer)
                    goto cleanup;
            }
        }
    } else if (extra == 0 && (type == LDNS_RR_TYPE_SOA || type == LDNS_RR_TYPE_ANY)) {
        soa_answer = dns_soa_rr(zone->name);
        if (!soa_answer)
            goto cleanup;
    }

    if (answer)
        ldns_pkt_push_rr(ans, LDNS_SECTION_ANSWER, answer);
    else if (soa_answer)
        ldns_pkt_push_rr(ans, LDNS_SECTION_ANSWER, soa_answer);
    else {
        /* NXDOMAIN or NODATA: the zone's SOA tells caches how long to keep it. */
        ldns_rr *soa = dns_soa_rr(zone->name);
        if (soa)
            ldns_pkt_push_rr(ans, LDNS_SECTION_AUTHORITY, soa);
    }
    ldns_pkt_set_rcode(ans, exists ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN);

    if (ldns_pkt2wire(&wire, ans, &wire_len) != LDNS_STATUS_OK || !wire)
        goto cleanup;
    *reply = wire;
    *reply_len = wire_len;
    wire = NULL;
    v = DNS_REPLY;
cleanup:
    free(wire);
    ldns_rr_free(q);
    ldns_pkt_free(ans);
    return v;
}

enum dns_verdict dns_query_answer(const struct dns_zone *zone, const uint8_t *pkt, size_t len,
                                  uint8_t **reply, size_t *reply_len)
{
    enum dns_verdict v;
    ldns_pkt *query = NULL;
    *reply = NULL;
    *reply_len = 0;
    if (!pkt || len < DNS_HEADER_LEN || len > DNS_MAX_PACKET)
        return DNS_DROP;
    /* Never answer a response: two servers could bounce errors forever. */
    if (pkt[2] & 0x80)
        return DNS_DROP;
    unsigned opcode = (pkt[2] >> 3) & 0x0f;
    if (opcode != LDNS_PACKET_QUERY)
        return dns_error_verdict(pkt, len, LDNS_RCODE_NOTIMPL, false, reply, reply_len);
    if ((pkt[4] << 8 | pkt[5]) != 1)
        return dns_error_verdict(pkt, len, LDNS_RCODE_FORMERR, false, reply, reply_len);
    if (ldns_wire2pkt(&query, pkt, len) != LDNS_STATUS_OK || !query)
        return dns_error_verdict(pkt, len, LDNS_RCODE_FORMERR, false, reply, reply_len);

    const ldns_rr_list *qs = ldns_pkt_question(query);
    const ldns_rr *question = qs && ldns_rr_list_rr_count(qs) == 1 ? ldns_rr_list_rr(qs, 0) : NULL;
    const ldns_rdf *owner = question ? ldns_rr_owner(question) : NULL;
    struct dns_labels labels;
    if (!owner || ldns_rdf_get_type(owner) != LDNS_RDF_TYPE_DNAME ||
        !dns_split_wire_name(ldns_rdf_data(owner), ldns_rdf_size(owner), &labels)) {
        v = dns_error_verdict(pkt, len, LDNS_RCODE_FORMERR, false, reply, reply_len);
        goto cleanup;
    }
    if (ldns_rr_get_class(question) != LDNS_RR_CLASS_IN) {
        v = dns_error_verdict(pkt, len, LDNS_RCODE_FORMERR, false, reply, reply_len);
        goto cleanup;
    }
    int zone_labels = dns_zone_match(&labels, zone->name);
    if (zone_labels < 0) {
        v = DNS_FORWARD;
        goto cleanup;
    }
    v = dns_zone_reply(zone, query, question, &labels, zone_labels, reply, reply_len);
    if (v == DNS_DROP) /* out of memory building it */
        v = dns_error_verdict(pkt, len, LDNS_RCODE_SERVFAIL, true, reply, reply_len);
cleanup:
    ldns_pkt_free(query);
    return v;
}
