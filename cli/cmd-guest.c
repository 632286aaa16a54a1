/* banger vm ssh|exec|run and banger ssh-config: working inside a guest.
 *
 * ssh runs as the calling user. The daemon hands out banger's key and its
 * pinned known_hosts (vm.ssh_info); they are kept in the user's private
 * cache dir ($XDG_CACHE_HOME/banger/ssh, 0700, files 0600) so that plain
 * `ssh <name>.vm` can use them too (banger ssh-config).
 *
 * vm run copies a repository with a tar stream over ssh once the guest
 * answers: the files are read with the user's own permissions (never by the
 * root daemon), and it works whatever the storage plugin does with disks. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "store/names.h"
#include "util/xalloc.h"

#define GUEST_WAIT_DEFAULT_S 120
#define GUEST_REPO_DIR "/root/repo"
#define GUEST_BLOCK_BEGIN "# >>> banger ssh-config (managed block; banger ssh-config --uninstall removes it)"
#define GUEST_BLOCK_END "# <<< banger ssh-config"

static const char vm_ssh_usage[] =
    "Usage: banger vm ssh NAME [-- SSH-ARGS...]\n"
    "\n"
    "Open an interactive shell as root in a running VM, with banger's own key and\n"
    "its pinned host keys (trusted on first contact, a changed key is refused).\n";

static const char vm_exec_usage[] =
    "Usage: banger vm exec NAME -- CMD [ARGS...]\n"
    "\n"
    "Run CMD as root in a running VM. stdin and stdout pass through; banger exits\n"
    "with CMD's exit status (255 when ssh itself failed).\n";

static const char vm_run_usage[] =
    "Usage: banger vm run [OPTIONS] [PATH] [-- CMD [ARGS...]]\n"
    "\n"
    "Create a VM, boot it, wait for ssh, then open a shell or run CMD in it.\n"
    "With PATH (inside a git work tree), the repository's tracked files are copied\n"
    "to " GUEST_REPO_DIR " first and CMD runs there; ignored files never go.\n"
    "\n"
    "  --name N            VM name (default: generated)\n"
    "  --image I           image name or id (default: the daemon's default image)\n"
    "  --vcpu C            number of vCPUs\n"
    "  --memory MiB        memory in MiB, or with a unit: 2G, 512M\n"
    "  --disk-size SIZE    work disk size: 8G, 512M, or bytes\n"
    "  --nat               give the VM outbound network access\n"
    "  --rm                delete the VM afterwards (also after Ctrl-C)\n"
    "  -d, --detach        leave the VM running and print how to reach it\n"
    "  --include-untracked also copy untracked files that are not ignored\n"
    "  --dry-run           print what would happen and the files; create nothing\n"
    "  --wait SECONDS      how long to wait for ssh (default 120)\n";

static const char ssh_config_usage[] =
    "Usage: banger ssh-config [--install | --uninstall]\n"
    "\n"
    "Write banger's ssh client config (Host *.vm: root, banger's key and pinned host\n"
    "keys, each VM's address) to $XDG_CONFIG_HOME/banger/ssh_config and print it.\n"
    "  --install     also add a marked Include block at the top of ~/.ssh/config,\n"
    "                so that plain `ssh NAME.vm` works (idempotent)\n"
    "  --uninstall   remove that block and banger's ssh_config; nothing else\n";

/* ---- small helpers -------------------------------------------------------- */

static volatile sig_atomic_t guest_interrupted;

static void guest_on_signal(int sig)
{
    guest_interrupted = sig;
}

static double guest_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char *guest_home_dir(const char *xdg_var, const char *fallback)
{
    const char *xdg = getenv(xdg_var);
    const char *home = getenv("HOME");

    if (xdg && xdg[0] == '/')
        return xasprintf("%s/banger", xdg);
    if (!home || home[0] != '/')
        return NULL;
    return xasprintf("%s/%s/banger", home, fallback);
}

/* mkdir -p with `mode` for what is created; the last component must end up
 * a real directory of ours that nobody else can write. */
static int guest_private_dir(const char *path, mode_t mode)
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

/* Replace `path` with `data` (temp file beside it, rename). */
static int guest_write_file(const char *path, const char *data, mode_t mode)
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

static char *guest_read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0;

    if (!f)
        return NULL;
    if (getdelim(&buf, &len, '\0', f) < 0) {
        free(buf);
        buf = xstrdup("");
    }
    fclose(f);
    return buf;
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

static char *guest_remote_command(char **words, int n, const char *cd)
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

/* Exit status of a finished child the way a shell reports it. */
static int guest_wait_status(pid_t pid)
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

/* fork + exec argv with stdin/stdout replaced when >= 0. */
static pid_t guest_spawn(const char *const *argv, int in_fd, int out_fd, const char *dir)
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

