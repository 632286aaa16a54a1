#include "config.h"

#include "rpc/server.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "vmsvc/vmsvc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RPC_READ_TIMEOUT_MS 30000

struct rpc_conn;

struct rpc_server {
    char *path;
    int listen_fd;
    int wake[2];               /* closes the accept loop */
    pthread_t thread;
    bool have_gid;
    gid_t gid;
    struct rpc_limits limits;
    rpc_handler_fn handler;
    void *ctx;
    pthread_mutex_t mutex;
    pthread_cond_t idle;       /* CLOCK_MONOTONIC */
    unsigned active;
    struct rpc_conn *conns;    /* open connections, under mutex */
};

struct rpc_conn {
    struct rpc_server *server;
    int fd;
    uid_t uid;
    char method[64];           /* for the shutdown log; under mutex */
    struct rpc_conn *prev, *next;
};

static long long rpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool rpc_peer_authorized(uid_t uid, gid_t gid, bool have_group, gid_t group)
{
    if (uid == 0)
        return true;
    if (!have_group)
        return false;
    if (gid == group)
        return true;
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return false;
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
        return false;
    for (int i = 0; i < n; i++)
        if (groups[i] == group)
            return true;
    return false;
}

/* Write one JSON line within the send deadline. A client that went away, or
 * stopped reading for longer than the deadline, is remembered and its
 * connection shut down; the operation itself carries on to its end, so the
 * host is never left half-done because of a client. */
static void rpc_send(struct rpc_call *call, cJSON *msg)
{
    if (call->client_gone) {
        cJSON_Delete(msg);
        return;
    }
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (!text)
        return;
    size_t len = strlen(text);
    text = xrealloc(text, len + 2);
    text[len++] = '\n';
    long long deadline = rpc_now_ms() + call->send_timeout_ms;
    for (size_t done = 0; done < len;) {
        ssize_t w = send(call->fd, text + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            long long left = deadline - rpc_now_ms();
            struct pollfd pfd = { .fd = call->fd, .events = POLLOUT };
            int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
            if (pr > 0 || (pr < 0 && errno == EINTR))
                continue;
            bg_log(BANGER_LOG_WARNING, NULL, "client stopped reading (%zu of %zu bytes sent in %d ms); "
                   "dropping the connection, the operation continues", done, len, call->send_timeout_ms);
            shutdown(call->fd, SHUT_RDWR);
        } else {
            bg_log(BANGER_LOG_DEBUG, NULL, "client went away; the operation continues");
        }
        call->client_gone = true;
        break;
    }
    free(text);
}

void rpc_call_progress(struct rpc_call *call, const char *stage)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddNumberToObject(msg, "v", RPC_PROTOCOL_VERSION);
    cJSON *p = cJSON_AddObjectToObject(msg, "progress");
    cJSON_AddStringToObject(p, "stage", stage);
    cJSON_AddNumberToObject(p, "elapsed_ms", (double)(rpc_now_ms() - call->started_ms));
    rpc_send(call, msg);
}

bool rpc_call_cancelled(const struct rpc_call *call)
{
    if (call->client_gone)
        return true;
    struct pollfd pfd = { .fd = call->fd, .events = POLLRDHUP };
    if (poll(&pfd, 1, 0) <= 0)
        return false;
    /* POLLRDHUP alone is a half-close (shutdown(SHUT_WR) after the
     * request); POLLHUP comes only once the peer closed the socket. */
    return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void rpc_send_error(struct rpc_call *call, const char *code, const char *message)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddNumberToObject(msg, "v", RPC_PROTOCOL_VERSION);
    cJSON *e = cJSON_AddObjectToObject(msg, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "op_id", call->op_id);
    rpc_send(call, msg);
}

/* Read one line (up to RPC_MAX_REQUEST) with an overall deadline. */
static int rpc_read_request(int fd, char **out, struct banger_error *err)
{
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    long long deadline = rpc_now_ms() + RPC_READ_TIMEOUT_MS;
    int r = 0;
    for (;;) {
        long long left = deadline - rpc_now_ms();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            r = bg_fail(err, -ETIMEDOUT, "no complete request within %d s", RPC_READ_TIMEOUT_MS / 1000);
            break;
        }
        if (len + 1 >= cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = bg_fail_errno(err, -errno, "read request");
            break;
        }
        if (n == 0) {
            r = bg_fail(err, -EPROTO, len ? "request not terminated by a newline" : "empty request");
            break;
        }
        char *nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (nl) {
            *nl = '\0';
            *out = buf;
            return 0;
        }
        if (len > RPC_MAX_REQUEST) {
            r = bg_fail(err, -EMSGSIZE, "request larger than %d bytes", RPC_MAX_REQUEST);
            break;
        }
    }
    free(buf);
    return r;
}

