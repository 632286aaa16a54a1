/* Spawning Firecracker detached from the daemon and waiting for its API. */
#include "config.h"

#include "fc/fc.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define FC_VSOCK_NAME "vsock.sock"
#define FC_WAIT_POLL_MS 5
#define FC_ID_MAX 64

/* Records the spawning children send back over the status pipe. */
enum fc_spawn_rec_kind { FC_REC_PID = 1, FC_REC_ERRNO = 2 };
struct fc_spawn_rec {
    int kind;
    int value;
};

static long long fc_spawn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *fc_api_sock_path(const struct banger_vm *vm)
{
    if (!vm->info.runtime_dir || !vm->info.runtime_dir[0])
        return NULL;
    char *p = fs_join(vm->info.runtime_dir, FC_API_SOCK_NAME);
    if (strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        free(p);
        return NULL;
    }
    return p;
}

char *fc_api_sock_for_stop(struct banger_vm *vm)
{
    const char *h = bg_vm_get_handle(vm, FC_HANDLE_API_SOCK);
    return h && h[0] ? xstrdup(h) : fc_api_sock_path(vm);
}

static int fc_unlink(const char *path, struct banger_error *err)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return bg_fail_errno(err, -errno, "firecracker: remove %s", path);
    return 0;
}

int fc_remove_sockets(struct banger_vm *vm, struct banger_error *err)
{
    const char *dir = vm->info.runtime_dir;
    int first = 0;
    char *p = NULL;
    DIR *d = NULL;

    if (vm->contrib.vsock_uds) {
        int r = fc_unlink(vm->contrib.vsock_uds, err);
        first = first ? first : r;
    }
    if (!dir || !dir[0])
        goto cleanup;
    p = fs_join(dir, FC_API_SOCK_NAME);
    int r = fc_unlink(p, err);
    first = first ? first : r;
    free(p);
    p = fs_join(dir, FC_VSOCK_NAME);
    r = fc_unlink(p, err);
    first = first ? first : r;
    free(p);
    p = NULL;

    d = opendir(dir);
    if (!d)
        goto cleanup; /* no runtime dir: nothing stale */
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, FC_VSOCK_NAME "_", sizeof(FC_VSOCK_NAME)) != 0)
            continue;
        p = fs_join(dir, de->d_name);
        r = fc_unlink(p, err);
        first = first ? first : r;
        free(p);
        p = NULL;
    }
cleanup:
    if (d)
        closedir(d);
    free(p);
    return first;
}

/* Firecracker aborts on an --id that is not 1-64 alphanumerics and '-'. */
static bool fc_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > FC_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '-')
            return false;
    return true;
}

static void fc_spawn_report(int fd, int kind, int value)
{
    struct fc_spawn_rec rec = { kind, value };
    ssize_t w = write(fd, &rec, sizeof(rec)); /* < PIPE_BUF: atomic */
    (void)w;
}

/* Between fork and exec: async-signal-safe calls only. The first child
 * starts a session and forks the program, reports its pid and exits, so the
 * program is re-parented away from the daemon. */
__attribute__((noreturn)) static void fc_detached_child(const struct fc_detached *d, int st_fd)
{
    int lifted[FC_DETACHED_MAX_FDS];
    int report_fd = st_fd;

    if (setsid() < 0) {
        fc_spawn_report(st_fd, FC_REC_ERRNO, errno);
        _exit(126);
    }
    pid_t pid = fork();
    if (pid < 0) {
        fc_spawn_report(st_fd, FC_REC_ERRNO, errno);
        _exit(126);
    }
    if (pid > 0) {
        fc_spawn_report(st_fd, FC_REC_PID, (int)pid);
        _exit(0);
    }

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    umask(077);
    /* Lift everything above the target numbers first, so the dup2s below
     * cannot clobber a descriptor still to be placed. */
    for (int i = 0; i < d->n_fds; i++) {
        lifted[i] = d->fds[i] >= 0 ? fcntl(d->fds[i], F_DUPFD_CLOEXEC, 10) : -1;
        if (d->fds[i] >= 0 && lifted[i] < 0)
            goto fail;
    }
    st_fd = fcntl(st_fd, F_DUPFD_CLOEXEC, 10);
    if (st_fd < 0)
        goto fail;
    report_fd = st_fd;
    for (int i = 0; i < d->n_fds; i++)
        if (lifted[i] >= 0 && dup2(lifted[i], i) < 0)
            goto fail;
    if (dup3(st_fd, d->n_fds, O_CLOEXEC) < 0)
        goto fail;
    report_fd = d->n_fds;
    close_range((unsigned)d->n_fds + 1, ~0u, 0);
    execve(d->bin, d->argv, d->envp);
fail:
    fc_spawn_report(report_fd, FC_REC_ERRNO, errno);
    _exit(127);
}

