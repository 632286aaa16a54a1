/* Shared state and entry points of the banger CLI. */
#ifndef BANGER_CLI_H
#define BANGER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

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

/* ---- cli-common.c: pieces the commands share ------------------------------- */

/* argv[1] is a (sub)command: sets *sub and drops argv[0]. Returns -1 to go
 * on, or the status to exit with: usage on stderr when there is none, help
 * on stdout for -h, --help and help. */
int cli_take_subcommand(const char *usage, int *argc, char ***argv, const char **sub);

/* Parses a command line that has no options but -h. Returns CLI_EXIT_OK
 * (*ret_help says whether help was printed) or a usage error's status;
 * operands start at optind. */
int cli_parse_help_only(const char *cmd, const char *usage, int argc, char **argv,
                        bool *ret_help);

/* The same for commands that take no operands either. Returns -1 to go on,
 * else the status to exit with (help printed, or a usage error). */
int cli_no_args(const char *cmd, const char *usage, int argc, char **argv);

struct out_table;

/* A *.list command shown as a table, one row per member of the result's
 * array_key (the whole result with --json). */
struct cli_list {
    const char *cmd, *usage, *method, *array_key;
    const char *const *headers;
    size_t ncols;
    void (*add_row)(struct out_table *t, const cJSON *item, time_t now);
};

int cli_list(const struct cli_ctx *ctx, const struct cli_list *list, int argc, char **argv);

enum cli_name_kind { CLI_NAME_VM, CLI_NAME_IMAGE };

/* A *.show command: NAME, asked for as {"vm"|"image": NAME}, printed as
 * JSON or by print. */
struct cli_show {
    const char *cmd, *usage, *method;
    enum cli_name_kind kind;
    void (*print)(const cJSON *result);
};

int cli_show(const struct cli_ctx *ctx, const struct cli_show *show, int argc, char **argv);

/* At least one name, each valid for its kind; else a usage error. */
int cli_check_names(const char *cmd, enum cli_name_kind kind, int count, char **names);
/* Exactly one valid name at argv[optind]; else a usage error. */
int cli_one_name(const char *cmd, enum cli_name_kind kind, int argc, char **argv);

/* params[key] = path made absolute against the working directory (the
 * daemon runs elsewhere; symlinks are not resolved: root may read what we
 * cannot). Returns 0, or -1 with a message printed. */
int cli_add_path(cJSON *params, const char *key, const char *path);

/* CLOCK_MONOTONIC in milliseconds. */
double cli_now_ms(void);

/* Progress stages on stderr (terminals only): "  <stage>  <elapsed>". */
struct cli_progress {
    const struct cli_ctx *ctx;
    const char *name;           /* "<name>: " before each stage; NULL: none */
    int stage_width;            /* 0: 12 */
    bool overwrite_downloads;   /* "download ..." stages overwrite one line */
    bool line_open;             /* such a line is on screen */
};

/* An rpc_progress_fn; userdata is a struct cli_progress. */
void cli_on_progress(const char *stage, double elapsed_ms, void *userdata);
/* Ends a line left open by an overwriting stage. */
void cli_progress_end(struct cli_progress *p);

/* One daemon call per name, for commands that take NAME...: one after the
 * other; a failure (printed) does not stop the rest. With --json the
 * results are printed as they are, in an array when there are several. */
struct cli_each {
    const char *method;
    const char *key;        /* the params are { key: name } plus add_params */
    void (*add_params)(cJSON *params, void *userdata);            /* NULL: none */
    bool progress;          /* show progress stages, named when several */
    /* Prints one result, without --json. */
    void (*on_result)(const char *name, const cJSON *result, double elapsed_ms, void *userdata);
    void (*on_failure)(const char *name, void *userdata);         /* NULL: none */
    void *userdata;
};

/* Returns CLI_EXIT_OK, or CLI_EXIT_FAIL when any call failed. */
int cli_for_each_name(const struct cli_ctx *ctx, const struct cli_each *each, int count,
                      char **names);

/* What vm create and vm run ask for; unset fields are left to the daemon. */
struct cli_vm_spec {
    const char *name, *image;
    long long vcpu, memory_mib;
    unsigned long long disk_size;
    bool nat;
};

/* vm.create params for spec. */
cJSON *cli_vm_spec_params(const struct cli_vm_spec *spec);

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
/* banger vm ssh|exec|run (cmd-ssh.c, cmd-run.c) */
int cmd_vm_guest(struct cli_ctx *ctx, const char *sub, int argc, char **argv);
/* banger ssh-config (cmd-ssh-config.c) */
int cmd_ssh_config(struct cli_ctx *ctx, int argc, char **argv);
/* banger image pull|import|build-default (cmd-image-ext.c) */
int cmd_image_ext(struct cli_ctx *ctx, const char *sub, int argc, char **argv);

#endif
