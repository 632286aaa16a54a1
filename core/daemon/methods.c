/* RPC methods: parameter checks, the service call, the JSON result. */
#include "config.h"

#include "daemon/daemon.h"
#include "daemon/methods.h"
#include "host/host.h"
#include "images/images.h"
#include "util/log.h"
#include "util/term_text.h"
#include "util/xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cJSON *json_vm(const struct vm_record *r, int pid)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "state", vm_state_name(r->state));
    if (r->image_name)
        cJSON_AddStringToObject(o, "image", r->image_name);
    else
        cJSON_AddNullToObject(o, "image");
    cJSON_AddStringToObject(o, "image_id", r->image_id);
    cJSON_AddNumberToObject(o, "vcpu", r->vcpu);
    cJSON_AddNumberToObject(o, "memory_mib", (double)r->memory_mib);
    cJSON_AddNumberToObject(o, "disk_size", (double)r->disk_size);
    cJSON_AddBoolToObject(o, "nat", r->nat);
    cJSON_AddStringToObject(o, "ip", r->ip);
    cJSON_AddStringToObject(o, "mac", r->mac);
    cJSON_AddNumberToObject(o, "cid", r->cid);
    cJSON_AddNumberToObject(o, "owner_uid", r->owner_uid);
    if (pid > 0)
        cJSON_AddNumberToObject(o, "pid", pid);
    else
        cJSON_AddNullToObject(o, "pid");
    if (r->last_error)
        cJSON_AddStringToObject(o, "last_error", r->last_error);
    else
        cJSON_AddNullToObject(o, "last_error");
    cJSON_AddNumberToObject(o, "created_at", (double)r->created_at);
    if (r->started_at)
        cJSON_AddNumberToObject(o, "started_at", (double)r->started_at);
    else
        cJSON_AddNullToObject(o, "started_at");
    cJSON_AddNumberToObject(o, "updated_at", (double)r->updated_at);
    return o;
}

cJSON *bangerd_json_image(const struct image_record *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "rootfs", r->rootfs_path);
    cJSON_AddStringToObject(o, "kernel", r->kernel_path);
    if (r->initrd_path)
        cJSON_AddStringToObject(o, "initrd", r->initrd_path);
    else
        cJSON_AddNullToObject(o, "initrd");
    cJSON_AddNumberToObject(o, "created_at", (double)r->created_at);
    cJSON_AddNumberToObject(o, "vms", r->vm_count);
    return o;
}

void bangerd_progress(void *ctx, const char *stage) { rpc_call_progress(ctx, stage); }

int bangerd_image_result(struct rpc_call *call, struct image_record *img, int r)
{
    if (r < 0)
        return r;
    call->result = bangerd_json_image(img);
    image_record_free(img);
    return 0;
}

static int method_vm_result(struct bangerd *d, struct rpc_call *call, struct vm_record *rec, int r)
{
    if (r < 0)
        return r;
    int pid = rec->state == VM_STATE_RUNNING ? vmsvc_pid(d->vms, rec) : 0;
    call->result = json_vm(rec, pid);
    vm_record_free(rec);
    return 0;
}

static int method_size_param(struct rpc_call *call, const char *key, uint64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(call->params, key);
    if (!it || cJSON_IsNull(it))
        return 0;
    if (cJSON_IsString(it)) {
        if (config_parse_size(it->valuestring, out) < 0)
            return bg_fail(&call->err, -EINVAL, "%s: '%s' is not a size (e.g. \"8G\" or \"512M\")",
                           key, it->valuestring);
        return 0;
    }
    unsigned long long v = 0;
    int r = rpc_param_uint(call, key, UINT64_MAX >> 1, &v);
    if (r < 0)
        return r;
    *out = v;
    return 0;
}