int fc_spawn_detached(const struct fc_detached *d, pid_t *pid_out, struct banger_error *err)
{
    int st[2] = { -1, -1 };
    int r = 0;
    pid_t child = 0;
    int exec_errno = 0;

    if (d->n_fds < 1 || d->n_fds > FC_DETACHED_MAX_FDS)
        return bg_fail(err, -EINVAL, "%s: %d descriptors to pass", d->what, d->n_fds);
    if (pipe2(st, O_CLOEXEC) < 0) {
        r = bg_fail_errno(err, -errno, "%s: pipe", d->what);
        goto cleanup;
    }
    pid_t mid = fork();
    if (mid < 0) {
        r = bg_fail_errno(err, -errno, "%s: fork", d->what);
        goto cleanup;
    }
    if (mid == 0)
        fc_detached_child(d, st[1]);
    close(st[1]);
    st[1] = -1;
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
        ;
    /* EOF once the program has exec'd (CLOEXEC) or failed and exited. */
    for (;;) {
        struct fc_spawn_rec rec;
        ssize_t n = read(st[0], &rec, sizeof(rec));
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(rec))
            break;
        if (rec.kind == FC_REC_PID)
            child = rec.value;
        else if (rec.kind == FC_REC_ERRNO && !exec_errno)
            exec_errno = rec.value;
    }
    if (exec_errno) {
        r = bg_fail(err, -exec_errno, "%s: cannot execute %s: %s", d->what, d->bin,
                    strerror(exec_errno));
        goto cleanup;
    }
    if (child <= 0) {
        r = bg_fail(err, -ECHILD, "%s: spawning %s failed", d->what, d->bin);
        goto cleanup;
    }
    *pid_out = child;
cleanup:
    if (st[0] >= 0)
        close(st[0]);
    if (st[1] >= 0)
        close(st[1]);
    return r;
}

static pid_t fc_spawn_recorded_pid(struct banger_vm *vm)
{
    if (vm->vmm_pid > 0)
        return vm->vmm_pid;
    const char *h = bg_vm_get_handle(vm, FC_HANDLE_PID);
    return h ? (pid_t)atoi(h) : 0;
}

