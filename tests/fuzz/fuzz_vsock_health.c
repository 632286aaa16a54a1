/* libFuzzer target: a guest agent's health reply as the vsock module reads
 * it while waiting for a VM to come up (plugins/vsock/vsock-client.c). The
 * input is what the other end of the vsock sends: the handshake answer,
 * then the reply line. */
#include "config.h"

#include <errno.h>

#include "fuzz-peer.h"
#include "fuzz-util.h"
#include "vsock-client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The guest's strings go into the daemon's log lines: escaped. */
static void fuzz_check_field(const char *s, size_t cap)
{
    FUZZ_CHECK(memchr(s, '\0', cap) != NULL);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vsock_health health;
    char why[512];
    int r;

    memset(&health, 0, sizeof(health));
    memset(why, 0, sizeof(why));
    if (fuzz_peer_prepare(data, size) < 0)
        return 0;
    r = vsock_probe_once("/nonexistent/fuzz/vsock.sock", 10789, vsock_now_ms() + 10000, &health,
                         why, sizeof(why));
    if (r == 0) {
        fuzz_check_field(health.version, sizeof(health.version));
        fuzz_check_field(health.boot_id, sizeof(health.boot_id));
        fuzz_check_field(health.hostname, sizeof(health.hostname));
        FUZZ_CHECK(health.boot_id[0] != '\0');
    } else {
        FUZZ_CHECK(r == -ECONNRESET || r == -EPROTO);
        /* The reason ends up in the VM's last_error and on the terminal. */
        fuzz_check_message(why, sizeof(why), 1);
    }
    fuzz_peer_done();
    return 0;
}
