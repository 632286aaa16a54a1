/* Firecracker's HTTP API over its Unix socket, and the boot configuration
 * built from the VM's contributions. */
#include "config.h"

#include "fc/fc.h"
#include "util/xalloc.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FC_API_REPLY_MAX (1u << 20)

struct fc_api_buf {
    char *data;
    size_t len;
};

static pthread_once_t fc_api_once = PTHREAD_ONCE_INIT;

static void fc_api_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t fc_api_collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct fc_api_buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > FC_API_REPLY_MAX)
        return 0; /* aborts the transfer */
    b->data = xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int fc_api_curl_errno(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* `label` names the request in errors ("PUT /actions InstanceStart"). */
static int fc_api_do(const char *api_sock, const char *method, const char *path,
                     const char *label, const char *body, int timeout_ms, char **reply,
                     struct banger_error *err)
{
    struct fc_api_buf buf = { 0 };
    struct curl_slist *hdrs = NULL;
    char *url = NULL;
    cJSON *json = NULL;
    CURL *c = NULL;
    int r = 0;

    pthread_once(&fc_api_once, fc_api_global_init);
    c = curl_easy_init();
    if (!c) {
        r = bg_fail(err, -ENOMEM, "firecracker: %s: cannot create an HTTP handle", label);
        goto cleanup;
    }
    url = xasprintf("http://localhost%s", path);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, api_sock);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     (long)(timeout_ms > 0 ? timeout_ms : FC_DEFAULT_API_TIMEOUT_MS));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fc_api_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        r = bg_fail(err, fc_api_curl_errno(cc), "firecracker: %s: %s", label,
                    curl_easy_strerror(cc));
        goto cleanup;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        json = buf.data ? cJSON_Parse(buf.data) : NULL;
        const cJSON *fault = cJSON_GetObjectItemCaseSensitive(json, "fault_message");
        if (cJSON_IsString(fault))
            r = bg_fail(err, -EIO, "firecracker: %s: %s", label, fault->valuestring);
        else
            r = bg_fail(err, -EIO, "firecracker: %s: HTTP %ld: %.300s", label, status,
                        buf.data ? buf.data : "");
        goto cleanup;
    }
    if (reply) {
        *reply = buf.data ? buf.data : xstrdup("");
        buf.data = NULL;
    }
cleanup:
    cJSON_Delete(json);
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    free(url);
    free(buf.data);
    return r;
}

int fc_api_request(const char *api_sock, const char *method, const char *path,
                   const char *body, int timeout_ms, char **reply, struct banger_error *err)
{
    char label[256];
    snprintf(label, sizeof(label), "%s %s", method, path);
    return fc_api_do(api_sock, method, path, label, body, timeout_ms, reply, err);
}

/* PUT `obj` (consumed) to `path`. */
static int fc_api_put_json(const char *api_sock, const char *path, cJSON *obj, int timeout_ms,
                           struct banger_error *err)
{
    char *body = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!body)
        return bg_fail(err, -ENOMEM, "firecracker: PUT %s: cannot encode the body", path);
    int r = fc_api_request(api_sock, "PUT", path, body, timeout_ms, NULL, err);
    cJSON_free(body);
    return r;
}

int fc_action(const char *api_sock, const char *action, int timeout_ms,
              struct banger_error *err)
{
    char label[128];
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "action_type", action);
    char *body = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!body)
        return bg_fail(err, -ENOMEM, "firecracker: PUT /actions: cannot encode the body");
    snprintf(label, sizeof(label), "PUT /actions %s", action);
    int r = fc_api_do(api_sock, "PUT", "/actions", label, body, timeout_ms, NULL, err);
    cJSON_free(body);
    return r;
}

