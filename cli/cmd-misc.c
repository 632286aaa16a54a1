#include "config.h"

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

static const char doctor_usage[] =
    "Usage: banger doctor\n"
    "\n"
    "Ask bangerd to check the host: KVM, firecracker, plugins, bridge, nftables,\n"
    "device-mapper, loop, vsock, state directory, default image. Exits non-zero\n"
    "when any check FAILs.\n";

static const char daemon_usage[] =
    "Usage: banger daemon status\n\nShow the daemon's version, uptime, paths and plugins.\n";

static const char version_usage[] =
    "Usage: banger version\n\nPrint the CLI's version, and the daemon's when it is reachable.\n";

int cmd_doctor(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char *const headers[] = { "STATUS", "CHECK", "DETAIL" };
    struct rpc_reply reply;
    struct out_table table;
    const cJSON *row;
    int status = cli_no_args("doctor", doctor_usage, argc, argv);

    if (status >= 0)
        return status;
    if (cli_call(ctx, "doctor", NULL, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    status = CLI_EXIT_OK;
    out_table_init(&table, 3, headers);
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(reply.result, "rows")) {
        const char *cells[3] = { out_json_str(row, "status"), out_json_str(row, "check"),
                                 out_json_str(row, "detail") };

        if (!cells[0] || strcmp(cells[0], "FAIL") == 0)
            status = CLI_EXIT_FAIL;
        out_table_add(&table, cells);
    }
    if (ctx->json)
        out_print_json(reply.result);
    else
        out_table_print(&table, stdout);
    out_table_free(&table);
    rpc_reply_done(&reply);
    return status;
}

static void misc_print_plugins(const cJSON *plugins)
{
    const cJSON *plugin;
    bool any = false;

    cJSON_ArrayForEach(plugin, plugins) {
        const cJSON *phases = cJSON_GetObjectItemCaseSensitive(plugin, "phases");
        const char *version = out_json_str(plugin, "version");
        char *phase_text = NULL;

        if (cJSON_IsArray(phases) || cJSON_IsObject(phases))
            phase_text = cJSON_PrintUnformatted(phases);
        else if (cJSON_IsString(phases))
            phase_text = strdup(phases->valuestring);
        printf("  %-10s %-10s %s\n", out_json_str(plugin, "name") ? out_json_str(plugin, "name") : "?",
               version ? version : "-", phase_text ? phase_text : "");
        free(phase_text);
        any = true;
    }
    if (!any)
        printf("  (none)\n");
}

int cmd_daemon(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char *const keys[] = { "version", "pid", "socket", "state_dir", "vms", "running" };
    struct rpc_reply reply;
    char buf[512];
    double uptime;
    int status;

    if (argc < 2) {
        fputs(daemon_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return cli_help(daemon_usage);
    if (strcmp(argv[1], "status") != 0)
        return cli_usage_error("daemon", "unknown daemon command '%s'", argv[1]);
    status = cli_no_args("daemon status", daemon_usage, argc - 1, argv + 1);
    if (status >= 0)
        return status;
    if (cli_call(ctx, "daemon.status", NULL, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json) {
        out_print_json(reply.result);
        rpc_reply_done(&reply);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *label = strcmp(keys[i], "state_dir") == 0 ? "state dir" : keys[i];

        out_kv(stdout, 11, label, out_json_text(reply.result, keys[i], buf, sizeof(buf)));
        if (i == 1) {
            if (out_json_num(reply.result, "uptime_s", &uptime))
                out_format_age((long long)uptime, buf, sizeof(buf));
            else
                snprintf(buf, sizeof(buf), "-");
            out_kv(stdout, 11, "uptime", buf);
        }
    }
    printf("plugins:\n");
    misc_print_plugins(cJSON_GetObjectItemCaseSensitive(reply.result, "plugins"));
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

int cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
    struct rpc_reply reply;
    struct banger_error err = { 0 };
    const char *daemon_version = NULL;
    int status = cli_no_args("version", version_usage, argc, argv);

    if (status >= 0)
        return status;
    /* The daemon being away is not an error here: say so and carry on. */
    if (rpc_call(ctx->socket_path, "daemon.status", NULL, NULL, NULL, &reply, &err) == 0 &&
        !reply.failed)
        daemon_version = out_json_str(reply.result, "version");
    if (ctx->json) {
        cJSON *out = cJSON_CreateObject();

        cJSON_AddStringToObject(out, "cli", PACKAGE_VERSION);
        if (daemon_version)
            cJSON_AddStringToObject(out, "daemon", daemon_version);
        else
            cJSON_AddNullToObject(out, "daemon");
        out_print_json(out);
        cJSON_Delete(out);
    } else {
        printf("banger  %s\n", PACKAGE_VERSION);
        if (daemon_version)
            printf("bangerd %s\n", daemon_version);
        else if (err.code)
            printf("bangerd not reachable (%s)\n", bg_error_text(&err));
        else
            printf("bangerd unknown (%s)\n", reply.message ? reply.message : "no version");
    }
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

/* Hidden helper for the completion script: names of VMs or images, one per
 * line, and silence when the daemon cannot be asked. */
int cmd_complete_names(struct cli_ctx *ctx, int argc, char **argv)
{
    struct rpc_reply reply;
    struct banger_error err = { 0 };
    bool images = argc > 1 && strcmp(argv[1], "image") == 0;
    const cJSON *item;

    if (rpc_call(ctx->socket_path, images ? "image.list" : "vm.list", NULL, NULL, NULL, &reply,
                 &err) < 0)
        return CLI_EXIT_FAIL;
    if (!reply.failed)
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(reply.result, images ? "images" : "vms")) {
            const char *name = out_json_str(item, "name");

            if (name)
                printf("%s\n", name);
        }
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}