/* Runs argv and returns its stdout (NUL-terminated, *len bytes) or NULL. */
static char *guest_capture(const char *const *argv, size_t *len, int *status)
{
    int pipefd[2];
    size_t cap = 4096;
    char *buf;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return NULL;
    pid_t pid = guest_spawn(argv, -1, pipefd[1], NULL);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return NULL;
    }
    buf = xmalloc(cap);
    *len = 0;
    for (;;) {
        if (*len + 1 >= cap)
            buf = xrealloc(buf, cap *= 2);
        ssize_t n = read(pipefd[0], buf + *len, cap - *len - 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        *len += (size_t)n;
    }
    buf[*len] = '\0';
    close(pipefd[0]);
    *status = guest_wait_status(pid);
    return buf;
}

/* ---- identity ----------------------------------------------------------- */

struct guest_ssh {
    char *name;        /* the VM's name */
    char *ip;
    char *user;
    char *key_path;    /* the private key in the cache dir */
    char *hosts_path;  /* known_hosts in the cache dir */
};

static void guest_ssh_clear(struct guest_ssh *g)
{
    free(g->name);
    free(g->ip);
    free(g->user);
    free(g->key_path);
    free(g->hosts_path);
    memset(g, 0, sizeof(*g));
}

enum guest_fetch {
    GUEST_FETCH_OK,
    GUEST_FETCH_NOT_YET,   /* ssh does not answer yet */
    GUEST_FETCH_FAILED,    /* printed */
};

/* vm.ssh_info for `vm` (NULL: identity only), then the key and the pinned
 * host keys written to the user's cache dir. With `quiet_not_yet`, "not
 * answering yet" is returned instead of printed. */
static enum guest_fetch guest_fetch(const struct cli_ctx *ctx, const char *vm, bool quiet_not_yet,
                                    struct guest_ssh *g)
{
    struct banger_error err = { 0 };
    struct rpc_reply reply;
    cJSON *params = cJSON_CreateObject();
    char *dir = NULL;
    enum guest_fetch ret = GUEST_FETCH_FAILED;

    memset(g, 0, sizeof(*g));
    if (vm)
        cJSON_AddStringToObject(params, "vm", vm);
    if (rpc_call(ctx->socket_path, "vm.ssh_info", params, NULL, NULL, &reply, &err) < 0) {
        fprintf(stderr, "banger: %s\n", bg_error_text(&err));
        return GUEST_FETCH_FAILED;
    }
    if (reply.failed) {
        if (quiet_not_yet && reply.code && strcmp(reply.code, "busy") == 0) {
            ret = GUEST_FETCH_NOT_YET;
        } else if (reply.op_id) {
            fprintf(stderr, "banger: %s (%s, %s)\n", reply.message, reply.code, reply.op_id);
        } else {
            fprintf(stderr, "banger: %s (%s)\n", reply.message, reply.code);
        }
        goto cleanup;
    }
    const char *key = out_json_str(reply.result, "private_key");
    const char *hosts = out_json_str(reply.result, "known_hosts");
    if (!key || !hosts) {
        fprintf(stderr, "banger: the daemon sent no ssh key\n");
        goto cleanup;
    }
    dir = guest_home_dir("XDG_CACHE_HOME", ".cache");
    if (dir) {
        char *ssh_dir = xasprintf("%s/ssh", dir);

        free(dir);
        dir = ssh_dir;
    }
    int r = dir ? guest_private_dir(dir, 0700) : -ENOENT;
    if (r < 0) {
        fprintf(stderr, "banger: cannot use %s for banger's ssh key: %s\n", dir ? dir : "~/.cache",
                dir ? strerror(-r) : "HOME is not set");
        goto cleanup;
    }
    g->key_path = xasprintf("%s/id_ed25519", dir);
    g->hosts_path = xasprintf("%s/known_hosts", dir);
    if ((r = guest_write_file(g->key_path, key, 0600)) < 0 ||
        (r = guest_write_file(g->hosts_path, hosts, 0600)) < 0) {
        fprintf(stderr, "banger: cannot write into %s: %s\n", dir, strerror(-r));
        goto cleanup;
    }
    if (vm) {
        const char *name = out_json_str(reply.result, "name");
        const char *ip = out_json_str(reply.result, "ip");
        const char *user = out_json_str(reply.result, "user");

        if (!name || !ip) {
            fprintf(stderr, "banger: the daemon sent no address for %s\n", vm);
            goto cleanup;
        }
        g->name = xstrdup(name);
        g->ip = xstrdup(ip);
        g->user = xstrdup(user ? user : "root");
    }
    ret = GUEST_FETCH_OK;
cleanup:
    if (ret != GUEST_FETCH_OK)
        guest_ssh_clear(g);
    free(dir);
    rpc_reply_done(&reply);
    return ret;
}

/* ssh with banger's identity and pinned host keys; `extra` words go after
 * the options, then "user@ip", then `remote` (NULL: none). The array and
 * the strings it owns are freed with guest_argv_free. */
struct guest_argv {
    const char *v[64];
    char *owned[8];
    size_t n, n_owned;
};

static const char *guest_own(struct guest_argv *a, char *s)
{
    if (a->n_owned < sizeof(a->owned) / sizeof(a->owned[0]))
        a->owned[a->n_owned++] = s;
    return s;
}

