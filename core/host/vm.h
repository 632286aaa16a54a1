/* The daemon's per-VM runtime object: identity, persisted handles and the
 * Firecracker config contributions of the current start. Plugins see it as
 * the opaque struct banger_vm. */
#ifndef BANGER_HOST_VM_H
#define BANGER_HOST_VM_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>

#include <banger/capability.h>

#include "util/error.h"

#define BG_VM_MAX_DRIVES 8

struct bg_fc_contrib {
    struct banger_drive drives[BG_VM_MAX_DRIVES]; /* strings owned */
    size_t n_drives;
    bool has_net;
    struct banger_net_iface net;                  /* strings owned */
    uint32_t vsock_cid;
    char *vsock_uds;                              /* NULL: no vsock device */
    char **kernel_args;
    size_t n_kernel_args;
};

struct banger_vm {
    struct banger_vm_info info;   /* strings owned */
    char *handles_path;           /* state_dir/handles.json */
    cJSON *handles;               /* object of string values */
    pthread_mutex_t lock;
    struct bg_fc_contrib contrib;
    int vmm_pid;
    /* End of the console ring (a stream offset) when this VMM was spawned:
     * its console starts there (earlier runs' output is older). 0 when not
     * spawned here. */
    long long vmm_log_start;
    char op_id[32];
};

/* Copy `info` (every string) into a new VM object and load its handles.json
 * when present. A corrupt handles.json is kept aside as handles.json.corrupt
 * and the VM starts with no handles (logged). */
int bg_vm_new(const struct banger_vm_info *info, struct banger_vm **out, struct banger_error *err);
void bg_vm_free(struct banger_vm *vm);

int bg_vm_set_handle(struct banger_vm *vm, const char *key, const char *value,
                     struct banger_error *err);
const char *bg_vm_get_handle(struct banger_vm *vm, const char *key);
/* Remove handles.json (after a complete stop). */
int bg_vm_clear_handles(struct banger_vm *vm, struct banger_error *err);
/* Number of handles recorded. */
size_t bg_vm_handle_count(struct banger_vm *vm);

/* Drop the contributions of a previous start. */
void bg_vm_contrib_reset(struct banger_vm *vm);

#endif