static int method_vm_create(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "name", "image", "vcpu", "memory_mib", "disk_size", "nat",
                                        "start", NULL };
    struct vm_create_params p = { .start = true };
    unsigned long long vcpu = 0, mem = 0;
    const struct bangerd_string_param strings[] = {
        { "name", false, &p.name }, { "image", false, &p.image }, { NULL, false, NULL }
    };
    int r = bangerd_params(call, keys, strings);
    if (r < 0)
        return r;
    if ((r = rpc_param_uint(call, "vcpu", 1024, &vcpu)) < 0 && r != -ENOENT)
        return r;
    if ((r = rpc_param_uint(call, "memory_mib", 1ull << 30, &mem)) < 0 && r != -ENOENT)
        return r;
    if ((r = rpc_param_bool(call, "nat", &p.nat)) < 0 && r != -ENOENT)
        return r;
    if ((r = rpc_param_bool(call, "start", &p.start)) < 0 && r != -ENOENT)
        return r;
    if ((r = method_size_param(call, "disk_size", &p.disk_size)) < 0)
        return r;
    if (cJSON_GetObjectItemCaseSensitive(call->params, "vcpu") && vcpu == 0)
        return bg_fail(&call->err, -EINVAL, "vcpu must be between 1 and 32, not 0");
    p.vcpu = (unsigned)vcpu;
    p.memory_mib = mem;
    p.owner_uid = call->caller.uid;
    struct vm_record *rec = NULL;
    r = vmsvc_create(d->vms, &p, bangerd_progress, call, &rec, &call->err);
    return method_vm_result(d, call, rec, r);
}

typedef int (*vm_op_fn)(struct vmsvc *, uid_t, const char *, vmsvc_progress_fn, void *,
                        struct vm_record **, struct banger_error *);

static int method_vm_op(struct bangerd *d, struct rpc_call *call, vm_op_fn op)
{
    static const char *const keys[] = { "vm", NULL };
    const char *ref = NULL;
    int r = bangerd_vm_ref(call, keys, &ref);
    if (r < 0)
        return r;
    struct vm_record *rec = NULL;
    r = op(d->vms, call->caller.uid, ref, bangerd_progress, call, &rec, &call->err);
    return method_vm_result(d, call, rec, r);
}

static int method_parse_signal(struct rpc_call *call, int *sig)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(call->params, "signal");
    *sig = SIGKILL;
    if (!it || cJSON_IsNull(it))
        return 0;
    if (cJSON_IsNumber(it) && it->valueint > 0 && it->valueint < NSIG) {
        *sig = it->valueint;
        return 0;
    }
    static const struct { const char *name; int sig; } sigs[] = {
        { "KILL", SIGKILL }, { "TERM", SIGTERM }, { "INT", SIGINT }, { "HUP", SIGHUP },
        { "QUIT", SIGQUIT },
    };
    if (cJSON_IsString(it)) {
        const char *n = it->valuestring;
        if (strncmp(n, "SIG", 3) == 0)
            n += 3;
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            if (strcmp(sigs[i].name, n) == 0) {
                *sig = sigs[i].sig;
                return 0;
            }
    }
    return bg_fail(&call->err, -EINVAL, "signal must be KILL, TERM, INT, HUP, QUIT or a number");
}

static int method_vm_kill(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "vm", "signal", NULL };
    const char *ref = NULL;
    int sig;
    int r = bangerd_vm_ref(call, keys, &ref);
    if (r == 0)
        r = method_parse_signal(call, &sig);
    if (r < 0)
        return r;
    struct vm_record *rec = NULL;
    r = vmsvc_kill(d->vms, call->caller.uid, ref, sig, &rec, &call->err);
    return method_vm_result(d, call, rec, r);
}

static int method_vm_delete(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "vm", NULL };
    const char *ref = NULL;
    int r = bangerd_vm_ref(call, keys, &ref);
    if (r < 0)
        return r;
    struct vm_record *rec = NULL;
    r = vmsvc_delete(d->vms, call->caller.uid, ref, bangerd_progress, call, &rec, &call->err);
    if (r < 0)
        return r;
    call->result = cJSON_CreateObject();
    cJSON_AddStringToObject(call->result, "id", rec->id);
    cJSON_AddStringToObject(call->result, "name", rec->name);
    vm_record_free(rec);
    return 0;
}

