/* banger vm ping|health|ports: questions for the guest agent, asked by the
 * daemon over the VM's vsock (method vm.agent). */
#include "config.h"

#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

#define AGENT_CLI_TIMEOUT_MAX_MS 60000

static const char agent_ping_usage[] =
    "Usage: banger vm ping [--timeout MS] NAME...\n"
    "\n"
    "Check that each VM's guest agent answers, and how fast.\n"
    "\n"
    "  --timeout MS   give up on a VM after MS milliseconds (default 5000)\n";

static const char agent_health_usage[] =
    "Usage: banger vm health [--timeout MS] NAME...\n"
    "\n"
    "Ask each VM's guest agent for its health: agent version, guest uptime,\n"
    "hostname and boot id (which changes at every boot).\n"
    "\n"
    "  --timeout MS   give up on a VM after MS milliseconds (default 5000)\n";

static const char agent_ports_usage[] =
    "Usage: banger vm ports [--timeout MS] NAME...\n"
    "\n"
    "List what listens inside each VM (TCP listeners, bound UDP sockets) as\n"
    "NAME.vm:PORT endpoints, with the process holding the socket.\n"
    "ADDR 127.0.0.1 or ::1 means reachable from inside the guest only.\n"
    "\n"
    "  --timeout MS   give up on a VM after MS milliseconds (default 5000)\n";

struct agent_cmd {
    const char *sub;
    const char *usage;
};

static const struct agent_cmd agent_cmds[] = {
    { "ping", agent_ping_usage },
    { "health", agent_health_usage },
    { "ports", agent_ports_usage },
};

/* 850ms, 42s, 6m52s, 3h07m, 2d04h */
static void agent_format_uptime(double ms, char *buf, size_t len)
{
    long long s = (long long)(ms / 1000);

    if (ms < 1000)
        snprintf(buf, len, "%.0fms", ms < 0 ? 0 : ms);
    else if (s < 60)
        snprintf(buf, len, "%llds", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

/* Sub-millisecond round trips are the normal case: keep two decimals. */
static void agent_format_latency(const cJSON *result, char *buf, size_t len)
{
    double ms;

    if (out_json_num(result, "latency_ms", &ms))
        snprintf(buf, len, "%.2fms", ms);
    else
        snprintf(buf, len, "-");
}

static void agent_health_row(struct out_table *t, const char *name, const cJSON *result)
{
    char uptime[32], latency[32];
    const char *cells[7] = { name, "unreachable", NULL, NULL, NULL, NULL, NULL };
    double ms;

    if (result) {
        cells[1] = "ok";
        cells[2] = out_json_str(result, "version");
        if (out_json_num(result, "uptime_ms", &ms)) {
            agent_format_uptime(ms, uptime, sizeof(uptime));
            cells[3] = uptime;
        }
        cells[4] = out_json_str(result, "hostname");
        cells[5] = out_json_str(result, "boot_id");
        agent_format_latency(result, latency, sizeof(latency));
        cells[6] = latency;
    }
    out_table_add(t, cells);
}

/* By protocol, then port: the agent lists them in kernel hash order. */
static int agent_port_cmp(const void *a, const void *b)
{
    const cJSON *pa = *(const cJSON *const *)a, *pb = *(const cJSON *const *)b;
    const char *proto_a = out_json_str(pa, "proto"), *proto_b = out_json_str(pb, "proto");
    double port_a = 0, port_b = 0;
    int by_proto = strcmp(proto_a ? proto_a : "", proto_b ? proto_b : "");

    if (by_proto)
        return by_proto;
    out_json_num(pa, "port", &port_a);
    out_json_num(pb, "port", &port_b);
    return (port_a > port_b) - (port_a < port_b);
}

static void agent_ports_rows(struct out_table *t, const char *name, const cJSON *result)
{
    const cJSON *ports = cJSON_GetObjectItemCaseSensitive(result, "ports");
    int n = cJSON_IsArray(ports) ? cJSON_GetArraySize(ports) : 0;
    const cJSON **sorted;
    const cJSON *port;
    int i = 0;

    if (n <= 0)
        return;
    sorted = calloc((size_t)n, sizeof(*sorted));
    if (!sorted)
        return;
    cJSON_ArrayForEach(port, ports)
        sorted[i++] = port;
    qsort(sorted, (size_t)n, sizeof(*sorted), agent_port_cmp);
    for (i = 0; i < n; i++) {
        char endpoint[128], process[128], number[32];
        const char *comm = out_json_str(sorted[i], "comm");
        const char *cells[4];
        double pid = 0;

        out_json_text(sorted[i], "port", number, sizeof(number));
        snprintf(endpoint, sizeof(endpoint), "%s.vm:%s", name, number);
        if (comm && out_json_num(sorted[i], "pid", &pid))
            snprintf(process, sizeof(process), "%s (%.0f)", comm, pid);
        else if (comm)
            snprintf(process, sizeof(process), "%s", comm);
        else
            snprintf(process, sizeof(process), "-");
        cells[0] = endpoint;
        cells[1] = out_json_str(sorted[i], "proto");
        cells[2] = out_json_str(sorted[i], "addr");
        cells[3] = process;
        out_table_add(t, cells);
    }
    free(sorted);
}

static int agent_parse(const struct agent_cmd *cmd, const char *cmd_name, int argc, char **argv,
                       long long *timeout_ms, bool *help)
{
    static const struct option opts[] = {
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    *help = false;
    *timeout_ms = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":ht:", opts, NULL)) != -1) {
        if (c == 'h') {
            *help = true;
            return cli_help(cmd->usage);
        }
        if (c == 't') {
            if (out_parse_int(optarg, 1, AGENT_CLI_TIMEOUT_MAX_MS, timeout_ms) < 0)
                return cli_usage_error(cmd_name,
                                       "bad --timeout '%s': give milliseconds from 1 to %d",
                                       optarg, AGENT_CLI_TIMEOUT_MAX_MS);
            continue;
        }
        return cli_getopt_error(cmd_name, c, argv);
    }
    return cli_check_names(cmd_name, CLI_NAME_VM, argc - optind, argv + optind);
}

