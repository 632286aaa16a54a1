/* RPC methods for reaching guests over ssh: vm.ssh_info.
 *
 * The CLI runs ssh as the calling user, so the daemon hands out a private
 * key to socket peers. Each uid has its own key pair (core/guest), and a VM
 * accepts only its owner's key and root's: the key a member receives opens
 * that member's VMs and no one else's. Root receives root's key, which
 * every VM accepts. Host keys stay under the daemon's control: it scans the
 * guest, pins the key on first contact and refuses a changed one, and gives
 * the CLI a known_hosts to use with StrictHostKeyChecking=yes, holding only
 * the lines of VMs the caller may reach. */
#include "config.h"

#include "daemon/daemon.h"
#include "daemon/methods.h"
#include "guest/guest.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GUEST_FILE_MAX (4 * 1024 * 1024)

/* Keep the known_hosts lines that name one of the caller's VMs (root: all).
 * The text is modified in place. */
static int guest_own_hosts(struct bangerd *d, struct rpc_call *call, char *text)
{
    if (call->caller.uid == 0)
        return 0;
    struct vm_list *list = NULL;
    char eb[512] = "";
    int r = store_vm_list(d->store, &list, eb, sizeof(eb));
    if (r < 0)
        return bg_fail(&call->err, r, "%s", eb);
    char *out = text;
    for (char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        bool nl = line[n] == '\n';
        line[n] = '\0';
        bool keep = false;
        for (size_t i = 0; i < list->count && !keep; i++) {
            const struct vm_record *rec = list->items[i];
            char *alias = xasprintf("%s.vm", rec->name);
            keep = vmsvc_may_act(call->caller.uid, rec) &&
                   (guest_hosts_line_names(line, rec->ip) || guest_hosts_line_names(line, alias));
            free(alias);
        }
        if (keep) {
            memmove(out, line, n);
            out += n;
            *out++ = '\n';
        }
        line += n + (nl ? 1 : 0);
    }
    *out = '\0';
    vm_list_free(list);
    return 0;
}

/* Add the file's text as result member `key`. known_hosts may be missing
 * (nothing pinned yet) and is cut down to the caller's VMs. */
static int guest_add_file(struct bangerd *d, struct rpc_call *call, const char *key,
                          const char *path, bool known_hosts)
{
    char *text = NULL;
    size_t len = 0;
    int r = fs_read_all(path, GUEST_FILE_MAX, &text, &len, &call->err);
    if (r == -ENOENT && known_hosts) {
        bg_error_clear(&call->err);
        cJSON_AddStringToObject(call->result, key, "");
        return 0;
    }
    if (r < 0) {
        if (r == -ENOENT)
            bg_fail(&call->err, r, "banger's ssh key %s is missing (see the daemon log)", path);
        return r;
    }
    if (known_hosts)
        r = guest_own_hosts(d, call, text);
    if (r == 0)
        cJSON_AddStringToObject(call->result, key, text);
    free(text);
    return r;
}

static int method_vm_ssh_info(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "vm", NULL };
    const char *ref = NULL;
    const char *state_dir = d->cfg->state_dir;
    struct vm_record *rec = NULL;
    char *host_key = NULL;
    /* A member may only name their own VMs (checked below), so the caller's
     * key is the owner's key; root's key opens every VM. */
    char *key_path = guest_ssh_key_path(state_dir, call->caller.uid);
    char *hosts_path = guest_known_hosts_path(state_dir);
    bool pinned_now = false;
    const struct bangerd_string_param strings[] = { { "vm", false, &ref }, { NULL, false, NULL } };
    int r = bangerd_params(call, keys, strings);
    if (r < 0)
        goto cleanup;
    if (ref) {
        r = vmsvc_show(d->vms, call->caller.uid, ref, &rec, NULL, &call->err);
        if (r < 0)
            goto cleanup;
        if (rec->state != VM_STATE_RUNNING) {
            r = bg_fail(&call->err, -EINVAL, "VM '%s' is %s, not running (banger vm start %s)",
                        rec->name, vm_state_name(rec->state), rec->name);
            goto cleanup;
        }
        r = guest_host_scan(rec->ip, &host_key, &call->err);
        if (r == 0)
            r = guest_host_pin(state_dir, rec->name, rec->ip, host_key, &pinned_now, &call->err);
        if (r < 0) {
            if (r == -EAGAIN)
                bg_fail(&call->err, r, "ssh on VM '%s' (%s) is not answering yet", rec->name,
                        rec->ip);
            goto cleanup;
        }
        if (pinned_now)
            bg_log(BANGER_LOG_INFO, rec->id, "pinned the ssh host key of '%s' (%s)", rec->name,
                   rec->ip);
    }
    /* The caller's key pair is made on first use. */
    r = guest_ssh_setup(state_dir, call->caller.uid, &call->err);
    if (r < 0)
        goto cleanup;
    call->result = cJSON_CreateObject();
    r = guest_add_file(d, call, "private_key", key_path, false);
    if (r == 0) {
        char *pub = xasprintf("%s.pub", key_path);
        r = guest_add_file(d, call, "public_key", pub, false);
        free(pub);
    }
    if (r == 0)
        r = guest_add_file(d, call, "known_hosts", hosts_path, true);
    if (r < 0)
        goto cleanup;
    cJSON_AddStringToObject(call->result, "user", GUEST_SSH_USER);
    if (rec) {
        char *alias = xasprintf("%s.vm", rec->name);
        cJSON_AddStringToObject(call->result, "name", rec->name);
        cJSON_AddStringToObject(call->result, "ip", rec->ip);
        cJSON_AddStringToObject(call->result, "host", alias);
        cJSON_AddStringToObject(call->result, "host_key", host_key);
        cJSON_AddBoolToObject(call->result, "pinned_now", pinned_now);
        free(alias);
    }
cleanup:
    if (r < 0 && call->result) {
        cJSON_Delete(call->result);
        call->result = NULL;
    }
    vm_record_free(rec);
    free(host_key);
    free(key_path);
    free(hosts_path);
    return r;
}

int bangerd_handle_guest(struct bangerd *d, struct rpc_call *call)
{
    if (strcmp(call->method, "vm.ssh_info") == 0)
        return method_vm_ssh_info(d, call);
    return BANGERD_NOT_MINE;
}
