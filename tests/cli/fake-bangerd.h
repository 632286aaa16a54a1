/* A fake bangerd for the CLI tests: runs `banger` as a child process and,
 * in the same thread, answers its connections with canned replies,
 * recording each request line. */
#ifndef BANGER_TESTS_CLI_FAKE_BANGERD_H
#define BANGER_TESTS_CLI_FAKE_BANGERD_H

#include <stdbool.h>
#include <stddef.h>

#define FAKE_MAX_REQUESTS 32

/* The n-th call of `method` gets the n-th entry for it; the last one
 * repeats. `lines` is sent as it is (each line ending in '\n'). */
struct fake_reply {
    const char *method;
    const char *lines;
};

struct fake_opts {
    const char *socket_path;         /* where the fake listens; NULL: no fake */
    const struct fake_reply *replies; /* ends with { NULL, NULL } */
    bool stderr_tty;                 /* give banger a pseudo-terminal as stderr */
    const char *env_socket;          /* BANGER_SOCKET for the child, or unset */
};

struct fake_result {
    int exit_status;                 /* -1 when it did not exit normally */
    char *out;
    size_t out_len;                  /* bytes in out (it may hold NULs) */
    char *err;
    int connections;
    int nrequests;
    char *requests[FAKE_MAX_REQUESTS]; /* request lines without '\n' */
};

/* Runs BANGER_BIN with argv (NULL-terminated, without the program name). */
void fake_run(const struct fake_opts *opts, const char *const *argv, struct fake_result *res);
void fake_result_free(struct fake_result *res);

#endif
