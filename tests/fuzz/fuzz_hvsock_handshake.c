/* libFuzzer target: the host side of Firecracker's hybrid-vsock handshake
 * (agent/hybrid-vsock.c), shared by the daemon and the vsock module. The
 * input is everything the other end sends: the answer to "CONNECT <port>"
 * and the lines after it. */
#include "config.h"

#include <errno.h>

#include "agent-proto.h"
#include "fuzz-peer.h"
#include "fuzz-util.h"
#include "hybrid-vsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "OK <1..10 digits>" exactly, as the handshake must have seen it. */
static int fuzz_is_ok_line(const char *s)
{
    size_t digits;

    if (strncmp(s, "OK ", 3) != 0)
        return 0;
    digits = strspn(s + 3, "0123456789");
    return digits >= 1 && digits <= 10 && s[3 + digits] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[] = { AGENT_MAX_HEALTH_REPLY, 64, 1, 0 };
    size_t max = maxes[size % 4];
    struct hvsock_conn c;
    enum hvsock_stage stage;
    char excerpt[256], tiny[6];
    char *line = NULL;
    int r;

    if (fuzz_peer_prepare(data, size) < 0)
        return 0;
    r = hvsock_open(&c, "/nonexistent/fuzz/vsock.sock", AGENT_DEFAULT_PORT,
                    hvsock_now_ns() + 10LL * 1000000000LL, &stage);
    if (r < 0) {
        /* With every byte already sent and the writer gone, only these. */
        FUZZ_CHECK(stage == HVSOCK_STAGE_ANSWER);
        FUZZ_CHECK(r == -ECONNRESET || r == -EMSGSIZE || r == -EPROTO);
        if (r == -EMSGSIZE || r == -EPROTO) {
            FUZZ_CHECK(c.buf != NULL);
            hvsock_excerpt(c.buf, 80, excerpt, sizeof(excerpt));
            FUZZ_CHECK(strlen(excerpt) < sizeof(excerpt));
            for (const char *p = excerpt; *p; p++)
                FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
            hvsock_excerpt(c.buf, 80, tiny, sizeof(tiny));
            FUZZ_CHECK(strlen(tiny) < sizeof(tiny));
        }
        if (r == -EPROTO)
            FUZZ_CHECK(!fuzz_is_ok_line(c.buf));
    } else {
        /* The handshake kept its line for the caller: it is "OK <n>". */
        FUZZ_CHECK(c.line_len > 0 && c.line_len <= c.len);
        FUZZ_CHECK(fuzz_is_ok_line(c.buf));
        /* Then lines, as the agent's reply is read, until the end. */
        for (int n = 0; n < 64; n++) {
            r = hvsock_read_line(&c, max, &line);
            if (r < 0) {
                FUZZ_CHECK(r == -ECONNRESET || r == -EMSGSIZE);
                break;
            }
            FUZZ_CHECK(line == c.buf);
            FUZZ_CHECK(strlen(line) <= max);
            FUZZ_CHECK(strchr(line, '\n') == NULL);
            FUZZ_CHECK(c.line_len <= c.len && c.len <= c.cap);
        }
        hvsock_discard(&c);
        FUZZ_CHECK(c.len == 0);
    }
    hvsock_close(&c);
    hvsock_close(&c); /* documented as safe twice */
    fuzz_peer_done();
    return 0;
}
