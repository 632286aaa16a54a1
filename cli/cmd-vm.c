#include "config.h"

#include "cli.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "store/names.h"
#include "util/term_text.h"

static const char vm_usage[] =
    "Usage: banger vm COMMAND [ARGS...]\n"
    "\n"
    "  create [--name N] [--image I] [--vcpu C] [--memory MiB] [--disk-size SIZE] [--nat] [--no-start]\n"
    "  start|stop|restart|delete NAME...\n"
    "  kill [--signal S] NAME...\n"
    "  prune [-f]\n"
    "  list (ls)\n"
    "  show NAME\n"
    "  logs [-f] [--raw] NAME\n"
    "  set NAME [--vcpu C] [--memory MiB]\n"
    "  ping|health|ports [--timeout MS] NAME...\n"
    "  ssh NAME | exec NAME -- CMD... | run [PATH] [-- CMD...]\n"
    "\n"
    "Run 'banger vm COMMAND --help' for details.\n";

static const char vm_create_usage[] =
    "Usage: banger vm create [OPTIONS]\n"
    "\n"
    "Create a VM and boot it.\n"
    "\n"
    "  --name N          VM name: 1-63 of [a-z0-9-], no leading or trailing '-'\n"
    "                    (default: generated)\n"
    "  --image I         image name or id (default: the daemon's default image)\n"
    "  --vcpu C          number of vCPUs\n"
    "  --memory MiB      memory in MiB, or with a unit: 2G, 512M\n"
    "  --disk-size SIZE  root disk size: 8G, 512M, or bytes\n"
    "  --nat             give the VM outbound network access\n"
    "  --no-start        create it but do not boot it\n"
    "  --json            print the VM as JSON\n";

static const char vm_kill_usage[] =
    "Usage: banger vm kill [--signal S] NAME...\n"
    "\n"
    "Send a signal to the VMs' Firecracker processes (default KILL); they end up stopped.\n"
    "\n"
    "  --signal S   KILL, TERM, INT, HUP, QUIT, or a signal number\n";

static const char vm_prune_usage[] =
    "Usage: banger vm prune [-f]\n"
    "\n"
    "Delete every VM that is not running. Asks first on a terminal.\n"
    "\n"
    "  -f, --force   do not ask (needed when not on a terminal)\n";

static const char vm_list_usage[] =
    "Usage: banger vm list   (also: banger vm ls, banger ps)\n"
    "\n"
    "List VMs: NAME OWNER STATE IP IMAGE VCPU MEM AGE. A member of the socket\n"
    "group sees the VMs they created; root sees every VM.\n";

static const char vm_show_usage[] = "Usage: banger vm show NAME\n\nShow one VM in detail.\n";

static const char vm_logs_usage[] =
    "Usage: banger vm logs [-f] [--raw] NAME\n"
    "\n"
    "Print the VM's console and Firecracker log (the last 64 KiB). Control bytes\n"
    "(ESC, other C0 bytes except newline and tab, DEL, C1) and invalid UTF-8 are\n"
    "shown as \\xNN, so guest output cannot drive the terminal.\n"
    "\n"
    "  -f, --follow   keep printing new output until the VM stops or Ctrl-C\n"
    "  --raw          print the bytes exactly as the guest wrote them\n";

static const char vm_set_usage[] =
    "Usage: banger vm set NAME [--vcpu C] [--memory MiB]\n"
    "\n"
    "Change a VM that is not running.\n"
    "\n"
    "  --vcpu C       number of vCPUs\n"
    "  --memory MiB   memory in MiB, or with a unit: 2G, 512M\n";

struct vm_action {
    const char *cmd;
    const char *method;
    const char *done;   /* "<name> <done>" after success */
    bool ready_line;    /* finishes with "<name> running at <ip> — ready in …" */
    const char *usage;
};

