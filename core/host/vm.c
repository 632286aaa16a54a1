#include "config.h"

#include "host/vm.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HANDLES_MAX_BYTES (1u << 20)

static void vm_info_copy(struct banger_vm_info *dst, const struct banger_vm_info *src)
{
    *dst = *src;
    dst->struct_size = sizeof(*dst);
    dst->id = xstrdup_or_null(src->id);
    dst->name = xstrdup_or_null(src->name);
    dst->ip = xstrdup_or_null(src->ip);
    dst->mac = xstrdup_or_null(src->mac);
    dst->gateway = xstrdup_or_null(src->gateway);
    dst->state_dir = xstrdup_or_null(src->state_dir);
    dst->runtime_dir = xstrdup_or_null(src->runtime_dir);
    dst->rootfs_path = xstrdup_or_null(src->rootfs_path);
    dst->kernel_path = xstrdup_or_null(src->kernel_path);
    dst->initrd_path = xstrdup_or_null(src->initrd_path);
    dst->bridge = xstrdup_or_null(src->bridge);
}

static void vm_info_free(struct banger_vm_info *i)
{
    const char *strings[] = { i->id, i->name, i->ip, i->mac, i->gateway, i->state_dir,
                              i->runtime_dir, i->rootfs_path, i->kernel_path,
                              i->initrd_path, i->bridge };
    for (size_t k = 0; k < sizeof(strings) / sizeof(strings[0]); k++)
        free((char *)strings[k]);
}

static void vm_handles_load(struct banger_vm *vm)
{
    char *text = NULL;
    struct banger_error e = { 0 };
    int r = fs_read_all(vm->handles_path, HANDLES_MAX_BYTES, &text, NULL, &e);
    if (r == -ENOENT) {
        vm->handles = cJSON_CreateObject();
        return;
    }
    cJSON *json = r == 0 ? cJSON_Parse(text) : NULL;
    free(text);
    bool valid = cJSON_IsObject(json);
    for (cJSON *it = json ? json->child : NULL; valid && it; it = it->next)
        valid = cJSON_IsString(it);
    if (valid) {
        vm->handles = json;
        return;
    }
    cJSON_Delete(json);
    char *aside = xasprintf("%s.corrupt", vm->handles_path);
    bg_log(BANGER_LOG_WARNING, vm->info.id, "%s is unreadable or corrupt (%s); kept as %s, "
           "teardown falls back to names derived from the VM id",
           vm->handles_path, r < 0 ? bg_error_text(&e) : "not a JSON object of strings", aside);
    if (rename(vm->handles_path, aside) < 0)
        unlink(vm->handles_path);
    free(aside);
    vm->handles = cJSON_CreateObject();
}

int bg_vm_new(const struct banger_vm_info *info, struct banger_vm **out, struct banger_error *err)
{
    if (!info->id || !info->state_dir)
        return bg_fail(err, -EINVAL, "VM without id or state dir");
    struct banger_vm *vm = xcalloc(1, sizeof(*vm));
    vm_info_copy(&vm->info, info);
    pthread_mutex_init(&vm->lock, NULL);
    vm->handles_path = fs_join(vm->info.state_dir, "handles.json");
    vm_handles_load(vm);
    *out = vm;
    return 0;
}

void bg_vm_contrib_reset(struct banger_vm *vm)
{
    struct bg_fc_contrib *c = &vm->contrib;
    for (size_t i = 0; i < c->n_drives; i++) {
        free((char *)c->drives[i].drive_id);
        free((char *)c->drives[i].path_on_host);
    }
    free((char *)c->net.iface_id);
    free((char *)c->net.host_dev_name);
    free((char *)c->net.guest_mac);
    free(c->vsock_uds);
    for (size_t i = 0; i < c->n_kernel_args; i++)
        free(c->kernel_args[i]);
    free(c->kernel_args);
    memset(c, 0, sizeof(*c));
}

void bg_vm_free(struct banger_vm *vm)
{
    if (!vm)
        return;
    bg_vm_contrib_reset(vm);
    vm_info_free(&vm->info);
    cJSON_Delete(vm->handles);
    free(vm->handles_path);
    pthread_mutex_destroy(&vm->lock);
    free(vm);
}

static int vm_handles_save_locked(struct banger_vm *vm, struct banger_error *err)
{
    char *text = cJSON_Print(vm->handles);
    if (!text)
        return bg_fail(err, -ENOMEM, "serialise handles");
    int r = fs_write_atomic(vm->handles_path, text, strlen(text), 0600, err);
    free(text);
    return r;
}

int bg_vm_set_handle(struct banger_vm *vm, const char *key, const char *value,
                     struct banger_error *err)
{
    if (!key || !key[0])
        return bg_fail(err, -EINVAL, "handle without a key");
    pthread_mutex_lock(&vm->lock);
    cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(vm->handles, key);
    if (!old && !value) {
        /* Nothing changes: no write, so the stop of a VM that never ran
         * needs no directory. */
        pthread_mutex_unlock(&vm->lock);
        return 0;
    }
    if (value)
        cJSON_AddItemToObject(vm->handles, key, cJSON_CreateString(value));
    int r = vm_handles_save_locked(vm, err);
    if (r < 0) {
        /* Keep memory and disk in agreement: put the old value back. */
        cJSON_DeleteItemFromObjectCaseSensitive(vm->handles, key);
        if (old) {
            cJSON_AddItemToObject(vm->handles, key, old);
            old = NULL;
        }
    }
    cJSON_Delete(old);
    pthread_mutex_unlock(&vm->lock);
    return r;
}

const char *bg_vm_get_handle(struct banger_vm *vm, const char *key)
{
    pthread_mutex_lock(&vm->lock);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(vm->handles, key);
    const char *v = cJSON_IsString(item) ? item->valuestring : NULL;
    pthread_mutex_unlock(&vm->lock);
    return v;
}

size_t bg_vm_handle_count(struct banger_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    size_t n = (size_t)cJSON_GetArraySize(vm->handles);
    pthread_mutex_unlock(&vm->lock);
    return n;
}

int bg_vm_clear_handles(struct banger_vm *vm, struct banger_error *err)
{
    pthread_mutex_lock(&vm->lock);
    cJSON_Delete(vm->handles);
    vm->handles = cJSON_CreateObject();
    int r = 0;
    if (unlink(vm->handles_path) < 0 && errno != ENOENT)
        r = bg_fail_errno(err, -errno, "remove %s", vm->handles_path);
    pthread_mutex_unlock(&vm->lock);
    return r;
}
