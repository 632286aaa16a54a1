/* The agent's connection loop: one thread, poll(), non-blocking sockets. */
#ifndef BANGER_AGENT_SERVER_H
#define BANGER_AGENT_SERVER_H

#include <stddef.h>

struct agent_server_opts {
    int listen_fd;              /* listening, non-blocking stream socket */
    int stop_fd;                /* readable means stop (a signalfd), or -1 */
    const char *proc_root;      /* "/proc" */
    size_t max_clients;         /* connections served at once */
    int idle_timeout_ms;        /* drop a silent client after this, 0 = never */
};

/* Serve until stop_fd becomes readable. Returns 0, or a negative errno with
 * a reason in `why` when the loop itself failed. */
int agent_server_run(const struct agent_server_opts *opts, char *why, size_t why_len);

#endif /* BANGER_AGENT_SERVER_H */
