/* Unit tests of the dns module's pure parts: query answering (no sockets),
 * the record table and upstream discovery. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns-query.h"
#include "dns-records.h"
#include "dns-testutil.h"
#include "dns-upstream.h"

static bool fixed_lookup(void *ctx, const char *label, struct in_addr *addr)
{
    (void)ctx;
    if (strcmp(label, "web") == 0)
        return inet_pton(AF_INET, "172.29.0.2", addr) == 1;
    if (strcmp(label, "db-1") == 0)
        return inet_pton(AF_INET, "172.29.0.3", addr) == 1;
    return false;
}

static const struct dns_zone zone_vm = { .name = "vm", .lookup = fixed_lookup };

/* Answer a query built from (name, type, class); returns the parsed reply. */
static ldns_pkt *ask(const struct dns_zone *z, const char *name, ldns_rr_type type,
                     ldns_rr_class klass, enum dns_verdict *verdict)
{
    uint8_t q[512], *reply = NULL;
    size_t n = dnst_query(q, sizeof q, 0x4242, name, type, klass), rlen = 0;
    ck_assert_uint_gt(n, 0);
    *verdict = dns_query_answer(z, q, n, &reply, &rlen);
    ldns_pkt *pkt = reply ? dnst_parse(reply, rlen) : NULL;
    if (*verdict == DNS_REPLY)
        ck_assert_ptr_nonnull(pkt);
    free(reply);
    return pkt;
}

static bool authority_has_soa(const ldns_pkt *p)
{
    const ldns_rr_list *ns = ldns_pkt_authority(p);
    return ns && ldns_rr_list_rr_count(ns) == 1 &&
           ldns_rr_get_type(ldns_rr_list_rr(ns, 0)) == LDNS_RR_TYPE_SOA;
}

