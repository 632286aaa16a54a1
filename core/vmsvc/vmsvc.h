/* The VM service: create, start, stop, kill, delete, set, prune and
 * reconcile, each under the VM's own lock so different VMs proceed in
 * parallel. It turns store records into runtime VM objects and runs the
 * step engine over the loaded capabilities and the VMM driver. */
#ifndef BANGER_VMSVC_H
#define BANGER_VMSVC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "engine/engine.h"
#include "host/vm.h"
#include "loader/loader.h"
#include "store/store.h"
#include "util/error.h"

/* What the service needs from the VMM driver beyond the engine's launch
 * step. */
struct vmsvc_vmm {
    struct engine_launch_ops launch;
    /* Pid of the VM's live VMM, rediscovered from its handles (never a
     * recycled pid); 0 when none runs. May update the handles, so only
     * with the VM's lock held (or before serving). */
    int (*find)(void *ctx, struct banger_vm *vm);
    /* The same answer, changing nothing: for readers without the lock.
     * NULL: readers see no pid. */
    int (*peek)(void *ctx, struct banger_vm *vm);
    /* Send `sig` to the live VMM and wait (bounded) until it is gone. */
    int (*kill)(void *ctx, struct banger_vm *vm, int sig, struct banger_error *err);
    void *ctx;
};

struct vm_create_params {
    const char *name;        /* NULL/"" = generated */
    const char *image;       /* NULL = "default" */
    unsigned vcpu;           /* 0 = config default */
    uint64_t memory_mib;     /* 0 = config default */
    uint64_t disk_size;      /* 0 = config default */
    bool nat;
    bool start;
    uid_t owner_uid;         /* who asked (SO_PEERCRED): the VM is theirs */
};

typedef void (*vmsvc_progress_fn)(void *ctx, const char *stage);

/* Every call on an existing VM names the uid that asks (the RPC peer's,
 * from SO_PEERCRED). A VM belongs to the uid that created it: only that uid
 * and root (uid 0) may see or touch it; anyone else is refused with
 * -EACCES, "VM '<name>' belongs to uid N". */
#define VMSVC_ROOT ((uid_t)0)

/* May `caller` see and act on the VM? */
bool vmsvc_may_act(uid_t caller, const struct vm_record *rec);

struct vmsvc;

int vmsvc_new(const struct bg_config *cfg, struct store *store, const struct bg_plugins *plugins,
              const struct vmsvc_vmm *vmm, struct vmsvc **out, struct banger_error *err);
void vmsvc_free(struct vmsvc *svc);

int vmsvc_create(struct vmsvc *svc, const struct vm_create_params *p, vmsvc_progress_fn progress,
                 void *ctx, struct vm_record **out, struct banger_error *err);
int vmsvc_start(struct vmsvc *svc, uid_t caller, const char *ref, vmsvc_progress_fn progress,
                void *ctx, struct vm_record **out, struct banger_error *err);
int vmsvc_stop(struct vmsvc *svc, uid_t caller, const char *ref, vmsvc_progress_fn progress,
               void *ctx, struct vm_record **out, struct banger_error *err);
int vmsvc_restart(struct vmsvc *svc, uid_t caller, const char *ref, vmsvc_progress_fn progress,
                  void *ctx, struct vm_record **out, struct banger_error *err);
int vmsvc_kill(struct vmsvc *svc, uid_t caller, const char *ref, int sig, struct vm_record **out,
               struct banger_error *err);
/* On success *deleted holds the deleted record. */
int vmsvc_delete(struct vmsvc *svc, uid_t caller, const char *ref, vmsvc_progress_fn progress,
                 void *ctx, struct vm_record **deleted, struct banger_error *err);
int vmsvc_set(struct vmsvc *svc, uid_t caller, const char *ref, unsigned vcpu, uint64_t memory_mib,
              struct vm_record **out, struct banger_error *err);
int vmsvc_show(struct vmsvc *svc, uid_t caller, const char *ref, struct vm_record **out, int *pid,
               struct banger_error *err);
/* Read the VM's console ring from stream offset `offset` (negative: the last
 * -offset bytes); *data may hold any bytes (NULs too), *len of them; *next is
 * where the next read starts. */
int vmsvc_logs(struct vmsvc *svc, uid_t caller, const char *ref, long long offset, char **data,
               size_t *len, long long *next, struct banger_error *err);
/* Pid of the VM's live VMM or 0. */
int vmsvc_pid(struct vmsvc *svc, const struct vm_record *rec);

/* At daemon start-up: adopt VMs whose VMM still runs, tear down the rest
 * from their handles, then let every capability reap what no live VM owns. */
int vmsvc_reconcile(struct vmsvc *svc, struct banger_error *err);

/* Map a negative errno to the RPC error code (not_found, busy, ...). */
const char *vmsvc_error_code(int negative_errno);

#endif