static void guest_ssh_argv(struct guest_argv *a, const struct guest_ssh *g, const char *tty,
                           const char *const *extra, const char *remote)
{
    memset(a, 0, sizeof(*a));
    static const char *const base[] = {
        "ssh", "-F", "/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "HostKeyAlgorithms=ssh-ed25519", "-o", "PasswordAuthentication=no",
        "-o", "ConnectTimeout=15", "-o", "LogLevel=ERROR", NULL,
    };
    for (size_t i = 0; base[i]; i++)
        a->v[a->n++] = base[i];
    a->v[a->n++] = "-i";
    a->v[a->n++] = g->key_path;
    a->v[a->n++] = "-o";
    a->v[a->n++] = guest_own(a, xasprintf("UserKnownHostsFile=%s", g->hosts_path));
    if (tty)
        a->v[a->n++] = tty;
    for (size_t i = 0; extra && extra[i] && a->n < 56; i++)
        a->v[a->n++] = extra[i];
    a->v[a->n++] = guest_own(a, xasprintf("%s@%s", g->user, g->ip));
    if (remote) {
        a->v[a->n++] = "--";
        a->v[a->n++] = remote;
    }
    a->v[a->n] = NULL;
}

static void guest_argv_free(struct guest_argv *a)
{
    for (size_t i = 0; i < a->n_owned; i++)
        free(a->owned[i]);
    a->n_owned = 0;
}

/* Runs ssh in the foreground and returns its exit status. While it runs,
 * Ctrl-C belongs to ssh (and the guest); the CLI only remembers it. */
static int guest_run_ssh(const struct guest_ssh *g, const char *tty, const char *const *extra,
                         const char *remote)
{
    struct guest_argv a;

    guest_ssh_argv(&a, g, tty, extra, remote);
    fflush(stdout);
    pid_t pid = guest_spawn(a.v, -1, -1, NULL);
    int status = pid < 0 ? CLI_EXIT_FAIL : guest_wait_status(pid);
    guest_argv_free(&a);
    return status;
}

static void guest_install_signals(void)
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

/* ---- vm ssh / vm exec ---------------------------------------------------- */

/* argv[0] is the subcommand. Splits at "--": *rest / *n_rest after it. */
static int guest_split_dashdash(int argc, char **argv, char ***rest, int *n_rest)
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

static int guest_parse_help(const char *cmd, const char *usage, int argc, char **argv, bool *help)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    *help = false;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            *help = true;
            return cli_help(usage);
        }
        return cli_getopt_error(cmd, c, argv);
    }
    return CLI_EXIT_OK;
}

static int guest_one_name(const char *cmd, int argc, char **argv, const char **name)
{
    char reason[256];

    if (argc - optind != 1)
        return cli_usage_error(cmd, "give exactly one VM name or id");
    if (vm_name_check(argv[optind], reason, sizeof(reason)) < 0)
        return cli_usage_error(cmd, "%s", reason);
    *name = argv[optind];
    return CLI_EXIT_OK;
}

static void guest_print_still_running(const char *name)
{
    fprintf(stderr, "%s is still running: banger vm ssh %s to return, banger vm stop %s to stop "
                    "it, banger vm delete %s to remove it\n", name, name, name, name);
}

static int guest_wait_ssh(struct cli_ctx *ctx, const char *name, long long wait_s,
                          struct guest_ssh *g);

/* For vm ssh/exec: a guest that is still booting is waited for (bounded). */
static int guest_reach(struct cli_ctx *ctx, const char *name, struct guest_ssh *g)
{
    enum guest_fetch f = guest_fetch(ctx, name, true, g);

    if (f == GUEST_FETCH_OK)
        return CLI_EXIT_OK;
    if (f == GUEST_FETCH_FAILED)
        return CLI_EXIT_FAIL;
    return guest_wait_ssh(ctx, name, GUEST_WAIT_DEFAULT_S, g);
}

static int vm_ssh(struct cli_ctx *ctx, int argc, char **argv)
{
    char **rest;
    int n_rest;
    int nargs = guest_split_dashdash(argc, argv, &rest, &n_rest);
    const char *name = NULL;
    struct guest_ssh g;
    bool help;
    int r = guest_parse_help("vm ssh", vm_ssh_usage, nargs, argv, &help);

    if (r != CLI_EXIT_OK || help)
        return r;
    if ((r = guest_one_name("vm ssh", nargs, argv, &name)) != CLI_EXIT_OK)
        return r;
    if (guest_reach(ctx, name, &g) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    rest = n_rest ? rest : NULL;
    const char **extra = xcalloc((size_t)n_rest + 1, sizeof(*extra));
    for (int i = 0; i < n_rest; i++)
        extra[i] = rest[i];
    guest_install_signals();
    r = guest_run_ssh(&g, isatty(STDIN_FILENO) ? "-t" : NULL, extra, NULL);
    if (isatty(STDERR_FILENO))
        guest_print_still_running(g.name);
    free(extra);
    guest_ssh_clear(&g);
    return r;
}

static int vm_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    char **rest;
    int n_rest;
    int nargs = guest_split_dashdash(argc, argv, &rest, &n_rest);
    const char *name = NULL;
    struct guest_ssh g;
    bool help;
    int r = guest_parse_help("vm exec", vm_exec_usage, nargs, argv, &help);

    if (r != CLI_EXIT_OK || help)
        return r;
    if ((r = guest_one_name("vm exec", nargs, argv, &name)) != CLI_EXIT_OK)
        return r;
    if (n_rest == 0)
        return cli_usage_error("vm exec", "no command: banger vm exec %s -- CMD [ARGS...]", name);
    if (guest_reach(ctx, name, &g) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    /* No workspace is assumed: the command runs in root's home. */
    char *remote = guest_remote_command(rest, n_rest, NULL);
    guest_install_signals();
    r = guest_run_ssh(&g, isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) ? "-t" : "-T", NULL,
                      remote);
    free(remote);
    guest_ssh_clear(&g);
    return r;
}

