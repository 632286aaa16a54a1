/* Test helpers: run the agent binary from the build tree on a temporary
 * Unix socket, talk to it line by line. */
#ifndef BANGER_TEST_AGENT_HARNESS_H
#define BANGER_TEST_AGENT_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

struct agent_proc {
    pid_t pid;
    char dir[64];
    char sock[128];
};

/* Make a temporary directory (removed at exit even when a test fails). */
int harness_tmpdir(char *out, size_t out_len);

/* Start $AGENT_BIN --listen unix:<tmpdir>/agent.sock. With delay_ms > 0 the
 * child waits that long before it execs, so the socket appears late.
 * The process is killed at exit even when a test fails. */
int agent_proc_start(struct agent_proc *p, int delay_ms);
/* Wait (bounded, 20 s) until the agent accepts connections. */
int agent_proc_wait_ready(const struct agent_proc *p);
/* SIGTERM, reap, remove the socket and directory. Returns the exit status. */
int agent_proc_stop(struct agent_proc *p);

/* Connected AF_UNIX stream socket, or -errno. */
int harness_connect(const char *path);
int harness_send(int fd, const void *buf, size_t len);
/* Read one line (newline stripped) into buf. Returns its length, -ECONNRESET
 * on EOF or reset before a full line, -ETIMEDOUT after 20 s (hang guard). */
ssize_t harness_read_line(int fd, char *buf, size_t cap);
/* Returns 1 when the peer closed the connection (EOF or reset) with no
 * further line, 0 when more data arrived. Bounded like harness_read_line. */
int harness_peer_closed(int fd);
/* Send `req` and read the reply line into buf. */
ssize_t harness_roundtrip(const char *path, const char *req, char *buf, size_t cap);

/* First line of a small file, newline stripped. */
int harness_read_file_line(const char *path, char *buf, size_t cap);

#endif
