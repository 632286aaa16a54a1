#include "config.h"

#include "runner/runner.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNNER_DEFAULT_TIMEOUT_MS 60000
#define RUNNER_MAX_OUTPUT (16u << 20)
#define RUNNER_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const char *const runner_default_env[] = {
    "PATH=" RUNNER_DEFAULT_PATH, "LANG=C.UTF-8", "LC_ALL=C.UTF-8", NULL,
};

static runner_hook_fn runner_hook;
static void *runner_hook_ctx;

void runner_set_hook(runner_hook_fn hook, void *ctx)
{
    runner_hook = hook;
    runner_hook_ctx = ctx;
}

char *runner_find_program(const char *name, const char *path)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
    char *dirs = xstrdup(path ? path : RUNNER_DEFAULT_PATH);
    char *save = NULL;
    char *found = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *cand = xasprintf("%s/%s", d, name);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            found = cand;
        else
            free(cand);
    }
    free(dirs);
    return found;
}

char *runner_argv_to_string(const char *const *argv)
{
    size_t cap = 64, len = 0;
    char *s = xmalloc(cap);
    s[0] = '\0';
    for (size_t i = 0; argv[i]; i++) {
        bool quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t\n'\"\\$") != NULL;
        size_t need = strlen(argv[i]) * 4 + 4;
        while (len + need + 1 > cap) {
            cap *= 2;
            s = xrealloc(s, cap);
        }
        if (i)
            s[len++] = ' ';
        if (quote)
            s[len++] = '\'';
        for (const char *p = argv[i]; *p; p++) {
            if (*p == '\'') {
                memcpy(s + len, "'\\''", 4);
                len += 4;
            } else {
                s[len++] = *p;
            }
        }
        if (quote)
            s[len++] = '\'';
        s[len] = '\0';
    }
    return s;
}

void runner_result_clear(struct banger_run_result *res)
{
    if (!res)
        return;
    free(res->out);
    free(res->err);
    uint32_t size = res->struct_size;
    memset(res, 0, sizeof(*res));
    res->struct_size = size ? size : sizeof(*res);
}