static void rpc_serve(struct rpc_server *s, struct rpc_conn *conn)
{
    int fd = conn->fd;
    struct rpc_call call = { .fd = fd, .started_ms = rpc_now_ms(),
                             .send_timeout_ms = s->limits.send_timeout_ms };
    char *text = NULL;
    struct rpc_request req = { 0 };

    bg_log_new_op(call.op_id, sizeof(call.op_id));
    bg_log_set_op(call.op_id);

    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
        rpc_send_error(&call, "failed", "cannot read peer credentials");
        goto done;
    }
    call.peer_uid = cred.uid;
    char why[256];
    if (bg_caller_from_socket(fd, &call.caller, why, sizeof(why)) < 0) {
        rpc_send_error(&call, "failed", why);
        goto done;
    }
    if (!rpc_peer_authorized(cred.uid, cred.gid, s->have_gid, s->gid)) {
        bg_log(BANGER_LOG_WARNING, NULL, "refused uid %u pid %d: not root nor in socket_group",
               (unsigned)cred.uid, (int)cred.pid);
        rpc_send_error(&call, "unauthorized",
                       "permission denied: only root and members of the banger socket group may use bangerd");
        goto done;
    }

    struct banger_error e = { 0 };
    if (rpc_read_request(fd, &text, &e) < 0) {
        rpc_send_error(&call, "bad_request", bg_error_text(&e));
        goto done;
    }
    if (rpc_request_parse(text, &req, why, sizeof(why)) < 0) {
        rpc_send_error(&call, "bad_request", why);
        goto done;
    }
    call.method = req.method;
    call.params = req.params;
    pthread_mutex_lock(&s->mutex);
    snprintf(conn->method, sizeof(conn->method), "%s", call.method);
    pthread_mutex_unlock(&s->mutex);
    bg_log(BANGER_LOG_DEBUG, NULL, "%s from uid %u", call.method, (unsigned)cred.uid);
    int r = s->handler(s->ctx, &call);
    if (r < 0) {
        if (call.err.code == 0)
            bg_fail(&call.err, r, "%s", strerror(-r));
        const char *code = call.error_code ? call.error_code : vmsvc_error_code(call.err.code);
        bg_log(BANGER_LOG_INFO, NULL, "%s failed (%s): %s", call.method, code, bg_error_text(&call.err));
        rpc_send_error(&call, code, bg_error_text(&call.err));
    } else {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddNumberToObject(out, "v", RPC_PROTOCOL_VERSION);
        cJSON_AddStringToObject(out, "op_id", call.op_id);
        cJSON_AddItemToObject(out, "result", call.result ? call.result : cJSON_CreateObject());
        call.result = NULL;
        rpc_send(&call, out);
    }
done:
    bg_caller_clear(&call.caller);
    cJSON_Delete(call.result);
    rpc_request_clear(&req);
    free(text);
    bg_log_set_op(NULL);
}

/* Close a connection and give back its slot. Closed under the lock:
 * rpc_server_stop never shuts down a reused fd. */
static void rpc_conn_forget(struct rpc_server *s, struct rpc_conn *c)
{
    pthread_mutex_lock(&s->mutex);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    if (--s->active == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mutex);
}

static void *rpc_conn_thread(void *arg)
{
    struct rpc_conn *c = arg;
    struct rpc_server *s = c->server;
    rpc_serve(s, c);
    rpc_conn_forget(s, c);
    return NULL;
}

/* Why a new connection of `uid` cannot have a slot, or NULL (then it is
 * counted). Root may use every slot; others leave some for root, and one
 * uid may hold at most limits.max_per_uid. Under s->mutex. */
static const char *rpc_admit_locked(struct rpc_server *s, uid_t uid, char *why, size_t size)
{
    if (s->active >= RPC_MAX_CONNECTIONS) {
        snprintf(why, size, "bangerd has %u connections open (limit %d); try again", s->active,
                 RPC_MAX_CONNECTIONS);
        return why;
    }
    if (uid == 0)
        return NULL;
    unsigned mine = 0;
    for (const struct rpc_conn *c = s->conns; c; c = c->next)
        mine += c->uid == uid;
    if (mine >= s->limits.max_per_uid) {
        snprintf(why, size, "uid %u has %u connections open (limit %u)", (unsigned)uid, mine,
                 s->limits.max_per_uid);
        return why;
    }
    if (s->active >= RPC_MAX_CONNECTIONS - RPC_ROOT_RESERVED_CONNECTIONS) {
        snprintf(why, size, "bangerd has %u connections open (the last %d are kept for root); "
                 "try again", s->active, RPC_ROOT_RESERVED_CONNECTIONS);
        return why;
    }
    return NULL;
}

/* Best effort: the refused client gets one line, never a wait. */
static void rpc_refuse_busy(int fd, const char *why)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddNumberToObject(msg, "v", RPC_PROTOCOL_VERSION);
    cJSON *e = cJSON_AddObjectToObject(msg, "error");
    cJSON_AddStringToObject(e, "code", "busy");
    cJSON_AddStringToObject(e, "message", why);
    cJSON_AddStringToObject(e, "op_id", "");
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (text) {
        size_t len = strlen(text);
        text = xrealloc(text, len + 2);
        text[len++] = '\n';
        ssize_t w = send(fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        free(text);
    }
    close(fd);
}