/* The parameterless methods that walk VMs start here: the caller's own
 * VMs, or every VM for root. */
static int method_vm_list_load(struct bangerd *d, struct rpc_call *call, struct vm_list **list)
{
    char eb[512] = "";
    int r = rpc_params_check(call, NULL);
    if (r < 0)
        return r;
    r = store_vm_list(d->store, list, eb, sizeof(eb));
    if (r < 0)
        return bg_fail(&call->err, r, "%s", eb);
    size_t kept = 0;
    for (size_t i = 0; i < (*list)->count; i++) {
        struct vm_record *rec = (*list)->items[i];
        if (vmsvc_may_act(call->caller.uid, rec))
            (*list)->items[kept++] = rec;
        else
            vm_record_free(rec);
    }
    (*list)->count = kept;
    return 0;
}

static int method_vm_list(struct bangerd *d, struct rpc_call *call)
{
    struct vm_list *list = NULL;
    int r = method_vm_list_load(d, call, &list);
    if (r < 0)
        return r;
    call->result = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(call->result, "vms");
    for (size_t i = 0; i < list->count; i++) {
        const struct vm_record *rec = list->items[i];
        int pid = rec->state == VM_STATE_RUNNING ? vmsvc_pid(d->vms, rec) : 0;
        cJSON_AddItemToArray(arr, json_vm(rec, pid));
    }
    vm_list_free(list);
    return 0;
}

static int method_vm_show(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "vm", NULL };
    const char *ref = NULL;
    int r = bangerd_vm_ref(call, keys, &ref);
    if (r < 0)
        return r;
    struct vm_record *rec = NULL;
    int pid = 0;
    r = vmsvc_show(d->vms, call->caller.uid, ref, &rec, &pid, &call->err);
    if (r < 0)
        return r;
    call->result = json_vm(rec, pid);
    vm_record_free(rec);
    return 0;
}

/* Guest bytes never reach a terminal as they are: "data" is escaped text
 * (util/term_text.h); with "raw": true the exact bytes come base64-encoded
 * in "data_base64" (JSON strings cannot carry NULs through cJSON). */
static int method_vm_logs(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "vm", "offset", "raw", NULL };
    const char *ref = NULL;
    unsigned long long offset = 0;
    bool raw = false;
    int r = bangerd_vm_ref(call, keys, &ref);
    if (r < 0)
        return r;
    long long from = -64 * 1024;
    r = rpc_param_uint(call, "offset", 1ull << 50, &offset);
    if (r == 0)
        from = (long long)offset;
    else if (r != -ENOENT)
        return r;
    if ((r = rpc_param_bool(call, "raw", &raw)) < 0 && r != -ENOENT)
        return r;
    char *data = NULL, *text = NULL;
    size_t len = 0, used = 0;
    long long next = 0;
    r = vmsvc_logs(d->vms, call->caller.uid, ref, from, &data, &len, &next, &call->err);
    if (r < 0)
        return r;
    call->result = cJSON_CreateObject();
    if (raw) {
        text = bg_base64_encode(data, len);
        cJSON_AddStringToObject(call->result, "data_base64", text);
    } else {
        /* A character cut at the end is sent whole with the next read. */
        text = bg_term_escape(data, len, true, &used);
        next -= (long long)(len - used);
        cJSON_AddStringToObject(call->result, "data", text);
    }
    cJSON_AddNumberToObject(call->result, "offset", (double)next);
    free(text);
    free(data);
    return 0;
}