static const struct vm_action vm_actions[] = {
    { "start", "vm.start", "started", true,
      "Usage: banger vm start NAME...\n\nBoot VMs, one after the other.\n" },
    { "stop", "vm.stop", "stopped", false,
      "Usage: banger vm stop NAME...\n\nShut VMs down (Ctrl-Alt-Del, then kill after a grace window).\n" },
    { "restart", "vm.restart", "restarted", true,
      "Usage: banger vm restart NAME...\n\nStop and start VMs again.\n" },
    { "delete", "vm.delete", "deleted", false,
      "Usage: banger vm delete NAME...\n\nStop VMs if needed and delete them with their disks.\n" },
    { "kill", "vm.kill", "killed", false, vm_kill_usage },
};

/* "web running at 172.29.0.2 — ready in 1.4s" */
static void vm_print_ready(const cJSON *vm, const char *fallback_name, double elapsed_ms)
{
    const char *name = out_json_str(vm, "name");
    const char *ip = out_json_str(vm, "ip");
    char dur[32];

    out_format_duration_ms(elapsed_ms, dur, sizeof(dur));
    if (ip && *ip)
        printf("%s running at %s \u2014 ready in %s\n", name ? name : fallback_name, ip, dur);
    else
        printf("%s running \u2014 ready in %s\n", name ? name : fallback_name, dur);
}

static int vm_signal_param(const char *text, cJSON *params)
{
    static const char *const names[] = { "KILL", "TERM", "INT", "HUP", "QUIT" };
    long long number;

    if (out_parse_int(text, 1, 64, &number) == 0) {
        cJSON_AddNumberToObject(params, "signal", (double)number);
        return 0;
    }
    if (strncasecmp(text, "SIG", 3) == 0)
        text += 3;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(text, names[i]) == 0) {
            cJSON_AddStringToObject(params, "signal", names[i]);
            return 0;
        }
    return -1;
}

struct vm_action_call {
    const struct vm_action *action;
    const char *signal_text;    /* vm kill --signal */
};

static void vm_action_params(cJSON *params, void *userdata)
{
    const struct vm_action_call *call = userdata;

    if (call->signal_text)
        vm_signal_param(call->signal_text, params);
}

static void vm_action_result(const char *name, const cJSON *result, double elapsed_ms,
                             void *userdata)
{
    const struct vm_action_call *call = userdata;
    const char *state = out_json_str(result, "state");
    const char *shown = out_json_str(result, "name");

    if (call->action->ready_line && state && strcmp(state, "running") == 0)
        vm_print_ready(result, name, elapsed_ms);
    else
        printf("%s %s\n", shown ? shown : name, call->action->done);
}