/* Firecracker resource ids: non-empty, alphanumerics and '_'. */
static bool fc_api_id_valid(const char *id)
{
    if (!id || !id[0])
        return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

char *fc_boot_args(const struct banger_vm *vm)
{
    size_t len = strlen(FC_BASE_BOOT_ARGS) + 1;
    for (size_t i = 0; i < vm->contrib.n_kernel_args; i++)
        len += strlen(vm->contrib.kernel_args[i]) + 1;
    char *s = xmalloc(len);
    strcpy(s, FC_BASE_BOOT_ARGS);
    for (size_t i = 0; i < vm->contrib.n_kernel_args; i++) {
        strcat(s, " ");
        strcat(s, vm->contrib.kernel_args[i]);
    }
    return s;
}

static int fc_put_drive(struct banger_vm *vm, const char *sock, const struct banger_drive *d,
                        int timeout_ms, struct banger_error *err)
{
    char path[128];
    if (!fc_api_id_valid(d->drive_id) || strlen(d->drive_id) > 64)
        return bg_fail(err, -EINVAL, "firecracker: invalid drive id '%s'",
                       d->drive_id ? d->drive_id : "");
    if (!d->path_on_host)
        return bg_fail(err, -EINVAL, "firecracker: drive %s has no path", d->drive_id);
    snprintf(path, sizeof(path), "/drives/%s", d->drive_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "drive_id", d->drive_id);
    char *vmm_path = fc_jail_vmm_path(vm, d->path_on_host);
    cJSON_AddStringToObject(o, "path_on_host", vmm_path);
    free(vmm_path);
    cJSON_AddBoolToObject(o, "is_root_device", d->is_root_device);
    cJSON_AddBoolToObject(o, "is_read_only", d->is_read_only);
    if (d->cache == BANGER_DRIVE_CACHE_WRITEBACK)
        cJSON_AddStringToObject(o, "cache_type", "Writeback");
    return fc_api_put_json(sock, path, o, timeout_ms, err);
}

static int fc_put_net(const char *sock, const struct banger_net_iface *n, int timeout_ms,
                      struct banger_error *err)
{
    char path[128];
    if (!fc_api_id_valid(n->iface_id) || strlen(n->iface_id) > 64)
        return bg_fail(err, -EINVAL, "firecracker: invalid interface id '%s'",
                       n->iface_id ? n->iface_id : "");
    if (!n->host_dev_name)
        return bg_fail(err, -EINVAL, "firecracker: interface %s has no TAP", n->iface_id);
    snprintf(path, sizeof(path), "/network-interfaces/%s", n->iface_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "iface_id", n->iface_id);
    cJSON_AddStringToObject(o, "host_dev_name", n->host_dev_name);
    if (n->guest_mac)
        cJSON_AddStringToObject(o, "guest_mac", n->guest_mac);
    return fc_api_put_json(sock, path, o, timeout_ms, err);
}

int fc_configure(struct banger_vm *vm, const char *sock, int timeout_ms,
                 struct banger_error *err)
{
    const struct banger_vm_info *info = &vm->info;
    const struct bg_fc_contrib *c = &vm->contrib;
    int r;

    if (info->vcpu == 0 || info->memory_mib == 0)
        return bg_fail(err, -EINVAL, "firecracker: VM has no vCPU count or memory size");
    if (!info->kernel_path)
        return bg_fail(err, -EINVAL, "firecracker: VM has no kernel");

    cJSON *mc = cJSON_CreateObject();
    cJSON_AddNumberToObject(mc, "vcpu_count", info->vcpu);
    cJSON_AddNumberToObject(mc, "mem_size_mib", (double)info->memory_mib);
    r = fc_api_put_json(sock, "/machine-config", mc, timeout_ms, err);
    if (r < 0)
        return r;

    char *args = fc_boot_args(vm);
    cJSON *bs = cJSON_CreateObject();
    /* Jailed, the VMM sees paths inside its chroot (fc_jail.c). */
    char *vmm_path = fc_jail_vmm_path(vm, info->kernel_path);
    cJSON_AddStringToObject(bs, "kernel_image_path", vmm_path);
    free(vmm_path);
    if (info->initrd_path) {
        vmm_path = fc_jail_vmm_path(vm, info->initrd_path);
        cJSON_AddStringToObject(bs, "initrd_path", vmm_path);
        free(vmm_path);
    }
    cJSON_AddStringToObject(bs, "boot_args", args);
    free(args);
    r = fc_api_put_json(sock, "/boot-source", bs, timeout_ms, err);
    if (r < 0)
        return r;

    for (size_t i = 0; i < c->n_drives; i++) {
        r = fc_put_drive(vm, sock, &c->drives[i], timeout_ms, err);
        if (r < 0)
            return r;
    }
    if (c->has_net) {
        r = fc_put_net(sock, &c->net, timeout_ms, err);
        if (r < 0)
            return r;
    }
    if (c->vsock_uds) {
        cJSON *vs = cJSON_CreateObject();
        cJSON_AddNumberToObject(vs, "guest_cid", c->vsock_cid);
        char *uds = fc_jail_vmm_path(vm, c->vsock_uds);
        cJSON_AddStringToObject(vs, "uds_path", uds);
        free(uds);
        r = fc_api_put_json(sock, "/vsock", vs, timeout_ms, err);
        if (r < 0)
            return r;
    }
    return 0;
}
