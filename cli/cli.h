/* Shared state and entry points of the banger CLI. */
#ifndef BANGER_CLI_H
#define BANGER_CLI_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "rpc-client.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,  /* the daemon said no, or could not be reached */
    CLI_EXIT_USAGE = 2, /* bad command line; nothing was sent */
};

struct cli_ctx {
    const char *socket_path;
    bool json;          /* print raw results for scripts */
    bool tty_progress;  /* stderr is a terminal: show progress stages */
};

/* Prints "banger: <msg>" and a help hint for `cmd`; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a getopt_long '?' or ':' return for `cmd`; returns CLI_EXIT_USAGE. */
int cli_getopt_error(const char *cmd, int getopt_ret, char **argv);
/* Prints usage text on stdout (for -h) and returns CLI_EXIT_OK. */
int cli_help(const char *text);

/* Calls the daemon, printing any failure as "banger: <message> (<code>, op-…)".
 * Returns CLI_EXIT_OK with *reply filled, or CLI_EXIT_FAIL (reply released). */
int cli_call(const struct cli_ctx *ctx, const char *method, cJSON *params,
             rpc_progress_fn on_progress, void *userdata, struct rpc_reply *reply);

/* { "<key>": "<value>" } */
cJSON *cli_params_str(const char *key, const char *value);

int cmd_vm(struct cli_ctx *ctx, int argc, char **argv);
int cmd_vm_list(struct cli_ctx *ctx, int argc, char **argv);
int cmd_image(struct cli_ctx *ctx, int argc, char **argv);
int cmd_doctor(struct cli_ctx *ctx, int argc, char **argv);
int cmd_daemon(struct cli_ctx *ctx, int argc, char **argv);
int cmd_version(struct cli_ctx *ctx, int argc, char **argv);
int cmd_complete_names(struct cli_ctx *ctx, int argc, char **argv);
int cmd_completion(struct cli_ctx *ctx, int argc, char **argv);

/* Command families that live in their own files. Each returns CLI_NOT_MINE
 * when `sub` is not one of its commands. */
#define CLI_NOT_MINE (-1)
/* banger vm ping|health|ports (cmd-agent.c) */
int cmd_vm_agent(struct cli_ctx *ctx, const char *sub, int argc, char **argv);
/* banger vm ssh|exec|run (cmd-guest.c) */
int cmd_vm_guest(struct cli_ctx *ctx, const char *sub, int argc, char **argv);
/* banger ssh-config (cmd-guest.c) */
int cmd_ssh_config(struct cli_ctx *ctx, int argc, char **argv);
/* banger image pull|import|build-default (cmd-image-ext.c) */
int cmd_image_ext(struct cli_ctx *ctx, const char *sub, int argc, char **argv);

#endif
