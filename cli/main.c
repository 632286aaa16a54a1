#include "config.h"

#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_DEFAULT_SOCKET RUNSTATEDIR "/banger/bangerd.sock"

static const char cli_usage[] =
    "Usage: banger [--socket PATH] [--json] COMMAND [ARGS...]\n"
    "\n"
    "VMs (NAME is a VM name or id):\n"
    "  vm create [--name N] [--image I] [--vcpu C] [--memory MiB] [--disk-size SIZE] [--nat] [--no-start]\n"
    "  vm start|stop|restart|delete NAME...\n"
    "  vm kill [--signal S] NAME...\n"
    "  vm prune [-f]               delete every VM that is not running\n"
    "  vm list                     also: vm ls, banger ps\n"
    "  vm show NAME\n"
    "  vm logs [-f] NAME\n"
    "  vm set NAME [--vcpu C] [--memory MiB]\n"
    "  vm ping|health|ports NAME... ask the guest agent (ports: listening sockets)\n"
    "  vm ssh NAME                 interactive ssh as root (banger's key, pinned host key)\n"
    "  vm exec NAME -- CMD...      run CMD in the VM; its exit status is banger's\n"
    "  vm run [PATH] [-- CMD...]   create + start + ssh (or CMD); PATH's git files in /root/repo\n"
    "        [--rm] [-d] [--include-untracked] [--dry-run] [create options]\n"
    "\n"
    "Images:\n"
    "  image register --name N --rootfs FILE --kernel FILE [--initrd FILE]\n"
    "  image import --name N --from-tar FILE --kernel FILE [--initrd FILE]\n"
    "  image pull SOURCE [--name N] [--sha256 HEX]\n"
    "  image build-default [--name N] [--mirror URL]  Debian image + the host's kernel\n"
    "  image list | image show NAME | image delete NAME...\n"
    "\n"
    "Other:\n"
    "  ssh-config [--install|--uninstall]  so plain 'ssh <name>.vm' works\n"
    "  doctor                      check the host and the daemon\n"
    "  daemon status\n"
    "  version\n"
    "  completion bash             print a bash completion script\n"
    "\n"
    "Global options (anywhere before '--'):\n"
    "  --socket PATH   bangerd socket (default: $BANGER_SOCKET or " CLI_DEFAULT_SOCKET ")\n"
    "  --json          print the daemon's result as JSON, for scripts\n"
    "  -h, --help      show help; 'banger vm create --help' for one command\n";

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fputs("banger: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'banger %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    return CLI_EXIT_USAGE;
}

int cli_getopt_error(const char *cmd, int getopt_ret, char **argv)
{
    const char *word = argv[optind - 1];
    char shortopt[3] = { '-', (char)optopt, '\0' };

    /* For a short option the word may be a cluster like "-fx". */
    if (optopt > 0 && optopt < 128 && strncmp(word, "--", 2) != 0)
        word = shortopt;
    if (getopt_ret == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", word);
    return cli_usage_error(cmd, "unknown option '%s'", word);
}

int cli_help(const char *text)
{
    fputs(text, stdout);
    return CLI_EXIT_OK;
}

int cli_call(const struct cli_ctx *ctx, const char *method, cJSON *params,
             rpc_progress_fn on_progress, void *userdata, struct rpc_reply *reply)
{
    struct banger_error err = { 0 };

    if (rpc_call(ctx->socket_path, method, params, on_progress, userdata, reply, &err) < 0) {
        fprintf(stderr, "banger: %s\n", bg_error_text(&err));
        return CLI_EXIT_FAIL;
    }
    if (reply->failed) {
        if (reply->op_id)
            fprintf(stderr, "banger: %s (%s, %s)\n", reply->message, reply->code, reply->op_id);
        else
            fprintf(stderr, "banger: %s (%s)\n", reply->message, reply->code);
        rpc_reply_done(reply);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

cJSON *cli_params_str(const char *key, const char *value)
{
    cJSON *params = cJSON_CreateObject();

    cJSON_AddStringToObject(params, key, value);
    return params;
}

/* Takes --socket and --json out of argv wherever they are (before "--"),
 * so every command accepts them. */
static int cli_take_global_flags(struct cli_ctx *ctx, int *argc, char **argv)
{
    int out = 1;
    int i;

    for (i = 1; i < *argc; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "--") == 0)
            break;
        if (strcmp(arg, "--json") == 0) {
            ctx->json = true;
        } else if (strcmp(arg, "--socket") == 0) {
            if (i + 1 >= *argc)
                return cli_usage_error(NULL, "option '--socket' needs a value");
            ctx->socket_path = argv[++i];
        } else if (strncmp(arg, "--socket=", 9) == 0) {
            ctx->socket_path = arg + 9;
        } else {
            argv[out++] = argv[i];
        }
    }
    for (; i < *argc; i++)
        argv[out++] = argv[i];
    argv[out] = NULL;
    *argc = out;
    if (ctx->socket_path && ctx->socket_path[0] == '\0')
        return cli_usage_error(NULL, "option '--socket' needs a value");
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct cli_ctx ctx = { 0 };
    const char *cmd;
    const char *env_socket = getenv("BANGER_SOCKET");
    int r;

    /* A daemon that hangs up mid-request is an error to report, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    opterr = 0;

    r = cli_take_global_flags(&ctx, &argc, argv);
    if (r != CLI_EXIT_OK)
        return r;
    if (!ctx.socket_path)
        ctx.socket_path = env_socket && *env_socket ? env_socket : CLI_DEFAULT_SOCKET;
    ctx.tty_progress = !ctx.json && isatty(STDERR_FILENO);

    r = cli_take_subcommand(cli_usage, &argc, &argv, &cmd);
    if (r >= 0)
        return r;
    if (strcmp(cmd, "vm") == 0)
        return cmd_vm(&ctx, argc, argv);
    if (strcmp(cmd, "ps") == 0)
        return cmd_vm_list(&ctx, argc, argv);
    if (strcmp(cmd, "image") == 0)
        return cmd_image(&ctx, argc, argv);
    if (strcmp(cmd, "doctor") == 0)
        return cmd_doctor(&ctx, argc, argv);
    if (strcmp(cmd, "daemon") == 0)
        return cmd_daemon(&ctx, argc, argv);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version(&ctx, argc, argv);
    if (strcmp(cmd, "ssh-config") == 0)
        return cmd_ssh_config(&ctx, argc, argv);
    if (strcmp(cmd, "completion") == 0)
        return cmd_completion(&ctx, argc, argv);
    if (strcmp(cmd, "__complete-names") == 0)
        return cmd_complete_names(&ctx, argc, argv);
    if (cmd[0] == '-')
        return cli_usage_error(NULL, "unknown option '%s'", cmd);
    return cli_usage_error(NULL, "unknown command '%s'", cmd);
}
