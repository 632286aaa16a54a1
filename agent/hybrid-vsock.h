/* Host side transport of Firecracker's hybrid vsock (docs/agent-protocol.md):
 * connect to the VM's Unix socket, "CONNECT <port>\n", expect "OK <n>\n",
 * then exchange '\n'-terminated lines. Every step is bounded by one
 * deadline. Shared by the daemon (vm.agent requests) and the vsock module
 * (readiness); each words its own error messages, so failures come back as
 * a negative errno plus the stage that failed. */
#ifndef BANGER_HYBRID_VSOCK_H
#define BANGER_HYBRID_VSOCK_H

#include <stddef.h>

struct hvsock_conn {
    int fd;                 /* -1 until connected */
    char *buf;              /* received bytes, NUL-terminated */
    size_t len, cap;
    size_t line_len;        /* bytes of the last line returned, newline included */
    long long deadline_ns;  /* CLOCK_MONOTONIC, for every step */
};

/* The step of hvsock_open that failed. */
enum hvsock_stage {
    HVSOCK_STAGE_PATH,      /* uds_path does not fit a sockaddr_un */
    HVSOCK_STAGE_SOCKET,    /* socket() */
    HVSOCK_STAGE_CONNECT,   /* connect(): -ENOENT, -ECONNREFUSED, ... */
    HVSOCK_STAGE_SEND,      /* writing "CONNECT <port>\n" */
    HVSOCK_STAGE_ANSWER,    /* reading or checking "OK <n>" */
};

/* CLOCK_MONOTONIC in nanoseconds. */
long long hvsock_now_ns(void);

/* Connect to uds_path and do the CONNECT/OK handshake by deadline_ns
 * (CLOCK_MONOTONIC), which then bounds every later step too. Sets every
 * field of *c. Returns 0, or a negative errno with *stage saying which step
 * failed. At HVSOCK_STAGE_ANSWER:
 *   -ECONNRESET  closed after CONNECT (nothing listens in the guest),
 *   -ETIMEDOUT   no answer by the deadline,
 *   -EMSGSIZE    an answer line longer than AGENT_HYBRID_MAX_LINE,
 *   -EPROTO      a line that is not "OK <decimal>";
 * for the last two, c->buf holds the bytes received (for hvsock_excerpt).
 * Call hvsock_close() in every case. */
int hvsock_open(struct hvsock_conn *c, const char *uds_path, unsigned port,
                long long deadline_ns, enum hvsock_stage *stage);

/* Write all of s[0..n) by the deadline: 0, -ETIMEDOUT, -ECONNRESET (peer
 * gone) or another negative errno. */
int hvsock_send_all(struct hvsock_conn *c, const char *s, size_t n);

/* Read one '\n'-terminated line of at most `max` bytes by the deadline.
 * *line points into c->buf (NUL-terminated, "\n" or "\r\n" stripped) until
 * the next call, which drops it; bytes after it stay buffered. Returns 0,
 * -ETIMEDOUT, -ECONNRESET (closed), -EMSGSIZE (longer than max), -ENOMEM or
 * another negative errno. */
int hvsock_read_line(struct hvsock_conn *c, size_t max, char **line);

/* Drop every buffered byte. */
void hvsock_discard(struct hvsock_conn *c);

/* Close the socket and free the buffer; safe after any hvsock_open and
 * more than once. */
void hvsock_close(struct hvsock_conn *c);

/* Printable excerpt of at most max_chars bytes of s for a message:
 * unprintable bytes become \xNN. */
void hvsock_excerpt(const char *s, size_t max_chars, char *out, size_t out_len);

#endif /* BANGER_HYBRID_VSOCK_H */
