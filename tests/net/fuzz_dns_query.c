/* libFuzzer target: the dns module's query handling on arbitrary bytes.
 * Build and run with `make fuzz-dns` in tests/net. */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dns-query.h"

static bool fuzz_lookup(void *ctx, const char *label, struct in_addr *addr)
{
    (void)ctx;
    if (strcmp(label, "web") != 0 && strcmp(label, "a") != 0)
        return false;
    addr->s_addr = htonl(0xac1d0002);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct dns_zone zones[] = {
        { .name = "vm", .lookup = fuzz_lookup },
        { .name = "banger.internal", .lookup = fuzz_lookup },
    };
    const struct dns_zone *zone = &zones[size & 1];
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    enum dns_verdict v = dns_query_answer(zone, data, size, &reply, &reply_len);
    if (v == DNS_REPLY && (!reply || reply_len < DNS_HEADER_LEN || reply[0] != data[0] ||
                           reply[1] != data[1]))
        abort(); /* every reply carries the query's id */
    free(reply);

    /* The helpers the forwarder uses on upstream answers. */
    size_t end = dns_question_end(data, size);
    if (end > size)
        abort();
    reply = dns_error_reply(data, size, 2, true, &reply_len);
    free(reply);
    return 0;
}
