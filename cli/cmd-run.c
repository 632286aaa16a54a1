/* banger vm run: create a VM, wait for ssh, copy a repository, run.
 *
 * The repository goes as a tar stream over ssh once the guest answers: the
 * files are read with the user's own permissions (never by the root
 * daemon), and it works whatever the storage plugin does with disks. */
#include "config.h"

#include "guest-common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "store/names.h"
#include "util/xalloc.h"

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

struct guest_run_opts {
    struct cli_vm_spec spec;
    bool rm, detach, untracked, dry_run;
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

/* Adds the paths `git ls-files -z ...` (argv) lists; `what` names it in a
 * failure, after which *f is cleared. */
static int guest_files_from_git(struct guest_files *f, const char *const *argv, const char *what)
{
    size_t len = 0;
    int status = 0;
    char *out = guest_capture(argv, &len, &status);

    if (!out || status != 0) {
        free(out);
        fprintf(stderr, "banger: %s failed in %s\n", what, f->top);
        guest_files_clear(f);
        return CLI_EXIT_FAIL;
    }
    guest_files_add(f, out, len);
    free(out);
    return CLI_EXIT_OK;
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
    if (guest_files_from_git(f, tracked_argv, "git ls-files") != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (untracked) {
        const char *const others_argv[] = { "git", "-C", f->top, "ls-files", "-z", "--others",
                                            "--exclude-standard", NULL };
        return guest_files_from_git(f, others_argv, "git ls-files --others");
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
    const struct cli_vm_spec *spec = &o->spec;

    printf("would create and boot a VM %s%s (image %s)\n", spec->name ? "named " : "",
           spec->name ? spec->name : "with a generated name",
           spec->image ? spec->image : "default");
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

static int guest_create(struct cli_ctx *ctx, const struct guest_run_opts *o, char **name)
{
    struct cli_progress progress = { .ctx = ctx };
    struct rpc_reply reply;

    if (cli_call(ctx, "vm.create", cli_vm_spec_params(&o->spec), cli_on_progress, &progress,
                 &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    const char *shown = out_json_str(reply.result, "name");
    *name = xstrdup(shown ? shown : o->spec.name ? o->spec.name : "?");
    rpc_reply_done(&reply);
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
            o->spec.name = optarg;
            break;
        case 'i':
            if (image_name_check(optarg, reason, sizeof(reason)) < 0)
                return cli_usage_error(cmd, "%s", reason);
            o->spec.image = optarg;
            break;
        case 'c':
            if (out_parse_int(optarg, 1, 255, &o->spec.vcpu) < 0)
                return cli_usage_error(cmd, "bad --vcpu '%s': give a number from 1 to 255", optarg);
            break;
        case 'm':
            if (out_parse_mib(optarg, &o->spec.memory_mib) < 0)
                return cli_usage_error(cmd, "bad --memory '%s': give MiB, or a size like 2G", optarg);
            break;
        case 's':
            if (out_parse_size(optarg, &o->spec.disk_size) < 0 || o->spec.disk_size == 0)
                return cli_usage_error(cmd, "bad --disk-size '%s': give a size like 8G or 512M",
                                       optarg);
            break;
        case 'w':
            if (out_parse_int(optarg, 1, 3600, &o->wait_s) < 0)
                return cli_usage_error(cmd, "bad --wait '%s': give seconds from 1 to 3600", optarg);
            break;
        case 'N': o->spec.nat = true; break;
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

/* banger vm run */
int guest_vm_run(struct cli_ctx *ctx, int argc, char **argv)
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
    int exists = o.spec.name ? guest_exists(ctx, "vm.show", "vm", o.spec.name) : 0;
    if (exists < 0)
        goto cleanup;
    if (exists > 0) {
        fprintf(stderr, "banger: a VM named '%s' already exists (already_exists); pick another "
                        "--name or banger vm delete %s\n", o.spec.name, o.spec.name);
        goto cleanup;
    }
    exists = guest_exists(ctx, "image.show", "image", o.spec.image ? o.spec.image : "default");
    if (exists < 0)
        goto cleanup;
    if (exists == 0) {
        fprintf(stderr, "banger: no image named '%s' (not_found); see banger image list\n",
                o.spec.image ? o.spec.image : "default");
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
    if (!guest_interrupt_signal() && guest_wait_ssh(ctx, name, o.wait_s, &g) != CLI_EXIT_OK)
        goto finish;
    if (!guest_interrupt_signal() && o.path) {
        fprintf(stderr, "copying %zu file%s from %s to " GUEST_REPO_DIR "\n", files.count,
                files.count == 1 ? "" : "s", files.top);
        if (guest_copy_files(&g, &files) != CLI_EXIT_OK)
            goto finish;
    }
    if (guest_interrupt_signal())
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
    /* Interrupted: report the signal, not ssh's own 255 for it. */
    if (guest_interrupt_signal())
        status = 128 + guest_interrupt_signal();
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
