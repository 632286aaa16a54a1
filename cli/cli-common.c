/* Pieces the CLI commands share (cli.h): option and name checks, paths,
 * progress output, and calling one method for each of several names. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "store/names.h"
#include "util/xalloc.h"

int cli_take_subcommand(const char *usage, int *argc, char ***argv, const char **sub)
{
    if (*argc < 2) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    *sub = (*argv)[1];
    (*argc)--;
    (*argv)++;
    if (strcmp(*sub, "-h") == 0 || strcmp(*sub, "--help") == 0 || strcmp(*sub, "help") == 0)
        return cli_help(usage);
    return -1;
}

int cli_parse_help_only(const char *cmd, const char *usage, int argc, char **argv,
                        bool *ret_help)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    *ret_help = false;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            *ret_help = true;
            return cli_help(usage);
        }
        return cli_getopt_error(cmd, c, argv);
    }
    return CLI_EXIT_OK;
}

int cli_no_args(const char *cmd, const char *usage, int argc, char **argv)
{
    bool help;
    int r = cli_parse_help_only(cmd, usage, argc, argv, &help);

    if (r != CLI_EXIT_OK || help)
        return r;
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return -1;
}

int cli_list(const struct cli_ctx *ctx, const struct cli_list *list, int argc, char **argv)
{
    struct rpc_reply reply;
    struct out_table table;
    const cJSON *item;
    int status = cli_no_args(list->cmd, list->usage, argc, argv);

    if (status >= 0)
        return status;
    if (cli_call(ctx, list->method, NULL, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json) {
        out_print_json(reply.result);
        rpc_reply_done(&reply);
        return CLI_EXIT_OK;
    }
    out_table_init(&table, list->ncols, list->headers);
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(reply.result, list->array_key))
        list->add_row(&table, item, time(NULL));
    out_table_print(&table, stdout);
    out_table_free(&table);
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

int cli_show(const struct cli_ctx *ctx, const struct cli_show *show, int argc, char **argv)
{
    const char *key = show->kind == CLI_NAME_VM ? "vm" : "image";
    struct rpc_reply reply;
    bool help;
    int r;

    r = cli_parse_help_only(show->cmd, show->usage, argc, argv, &help);
    if (r != CLI_EXIT_OK || help)
        return r;
    r = cli_one_name(show->cmd, show->kind, argc, argv);
    if (r != CLI_EXIT_OK)
        return r;
    if (cli_call(ctx, show->method, cli_params_str(key, argv[optind]), NULL, NULL, &reply) !=
        CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json)
        out_print_json(reply.result);
    else
        show->print(reply.result);
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

int cli_check_names(const char *cmd, enum cli_name_kind kind, int count, char **names)
{
    bool vm = kind == CLI_NAME_VM;
    char reason[256];

    if (count == 0)
        return cli_usage_error(cmd, "no %s named; give a name or id", vm ? "VM" : "image");
    for (int i = 0; i < count; i++) {
        int r = vm ? vm_name_check(names[i], reason, sizeof(reason))
                   : image_name_check(names[i], reason, sizeof(reason));

        if (r < 0)
            return cli_usage_error(cmd, "%s", reason);
    }
    return CLI_EXIT_OK;
}

int cli_one_name(const char *cmd, enum cli_name_kind kind, int argc, char **argv)
{
    if (argc - optind != 1)
        return cli_usage_error(cmd, "give exactly one %s name or id",
                               kind == CLI_NAME_VM ? "VM" : "image");
    return cli_check_names(cmd, kind, 1, argv + optind);
}

static char *cli_absolute(const char *path)
{
    char cwd[PATH_MAX];

    if (path[0] == '/')
        return xstrdup(path);
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    while (strncmp(path, "./", 2) == 0)
        path += 2;
    return xasprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
}

int cli_add_path(cJSON *params, const char *key, const char *path)
{
    char *abs = cli_absolute(path);

    if (!abs) {
        fprintf(stderr, "banger: cannot make '%s' absolute: %s\n", path, strerror(errno));
        return -1;
    }
    cJSON_AddStringToObject(params, key, abs);
    free(abs);
    return 0;
}

double cli_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void cli_on_progress(const char *stage, double elapsed_ms, void *userdata)
{
    struct cli_progress *p = userdata;
    bool overwrite;
    char dur[32];

    if (!p->ctx->tty_progress)
        return;
    out_format_duration_ms(elapsed_ms, dur, sizeof(dur));
    overwrite = p->overwrite_downloads && strncmp(stage, "download ", 9) == 0;
    fprintf(stderr, "%s  %s%s%-*s %8s%s", p->line_open ? "\r" : "", p->name ? p->name : "",
            p->name ? ": " : "", p->stage_width ? p->stage_width : 12, stage, dur,
            overwrite ? "" : "\n");
    p->line_open = overwrite;
    fflush(stderr);
}

void cli_progress_end(struct cli_progress *p)
{
    if (p->line_open)
        fputc('\n', stderr);
    p->line_open = false;
}

int cli_for_each_name(const struct cli_ctx *ctx, const struct cli_each *each, int count,
                      char **names)
{
    cJSON *collected = ctx->json && count > 1 ? cJSON_CreateArray() : NULL;
    int status = CLI_EXIT_OK;

    for (int i = 0; i < count; i++) {
        const char *name = names[i];
        struct cli_progress progress = { .ctx = ctx, .name = count > 1 ? name : NULL };
        cJSON *params = cli_params_str(each->key, name);
        double started = cli_now_ms();
        struct rpc_reply reply;
        int r;

        if (each->add_params)
            each->add_params(params, each->userdata);
        r = cli_call(ctx, each->method, params, each->progress ? cli_on_progress : NULL,
                     each->progress ? &progress : NULL, &reply);
        cli_progress_end(&progress);
        if (r != CLI_EXIT_OK) {
            status = CLI_EXIT_FAIL;
            if (each->on_failure)
                each->on_failure(name, each->userdata);
            continue;
        }
        if (collected)
            cJSON_AddItemToArray(collected, cJSON_Duplicate(reply.result, true));
        else if (ctx->json)
            out_print_json(reply.result);
        else
            each->on_result(name, reply.result, cli_now_ms() - started, each->userdata);
        fflush(stdout);
        rpc_reply_done(&reply);
    }
    if (collected) {
        out_print_json(collected);
        cJSON_Delete(collected);
    }
    return status;
}

cJSON *cli_vm_spec_params(const struct cli_vm_spec *spec)
{
    cJSON *params = cJSON_CreateObject();

    if (spec->name)
        cJSON_AddStringToObject(params, "name", spec->name);
    if (spec->image)
        cJSON_AddStringToObject(params, "image", spec->image);
    if (spec->vcpu)
        cJSON_AddNumberToObject(params, "vcpu", (double)spec->vcpu);
    if (spec->memory_mib)
        cJSON_AddNumberToObject(params, "memory_mib", (double)spec->memory_mib);
    if (spec->disk_size)
        cJSON_AddNumberToObject(params, "disk_size", (double)spec->disk_size);
    if (spec->nat)
        cJSON_AddTrueToObject(params, "nat");
    return params;
}