/* ---- vm run --------------------------------------------------------------- */

struct guest_run_opts {
    const char *name, *image;
    long long vcpu, memory_mib;
    unsigned long long disk_size;
    bool nat, rm, detach, untracked, dry_run;
    long long wait_s;
    const char *path;
    char **cmd;
    int n_cmd;
};

struct guest_files {
    char *top;       /* the work tree's top directory */
    char *list;      /* NUL-separated paths relative to top */
    size_t list_len;
    size_t count;
};

static void guest_files_clear(struct guest_files *f)
{
    free(f->top);
    free(f->list);
    memset(f, 0, sizeof(*f));
}

/* Appends the NUL-separated `paths` that exist in the work tree (a tracked
 * file deleted in the work tree is skipped). */
static void guest_files_add(struct guest_files *f, const char *paths, size_t len)
{
    for (size_t at = 0; at < len;) {
        const char *p = paths + at;
        size_t plen = strnlen(p, len - at);
        char *full = xasprintf("%s/%s", f->top, p);
        struct stat st;

        if (plen && lstat(full, &st) == 0) {
            f->list = xrealloc(f->list, f->list_len + plen + 1);
            memcpy(f->list + f->list_len, p, plen);
            f->list[f->list_len + plen] = '\0';
            f->list_len += plen + 1;
            f->count++;
        }
        free(full);
        at += plen + 1;
    }
}

