/* vm.agent: one question (ping, health, ports) to a running VM's guest
 * agent through its hybrid vsock socket. The VM is not locked: the request
 * only reads, and a VM stopped meanwhile just makes it fail. */
#include "config.h"

#include "daemon/agent_client.h"
#include "daemon/daemon.h"
#include "daemon/methods.h"
#include "util/log.h"
/* AGENT_DEFAULT_PORT, shared with the agent and the vsock capability. */
#include "../agent/agent-proto.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define AGENT_TIMEOUT_DEFAULT_MS 5000
#define AGENT_TIMEOUT_MAX_MS 60000
/* Where the vsock capability puts Firecracker's uds_path. */
#define AGENT_VSOCK_SOCK_NAME "vsock.sock"

static bool agent_vsock_loaded(const struct bangerd *d)
{
    for (size_t i = 0; i < d->plugins->n; i++)
        if (strcmp(d->plugins->v[i].cap->name, "vsock") == 0)
            return true;
    return false;
}

/* The agent port the vsock capability uses (its init validated it). */
static unsigned agent_port(const struct bangerd *d)
{
    struct banger_error ignored = { 0 };
    long long port = AGENT_DEFAULT_PORT;

    if (bg_cfg_get_int(config_group(d->cfg, "vsock"), "port", &port, &ignored) < 0 || port < 1 ||
        port >= 0xffffffffLL)
        port = AGENT_DEFAULT_PORT;
    return (unsigned)port;
}

/* The daemon's members win over any the agent might send one day. */
static void agent_add_member(cJSON *obj, const char *key, cJSON *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, value);
}

/* Whole microseconds are precise enough and print short. */
static double agent_round_us(double ms)
{
    return (double)(long long)(ms * 1000.0 + 0.5) / 1000.0;
}

static int agent_parse_params(struct rpc_call *call, const char **ref, const char **op,
                              int *timeout_ms)
{
    static const char *const keys[] = { "vm", "op", "timeout_ms", NULL };
    static const char *const ops[] = { "ping", "health", "ports", NULL };
    const struct bangerd_string_param strings[] = {
        { "vm", true, ref }, { "op", true, op }, { NULL, false, NULL }
    };
    unsigned long long timeout = AGENT_TIMEOUT_DEFAULT_MS;
    int r = bangerd_params(call, keys, strings);

    if (r < 0)
        return r;
    r = rpc_param_uint(call, "timeout_ms", AGENT_TIMEOUT_MAX_MS, &timeout);
    if (r < 0 && r != -ENOENT)
        return r;
    if (timeout < 1)
        return bg_fail(&call->err, -EINVAL, "timeout_ms must be between 1 and %d",
                       AGENT_TIMEOUT_MAX_MS);
    *timeout_ms = (int)timeout;
    for (size_t i = 0; ops[i]; i++)
        if (strcmp(*op, ops[i]) == 0)
            return 0;
    return bg_fail(&call->err, -EINVAL, "op must be ping, health or ports, not '%s'", *op);
}

static int method_vm_agent(struct bangerd *d, struct rpc_call *call)
{
    struct agent_reply reply = { 0 };
    struct vm_record *rec = NULL;
    const char *ref = NULL, *op = NULL;
    char uds[PATH_MAX];
    int timeout_ms = 0, pid = 0, r;

    r = agent_parse_params(call, &ref, &op, &timeout_ms);
    if (r < 0)
        return r;
    r = vmsvc_show(d->vms, call->caller.uid, ref, &rec, &pid, &call->err);
    if (r < 0)
        return r;
    /* From here on every failure is about the VM or its agent. */
    call->error_code = "failed";
    if (rec->state != VM_STATE_RUNNING) {
        r = bg_fail(&call->err, -ESRCH, "VM '%s' is not running (state %s)", rec->name,
                    vm_state_name(rec->state));
        goto cleanup;
    }
    if (pid <= 0) {
        r = bg_fail(&call->err, -ESRCH, "VM '%s' is not running: its firecracker process is gone",
                    rec->name);
        goto cleanup;
    }
    if (!agent_vsock_loaded(d)) {
        r = bg_fail(&call->err, -ENOTSUP, "VM '%s' has no agent channel: the vsock capability "
                    "is not loaded (add \"vsock\" to plugins)", rec->name);
        goto cleanup;
    }
    if (snprintf(uds, sizeof(uds), "%s/vms/%s/" AGENT_VSOCK_SOCK_NAME, d->cfg->runtime_dir,
                 rec->id) >= (int)sizeof(uds)) {
        r = bg_fail(&call->err, -ENAMETOOLONG, "vsock socket path too long");
        goto cleanup;
    }
    r = agent_request(uds, agent_port(d), op, timeout_ms, &reply, &call->err);
    if (r < 0) {
        bg_error_prefix(&call->err, "VM '%s'", rec->name);
        bg_log(BANGER_LOG_DEBUG, rec->id, "agent %s: %s", op, bg_error_text(&call->err));
        goto cleanup;
    }
    call->error_code = NULL;
    call->result = reply.json;
    reply.json = NULL;
    agent_add_member(call->result, "vm", cJSON_CreateString(rec->name));
    agent_add_member(call->result, "connect_ms",
                     cJSON_CreateNumber(agent_round_us(reply.connect_ms)));
    agent_add_member(call->result, "latency_ms",
                     cJSON_CreateNumber(agent_round_us(reply.latency_ms)));
cleanup:
    agent_reply_done(&reply);
    vm_record_free(rec);
    return r;
}

int bangerd_handle_agent(struct bangerd *d, struct rpc_call *call)
{
    if (strcmp(call->method, "vm.agent") == 0)
        return method_vm_agent(d, call);
    return BANGERD_NOT_MINE;
}