static int method_vm_set(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "vm", "vcpu", "memory_mib", NULL };
    const char *ref = NULL;
    unsigned long long vcpu = 0, mem = 0;
    int r = bangerd_vm_ref(call, keys, &ref);
    if (r < 0)
        return r;
    if ((r = rpc_param_uint(call, "vcpu", 1024, &vcpu)) < 0 && r != -ENOENT)
        return r;
    if ((r = rpc_param_uint(call, "memory_mib", 1ull << 30, &mem)) < 0 && r != -ENOENT)
        return r;
    struct vm_record *rec = NULL;
    r = vmsvc_set(d->vms, call->caller.uid, ref, (unsigned)vcpu, mem, &rec, &call->err);
    return method_vm_result(d, call, rec, r);
}

static int method_vm_prune(struct bangerd *d, struct rpc_call *call)
{
    struct vm_list *list = NULL;
    int r = method_vm_list_load(d, call, &list);
    if (r < 0)
        return r;
    call->result = cJSON_CreateObject();
    cJSON *deleted = cJSON_AddArrayToObject(call->result, "deleted");
    struct banger_error all = { 0 };
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i]->state == VM_STATE_RUNNING)
            continue;
        struct vm_record *rec = NULL;
        struct banger_error e = { 0 };
        if (vmsvc_delete(d->vms, call->caller.uid, list->items[i]->id, NULL, NULL, &rec, &e) < 0) {
            bg_error_prefix(&e, "%s", list->items[i]->name);
            bg_error_join(&all, &e);
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", rec->id);
        cJSON_AddStringToObject(o, "name", rec->name);
        cJSON_AddItemToArray(deleted, o);
        vm_record_free(rec);
    }
    vm_list_free(list);
    if (all.code) {
        call->err = all;
        return all.code;
    }
    return 0;
}

static int method_image_register(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "name", "rootfs", "kernel", "initrd", NULL };
    struct images_register_params p = { .caller = &call->caller };
    const struct bangerd_string_param strings[] = {
        { "name", true, &p.name }, { "rootfs", true, &p.rootfs }, { "kernel", true, &p.kernel },
        { "initrd", false, &p.initrd }, { NULL, false, NULL }
    };
    int r = bangerd_params(call, keys, strings);
    if (r < 0)
        return r;
    struct image_record *img = NULL;
    r = images_register(d->store, d->images_dir, &p, &img, &call->err);
    return bangerd_image_result(call, img, r);
}

static int method_image_list(struct bangerd *d, struct rpc_call *call)
{
    char eb[512] = "";
    struct image_list *list = NULL;
    int r = rpc_params_check(call, NULL);
    if (r < 0)
        return r;
    r = store_image_list(d->store, &list, eb, sizeof(eb));
    if (r < 0)
        return bg_fail(&call->err, r, "%s", eb);
    call->result = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(call->result, "images");
    for (size_t i = 0; i < list->count; i++)
        cJSON_AddItemToArray(arr, bangerd_json_image(list->items[i]));
    image_list_free(list);
    return 0;
}

static int method_image_show_or_delete(struct bangerd *d, struct rpc_call *call, bool delete)
{
    static const char *const keys[] = { "image", NULL };
    const char *ref = NULL;
    const struct bangerd_string_param strings[] = { { "image", true, &ref }, { NULL, false, NULL } };
    char eb[512] = "";
    int r = bangerd_params(call, keys, strings);
    if (r < 0)
        return r;
    struct image_record *img = NULL;
    if (delete) {
        r = images_delete(d->store, d->images_dir, ref, &img, &call->err);
    } else {
        r = store_image_find(d->store, ref, &img, eb, sizeof(eb));
        if (r == -ENOENT)
            bg_fail(&call->err, r, "no image named '%s'", ref);
        else if (r < 0)
            bg_fail(&call->err, r, "%s", eb);
    }
    return bangerd_image_result(call, img, r);
}