static int vm_run_action(struct cli_ctx *ctx, const struct vm_action *action, int argc, char **argv)
{
    static const struct option opts[] = {
        { "signal", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool is_kill = strcmp(action->cmd, "kill") == 0;
    struct vm_action_call call = { .action = action };
    const struct cli_each each = {
        .method = action->method,
        .key = "vm",
        .add_params = vm_action_params,
        .progress = true,
        .on_result = vm_action_result,
        .userdata = &call,
    };
    char cmd[32];
    int status;
    int c;

    snprintf(cmd, sizeof(cmd), "vm %s", action->cmd);
    optind = 0;
    while ((c = getopt_long(argc, argv, is_kill ? ":hs:" : ":h", opts, NULL)) != -1) {
        if (c == 'h')
            return cli_help(action->usage);
        if (c == 's' && is_kill) {
            call.signal_text = optarg;
            continue;
        }
        if (c == 's')
            return cli_usage_error(cmd, "unknown option '--signal'");
        return cli_getopt_error(cmd, c, argv);
    }
    status = cli_check_names(cmd, CLI_NAME_VM, argc - optind, argv + optind);
    if (status != CLI_EXIT_OK)
        return status;
    if (call.signal_text) {
        cJSON *probe = cJSON_CreateObject();
        int bad = vm_signal_param(call.signal_text, probe);

        cJSON_Delete(probe);
        if (bad)
            return cli_usage_error(cmd, "unknown signal '%s': use KILL, TERM, INT, HUP, QUIT or a number",
                                   call.signal_text);
    }
    /* One after the other; a failure does not stop the rest. */
    return cli_for_each_name(ctx, &each, argc - optind, argv + optind);
}

static int vm_create(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "image", required_argument, NULL, 'i' },
        { "vcpu", required_argument, NULL, 'c' },
        { "memory", required_argument, NULL, 'm' },
        { "disk-size", required_argument, NULL, 'd' },
        { "nat", no_argument, NULL, 'N' },
        { "no-start", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "vm create";
    struct cli_vm_spec spec = { 0 };
    bool no_start = false;
    struct cli_progress progress = { .ctx = ctx };
    struct rpc_reply reply;
    cJSON *params;
    double started;
    char reason[256];
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(vm_create_usage);
        case 'n':
            if (vm_name_check(optarg, reason, sizeof(reason)) < 0)
                return cli_usage_error(cmd, "%s", reason);
            spec.name = optarg;
            break;
        case 'i':
            if (image_name_check(optarg, reason, sizeof(reason)) < 0)
                return cli_usage_error(cmd, "%s", reason);
            spec.image = optarg;
            break;
        case 'c':
            if (out_parse_int(optarg, 1, 255, &spec.vcpu) < 0)
                return cli_usage_error(cmd, "bad --vcpu '%s': give a number from 1 to 255", optarg);
            break;
        case 'm':
            if (out_parse_mib(optarg, &spec.memory_mib) < 0)
                return cli_usage_error(cmd, "bad --memory '%s': give MiB, or a size like 2G or 512M",
                                       optarg);
            break;
        case 'd':
            if (out_parse_size(optarg, &spec.disk_size) < 0 || spec.disk_size == 0)
                return cli_usage_error(cmd, "bad --disk-size '%s': give a size like 8G, 512M, or bytes",
                                       optarg);
            break;
        case 'N':
            spec.nat = true;
            break;
        case 'S':
            no_start = true;
            break;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s' (use --name to name the VM)",
                               argv[optind]);

    params = cli_vm_spec_params(&spec);
    if (no_start)
        cJSON_AddFalseToObject(params, "start");

    started = cli_now_ms();
    if (cli_call(ctx, "vm.create", params, cli_on_progress, &progress, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json) {
        out_print_json(reply.result);
    } else {
        const char *state = out_json_str(reply.result, "state");
        const char *shown = out_json_str(reply.result, "name");

        if (!shown)
            shown = spec.name ? spec.name : "VM";
        if (state && strcmp(state, "running") == 0)
            vm_print_ready(reply.result, shown, cli_now_ms() - started);
        else if (state && strcmp(state, "created") == 0)
            printf("%s created; start it with: banger vm start %s\n", shown, shown);
        else
            printf("%s created (%s)\n", shown, state ? state : "-");
    }
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

/* The owner as a user name when the host knows the uid, else the number;
 * "-" from a daemon that does not send owner_uid. */
static const char *vm_owner_text(const cJSON *vm, char *buf, size_t len)
{
    double num;

    if (!out_json_num(vm, "owner_uid", &num) || num < 0 || num > 4294967294.0)
        return "-";
    struct passwd *pw = getpwuid((uid_t)num);
    if (pw && pw->pw_name && pw->pw_name[0])
        snprintf(buf, len, "%s", pw->pw_name);
    else
        snprintf(buf, len, "%u", (unsigned)num);
    return buf;
}

static void vm_table_row(struct out_table *t, const cJSON *vm, time_t now)
{
    char vcpu[32], mem[32], age[32], owner[64];
    const char *ip = out_json_str(vm, "ip");
    double num;
    const char *cells[8];

    out_json_text(vm, "vcpu", vcpu, sizeof(vcpu));
    if (out_json_num(vm, "memory_mib", &num))
        out_format_mib((long long)num, mem, sizeof(mem));
    else
        snprintf(mem, sizeof(mem), "-");
    if (out_json_num(vm, "created_at", &num))
        out_format_age((long long)now - (long long)num, age, sizeof(age));
    else
        snprintf(age, sizeof(age), "-");
    cells[0] = out_json_str(vm, "name");
    cells[1] = vm_owner_text(vm, owner, sizeof(owner));
    cells[2] = out_json_str(vm, "state");
    cells[3] = ip && *ip ? ip : NULL;
    cells[4] = out_json_str(vm, "image");
    cells[5] = vcpu;
    cells[6] = mem;
    cells[7] = age;
    out_table_add(t, cells);
}

int cmd_vm_list(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char *const headers[] = { "NAME", "OWNER", "STATE", "IP", "IMAGE",
                                           "VCPU", "MEM", "AGE" };
    static const struct cli_list list = {
        .cmd = "vm list", .usage = vm_list_usage, .method = "vm.list",
        .array_key = "vms", .headers = headers, .ncols = 8, .add_row = vm_table_row,
    };

    return cli_list(ctx, &list, argc, argv);
}

static void vm_print_details(const cJSON *vm)
{
    char buf[256];
    double num;
    const int w = 11;

    out_kv(stdout, w, "name", out_json_text(vm, "name", buf, sizeof(buf)));
    out_kv(stdout, w, "id", out_json_text(vm, "id", buf, sizeof(buf)));
    out_kv(stdout, w, "owner", vm_owner_text(vm, buf, sizeof(buf)));
    out_kv(stdout, w, "state", out_json_text(vm, "state", buf, sizeof(buf)));
    if (out_json_str(vm, "last_error"))
        out_kv(stdout, w, "last error", out_json_str(vm, "last_error"));
    out_kv(stdout, w, "image", out_json_text(vm, "image", buf, sizeof(buf)));
    out_kv(stdout, w, "vcpu", out_json_text(vm, "vcpu", buf, sizeof(buf)));
    if (out_json_num(vm, "memory_mib", &num))
        out_format_mib((long long)num, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "-");
    out_kv(stdout, w, "memory", buf);
    if (out_json_num(vm, "disk_size", &num))
        out_format_bytes((unsigned long long)num, buf, sizeof(buf));
    else
        out_json_text(vm, "disk_size", buf, sizeof(buf));
    out_kv(stdout, w, "disk size", buf);
    out_kv(stdout, w, "nat", out_json_text(vm, "nat", buf, sizeof(buf)));
    out_kv(stdout, w, "ip", out_json_text(vm, "ip", buf, sizeof(buf)));
    out_kv(stdout, w, "mac", out_json_text(vm, "mac", buf, sizeof(buf)));
    out_kv(stdout, w, "cid", out_json_text(vm, "cid", buf, sizeof(buf)));
    out_kv(stdout, w, "pid", out_json_text(vm, "pid", buf, sizeof(buf)));
    out_format_time(cJSON_GetObjectItemCaseSensitive(vm, "created_at"), buf, sizeof(buf));
    out_kv(stdout, w, "created", buf);
    out_format_time(cJSON_GetObjectItemCaseSensitive(vm, "started_at"), buf, sizeof(buf));
    out_kv(stdout, w, "started", buf);
    out_format_time(cJSON_GetObjectItemCaseSensitive(vm, "updated_at"), buf, sizeof(buf));
    out_kv(stdout, w, "updated", buf);
}

static int vm_show(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct cli_show show = {
        .cmd = "vm show", .usage = vm_show_usage, .method = "vm.show",
        .kind = CLI_NAME_VM, .print = vm_print_details,
    };

    return cli_show(ctx, &show, argc, argv);
}

/* The bytes of one vm.logs reply: base64 "data_base64" (raw) or the
 * daemon's escaped "data", escaped here again (a no-op on escaped text) so
 * that no daemon can make this terminal obey guest bytes. */
static void vm_logs_print(const cJSON *result, bool raw, bool *ret_got_data)
{
    const char *data = out_json_str(result, raw ? "data_base64" : "data");
    char *bytes = NULL;
    size_t len = 0;

    *ret_got_data = data && *data;
    if (!data)
        return;
    if (raw) {
        if (bg_base64_decode(data, &bytes, &len) < 0) {
            fprintf(stderr, "banger: vm logs: the daemon's data_base64 is not base64\n");
            return;
        }
        fwrite(bytes, 1, len, stdout);
    } else {
        bytes = bg_term_escape(data, strlen(data), false, NULL);
        fputs(bytes, stdout);
    }
    free(bytes);
}

/* One vm.logs call; prints the data and moves *offset on. */
static int vm_logs_once(struct cli_ctx *ctx, const char *name, bool raw, bool have_offset,
                        double *offset, bool *ret_got_data)
{
    struct rpc_reply reply;
    cJSON *params = cli_params_str("vm", name);

    if (have_offset)
        cJSON_AddNumberToObject(params, "offset", *offset);
    if (raw)
        cJSON_AddBoolToObject(params, "raw", true);
    if (cli_call(ctx, "vm.logs", params, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json) {
        const char *data = out_json_str(reply.result, raw ? "data_base64" : "data");
        char *line = cJSON_PrintUnformatted(reply.result);

        *ret_got_data = data && *data;
        printf("%s\n", line ? line : "null");
        free(line);
    } else {
        vm_logs_print(reply.result, raw, ret_got_data);
    }
    fflush(stdout);
    out_json_num(reply.result, "offset", offset);
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

static int vm_is_running(struct cli_ctx *ctx, const char *name, bool *ret_running)
{
    struct rpc_reply reply;
    const char *state;

    if (cli_call(ctx, "vm.show", cli_params_str("vm", name), NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    state = out_json_str(reply.result, "state");
    *ret_running = state && strcmp(state, "running") == 0;
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

static int vm_logs(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "follow", no_argument, NULL, 'f' },
        { "raw", no_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const struct timespec poll_interval = { .tv_sec = 0, .tv_nsec = 500 * 1000 * 1000 };
    bool follow = false;
    bool raw = false;
    bool got_data;
    bool running = true;
    double offset = 0;
    const char *name;
    int c;
    int r;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf", opts, NULL)) != -1) {
        if (c == 'h')
            return cli_help(vm_logs_usage);
        if (c == 'f') {
            follow = true;
            continue;
        }
        if (c == 'r') {
            raw = true;
            continue;
        }
        return cli_getopt_error("vm logs", c, argv);
    }
    r = cli_one_name("vm logs", CLI_NAME_VM, argc, argv);
    if (r != CLI_EXIT_OK)
        return r;
    name = argv[optind];

    r = vm_logs_once(ctx, name, raw, false, &offset, &got_data);
    /* Follow until Ctrl-C (default SIGINT) or the VM is no longer running;
     * the state is only asked for when there was nothing new. */
    while (r == CLI_EXIT_OK && follow && running) {
        nanosleep(&poll_interval, NULL);
        r = vm_logs_once(ctx, name, raw, true, &offset, &got_data);
        if (r == CLI_EXIT_OK && !got_data) {
            r = vm_is_running(ctx, name, &running);
            /* Whatever came between the last read and the stop. */
            if (r == CLI_EXIT_OK && !running)
                r = vm_logs_once(ctx, name, raw, true, &offset, &got_data);
        }
    }
    return r;
}

static int vm_set(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "vcpu", required_argument, NULL, 'c' },
        { "memory", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    long long vcpu = 0;
    long long memory_mib = 0;
    struct rpc_reply reply;
    cJSON *params;
    char mem[32];
    int c;
    int r;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(vm_set_usage);
        case 'c':
            if (out_parse_int(optarg, 1, 255, &vcpu) < 0)
                return cli_usage_error("vm set", "bad --vcpu '%s': give a number from 1 to 255", optarg);
            break;
        case 'm':
            if (out_parse_mib(optarg, &memory_mib) < 0)
                return cli_usage_error("vm set", "bad --memory '%s': give MiB, or a size like 2G or 512M",
                                       optarg);
            break;
        default:
            return cli_getopt_error("vm set", c, argv);
        }
    }
    r = cli_one_name("vm set", CLI_NAME_VM, argc, argv);
    if (r != CLI_EXIT_OK)
        return r;
    if (!vcpu && !memory_mib)
        return cli_usage_error("vm set", "nothing to change: give --vcpu and/or --memory");
    params = cli_params_str("vm", argv[optind]);
    if (vcpu)
        cJSON_AddNumberToObject(params, "vcpu", (double)vcpu);
    if (memory_mib)
        cJSON_AddNumberToObject(params, "memory_mib", (double)memory_mib);
    if (cli_call(ctx, "vm.set", params, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json) {
        out_print_json(reply.result);
    } else {
        char vcpus[32];
        double num = 0;
        const char *shown = out_json_str(reply.result, "name");

        out_json_text(reply.result, "vcpu", vcpus, sizeof(vcpus));
        if (out_json_num(reply.result, "memory_mib", &num))
            out_format_mib((long long)num, mem, sizeof(mem));
        else
            snprintf(mem, sizeof(mem), "-");
        printf("%s: %s vCPU, %s memory\n", shown ? shown : argv[optind], vcpus, mem);
    }
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

/* On a terminal: list what would go and ask. Returns true to go ahead. */
static bool vm_prune_confirm(struct cli_ctx *ctx, int *ret_status)
{
    struct rpc_reply reply;
    const cJSON *vm;
    char answer[16];
    int doomed = 0;

    *ret_status = CLI_EXIT_OK;
    if (cli_call(ctx, "vm.list", NULL, NULL, NULL, &reply) != CLI_EXIT_OK) {
        *ret_status = CLI_EXIT_FAIL;
        return false;
    }
    cJSON_ArrayForEach(vm, cJSON_GetObjectItemCaseSensitive(reply.result, "vms")) {
        const char *state = out_json_str(vm, "state");
        const char *name = out_json_str(vm, "name");

        if (state && strcmp(state, "running") == 0)
            continue;
        fprintf(stderr, "  %s (%s)\n", name ? name : "?", state ? state : "?");
        doomed++;
    }
    rpc_reply_done(&reply);
    if (doomed == 0) {
        fprintf(stderr, "nothing to prune: every VM is running\n");
        return false;
    }
    fprintf(stderr, "Delete these %d VM%s? [y/N] ", doomed, doomed == 1 ? "" : "s");
    fflush(stderr);
    if (!fgets(answer, sizeof(answer), stdin))
        return false;
    return answer[0] == 'y' || answer[0] == 'Y';
}

static int vm_prune(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "force", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct rpc_reply reply;
    const cJSON *gone;
    bool force = false;
    int status;
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf", opts, NULL)) != -1) {
        if (c == 'h')
            return cli_help(vm_prune_usage);
        if (c == 'f') {
            force = true;
            continue;
        }
        return cli_getopt_error("vm prune", c, argv);
    }
    if (optind < argc)
        return cli_usage_error("vm prune", "unexpected argument '%s'", argv[optind]);
    if (!force) {
        if (!isatty(STDIN_FILENO))
            return cli_usage_error("vm prune", "not on a terminal, so not asking: "
                                               "add -f to delete every VM that is not running");
        if (!vm_prune_confirm(ctx, &status))
            return status;
    }
    if (cli_call(ctx, "vm.prune", NULL, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json) {
        out_print_json(reply.result);
    } else {
        int n = 0;

        cJSON_ArrayForEach(gone, cJSON_GetObjectItemCaseSensitive(reply.result, "deleted")) {
            const char *shown = out_json_str(gone, "name");

            printf("%s deleted\n", shown ? shown : "?");
            n++;
        }
        if (n == 0)
            printf("nothing to prune\n");
    }
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

int cmd_vm(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *sub;
    int r;

    r = cli_take_subcommand(vm_usage, &argc, &argv, &sub);
    if (r >= 0)
        return r;
    if (strcmp(sub, "create") == 0)
        return vm_create(ctx, argc, argv);
    for (size_t i = 0; i < sizeof(vm_actions) / sizeof(vm_actions[0]); i++)
        if (strcmp(sub, vm_actions[i].cmd) == 0)
            return vm_run_action(ctx, &vm_actions[i], argc, argv);
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
        return cmd_vm_list(ctx, argc, argv);
    if (strcmp(sub, "show") == 0)
        return vm_show(ctx, argc, argv);
    if (strcmp(sub, "logs") == 0)
        return vm_logs(ctx, argc, argv);
    if (strcmp(sub, "set") == 0)
        return vm_set(ctx, argc, argv);
    if (strcmp(sub, "prune") == 0)
        return vm_prune(ctx, argc, argv);
    r = cmd_vm_agent(ctx, sub, argc, argv);
    if (r == CLI_NOT_MINE)
        r = cmd_vm_guest(ctx, sub, argc, argv);
    if (r != CLI_NOT_MINE)
        return r;
    return cli_usage_error("vm", "unknown vm command '%s'", sub);
}
