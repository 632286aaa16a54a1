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
    SHIM_SCRIPTED_REPLY,        /* OK, then `reply` as the agent's reply line */
};

struct vsock_shim {
    int listen_fd;
    int stop_pipe[2];
    pthread_t thread;
    enum shim_mode mode;
    char path[128];             /* where the shim listens (uds_path) */
    char target[128];           /* the agent's Unix socket */
    unsigned last_port;         /* port named in the last CONNECT */
    char reply[512];            /* SHIM_SCRIPTED_REPLY: the line sent, '\n' added */
};

int vsock_shim_start(struct vsock_shim *s, const char *path, const char *target,
                     enum shim_mode mode);
/* SHIM_SCRIPTED_REPLY: a hostile guest's agent that answers `reply`. */
int vsock_shim_start_reply(struct vsock_shim *s, const char *path, const char *reply);
void vsock_shim_stop(struct vsock_shim *s);

#endif