static void *rpc_accept_thread(void *arg)
{
    struct rpc_server *s = arg;
    for (;;) {
        struct pollfd pfd[2] = { { .fd = s->listen_fd, .events = POLLIN },
                                 { .fd = s->wake[0], .events = POLLIN } };
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct ucred cred;
        socklen_t cl = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
            close(fd);
            continue;
        }
        struct rpc_conn *c = xcalloc(1, sizeof(*c));
        c->server = s;
        c->fd = fd;
        c->uid = cred.uid;
        char why[160];
        pthread_mutex_lock(&s->mutex);
        const char *refused = rpc_admit_locked(s, cred.uid, why, sizeof(why));
        if (!refused) {
            s->active++;
            c->next = s->conns;
            if (s->conns)
                s->conns->prev = c;
            s->conns = c;
        }
        pthread_mutex_unlock(&s->mutex);
        if (refused) {
            bg_log(BANGER_LOG_WARNING, NULL, "refused a connection of pid %d: %s", (int)cred.pid,
                   refused);
            free(c);
            rpc_refuse_busy(fd, refused);
            continue;
        }
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, rpc_conn_thread, c) != 0)
            rpc_conn_forget(s, c);
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

int rpc_server_start(const char *path, bool have_gid, gid_t gid, const struct rpc_limits *limits,
                     rpc_handler_fn handler, void *ctx, struct rpc_server **out,
                     struct banger_error *err)
{
    static const struct rpc_limits defaults = RPC_LIMITS_DEFAULT;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path))
        return bg_fail(err, -ENAMETOOLONG, "socket path %s is too long", path);
    strcpy(addr.sun_path, path);

    struct rpc_server *s = xcalloc(1, sizeof(*s));
    s->path = xstrdup(path);
    s->listen_fd = -1;
    s->wake[0] = s->wake[1] = -1;
    s->have_gid = have_gid;
    s->gid = gid;
    s->limits = limits ? *limits : defaults;
    s->handler = handler;
    s->ctx = ctx;
    pthread_mutex_init(&s->mutex, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->idle, &ca);
    pthread_condattr_destroy(&ca);
    int r;

    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0) {
        r = bg_fail_errno(err, -errno, "socket");
        goto fail;
    }
    /* A socket file left by a previous daemon would make bind fail. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            r = bg_fail(err, -EEXIST, "%s exists and is not a socket; refusing to replace it", path);
            goto fail;
        }
        unlink(path);
    }
    mode_t old = umask(0177);
    r = bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (r < 0) {
        r = bg_fail_errno(err, -errno, "bind %s", path);
        goto fail;
    }
    if ((have_gid && chown(path, 0, gid) < 0 && geteuid() == 0) ||
        chmod(path, have_gid ? 0660 : 0600) < 0) {
        r = bg_fail_errno(err, -errno, "set owner and mode of %s", path);
        goto fail;
    }
    if (listen(s->listen_fd, 128) < 0) {
        r = bg_fail_errno(err, -errno, "listen on %s", path);
        goto fail;
    }
    if (pipe2(s->wake, O_CLOEXEC) < 0) {
        r = bg_fail_errno(err, -errno, "pipe");
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, rpc_accept_thread, s) != 0) {
        r = bg_fail(err, -EAGAIN, "cannot start the RPC thread");
        goto fail;
    }
    *out = s;
    return 0;

fail:
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        unlink(path);
    }
    if (s->wake[0] >= 0) {
        close(s->wake[0]);
        close(s->wake[1]);
    }
    pthread_mutex_destroy(&s->mutex);
    pthread_cond_destroy(&s->idle);
    free(s->path);
    free(s);
    return r;
}

unsigned rpc_server_stop(struct rpc_server *s)
{
    if (!s)
        return 0;
    ssize_t w = write(s->wake[1], "x", 1);
    (void)w;
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    unlink(s->path);
    /* Every client is cut off: a read or send blocked on it returns at once,
     * so only the work of a call can keep its thread. */
    pthread_mutex_lock(&s->mutex);
    for (struct rpc_conn *c = s->conns; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    /* Running operations get a bounded time to finish, so VMs are rarely
     * left half-started; one that does not make it is reconciled at the
     * next start like after a crash. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += s->limits.shutdown_grace_ms / 1000;
    until.tv_nsec += (long)(s->limits.shutdown_grace_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (s->active > 0)
        if (pthread_cond_timedwait(&s->idle, &s->mutex, &until) == ETIMEDOUT)
            break;
    unsigned lingering = s->active;
    for (struct rpc_conn *c = s->conns; c; c = c->next)
        bg_log(BANGER_LOG_WARNING, NULL, "call %s of uid %u still running after %d ms",
               c->method[0] ? c->method : "(request not read)", (unsigned)c->uid,
               s->limits.shutdown_grace_ms);
    pthread_mutex_unlock(&s->mutex);
    if (lingering)
        return lingering; /* their threads still use s */
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mutex);
    pthread_cond_destroy(&s->idle);
    free(s->path);
    free(s);
    return 0;
}
