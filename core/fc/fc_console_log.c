/* The console log writer: one banger-console-log per running VM, between the
 * VMM's stdout/stderr pipe and the ring in its state dir (see
 * core/console/banger-console-log.c). It is detached like the VMM, so it
 * outlives daemon restarts, and ends by itself when the pipe closes; stop
 * waits for that briefly and kills it otherwise. Like the VMM it is only
 * signalled after it is re-identified by what no user can fake: it holds the
 * VM's root-only firecracker.log open for writing. */
#include "config.h"

#include "fc/fc.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/local/libexec"
#endif

/* Room for bursts, so a slow disk does not stall the guest's console at once. */
#define FC_CONSOLE_PIPE_BYTES (1024 * 1024)
/* After the VMM is gone: time for the writer to drain the pipe and exit. */
#define FC_CONSOLE_DRAIN_MS 2000
#define FC_CONSOLE_KILL_WAIT_MS 5000

const char *fc_console_log_program(void)
{
    const char *env = getenv("BANGER_CONSOLE_LOG");
    return env && env[0] ? env : LIBEXECDIR "/banger/banger-console-log";
}

int fc_console_log_start(const struct fc_driver *drv, struct banger_vm *vm, int *vmm_fd,
                         struct banger_error *err)
{
    struct fc_console_ring ring = { -1, -1, -1 };
    int pipe_fds[2] = { -1, -1 };
    int null_fd = -1;
    const char *bin = fc_console_log_program();
    unsigned long long max = drv->console_log_max_bytes ? drv->console_log_max_bytes
                                                        : FC_DEFAULT_CONSOLE_LOG_MAX;
    char max_text[24];
    pid_t pid = 0;
    int r;

    if (access(bin, X_OK) < 0) {
        r = bg_fail_errno(err, -errno, "console log: writer %s (BANGER_CONSOLE_LOG overrides "
                          "it)", bin);
        goto cleanup;
    }
    /* Two writers on one ring would interleave: end one a crash left behind. */
    r = fc_console_log_stop(vm, err);
    if (r < 0)
        goto cleanup;
    r = fc_console_ring_open(vm->info.state_dir, true, &ring, err);
    if (r < 0)
        goto cleanup;
    long long ring_start, cur_start, end;
    fc_console_ring_geometry(&ring, &ring_start, &cur_start, &end);
    vm->vmm_log_start = end;
    if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
        r = bg_fail_errno(err, -errno, "console log: pipe");
        goto cleanup;
    }
    (void)fcntl(pipe_fds[1], F_SETPIPE_SZ, FC_CONSOLE_PIPE_BYTES); /* best effort */
    snprintf(max_text, sizeof(max_text), "%llu", max);
    /* The VM's own uid (its jailed VMM's too): no other user's process may
     * signal the writer and so silence the console record. */
    char uid_text[24];
    snprintf(uid_text, sizeof(uid_text), "%u", (unsigned)fc_jail_uid(drv, vm));
    char *argv[] = { (char *)bin, max_text, uid_text, NULL };
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) {
        r = bg_fail_errno(err, -errno, "console log: open /dev/null");
        goto cleanup;
    }
    /* 0 the pipe, 1 nothing, 2 the daemon's stderr (its journal) for the
     * writer's errors, 3-5 the ring (banger-console-log.c). */
    static char *const no_env[] = { NULL };
    const int fds[] = { pipe_fds[0], null_fd, -1, ring.cur, ring.old, ring.start };
    const struct fc_detached writer = { .what = "console log", .bin = bin, .argv = argv,
                                        .envp = no_env, .fds = fds, .n_fds = 6 };
    r = fc_spawn_detached(&writer, &pid, err);
    if (r < 0)
        goto cleanup;
    char pid_text[24];
    snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
    /* Without the handle the writer still ends with the pipe, which the
     * caller's failure path closes. */
    r = bg_vm_set_handle(vm, FC_HANDLE_CONSOLE_PID, pid_text, err);
    if (r < 0)
        goto cleanup;
    *vmm_fd = pipe_fds[1];
    pipe_fds[1] = -1;
cleanup:
    if (null_fd >= 0)
        close(null_fd);
    fc_console_ring_close(&ring);
    for (int i = 0; i < 2; i++)
        if (pipe_fds[i] >= 0)
            close(pipe_fds[i]);
    return r;
}