/* One vm.agent call per VM: what to ask, and where the answers go. */
struct agent_call {
    const char *sub;
    long long timeout_ms;
    bool is_health, is_ports;
    struct out_table *table;
    int answered;
};

static void agent_add_params(cJSON *params, void *userdata)
{
    const struct agent_call *call = userdata;

    cJSON_AddStringToObject(params, "op", call->sub);
    if (call->timeout_ms)
        cJSON_AddNumberToObject(params, "timeout_ms", (double)call->timeout_ms);
}

static void agent_on_result(const char *name, const cJSON *result, double elapsed_ms,
                            void *userdata)
{
    struct agent_call *call = userdata;
    const char *shown = out_json_str(result, "vm");
    char latency[32];

    (void)elapsed_ms;
    if (!shown)
        shown = name;
    call->answered++;
    if (call->is_health) {
        agent_health_row(call->table, shown, result);
    } else if (call->is_ports) {
        agent_ports_rows(call->table, shown, result);
    } else {
        agent_format_latency(result, latency, sizeof(latency));
        printf("%s: agent answered in %s\n", shown, latency);
    }
}

/* An unreachable VM still gets its health row. */
static void agent_on_failure(const char *name, void *userdata)
{
    struct agent_call *call = userdata;

    if (call->is_health && call->table->ncols)
        agent_health_row(call->table, name, NULL);
}

int cmd_vm_agent(struct cli_ctx *ctx, const char *sub, int argc, char **argv)
{
    static const char *const health_headers[] = { "NAME", "STATUS", "VERSION", "UPTIME",
                                                  "HOSTNAME", "BOOT ID", "LATENCY" };
    static const char *const ports_headers[] = { "ENDPOINT", "PROTO", "ADDR", "PROCESS" };
    const struct agent_cmd *cmd = NULL;
    struct out_table table = { 0 };
    struct agent_call call = { .sub = sub, .table = &table };
    const struct cli_each each = {
        .method = "vm.agent",
        .key = "vm",
        .add_params = agent_add_params,
        .on_result = agent_on_result,
        .on_failure = agent_on_failure,
        .userdata = &call,
    };
    char cmd_name[32];
    bool help;
    int status;

    for (size_t i = 0; i < sizeof(agent_cmds) / sizeof(agent_cmds[0]); i++)
        if (strcmp(sub, agent_cmds[i].sub) == 0)
            cmd = &agent_cmds[i];
    if (!cmd)
        return CLI_NOT_MINE;
    snprintf(cmd_name, sizeof(cmd_name), "vm %s", sub);
    status = agent_parse(cmd, cmd_name, argc, argv, &call.timeout_ms, &help);
    if (status != CLI_EXIT_OK || help)
        return status;
    call.is_health = strcmp(sub, "health") == 0;
    call.is_ports = strcmp(sub, "ports") == 0;
    if (!ctx->json && call.is_health)
        out_table_init(&table, 7, health_headers);
    if (!ctx->json && call.is_ports)
        out_table_init(&table, 4, ports_headers);

    /* One after the other; a failure does not stop the rest. */
    status = cli_for_each_name(ctx, &each, argc - optind, argv + optind);
    /* A table only when there is a row to show. */
    if (table.ncols && table.nrows > 1)
        out_table_print(&table, stdout);
    else if (call.is_ports && !ctx->json && call.answered > 0)
        printf("no listening sockets\n");
    if (table.ncols)
        out_table_free(&table);
    return status;
}