int fc_spawn(const struct fc_driver *drv, struct banger_vm *vm, struct banger_error *err)
{
    const char *name = drv->firecracker_bin ? drv->firecracker_bin : FC_DEFAULT_BIN;
    char *bin = NULL, *sock = NULL, *jailer = NULL;
    char **argv = NULL, **jail_argv = NULL;
    int log_fd = -1, null_fd = -1;
    pid_t pid = 0;
    int r = 0;

    if (!fc_id_valid(vm->info.id)) {
        r = bg_fail(err, -EINVAL, "firecracker: VM id '%s' is not a valid --id",
                    vm->info.id ? vm->info.id : "");
        goto cleanup;
    }
    bin = runner_find_program(name, NULL);
    if (!bin) {
        r = bg_fail(err, -ENOENT, "firecracker: binary '%s' not found or not executable", name);
        goto cleanup;
    }
    /* Jailed, the socket is inside the jail (fc_jail.c). */
    sock = fc_jail_enabled(drv) ? fc_jail_api_sock(drv, vm, bin) : fc_api_sock_path(vm);
    if (!sock) {
        r = bg_fail(err, -ENAMETOOLONG, "firecracker: no usable API socket path under '%s'",
                    vm->info.runtime_dir ? vm->info.runtime_dir : "");
        goto cleanup;
    }
    pid_t running = fc_find_pid(sock, fc_spawn_recorded_pid(vm));
    if (running) {
        r = bg_fail(err, -EBUSY, "firecracker: already running for this VM (pid %d)",
                    (int)running);
        goto cleanup;
    }
    /* Firecracker binds without unlinking: a stale file would make it exit. */
    r = fc_remove_sockets(vm, err);
    if (r < 0)
        goto cleanup;
    r = bg_vm_set_handle(vm, FC_HANDLE_API_SOCK, sock, err);
    if (r < 0)
        goto cleanup;

    /* stdout and stderr go to the console log writer's pipe (fc_console_log.c). */
    r = fc_console_log_start(drv, vm, &log_fd, err);
    if (r < 0)
        goto cleanup;
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) {
        r = bg_fail_errno(err, -errno, "firecracker: open /dev/null");
        goto cleanup;
    }

    if (fc_jail_enabled(drv)) {
        /* The jailer copies bin into the jail and execs it there (fc_jail.c). */
        jailer = runner_find_program(drv->jailer_bin, NULL);
        if (!jailer) {
            r = bg_fail(err, -ENOENT, "jailer: binary '%s' not found or not executable",
                        drv->jailer_bin);
            goto cleanup;
        }
        r = fc_jail_prepare(drv, vm, bin, err);
        if (r < 0)
            goto cleanup;
        jail_argv = fc_jail_argv(drv, vm, jailer, bin);
    } else {
        size_t n_extra = 0;
        while (drv->extra_args && drv->extra_args[n_extra])
            n_extra++;
        argv = xcalloc(6 + n_extra, sizeof(char *));
        size_t k = 0;
        argv[k++] = bin;
        argv[k++] = (char *)"--api-sock";
        argv[k++] = sock;
        argv[k++] = (char *)"--id";
        argv[k++] = (char *)vm->info.id;
        for (size_t i = 0; i < n_extra; i++)
            argv[k++] = (char *)drv->extra_args[i];
        argv[k] = NULL;
    }

    const int vmm_fds[] = { null_fd, log_fd, log_fd };
    const struct fc_detached vmm = { .what = "firecracker", .bin = jailer ? jailer : bin,
                                     .argv = jail_argv ? jail_argv : argv, .envp = environ,
                                     .fds = vmm_fds, .n_fds = 3 };
    r = fc_spawn_detached(&vmm, &pid, err);
    if (r < 0)
        goto cleanup;
    vm->vmm_pid = (int)pid;
    char pid_text[24];
    snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
    r = bg_vm_set_handle(vm, FC_HANDLE_PID, pid_text, err);
    if (r < 0)
        goto cleanup;
    bg_log(BANGER_LOG_INFO, vm->info.id, "firecracker started: pid %d, api %s", (int)pid, sock);
cleanup:
    if (log_fd >= 0)
        close(log_fd);
    if (null_fd >= 0)
        close(null_fd);
    free(argv);
    fc_jail_argv_free(jail_argv);
    free(sock);
    free(bin);
    free(jailer);
    return r;
}

static int fc_exited_error(struct banger_vm *vm, const char *when, struct banger_error *err)
{
    char summary[BANGER_ERROR_MSG_MAX - 64];
    fc_console_summary(vm, summary, sizeof(summary));
    if (summary[0])
        return bg_fail(err, -ESRCH, "firecracker exited%s: %s", when, summary);
    return bg_fail(err, -ESRCH, "firecracker exited%s (firecracker.log is empty)", when);
}

int fc_wait_api(struct banger_vm *vm, int timeout_ms, struct banger_error *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *sock = fc_api_sock_for_stop(vm);
    int fd = -1;
    int r = 0;

    if (!sock) {
        r = bg_fail(err, -EINVAL, "firecracker: no API socket path");
        goto cleanup;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    long long deadline = fc_spawn_now_ms() + (timeout_ms > 0 ? timeout_ms : FC_DEFAULT_API_WAIT_MS);
    for (;;) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            r = bg_fail_errno(err, -errno, "firecracker: socket");
            goto cleanup;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            goto cleanup;
        close(fd);
        fd = -1;
        if (fc_pid_exited(vm->vmm_pid)) {
            r = fc_exited_error(vm, " before its API socket was ready", err);
            goto cleanup;
        }
        if (fc_spawn_now_ms() >= deadline) {
            r = bg_fail(err, -ETIMEDOUT, "firecracker: API socket %s not ready after %d ms",
                        sock, timeout_ms > 0 ? timeout_ms : FC_DEFAULT_API_WAIT_MS);
            goto cleanup;
        }
        struct timespec ts = { 0, FC_WAIT_POLL_MS * 1000000L };
        nanosleep(&ts, NULL);
    }
cleanup:
    if (fd >= 0)
        close(fd);
    free(sock);
    return r;
}

int fc_check_alive(struct banger_vm *vm, struct banger_error *err)
{
    char *sock = fc_api_sock_for_stop(vm);
    pid_t pid = fc_find_pid(sock, fc_spawn_recorded_pid(vm));
    free(sock);
    vm->vmm_pid = (int)pid;
    if (pid > 0)
        return 0;
    return fc_exited_error(vm, "", err);
}