START_TEST(t_a_record)
{
    enum dns_verdict v;
    char ip[32];
    ldns_pkt *p = ask(&zone_vm, "web.vm.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, &v);
    ck_assert_int_eq(v, DNS_REPLY);
    ck_assert_int_eq(ldns_pkt_id(p), 0x4242);
    ck_assert(ldns_pkt_qr(p));
    ck_assert(ldns_pkt_aa(p));
    ck_assert(ldns_pkt_rd(p));
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    ck_assert_uint_eq(ldns_pkt_qdcount(p), 1);
    ck_assert_uint_eq(ldns_pkt_ancount(p), 1);
    dnst_first_a(p, ip, sizeof ip);
    ck_assert_str_eq(ip, "172.29.0.2");
    ldns_pkt_free(p);

    /* Case-insensitive, and the question comes back as asked (0x20 bits). */
    p = ask(&zone_vm, "WeB.Vm.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, &v);
    ck_assert_int_eq(v, DNS_REPLY);
    dnst_first_a(p, ip, sizeof ip);
    ck_assert_str_eq(ip, "172.29.0.2");
    char *qname = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
    ck_assert_str_eq(qname, "WeB.Vm.");
    free(qname);
    ldns_pkt_free(p);

    p = ask(&zone_vm, "db-1.vm", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_IN, &v);
    dnst_first_a(p, ip, sizeof ip);
    ck_assert_str_eq(ip, "172.29.0.3");
    ldns_pkt_free(p);
}
END_TEST

START_TEST(t_nodata_nxdomain)
{
    enum dns_verdict v;
    ldns_pkt *p = ask(&zone_vm, "web.vm.", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN, &v);
    ck_assert_int_eq(v, DNS_REPLY);
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    ck_assert_uint_eq(ldns_pkt_ancount(p), 0);
    ck_assert(authority_has_soa(p));
    ldns_pkt_free(p);

    p = ask(&zone_vm, "web.vm.", LDNS_RR_TYPE_MX, LDNS_RR_CLASS_IN, &v);
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    ck_assert_uint_eq(ldns_pkt_ancount(p), 0);
    ldns_pkt_free(p);

    const char *missing[] = { "nope.vm.", "a.web.vm.", "web_x.vm." };
    for (size_t i = 0; i < 3; i++) {
        p = ask(&zone_vm, missing[i], LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, &v);
        ck_assert_int_eq(v, DNS_REPLY);
        ck_assert_msg(ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN, "%s", missing[i]);
        ck_assert_uint_eq(ldns_pkt_ancount(p), 0);
        ck_assert(authority_has_soa(p));
        ldns_pkt_free(p);
    }

    /* The apex exists: SOA answers, A is NODATA. */
    p = ask(&zone_vm, "vm.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, &v);
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    ck_assert_uint_eq(ldns_pkt_ancount(p), 1);
    ldns_pkt_free(p);
    p = ask(&zone_vm, "vm.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, &v);
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    ck_assert_uint_eq(ldns_pkt_ancount(p), 0);
    ldns_pkt_free(p);
}
END_TEST

START_TEST(t_forward_outside)
{
    enum dns_verdict v;
    const char *outside[] = { "example.com.", "web.avm.", "vm.example.", "." };
    for (size_t i = 0; i < 4; i++) {
        ldns_pkt *p = ask(&zone_vm, outside[i], LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, &v);
        ck_assert_msg(v == DNS_FORWARD, "%s", outside[i]);
        ck_assert_ptr_null(p);
    }
    /* A zone of two labels. */
    struct dns_zone z = { .name = "banger.internal", .lookup = fixed_lookup };
    ldns_pkt *p = ask(&z, "web.BANGER.internal.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, &v);
    ck_assert_int_eq(v, DNS_REPLY);
    ck_assert_uint_eq(ldns_pkt_ancount(p), 1);
    ldns_pkt_free(p);
    p = ask(&z, "web.internal.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, &v);
    ck_assert_int_eq(v, DNS_FORWARD);
}
END_TEST

static enum dns_verdict raw(const uint8_t *pkt, size_t len, unsigned *rcode, uint16_t *id)
{
    uint8_t *reply = NULL;
    size_t rlen = 0;
    enum dns_verdict v = dns_query_answer(&zone_vm, pkt, len, &reply, &rlen);
    if (v == DNS_REPLY) {
        ck_assert_uint_ge(rlen, 12);
        ck_assert(reply[2] & 0x80);
        *rcode = reply[3] & 0x0f;
        *id = dns_get_id(reply);
    }
    free(reply);
    return v;
}

START_TEST(t_malformed)
{
    uint8_t q[512];
    unsigned rcode = 99;
    uint16_t id = 0;
    size_t n = dnst_query(q, sizeof q, 0x1234, "web.vm.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN);

    /* Shorter than a header: nothing to answer. */
    for (size_t len = 0; len < 12; len++)
        ck_assert_int_eq(raw(q, len, &rcode, &id), DNS_DROP);
    /* Header only but qdcount 1: FORMERR. */
    ck_assert_int_eq(raw(q, 12, &rcode, &id), DNS_REPLY);
    ck_assert_uint_eq(rcode, LDNS_RCODE_FORMERR);
    ck_assert_uint_eq(id, 0x1234);
    /* Truncated inside the question. */
    for (size_t len = 13; len < n; len++) {
        ck_assert_int_eq(raw(q, len, &rcode, &id), DNS_REPLY);
        ck_assert_uint_eq(rcode, LDNS_RCODE_FORMERR);
    }
    /* qdcount 0 and 5. */
    uint8_t m[512];
    memcpy(m, q, n);
    m[5] = 0;
    ck_assert_int_eq(raw(m, n, &rcode, &id), DNS_REPLY);
    ck_assert_uint_eq(rcode, LDNS_RCODE_FORMERR);
    m[5] = 5;
    ck_assert_int_eq(raw(m, n, &rcode, &id), DNS_REPLY);
    ck_assert_uint_eq(rcode, LDNS_RCODE_FORMERR);
    /* A response is never answered. */
    memcpy(m, q, n);
    m[2] |= 0x80;
    ck_assert_int_eq(raw(m, n, &rcode, &id), DNS_DROP);
    /* Opcode STATUS: not implemented. */
    memcpy(m, q, n);
    m[2] = (uint8_t)((m[2] & 0x87) | (2 << 3));
    ck_assert_int_eq(raw(m, n, &rcode, &id), DNS_REPLY);
    ck_assert_uint_eq(rcode, LDNS_RCODE_NOTIMPL);
    /* Class CH. */
    size_t nch = dnst_query(m, sizeof m, 7, "web.vm.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_CH);
    ck_assert_int_eq(raw(m, nch, &rcode, &id), DNS_REPLY);
    ck_assert_uint_eq(rcode, LDNS_RCODE_FORMERR);
    /* A compression pointer looping on itself as the question name. */
    static const uint8_t loop[] = { 0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1 };
    ck_assert_int_eq(raw(loop, sizeof loop, &rcode, &id), DNS_REPLY);
    ck_assert_uint_eq(rcode, LDNS_RCODE_FORMERR);
}
END_TEST

START_TEST(t_oversized_and_random)
{
    uint8_t *big = calloc(1, DNS_MAX_PACKET + 1);
    unsigned rcode;
    uint16_t id;
    size_t n = dnst_query(big, 512, 0x77, "web.vm.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN);
    ck_assert_uint_gt(n, 0);
    /* 65535 bytes: a valid query followed by junk; answered or refused, never a crash. */
    memset(big + n, 0xc0, DNS_MAX_PACKET - n);
    enum dns_verdict v = raw(big, DNS_MAX_PACKET, &rcode, &id);
    ck_assert(v == DNS_REPLY || v == DNS_DROP);
    if (v == DNS_REPLY)
        ck_assert_uint_eq(id, 0x77);
    /* One byte over the UDP maximum: dropped. */
    ck_assert_int_eq(raw(big, DNS_MAX_PACKET + 1, &rcode, &id), DNS_DROP);

    /* Random bytes, fixed seed: the verdict may be anything, nothing crashes. */
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % 300);
        for (size_t i = 0; i < len; i++)
            big[i] = (uint8_t)rand_r(&seed);
        if (round % 2 && len > 12) { /* make it look more like a query */
            big[2] &= 0x07;
            big[4] = 0;
            big[5] = 1;
        }
        uint8_t *reply = NULL;
        size_t rlen = 0;
        v = dns_query_answer(&zone_vm, big, len, &reply, &rlen);
        if (v == DNS_REPLY)
            ck_assert_uint_ge(rlen, 12);
        free(reply);
    }
    free(big);
}
END_TEST

START_TEST(t_error_reply_and_question_end)
{
    uint8_t q[512];
    size_t n = dnst_query(q, sizeof q, 0xbeef, "example.com.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN);
    ck_assert_uint_eq(dns_question_end(q, n), n);
    ck_assert_uint_eq(dns_question_end(q, n - 1), 0);
    size_t rlen = 0;
    uint8_t *r = dns_error_reply(q, n, 2, true, &rlen);
    ldns_pkt *p = dnst_parse(r, rlen);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
    ck_assert_uint_eq(ldns_pkt_qdcount(p), 1);
    ck_assert_int_eq(ldns_pkt_id(p), 0xbeef);
    ldns_pkt_free(p);
    free(r);
    ck_assert_ptr_null(dns_error_reply(q, 11, 2, true, &rlen));

    ck_assert(dns_zone_name_valid("vm"));
    ck_assert(dns_zone_name_valid("banger.internal"));
    ck_assert(!dns_zone_name_valid(""));
    ck_assert(!dns_zone_name_valid("VM"));
    ck_assert(!dns_zone_name_valid("vm."));
    ck_assert(!dns_zone_name_valid(".vm"));
    ck_assert(!dns_zone_name_valid("a..b"));
    ck_assert(!dns_zone_name_valid("a b"));
}
END_TEST

START_TEST(t_records)
{
    struct dns_records t;
    struct in_addr a;
    char ip[32];
    dns_records_init(&t);
    ck_assert_int_eq(dns_records_set(&t, "0123456789ab", "web", "172.29.0.2"), 0);
    ck_assert_int_eq(dns_records_set(&t, "0123456789ac", "db", "172.29.0.3"), 0);
    ck_assert(dns_records_lookup(&t, "web", &a));
    inet_ntop(AF_INET, &a, ip, sizeof ip);
    ck_assert_str_eq(ip, "172.29.0.2");
    /* Same id again replaces. */
    ck_assert_int_eq(dns_records_set(&t, "0123456789ab", "web", "172.29.0.9"), 0);
    ck_assert_uint_eq(dns_records_count(&t), 2);
    ck_assert(dns_records_lookup(&t, "web", &a));
    inet_ntop(AF_INET, &a, ip, sizeof ip);
    ck_assert_str_eq(ip, "172.29.0.9");
    ck_assert_int_eq(dns_records_set(&t, "x", "Bad_Name", "172.29.0.2"), -EINVAL);
    ck_assert_int_eq(dns_records_set(&t, "x", "ok", "not-an-ip"), -EINVAL);
    ck_assert_int_eq(dns_records_set(&t, NULL, "ok", "1.2.3.4"), -EINVAL);
    ck_assert(dns_records_remove(&t, "0123456789ab"));
    ck_assert(!dns_records_remove(&t, "0123456789ab"));
    ck_assert(!dns_records_lookup(&t, "web", &a));
    ck_assert(dns_records_lookup(&t, "db", &a));
    for (int i = 0; i < 100; i++) { /* growth */
        char id[16], name[16];
        snprintf(id, sizeof id, "id%d", i);
        snprintf(name, sizeof name, "n%d", i);
        ck_assert_int_eq(dns_records_set(&t, id, name, "10.0.0.1"), 0);
    }
    ck_assert_uint_eq(dns_records_count(&t), 101);
    dns_records_clear(&t);
    ck_assert_uint_eq(dns_records_count(&t), 0);
    dns_records_destroy(&t);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(t_upstream)
{
    char dir[] = "/tmp/dns-upstream-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char resolv[256], resolved[256], text[64], how[128];
    snprintf(resolv, sizeof resolv, "%s/resolv.conf", dir);
    snprintf(resolved, sizeof resolved, "%s/resolved.conf", dir);
    struct dns_addr a;

    /* Plain host: the first non-loopback nameserver. */
    write_file(resolv, "# c\nsearch example\nnameserver 127.0.0.1\nnameserver 192.0.2.53\n"
                       "nameserver 192.0.2.54\n");
    ck_assert_int_eq(dns_upstream_auto(resolv, resolved, &a, how, sizeof how), 0);
    dns_addr_format(&a, text, sizeof text);
    ck_assert_str_eq(text, "192.0.2.53:53");

    /* systemd-resolved stub only: its own file has the real servers. */
    write_file(resolv, "nameserver 127.0.0.53\noptions edns0 trust-ad\n");
    write_file(resolved, "nameserver 2001:db8::35\nnameserver 192.0.2.1\n");
    ck_assert_int_eq(dns_upstream_auto(resolv, resolved, &a, how, sizeof how), 0);
    dns_addr_format(&a, text, sizeof text);
    ck_assert_str_eq(text, "[2001:db8::35]:53");
    ck_assert_ptr_nonnull(strstr(how, "resolved.conf"));

    /* Stub and no resolved file: the stub, since the daemon forwards itself. */
    unlink(resolved);
    ck_assert_int_eq(dns_upstream_auto(resolv, resolved, &a, how, sizeof how), 0);
    ck_assert(dns_addr_is_loopback(&a));

    write_file(resolv, "search x\n");
    ck_assert_int_eq(dns_upstream_auto(resolv, resolved, &a, how, sizeof how), -ENOENT);
    unlink(resolv);
    ck_assert_int_eq(dns_upstream_auto(resolv, resolved, &a, NULL, 0), -ENOENT);
    rmdir(dir);

    ck_assert_int_eq(dns_addr_parse("127.0.0.2:5300", 53, &a), 0);
    dns_addr_format(&a, text, sizeof text);
    ck_assert_str_eq(text, "127.0.0.2:5300");
    ck_assert(dns_addr_is_loopback(&a));
    ck_assert_int_eq(dns_addr_parse("192.0.2.1", 53, &a), 0);
    dns_addr_format(&a, text, sizeof text);
    ck_assert_str_eq(text, "192.0.2.1:53");
    ck_assert_int_eq(dns_addr_parse("[::1]:5353", 53, &a), 0);
    dns_addr_format(&a, text, sizeof text);
    ck_assert_str_eq(text, "[::1]:5353");
    ck_assert_int_eq(dns_addr_parse("2001:db8::1", 53, &a), 0);
    const char *bad[] = { "", "host.example", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:70000",
                          "1.2.3.4:x", "[::1", "[::1]x", "[]:53", "1.2.3:53" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(dns_addr_parse(bad[i], 53, &a) == -EINVAL, "'%s'", bad[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dns-query");
    TCase *tc = tcase_create("pure");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_a_record);
    tcase_add_test(tc, t_nodata_nxdomain);
    tcase_add_test(tc, t_forward_outside);
    tcase_add_test(tc, t_malformed);
    tcase_add_test(tc, t_oversized_and_random);
    tcase_add_test(tc, t_error_reply_and_question_end);
    tcase_add_test(tc, t_records);
    tcase_add_test(tc, t_upstream);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