/* Does pid hold firecracker.log (dev, ino) open for writing? Only root could
 * have opened that file, in a root-only directory, so a user cannot pose as
 * the writer. Zombies do not count. */
static bool fc_console_is_writer(pid_t pid, const struct stat *log)
{
    char path[64];
    bool found = false;

    if (pid <= 0 || fc_pid_exited(pid))
        return false;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        char fd_path[320], info[128];
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(fd_path, sizeof(fd_path), "/proc/%d/fd/%s", (int)pid, de->d_name);
        if (stat(fd_path, &st) < 0 || st.st_dev != log->st_dev || st.st_ino != log->st_ino)
            continue;
        snprintf(fd_path, sizeof(fd_path), "/proc/%d/fdinfo/%s", (int)pid, de->d_name);
        int fd = open(fd_path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, info, sizeof(info) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n <= 0)
            continue;
        info[n] = '\0';
        const char *flags = strstr(info, "flags:");
        unsigned long mode = flags ? strtoul(flags + 6, NULL, 8) : 0;
        found = (mode & O_ACCMODE) == O_RDWR || (mode & O_ACCMODE) == O_WRONLY;
    }
    closedir(d);
    return found;
}

static bool fc_console_wait(int pidfd, pid_t pid, int wait_ms)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    if (pidfd >= 0) {
        int n;
        while ((n = poll(&p, 1, wait_ms)) < 0 && errno == EINTR)
            ;
        if (n > 0)
            return true;
    }
    for (int waited = 0;; waited += 10) {
        if (fc_pid_exited(pid))
            return true;
        if (pidfd >= 0 || waited >= wait_ms)
            return false;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

pid_t fc_console_log_pid(struct banger_vm *vm)
{
    const char *h = bg_vm_get_handle(vm, FC_HANDLE_CONSOLE_PID);
    pid_t pid = h ? (pid_t)atoi(h) : 0;
    struct stat log;
    char *path = vm->info.state_dir ? fs_join(vm->info.state_dir, FC_CONSOLE_LOG_NAME) : NULL;
    bool ok = path && stat(path, &log) == 0 && fc_console_is_writer(pid, &log);
    free(path);
    return ok ? pid : 0;
}

int fc_console_log_stop(struct banger_vm *vm, struct banger_error *err)
{
    struct stat log;
    char *path = NULL;
    int pidfd = -1;
    int r = 0;

    const char *h = bg_vm_get_handle(vm, FC_HANDLE_CONSOLE_PID);
    pid_t pid = h ? (pid_t)atoi(h) : 0;
    if (pid <= 0 || !vm->info.state_dir)
        goto forget;
    path = fs_join(vm->info.state_dir, FC_CONSOLE_LOG_NAME);
    if (stat(path, &log) < 0 || !fc_console_is_writer(pid, &log))
        goto forget;
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0 && errno == ESRCH)
        goto forget;
    /* The pidfd pins the process: look again, the pid may have been recycled
     * (without pidfds, as in fc_proc.c, this look is all there is). */
    if (!fc_console_is_writer(pid, &log))
        goto forget;
    if (fc_console_wait(pidfd, pid, FC_CONSOLE_DRAIN_MS))
        goto forget;
    /* Something else still holds the VMM's stdout open; do not wait for it. */
    bg_log(BANGER_LOG_INFO, vm->info.id, "console log writer pid %d still runs after the VMM; "
           "killing it", (int)pid);
    int s = pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0)
                       : kill(pid, SIGKILL);
    if (s < 0 && errno != ESRCH) {
        r = bg_fail_errno(err, -errno, "console log: kill writer pid %d", (int)pid);
        goto cleanup;
    }
    if (!fc_console_wait(pidfd, pid, FC_CONSOLE_KILL_WAIT_MS)) {
        r = bg_fail(err, -ETIMEDOUT, "console log: writer pid %d still runs after SIGKILL",
                    (int)pid);
        goto cleanup;
    }
forget:
    if (h)
        r = bg_vm_set_handle(vm, FC_HANDLE_CONSOLE_PID, NULL, err);
cleanup:
    if (pidfd >= 0)
        close(pidfd);
    free(path);
    return r;
}