static int method_daemon_status(struct bangerd *d, struct rpc_call *call)
{
    char eb[512] = "";
    struct vm_list *list = NULL;
    int r = store_vm_list(d->store, &list, eb, sizeof(eb));
    if (r < 0)
        return bg_fail(&call->err, r, "%s", eb);
    size_t running = 0;
    for (size_t i = 0; i < list->count; i++)
        running += list->items[i]->state == VM_STATE_RUNNING;
    cJSON *o = call->result = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", PACKAGE_VERSION);
    cJSON_AddNumberToObject(o, "pid", getpid());
    cJSON_AddNumberToObject(o, "uptime_s", (double)(time(NULL) - d->started));
    cJSON_AddStringToObject(o, "socket", d->socket_path);
    cJSON_AddStringToObject(o, "state_dir", d->cfg->state_dir);
    cJSON_AddNumberToObject(o, "vms", (double)list->count);
    cJSON_AddNumberToObject(o, "running", (double)running);
    cJSON *plugins = cJSON_AddArrayToObject(o, "plugins");
    for (size_t i = 0; i < d->plugins->n; i++) {
        const struct banger_capability *c = d->plugins->v[i].cap;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", c->name);
        cJSON_AddStringToObject(p, "version", c->version ? c->version : "");
        cJSON_AddStringToObject(p, "phases", loader_phase_names(c->phases));
        cJSON_AddItemToArray(plugins, p);
    }
    vm_list_free(list);
    return 0;
}

static int method_doctor(struct bangerd *d, struct rpc_call *call)
{
    struct banger_doctor report;
    bg_doctor_init(&report);
    bangerd_doctor(d, &report);
    call->result = cJSON_CreateObject();
    cJSON *rows = cJSON_AddArrayToObject(call->result, "rows");
    static const char *const names[] = { "PASS", "WARN", "FAIL" };
    for (size_t i = 0; i < report.n; i++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "status", names[report.rows[i].status]);
        cJSON_AddStringToObject(row, "check", report.rows[i].check);
        cJSON_AddStringToObject(row, "detail", report.rows[i].detail);
        cJSON_AddItemToArray(rows, row);
    }
    bg_doctor_done(&report);
    return 0;
}

int bangerd_handle(void *ctx, struct rpc_call *call)
{
    struct bangerd *d = ctx;
    const char *m = call->method;
    if (strcmp(m, "vm.create") == 0) return method_vm_create(d, call);
    if (strcmp(m, "vm.start") == 0) return method_vm_op(d, call, vmsvc_start);
    if (strcmp(m, "vm.stop") == 0) return method_vm_op(d, call, vmsvc_stop);
    if (strcmp(m, "vm.restart") == 0) return method_vm_op(d, call, vmsvc_restart);
    if (strcmp(m, "vm.kill") == 0) return method_vm_kill(d, call);
    if (strcmp(m, "vm.delete") == 0) return method_vm_delete(d, call);
    if (strcmp(m, "vm.list") == 0) return method_vm_list(d, call);
    if (strcmp(m, "vm.show") == 0) return method_vm_show(d, call);
    if (strcmp(m, "vm.logs") == 0) return method_vm_logs(d, call);
    if (strcmp(m, "vm.set") == 0) return method_vm_set(d, call);
    if (strcmp(m, "vm.prune") == 0) return method_vm_prune(d, call);
    if (strcmp(m, "image.register") == 0) return method_image_register(d, call);
    if (strcmp(m, "image.list") == 0) return method_image_list(d, call);
    if (strcmp(m, "image.show") == 0) return method_image_show_or_delete(d, call, false);
    if (strcmp(m, "image.delete") == 0) return method_image_show_or_delete(d, call, true);
    if (strcmp(m, "daemon.status") == 0) return method_daemon_status(d, call);
    if (strcmp(m, "doctor") == 0) return method_doctor(d, call);
    int r = bangerd_handle_agent(d, call);
    if (r == BANGERD_NOT_MINE)
        r = bangerd_handle_guest(d, call);
    if (r == BANGERD_NOT_MINE)
        r = bangerd_handle_image_ext(d, call);
    if (r != BANGERD_NOT_MINE)
        return r;
    call->error_code = "bad_request";
    return bg_fail(&call->err, -EINVAL, "unknown method '%s'", m);
}
