#include "config.h"

#include "util/caller_open.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

int bg_caller_from_socket(int fd, struct bg_caller *c, char *why, size_t why_len)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    gid_t *groups = NULL;
    socklen_t glen = 0;
    int r = 0;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
        r = -errno;
        snprintf(why, why_len, "peer credentials: %s", strerror(errno));
        goto cleanup;
    }
    /* The kernel answers ERANGE with the length it needs. */
    while (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0) {
        if (errno != ERANGE) {
            r = -errno;
            snprintf(why, why_len, "peer groups: %s", strerror(errno));
            goto cleanup;
        }
        free(groups);
        groups = malloc(glen ? glen : 1);
        if (!groups) {
            r = -ENOMEM;
            snprintf(why, why_len, "peer groups: %s", strerror(ENOMEM));
            goto cleanup;
        }
    }
    c->uid = cred.uid;
    c->gid = cred.gid;
    c->ngroups = glen / sizeof(gid_t);
    c->groups = groups;
    groups = NULL;
cleanup:
    free(groups);
    return r;
}

void bg_caller_clear(struct bg_caller *c)
{
    if (!c)
        return;
    free(c->groups);
    memset(c, 0, sizeof(*c));
}

/* ---- switching one thread's filesystem credentials ---------------------- */

/* What a thread had before the switch. */
struct caller_saved {
    uid_t fsuid;
    gid_t fsgid;
    int ngroups;
    gid_t *groups;
    uint32_t effective[2];
};

/* setfsuid/setfsgid report no errors: they return the previous id. Asked
 * with an invalid id (-1) they change nothing and return the current one. */
static uid_t caller_fsuid_now(void) { return (uid_t)syscall(SYS_setfsuid, (uid_t)-1); }
static gid_t caller_fsgid_now(void) { return (gid_t)syscall(SYS_setfsgid, (gid_t)-1); }

/* This thread's effective capability set (pid 0: the calling thread). */
static int caller_effective_caps(uint32_t effective[2])
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];

    if (syscall(SYS_capget, &hdr, data) < 0)
        return -errno;
    effective[0] = data[0].effective;
    effective[1] = data[1].effective;
    return 0;
}

static bool caller_cap_effective(const uint32_t effective[2], int cap)
{
    return (effective[cap / 32] >> (cap % 32)) & 1u;
}

static int caller_save(struct caller_saved *s)
{
    long n = syscall(SYS_getgroups, 0, NULL);

    if (n < 0)
        return -errno;
    s->groups = calloc((size_t)n + 1, sizeof(gid_t));
    if (!s->groups)
        return -ENOMEM;
    n = syscall(SYS_getgroups, n, s->groups);
    if (n < 0)
        return -errno;
    s->ngroups = (int)n;
    s->fsuid = caller_fsuid_now();
    s->fsgid = caller_fsgid_now();
    return caller_effective_caps(s->effective);
}

/* Put the thread back as it was. A thread left running as a client would
 * serve the next request with the wrong permissions: worse than a crash. */
static void caller_restore(const struct caller_saved *s)
{
    uint32_t effective[2] = { 0, 0 };

    syscall(SYS_setfsuid, s->fsuid);
    syscall(SYS_setfsgid, s->fsgid);
    if (caller_fsuid_now() != s->fsuid || caller_fsgid_now() != s->fsgid ||
        syscall(SYS_setgroups, (size_t)s->ngroups, s->groups) < 0 ||
        caller_effective_caps(effective) < 0 || effective[0] != s->effective[0] ||
        effective[1] != s->effective[1]) {
        fprintf(stderr, "bangerd: cannot restore the daemon's file system credentials "
                        "after opening a file as a client; aborting\n");
        abort();
    }
}

int bg_caller_run_as(const struct bg_caller *caller, int (*fn)(void *arg), void *arg)
{
    struct caller_saved saved = { 0 };
    uint32_t effective[2] = { 0, 0 };
    bool switched = false;
    int r;

    r = caller_save(&saved);
    if (r < 0)
        goto cleanup;
    switched = true;
    /* The raw system calls, not glibc's wrappers: glibc's setgroups() makes
     * every thread of the process take the new groups (POSIX wants process
     * wide credentials), while the kernel's call changes only this thread,
     * so other requests keep running as root meanwhile. */
    if (syscall(SYS_setgroups, caller->ngroups, caller->groups) < 0) {
        r = -errno;
        goto cleanup;
    }
    syscall(SYS_setfsgid, caller->gid);
    syscall(SYS_setfsuid, caller->uid);
    if (caller_fsuid_now() != caller->uid || caller_fsgid_now() != caller->gid) {
        r = -EPERM;
        goto cleanup;
    }
    /* Leaving fsuid 0 drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and the
     * other file capabilities from the effective set; were they still
     * there, root's override would open anything regardless of the ids. */
    r = caller_effective_caps(effective);
    if (r < 0)
        goto cleanup;
    if (caller->uid != 0 && (caller_cap_effective(effective, CAP_DAC_OVERRIDE) ||
                             caller_cap_effective(effective, CAP_DAC_READ_SEARCH) ||
                             caller_cap_effective(effective, CAP_FOWNER))) {
        r = -EPERM;
        goto cleanup;
    }
    r = fn(arg);
cleanup:
    if (switched)
        caller_restore(&saved);
    free(saved.groups);
    return r;
}

/* ---- opening ------------------------------------------------------------ */

struct caller_open_args {
    const char *path;
    int fd;
};

static int caller_open_path(void *arg)
{
    struct caller_open_args *a = arg;

    a->fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    return a->fd < 0 ? -errno : 0;
}

int bg_caller_open(const struct bg_caller *caller, const char *path, int *fd_out, char *why,
                   size_t why_len)
{
    struct caller_open_args a = { .path = path, .fd = -1 };
    bool as_caller = caller && caller->uid != 0;
    char who[48] = "";
    struct stat st;
    int flags, r;

    if (as_caller)
        snprintf(who, sizeof(who), " (opened as uid %u)", (unsigned)caller->uid);
    if (!path || path[0] != '/') {
        r = -EINVAL;
        snprintf(why, why_len, "'%s' is not an absolute path", path ? path : "");
        goto cleanup;
    }
    r = as_caller ? bg_caller_run_as(caller, caller_open_path, &a) : caller_open_path(&a);
    if (r < 0) {
        snprintf(why, why_len, "%s: %s%s", path,
                 r == -ELOOP ? "a symbolic link, which is not followed" : strerror(-r), who);
        goto cleanup;
    }
    if (fstat(a.fd, &st) < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        snprintf(why, why_len, "%s: not a regular file", path);
        goto cleanup;
    }
    flags = fcntl(a.fd, F_GETFL);
    if (flags < 0 || fcntl(a.fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        r = -errno;
        snprintf(why, why_len, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    *fd_out = a.fd;
    a.fd = -1;
cleanup:
    if (a.fd >= 0)
        close(a.fd);
    return r;
}
