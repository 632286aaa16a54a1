/* banger vm ssh|exec: a shell or a command in a running VM, with banger's
 * own key and pinned host keys (guest-ssh.c). */
#include "config.h"

#include "guest-common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/xalloc.h"

static const char vm_ssh_usage[] =
    "Usage: banger vm ssh NAME [-- SSH-ARGS...]\n"
    "\n"
    "Open an interactive shell as root in a running VM, with banger's own key and\n"
    "its pinned host keys (trusted on first contact, a changed key is refused).\n"
    "SSH-ARGS follow the destination as with ssh: options, then a command, as in\n"
    "'banger vm ssh web -- -L 8080:localhost:80' or 'banger vm ssh web -- uname -a'.\n";

static const char vm_exec_usage[] =
    "Usage: banger vm exec NAME -- CMD [ARGS...]\n"
    "\n"
    "Run CMD as root in a running VM. stdin and stdout pass through; banger exits\n"
    "with CMD's exit status (255 when ssh itself failed).\n";

/* NAME [-- REST...] of vm ssh/exec. Returns CLI_EXIT_OK with *name, *rest
 * and *n_rest set, or the status to exit with (with *help after -h). */
static int guest_parse_target(const char *cmd, const char *usage, int argc, char **argv,
                              const char **name, char ***rest, int *n_rest, bool *help)
{
    int nargs = guest_split_dashdash(argc, argv, rest, n_rest);
    int r = cli_parse_help_only(cmd, usage, nargs, argv, help);

    if (r != CLI_EXIT_OK || *help)
        return r;
    r = cli_one_name(cmd, CLI_NAME_VM, nargs, argv);
    if (r == CLI_EXIT_OK)
        *name = argv[optind];
    return r;
}

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
    const char *name = NULL;
    struct guest_ssh g;
    bool help;
    int r = guest_parse_target("vm ssh", vm_ssh_usage, argc, argv, &name, &rest, &n_rest, &help);

    if (r != CLI_EXIT_OK || help)
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
    const char *name = NULL;
    struct guest_ssh g;
    bool help;
    int r = guest_parse_target("vm exec", vm_exec_usage, argc, argv, &name, &rest, &n_rest, &help);

    if (r != CLI_EXIT_OK || help)
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

int cmd_vm_guest(struct cli_ctx *ctx, const char *sub, int argc, char **argv)
{
    if (strcmp(sub, "ssh") == 0)
        return vm_ssh(ctx, argc, argv);
    if (strcmp(sub, "exec") == 0)
        return vm_exec(ctx, argc, argv);
    if (strcmp(sub, "run") == 0)
        return guest_vm_run(ctx, argc, argv);
    return CLI_NOT_MINE;
}
