/* A tiny stand-in for Firecracker's hybrid vsock: a Unix socket server that
 * reads "CONNECT <port>\n", answers "OK 1073741824\n" and forwards the byte
 * stream to the agent's Unix socket (or misbehaves, for tests). */
#ifndef BANGER_TEST_VSOCK_SHIM_H
#define BANGER_TEST_VSOCK_SHIM_H

#include <pthread.h>

enum shim_mode {
    SHIM_FORWARD,               /* like Firecracker: close when no guest listener */
    SHIM_GARBAGE_HANDSHAKE,     /* answer CONNECT with garbage */
    SHIM_GARBAGE_REPLY,         /* OK, then garbage instead of the agent's reply */
};

struct vsock_shim {
    int listen_fd;
    int stop_pipe[2];
    pthread_t thread;
    enum shim_mode mode;
    char path[128];             /* where the shim listens (uds_path) */
    char target[128];           /* the agent's Unix socket */
    unsigned last_port;         /* port named in the last CONNECT */
};

int vsock_shim_start(struct vsock_shim *s, const char *path, const char *target,
                     enum shim_mode mode);
void vsock_shim_stop(struct vsock_shim *s);

#endif
