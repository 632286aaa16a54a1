/* Process and file helpers of the guest commands (guest-common.h). */
#include "config.h"

#include "guest-common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/xalloc.h"

char *guest_home_dir(const char *xdg_var, const char *fallback)
{
    const char *xdg = getenv(xdg_var);
    const char *home = getenv("HOME");

    if (xdg && xdg[0] == '/')
        return xasprintf("%s/banger", xdg);
    if (!home || home[0] != '/')
        return NULL;
    return xasprintf("%s/%s/banger", home, fallback);
}

int guest_private_dir(const char *path, mode_t mode)
{
    char *copy = xstrdup(path);
    struct stat st;
    int r = 0;

    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) < 0 && errno != EEXIST)
            r = -errno;
        *p = '/';
        if (r < 0)
            goto cleanup;
    }
    if (mkdir(copy, mode) < 0 && errno != EEXIST) {
        r = -errno;
        goto cleanup;
    }
    if (lstat(copy, &st) < 0) {
        r = -errno;
        goto cleanup;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
        r = -EPERM;
cleanup:
    free(copy);
    return r;
}

int guest_write_file(const char *path, const char *data, mode_t mode)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    size_t len = strlen(data);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    int r = 0;

    if (fd < 0) {
        r = -errno;
        goto cleanup;
    }
    if (fchmod(fd, mode) < 0)
        r = -errno;
    for (size_t done = 0; r == 0 && done < len;) {
        ssize_t n = write(fd, data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = -errno;
        else
            done += (size_t)n;
    }
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
cleanup:
    free(tmp);
    return r;
}

/* Quote one word for the guest's POSIX shell. */
static void guest_shell_quote(char **cmd, size_t *len, const char *word)
{
    size_t need = *len + 4 * strlen(word) + 4;

    *cmd = xrealloc(*cmd, need);
    char *p = *cmd + *len;
    if (*len)
        *p++ = ' ';
    *p++ = '\'';
    for (const char *w = word; *w; w++) {
        if (*w == '\'') {
            memcpy(p, "'\\''", 4);
            p += 4;
        } else {
            *p++ = *w;
        }
    }
    *p++ = '\'';
    *p = '\0';
    *len = (size_t)(p - *cmd);
}

char *guest_remote_command(char **words, int n, const char *cd)
{
    char *cmd = xstrdup("");
    size_t len = 0;

    for (int i = 0; i < n; i++)
        guest_shell_quote(&cmd, &len, words[i]);
    if (cd) {
        char *with_cd = xasprintf("cd %s && %s", cd, cmd);

        free(cmd);
        cmd = with_cd;
    }
    return cmd;
}

int guest_wait_status(pid_t pid)
{
    int status = 0;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return CLI_EXIT_FAIL;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

pid_t guest_spawn(const char *const *argv, int in_fd, int out_fd, const char *dir)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    signal(SIGPIPE, SIG_DFL);
    if (in_fd >= 0 && dup2(in_fd, STDIN_FILENO) < 0)
        _exit(127);
    if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(127);
    if (dir && chdir(dir) < 0) {
        fprintf(stderr, "banger: cannot enter %s: %s\n", dir, strerror(errno));
        _exit(127);
    }
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "banger: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static volatile sig_atomic_t guest_interrupted;
static volatile sig_atomic_t guest_forward_pid;

static void guest_on_signal(int sig)
{
    int saved_errno = errno;

    guest_interrupted = sig;
    /* A signal sent to banger alone (kill, a supervisor) must also end the
     * ssh it waits for, as Ctrl-C does for the whole foreground group. */
    if (guest_forward_pid > 0)
        kill((pid_t)guest_forward_pid, sig);
    errno = saved_errno;
}

void guest_forward_signals_to(pid_t pid)
{
    guest_forward_pid = pid;
    if (pid > 0 && guest_interrupted)
        kill(pid, (int)guest_interrupted);
}

void guest_install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = guest_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int guest_interrupt_signal(void)
{
    return (int)guest_interrupted;
}

int guest_split_dashdash(int argc, char **argv, char ***rest, int *n_rest)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            *rest = argv + i + 1;
            *n_rest = argc - i - 1;
            return i;
        }
    }
    *rest = NULL;
    *n_rest = 0;
    return argc;
}

void guest_print_still_running(const char *name)
{
    fprintf(stderr, "%s is still running: banger vm ssh %s to return, banger vm stop %s to stop "
                    "it, banger vm delete %s to remove it\n", name, name, name, name);
}