static int guest_collect_files(const char *path, bool untracked, struct guest_files *f)
{
    char real[PATH_MAX];
    struct stat st;
    size_t len = 0;
    int status = 0;
    char *out;

    memset(f, 0, sizeof(*f));
    if (!realpath(path, real) || stat(real, &st) < 0) {
        fprintf(stderr, "banger: %s: %s\n", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    const char *dir_arg = real;
    char *parent = NULL;
    if (!S_ISDIR(st.st_mode)) {
        parent = xstrdup(real);
        char *slash = strrchr(parent, '/');
        slash[slash == parent ? 1 : 0] = '\0';
        dir_arg = parent;
    }
    const char *const top_argv[] = { "git", "-C", dir_arg, "rev-parse", "--show-toplevel", NULL };
    out = guest_capture(top_argv, &len, &status);
    free(parent);
    if (!out || status != 0 || len == 0) {
        free(out);
        fprintf(stderr, "banger: %s is not inside a git work tree (vm run PATH copies the "
                        "repository's tracked files)\n", path);
        return CLI_EXIT_FAIL;
    }
    out[strcspn(out, "\n")] = '\0';
    f->top = out;
    const char *const tracked_argv[] = { "git", "-C", f->top, "ls-files", "-z", "--cached", NULL };
    out = guest_capture(tracked_argv, &len, &status);
    if (!out || status != 0) {
        free(out);
        fprintf(stderr, "banger: git ls-files failed in %s\n", f->top);
        guest_files_clear(f);
        return CLI_EXIT_FAIL;
    }
    guest_files_add(f, out, len);
    free(out);
    if (untracked) {
        const char *const others_argv[] = { "git", "-C", f->top, "ls-files", "-z", "--others",
                                            "--exclude-standard", NULL };
        out = guest_capture(others_argv, &len, &status);
        if (!out || status != 0) {
            free(out);
            fprintf(stderr, "banger: git ls-files --others failed in %s\n", f->top);
            guest_files_clear(f);
            return CLI_EXIT_FAIL;
        }
        guest_files_add(f, out, len);
        free(out);
    }
    return CLI_EXIT_OK;
}

/* tar -C top -cf - --null -T - | ssh ... 'mkdir -p /root/repo && tar -xf -'
 * with pipes, no shell on this side. */
static int guest_copy_files(const struct guest_ssh *g, const struct guest_files *f)
{
    int list_pipe[2] = { -1, -1 }, tar_pipe[2] = { -1, -1 };
    pid_t tar_pid = -1, ssh_pid = -1;
    struct guest_argv a;
    int r = CLI_EXIT_FAIL;

    memset(&a, 0, sizeof(a));
    if (pipe2(list_pipe, O_CLOEXEC) < 0 || pipe2(tar_pipe, O_CLOEXEC) < 0) {
        fprintf(stderr, "banger: pipe: %s\n", strerror(errno));
        goto cleanup;
    }
    const char *const tar_argv[] = { "tar", "-C", f->top, "--no-recursion", "--null", "-T", "-",
                                     "-cf", "-", NULL };
    tar_pid = guest_spawn(tar_argv, list_pipe[0], tar_pipe[1], NULL);
    close(list_pipe[0]);
    close(tar_pipe[1]);
    list_pipe[0] = tar_pipe[1] = -1;
    guest_ssh_argv(&a, g, "-T", NULL,
                   "mkdir -p " GUEST_REPO_DIR " && tar --no-same-owner -C " GUEST_REPO_DIR
                   " -xf -");
    ssh_pid = guest_spawn(a.v, tar_pipe[0], -1, NULL);
    close(tar_pipe[0]);
    tar_pipe[0] = -1;
    if (tar_pid < 0 || ssh_pid < 0) {
        fprintf(stderr, "banger: cannot start the copy: %s\n", strerror(errno));
        goto cleanup;
    }
    for (size_t done = 0; done < f->list_len;) {
        ssize_t n = write(list_pipe[1], f->list + done, f->list_len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        done += (size_t)n;
    }
    close(list_pipe[1]);
    list_pipe[1] = -1;
    int tar_status = guest_wait_status(tar_pid);
    int ssh_status = guest_wait_status(ssh_pid);
    tar_pid = ssh_pid = -1;
    if (tar_status != 0)
        fprintf(stderr, "banger: tar of %s failed (exit %d)\n", f->top, tar_status);
    else if (ssh_status != 0)
        fprintf(stderr, "banger: copying into " GUEST_REPO_DIR " failed (ssh exit %d)\n",
                ssh_status);
    else
        r = CLI_EXIT_OK;
cleanup:
    for (int i = 0; i < 2; i++) {
        if (list_pipe[i] >= 0)
            close(list_pipe[i]);
        if (tar_pipe[i] >= 0)
            close(tar_pipe[i]);
    }
    if (tar_pid > 0)
        guest_wait_status(tar_pid);
    if (ssh_pid > 0)
        guest_wait_status(ssh_pid);
    guest_argv_free(&a);
    return r;
}

/* 0: absent, 1: present, -1: could not ask (printed). */
static int guest_exists(const struct cli_ctx *ctx, const char *method, const char *key,
                        const char *value)
{
    struct banger_error err = { 0 };
    struct rpc_reply reply;
    int r;

    if (rpc_call(ctx->socket_path, method, cli_params_str(key, value), NULL, NULL, &reply,
                 &err) < 0) {
        fprintf(stderr, "banger: %s\n", bg_error_text(&err));
        return -1;
    }
    if (!reply.failed)
        r = 1;
    else if (reply.code && strcmp(reply.code, "not_found") == 0)
        r = 0;
    else {
        fprintf(stderr, "banger: %s (%s)\n", reply.message, reply.code);
        r = -1;
    }
    rpc_reply_done(&reply);
    return r;
}

static void guest_dry_run(const struct guest_run_opts *o, const struct guest_files *f)
{
    printf("would create and boot a VM %s%s (image %s)\n", o->name ? "named " : "",
           o->name ? o->name : "with a generated name", o->image ? o->image : "default");
    if (o->path) {
        printf("would copy %zu file%s from %s to " GUEST_REPO_DIR ":\n", f->count,
               f->count == 1 ? "" : "s", f->top);
        for (size_t at = 0; at < f->list_len; at += strlen(f->list + at) + 1)
            printf("  %s\n", f->list + at);
    }
    if (o->detach) {
        printf("would leave it running (-d)\n");
    } else if (o->n_cmd) {
        char *remote = guest_remote_command(o->cmd, o->n_cmd, o->path ? GUEST_REPO_DIR : NULL);
        printf("would run: %s\n", remote);
        free(remote);
    } else {
        printf("would open an interactive ssh session\n");
    }
    if (o->rm)
        printf("would delete the VM afterwards (--rm)\n");
}

static int guest_delete(const struct cli_ctx *ctx, const char *name)
{
    struct rpc_reply reply;

    fprintf(stderr, "deleting %s\n", name);
    if (cli_call(ctx, "vm.delete", cli_params_str("vm", name), NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

static void guest_on_progress(const char *stage, double elapsed_ms, void *userdata)
{
    const struct cli_ctx *ctx = userdata;
    char dur[32];

    if (!ctx->tty_progress)
        return;
    out_format_duration_ms(elapsed_ms, dur, sizeof(dur));
    fprintf(stderr, "  %-12s %8s\n", stage, dur);
}

static int guest_create(struct cli_ctx *ctx, const struct guest_run_opts *o, char **name)
{
    cJSON *params = cJSON_CreateObject();
    struct rpc_reply reply;

    if (o->name)
        cJSON_AddStringToObject(params, "name", o->name);
    if (o->image)
        cJSON_AddStringToObject(params, "image", o->image);
    if (o->vcpu)
        cJSON_AddNumberToObject(params, "vcpu", (double)o->vcpu);
    if (o->memory_mib)
        cJSON_AddNumberToObject(params, "memory_mib", (double)o->memory_mib);
    if (o->disk_size)
        cJSON_AddNumberToObject(params, "disk_size", (double)o->disk_size);
    if (o->nat)
        cJSON_AddTrueToObject(params, "nat");
    if (cli_call(ctx, "vm.create", params, guest_on_progress, ctx, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    const char *shown = out_json_str(reply.result, "name");
    *name = xstrdup(shown ? shown : o->name ? o->name : "?");
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

/* Polls vm.ssh_info until the guest's sshd answers (bounded). */
static int guest_wait_ssh(struct cli_ctx *ctx, const char *name, long long wait_s,
                          struct guest_ssh *g)
{
    const struct timespec pause = { .tv_sec = 0, .tv_nsec = 250 * 1000 * 1000 };
    double start = guest_now_ms();
    char dur[32];

    fprintf(stderr, "waiting for ssh on %s ...\n", name);
    for (;;) {
        enum guest_fetch f = guest_fetch(ctx, name, true, g);

        if (f == GUEST_FETCH_OK)
            break;
        if (f == GUEST_FETCH_FAILED)
            return CLI_EXIT_FAIL;
        if (guest_interrupted)
            return CLI_EXIT_FAIL;
        if (guest_now_ms() - start > (double)wait_s * 1000.0) {
            fprintf(stderr, "banger: ssh on %s did not answer within %llds (see banger vm logs "
                            "%s)\n", name, wait_s, name);
            return CLI_EXIT_FAIL;
        }
        nanosleep(&pause, NULL);
    }
    out_format_duration_ms(guest_now_ms() - start, dur, sizeof(dur));
    fprintf(stderr, "%s ready at %s (ssh answered after %s)\n", g->name, g->ip, dur);
    return CLI_EXIT_OK;
}

static int guest_parse_run(int argc, char **argv, struct guest_run_opts *o)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "image", required_argument, NULL, 'i' },
        { "vcpu", required_argument, NULL, 'c' },
        { "memory", required_argument, NULL, 'm' },
        { "disk-size", required_argument, NULL, 's' },
        { "nat", no_argument, NULL, 'N' },
        { "rm", no_argument, NULL, 'R' },
        { "detach", no_argument, NULL, 'd' },
        { "include-untracked", no_argument, NULL, 'u' },
        { "dry-run", no_argument, NULL, 'D' },
        { "wait", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "vm run";
    char reason[256];
    int nargs = guest_split_dashdash(argc, argv, &o->cmd, &o->n_cmd);
    int c;

    o->wait_s = GUEST_WAIT_DEFAULT_S;
    optind = 0;
    while ((c = getopt_long(nargs, argv, ":hd", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(vm_run_usage) == CLI_EXIT_OK ? -1 : CLI_EXIT_FAIL;
        case 'n':
            if (vm_name_check(optarg, reason, sizeof(reason)) < 0)
                return cli_usage_error(cmd, "%s", reason);
            o->name = optarg;
            break;
        case 'i':
            if (image_name_check(optarg, reason, sizeof(reason)) < 0)
                return cli_usage_error(cmd, "%s", reason);
            o->image = optarg;
            break;
        case 'c':
            if (out_parse_int(optarg, 1, 255, &o->vcpu) < 0)
                return cli_usage_error(cmd, "bad --vcpu '%s': give a number from 1 to 255", optarg);
            break;
        case 'm':
            if (out_parse_mib(optarg, &o->memory_mib) < 0)
                return cli_usage_error(cmd, "bad --memory '%s': give MiB, or a size like 2G", optarg);
            break;
        case 's':
            if (out_parse_size(optarg, &o->disk_size) < 0 || o->disk_size == 0)
                return cli_usage_error(cmd, "bad --disk-size '%s': give a size like 8G or 512M",
                                       optarg);
            break;
        case 'w':
            if (out_parse_int(optarg, 1, 3600, &o->wait_s) < 0)
                return cli_usage_error(cmd, "bad --wait '%s': give seconds from 1 to 3600", optarg);
            break;
        case 'N': o->nat = true; break;
        case 'R': o->rm = true; break;
        case 'd': o->detach = true; break;
        case 'u': o->untracked = true; break;
        case 'D': o->dry_run = true; break;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    if (nargs - optind > 1)
        return cli_usage_error(cmd, "unexpected argument '%s' (one PATH at most; the command "
                                    "goes after '--')", argv[optind + 1]);
    if (nargs - optind == 1)
        o->path = argv[optind];
    if (o->detach && o->rm)
        return cli_usage_error(cmd, "-d and --rm do not go together");
    if (o->detach && o->n_cmd)
        return cli_usage_error(cmd, "-d leaves the VM running without a command; use "
                                    "banger vm exec afterwards");
    if (o->untracked && !o->path)
        return cli_usage_error(cmd, "--include-untracked needs a PATH");
    return CLI_EXIT_OK;
}

static int vm_run(struct cli_ctx *ctx, int argc, char **argv)
{
    struct guest_run_opts o = { 0 };
    struct guest_files files = { 0 };
    struct guest_ssh g = { 0 };
    char *name = NULL;
    int status = guest_parse_run(argc, argv, &o);

    if (status == -1)
        return CLI_EXIT_OK; /* --help */
    if (status != CLI_EXIT_OK)
        return status;
    /* Everything that can be refused is refused before anything exists. */
    if (o.path && (status = guest_collect_files(o.path, o.untracked, &files)) != CLI_EXIT_OK)
        return status;
    status = CLI_EXIT_FAIL;
    int exists = o.name ? guest_exists(ctx, "vm.show", "vm", o.name) : 0;
    if (exists < 0)
        goto cleanup;
    if (exists > 0) {
        fprintf(stderr, "banger: a VM named '%s' already exists (already_exists); pick another "
                        "--name or banger vm delete %s\n", o.name, o.name);
        goto cleanup;
    }
    exists = guest_exists(ctx, "image.show", "image", o.image ? o.image : "default");
    if (exists < 0)
        goto cleanup;
    if (exists == 0) {
        fprintf(stderr, "banger: no image named '%s' (not_found); see banger image list\n",
                o.image ? o.image : "default");
        goto cleanup;
    }
    if (o.dry_run) {
        guest_dry_run(&o, &files);
        status = CLI_EXIT_OK;
        goto cleanup;
    }

    guest_install_signals();
    if (guest_create(ctx, &o, &name) != CLI_EXIT_OK)
        goto cleanup;
    if (!guest_interrupted && guest_wait_ssh(ctx, name, o.wait_s, &g) != CLI_EXIT_OK)
        goto finish;
    if (!guest_interrupted && o.path) {
        fprintf(stderr, "copying %zu file%s from %s to " GUEST_REPO_DIR "\n", files.count,
                files.count == 1 ? "" : "s", files.top);
        if (guest_copy_files(&g, &files) != CLI_EXIT_OK)
            goto finish;
    }
    if (guest_interrupted)
        goto finish;
    if (o.detach) {
        printf("%s is running at %s\n  banger vm ssh %s\n  banger vm exec %s -- CMD\n  "
               "banger vm stop %s\n  banger vm delete %s\n", g.name, g.ip, g.name, g.name,
               g.name, g.name);
        status = CLI_EXIT_OK;
        goto finish;
    }
    if (o.n_cmd) {
        char *remote = guest_remote_command(o.cmd, o.n_cmd, o.path ? GUEST_REPO_DIR : NULL);

        status = guest_run_ssh(&g, isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) ? "-t" : "-T",
                               NULL, remote);
        free(remote);
    } else {
        const char *const cd[] = { "-t", NULL };

        status = guest_run_ssh(&g, NULL, o.path ? cd : NULL,
                               o.path ? "cd " GUEST_REPO_DIR " && exec \"$SHELL\" -l" : NULL);
    }
    if (!o.rm)
        guest_print_still_running(name);
finish:
    if (guest_interrupted && status == CLI_EXIT_FAIL)
        status = 128 + (int)guest_interrupted;
    if (o.rm && name && guest_delete(ctx, name) != CLI_EXIT_OK && status == CLI_EXIT_OK)
        status = CLI_EXIT_FAIL;
    if (!o.rm && !o.detach && name && status == CLI_EXIT_FAIL)
        guest_print_still_running(name);
cleanup:
    guest_ssh_clear(&g);
    guest_files_clear(&files);
    free(name);
    return status;
}

int cmd_vm_guest(struct cli_ctx *ctx, const char *sub, int argc, char **argv)
{
    if (strcmp(sub, "ssh") == 0)
        return vm_ssh(ctx, argc, argv);
    if (strcmp(sub, "exec") == 0)
        return vm_exec(ctx, argc, argv);
    if (strcmp(sub, "run") == 0)
        return vm_run(ctx, argc, argv);
    return CLI_NOT_MINE;
}

/* ---- ssh-config ------------------------------------------------------------ */

/* The text of `config` without our marked block (and the blank line after it). */
static char *guest_strip_block(const char *config, bool *found)
{
    const char *begin = strstr(config, GUEST_BLOCK_BEGIN);
    const char *end = begin ? strstr(begin, GUEST_BLOCK_END) : NULL;

    *found = begin && end;
    if (!*found)
        return xstrdup(config);
    end += strlen(GUEST_BLOCK_END);
    if (*end == '\n')
        end++;
    if (*end == '\n')
        end++;
    return xasprintf("%.*s%s", (int)(begin - config), config, end);
}

static char *guest_managed_config(const struct cli_ctx *ctx, const struct guest_ssh *id)
{
    struct rpc_reply reply;
    char *text = xasprintf("# Managed by banger: `banger ssh-config` rewrites this file.\n");
    const cJSON *vm;

    if (cli_call(ctx, "vm.list", NULL, NULL, NULL, &reply) == CLI_EXIT_OK) {
        cJSON_ArrayForEach(vm, cJSON_GetObjectItemCaseSensitive(reply.result, "vms")) {
            const char *name = out_json_str(vm, "name");
            const char *ip = out_json_str(vm, "ip");
            char *more;

            if (!name || !ip || !ip[0])
                continue;
            more = xasprintf("%sHost %s.vm\n    HostName %s\n", text, name, ip);
            free(text);
            text = more;
        }
        rpc_reply_done(&reply);
    }
    char *all = xasprintf("%s"
                          "# VMs created later resolve through banger's DNS for .vm names.\n"
                          "Host *.vm\n"
                          "    User root\n"
                          "    IdentityFile %s\n"
                          "    IdentitiesOnly yes\n"
                          "    UserKnownHostsFile %s\n"
                          "    StrictHostKeyChecking yes\n"
                          "    HostKeyAlgorithms ssh-ed25519\n"
                          "    PasswordAuthentication no\n"
                          "    LogLevel ERROR\n",
                          text, id->key_path, id->hosts_path);
    free(text);
    return all;
}

int cmd_ssh_config(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "install", no_argument, NULL, 'i' },
        { "uninstall", no_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool install = false, uninstall = false, found = false;
    const char *home = getenv("HOME");
    char *conf_dir = guest_home_dir("XDG_CONFIG_HOME", ".config");
    char *managed = NULL, *ssh_dir = NULL, *user_config = NULL, *old = NULL, *stripped = NULL;
    char *text = NULL, *updated = NULL;
    struct guest_ssh id = { 0 };
    int status = CLI_EXIT_FAIL;
    int c, r;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            free(conf_dir);
            return cli_help(ssh_config_usage);
        }
        if (c == 'i')
            install = true;
        else if (c == 'u')
            uninstall = true;
        else {
            free(conf_dir);
            return cli_getopt_error("ssh-config", c, argv);
        }
    }
    if (optind < argc || (install && uninstall)) {
        free(conf_dir);
        return cli_usage_error("ssh-config", optind < argc ? "unexpected argument" :
                               "--install and --uninstall do not go together");
    }
    if (!conf_dir || !home || home[0] != '/') {
        free(conf_dir);
        fprintf(stderr, "banger: HOME is not set\n");
        return CLI_EXIT_FAIL;
    }
    managed = xasprintf("%s/ssh_config", conf_dir);
    ssh_dir = xasprintf("%s/.ssh", home);
    user_config = xasprintf("%s/config", ssh_dir);
    old = guest_read_file(user_config);
    stripped = guest_strip_block(old ? old : "", &found);

    if (uninstall) {
        /* Only our block and our own file go; nothing else of the user's. */
        if (found && (r = guest_write_file(user_config, stripped, 0600)) < 0) {
            fprintf(stderr, "banger: cannot write %s: %s\n", user_config, strerror(-r));
            goto cleanup;
        }
        if (unlink(managed) < 0 && errno != ENOENT) {
            fprintf(stderr, "banger: cannot remove %s: %s\n", managed, strerror(errno));
            goto cleanup;
        }
        printf("%s\n", found ? "removed banger's block from ~/.ssh/config" :
                               "no banger block in ~/.ssh/config");
        status = CLI_EXIT_OK;
        goto cleanup;
    }

    if (guest_fetch(ctx, NULL, false, &id) != GUEST_FETCH_OK)
        goto cleanup;
    if ((r = guest_private_dir(conf_dir, 0700)) < 0) {
        fprintf(stderr, "banger: cannot use %s: %s\n", conf_dir, strerror(-r));
        goto cleanup;
    }
    text = guest_managed_config(ctx, &id);
    if ((r = guest_write_file(managed, text, 0600)) < 0) {
        fprintf(stderr, "banger: cannot write %s: %s\n", managed, strerror(-r));
        goto cleanup;
    }
    if (install) {
        struct stat st;
        mode_t mode = old && stat(user_config, &st) == 0 ? (st.st_mode & 07777) : 0600;

        if ((r = guest_private_dir(ssh_dir, 0700)) < 0) {
            fprintf(stderr, "banger: cannot use %s: %s\n", ssh_dir, strerror(-r));
            goto cleanup;
        }
        /* At the top: an Include after a Host line would only apply to that host. */
        updated = xasprintf(GUEST_BLOCK_BEGIN "\nInclude %s\n" GUEST_BLOCK_END "\n\n%s", managed,
                            stripped);
        if ((r = guest_write_file(user_config, updated, mode)) < 0) {
            fprintf(stderr, "banger: cannot write %s: %s\n", user_config, strerror(-r));
            goto cleanup;
        }
        printf("%s banger's Include block in %s; try: ssh NAME.vm\n",
               found ? "refreshed" : "added", user_config);
    } else {
        fputs(text, stdout);
        printf("# written to %s; banger ssh-config --install adds it to ~/.ssh/config\n", managed);
    }
    status = CLI_EXIT_OK;
cleanup:
    guest_ssh_clear(&id);
    free(conf_dir);
    free(managed);
    free(ssh_dir);
    free(user_config);
    free(old);
    free(stripped);
    free(text);
    free(updated);
    return status;
}
