/* Opening a file a client named, with the client's own permissions.
 *
 * bangerd runs as root; a member of socket_group who names a path must not
 * reach a file they could not open themselves. The path is opened once,
 * with the calling thread's filesystem credentials switched to the
 * client's, and every later check and copy uses that descriptor. */
#ifndef BANGER_UTIL_CALLER_OPEN_H
#define BANGER_UTIL_CALLER_OPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Who asked: the peer's effective uid and gid and its supplementary groups,
 * as the kernel recorded them when it connected. */
struct bg_caller {
    uid_t uid;
    gid_t gid;
    size_t ngroups;
    gid_t *groups;   /* owned; bg_caller_clear frees it */
};

/* Fill `c` from a connected Unix socket (SO_PEERCRED, SO_PEERGROUPS).
 * 0 or a negative errno with `why`. */
int bg_caller_from_socket(int fd, struct bg_caller *c, char *why, size_t why_len);
void bg_caller_clear(struct bg_caller *c);

/* Open `path` read-only for `caller`: O_NOFOLLOW (a symlink in the last
 * component is refused), O_NONBLOCK while opening (a fifo cannot hang the
 * daemon), then only a regular file is accepted. A NULL caller, or uid 0,
 * opens with the daemon's own credentials. On success *fd_out is the
 * descriptor (close-on-exec, blocking). On failure `why` reads
 * "<path>: <reason> (opened as uid N)". */
int bg_caller_open(const struct bg_caller *caller, const char *path, int *fd_out, char *why,
                   size_t why_len);

/* The switch itself, for tests: run `fn(arg)` on this thread with its
 * filesystem uid, gid and groups set to the caller's, then restore root's.
 * Returns fn's value, or a negative errno when the switch failed. Aborts
 * the process when root's credentials cannot be restored. */
int bg_caller_run_as(const struct bg_caller *caller, int (*fn)(void *arg), void *arg);

#endif
