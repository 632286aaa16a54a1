/* Host side of the guest agent channel through Firecracker's hybrid vsock:
 * connect to the VM's Unix socket, "CONNECT <port>\n", expect "OK <n>\n",
 * send a health request, check the reply. No daemon needed, so the logic
 * is tested on its own (tests/agent). */
#ifndef BANGER_VSOCK_CLIENT_H
#define BANGER_VSOCK_CLIENT_H

#include <stddef.h>

struct vsock_wait_opts {
    const char *uds_path;       /* Firecracker's vsock uds_path */
    unsigned port;              /* the agent's vsock port */
    long long timeout_ms;       /* overall deadline */
    int attempt_timeout_ms;     /* read deadline of one attempt; 0 = 3000 */
    /* Called before each attempt; returning 0 means the VMM is gone and
     * waiting is pointless. NULL: not checked. */
    int (*vmm_alive)(void *ctx);
    void *ctx;
};

struct vsock_health {
    char version[64];
    char boot_id[64];
    char hostname[256];
    long long uptime_ms;
    int attempts;               /* connection attempts made */
};

/* One attempt with a deadline (CLOCK_MONOTONIC ms). Returns 0 and fills
 * *health, or
 *   -ENOENT        the socket does not exist,
 *   -ECONNREFUSED  nobody listens on it,
 *   -ECONNRESET    the connection was closed (guest port not listening),
 *   -ETIMEDOUT     no complete answer by the deadline,
 *   -EPROTO        unexpected bytes (wrong reply),
 * or another negative errno; `why` says what happened. */
int vsock_probe_once(const char *uds_path, unsigned port, long long deadline_ms,
                     struct vsock_health *health, char *why, size_t why_len);

/* Retry vsock_probe_once with backoff until it succeeds or the deadline.
 * Returns 0, or
 *   -ESRCH      firecracker exited (vmm_alive said so),
 *   -ENOENT     socket missing: uds_path never appeared,
 *   -ETIMEDOUT  "agent never answered" by the deadline,
 *   -EPROTO     wrong reply (fails at once, retrying would not help),
 * with a message for the user in `why`. */
int vsock_wait_ready(const struct vsock_wait_opts *opts, struct vsock_health *health,
                     char *why, size_t why_len);

/* CLOCK_MONOTONIC in milliseconds. */
long long vsock_now_ms(void);

#endif /* BANGER_VSOCK_CLIENT_H */