static const char *runner_envp_path(const char *const *envp)
{
    for (size_t i = 0; envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            return envp[i] + 5;
    return RUNNER_DEFAULT_PATH;
}

struct runner_buf {
    char *data;
    size_t len, cap;
};

static void runner_buf_append(struct runner_buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > RUNNER_MAX_OUTPUT)
        n = b->len + 1 >= RUNNER_MAX_OUTPUT ? 0 : RUNNER_MAX_OUTPUT - b->len - 1;
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static long long runner_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Raw system calls: glibc's set*id() wrappers signal every thread, which
 * is not async-signal-safe after fork. Groups first, uid last (after it
 * nothing else can be dropped). */
static int runner_child_drop(const struct runner_child *child)
{
    if (syscall(SYS_setgroups, 0, NULL) < 0 ||
        syscall(SYS_setresgid, child->gid, child->gid, child->gid) < 0 ||
        syscall(SYS_setresuid, child->uid, child->uid, child->uid) < 0)
        return -1;
    uid_t ru, eu, su;
    if (syscall(SYS_getresuid, &ru, &eu, &su) < 0 || ru != child->uid || eu != child->uid ||
        su != child->uid) {
        errno = EPERM;
        return -1;
    }
    /* No setuid binary can take the privileges back. */
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* Passed fds land on RUNNER_FIRST_PASSED_FD.. . They are first moved above
 * every fd the child sets up, so no dup2 below overwrites one of them. */
static int runner_child_move_fds(const struct runner_child *child, int *moved)
{
    int above = RUNNER_FIRST_PASSED_FD + (int)child->n_pass_fds;
    for (size_t i = 0; i < child->n_pass_fds; i++) {
        moved[i] = fcntl(child->pass_fds[i], F_DUPFD_CLOEXEC, above);
        if (moved[i] < 0)
            return -1;
    }
    return 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void runner_child(const char *prog, const char *const *argv, const char *const *envp,
                         const struct runner_child *child, int in_fd, int out_fd, int err_fd,
                         int status_fd)
{
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    setpgid(0, 0);
    int moved[RUNNER_MAX_PASSED_FDS];
    size_t n_pass = child ? child->n_pass_fds : 0;
    if (n_pass && runner_child_move_fds(child, moved) < 0)
        goto fail;
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        goto fail;
    /* status_fd is close-on-exec: it closes on a successful exec. */
    if (status_fd != 3) {
        if (dup3(status_fd, 3, O_CLOEXEC) < 0)
            goto fail;
        status_fd = 3;
    }
    for (size_t i = 0; i < n_pass; i++)
        if (dup2(moved[i], RUNNER_FIRST_PASSED_FD + (int)i) < 0)
            goto fail;
    close_range(RUNNER_FIRST_PASSED_FD + (unsigned)n_pass, ~0u, 0);
    if (child && child->drop_privileges && runner_child_drop(child) < 0)
        goto fail;
    execve(prog, (char *const *)argv, (char *const *)envp);
fail:;
    int e = errno;
    ssize_t w = write(status_fd, &e, sizeof(e));
    (void)w;
    _exit(127);
}

int runner_run(const char *const *argv, const struct banger_run_opts *opts,
               struct banger_run_result *res, struct banger_error *err)
{
    return runner_run_child(argv, opts, NULL, res, err);
}

int runner_run_child(const char *const *argv, const struct banger_run_opts *opts,
                     const struct runner_child *child, struct banger_run_result *res,
                     struct banger_error *err)
{
    struct banger_run_result local = { .struct_size = sizeof(local) };
    struct runner_buf out = { 0 }, errbuf = { 0 };
    int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
    int st_pipe[2] = { -1, -1 };
    char *prog = NULL;
    pid_t pid = -1;
    int r = 0;

    if (!argv || !argv[0])
        return bg_fail(err, -EINVAL, "runner: empty argv");
    if (child && child->n_pass_fds > RUNNER_MAX_PASSED_FDS)
        return bg_fail(err, -E2BIG, "%s: more than %d descriptors to pass", argv[0],
                       RUNNER_MAX_PASSED_FDS);
    int timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : RUNNER_DEFAULT_TIMEOUT_MS;
    const char *const *envp = opts && opts->envp ? opts->envp : runner_default_env;
    const void *in_data = opts ? opts->stdin_data : NULL;
    size_t in_len = opts && opts->stdin_data ? opts->stdin_len : 0;

    if (runner_hook) {
        int h = runner_hook(runner_hook_ctx, argv, &local);
        if (h < 0) {
            r = bg_fail(err, h, "%s: failed (test hook)", argv[0]);
            goto done;
        }
        if (h == 1)
            goto judge;
    }

    prog = runner_find_program(argv[0], runner_envp_path(envp));
    if (!prog) {
        r = bg_fail(err, -ENOENT, "%s: program not found on PATH", argv[0]);
        goto done;
    }
    if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 ||
        pipe2(err_pipe, O_CLOEXEC) < 0 || pipe2(st_pipe, O_CLOEXEC) < 0) {
        r = bg_fail_errno(err, -errno, "%s: pipe", argv[0]);
        goto done;
    }
    pid = fork();
    if (pid < 0) {
        r = bg_fail_errno(err, -errno, "%s: fork", argv[0]);
        goto done;
    }
    if (pid == 0)
        runner_child(prog, argv, envp, child, in_pipe[0], out_pipe[1], err_pipe[1], st_pipe[1]);

    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(st_pipe[1]);
    in_pipe[0] = out_pipe[1] = err_pipe[1] = st_pipe[1] = -1;

    int exec_errno = 0;
    ssize_t sn;
    do
        sn = read(st_pipe[0], &exec_errno, sizeof(exec_errno));
    while (sn < 0 && errno == EINTR);
    if (sn == (ssize_t)sizeof(exec_errno)) {
        waitpid(pid, NULL, 0);
        pid = -1;
        r = bg_fail(err, -exec_errno, "%s: cannot execute: %s", argv[0], strerror(exec_errno));
        goto done;
    }

    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    size_t in_done = 0;
    if (in_len == 0) {
        close(in_pipe[1]);
        in_pipe[1] = -1;
    }
    long long deadline = runner_now_ms() + timeout_ms;
    bool timed_out = false;
    while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
        struct pollfd pfd[3] = {
            { .fd = out_pipe[0], .events = POLLIN },
            { .fd = err_pipe[0], .events = POLLIN },
            { .fd = in_pipe[1], .events = POLLOUT },
        };
        long long left = deadline - runner_now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int pr = poll(pfd, 3, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            r = bg_fail_errno(err, -errno, "%s: poll", argv[0]);
            break;
        }
        for (int i = 0; i < 2; i++) {
            int *fd = i == 0 ? &out_pipe[0] : &err_pipe[0];
            if (*fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[8192];
            ssize_t n = read(*fd, buf, sizeof(buf));
            if (n > 0)
                runner_buf_append(i == 0 ? &out : &errbuf, buf, (size_t)n);
            else if (n == 0 || errno != EINTR) {
                close(*fd);
                *fd = -1;
            }
        }
        if (in_pipe[1] >= 0 && (pfd[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in_pipe[1], (const char *)in_data + in_done, in_len - in_done);
            if (n > 0)
                in_done += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || in_done == in_len) {
                close(in_pipe[1]);
                in_pipe[1] = -1;
            }
        }
    }
    if (timed_out)
        kill(-pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (r < 0)
        goto done;
    if (timed_out) {
        r = bg_fail(err, -ETIMEDOUT, "%s: timed out after %d ms and was killed", argv[0], timeout_ms);
        goto done;
    }
    local.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    local.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    local.out = out.data ? out.data : xstrdup("");
    local.out_len = out.len;
    local.err = errbuf.data ? errbuf.data : xstrdup("");
    local.err_len = errbuf.len;
    out.data = errbuf.data = NULL;

judge:
    if (local.term_signal) {
        r = bg_fail(err, -ECHILD, "%s: killed by signal %d", argv[0], local.term_signal);
    } else if (local.exit_status != 0) {
        /* The last non-empty line of stderr usually says why. */
        const char *why = "";
        size_t why_len = 0;
        if (local.err) {
            size_t end = local.err_len;
            while (end && (local.err[end - 1] == '\n' || local.err[end - 1] == ' '))
                end--;
            size_t start = end;
            while (start && local.err[start - 1] != '\n')
                start--;
            why = local.err + start;
            why_len = end - start;
        }
        r = bg_fail(err, -ECHILD, "%s exited with status %d%s%.*s", argv[0], local.exit_status,
                    why_len ? ": " : "", (int)why_len, why);
    }

done:
    if (pid > 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    int fds[] = { in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1],
                  st_pipe[0], st_pipe[1] };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(out.data);
    free(errbuf.data);
    free(prog);
    if (res && (local.out || local.err || local.exit_status || local.term_signal)) {
        uint32_t size = res->struct_size ? res->struct_size : sizeof(*res);
        *res = local;
        res->struct_size = size;
    } else {
        runner_result_clear(&local);
    }
    return r;
}
