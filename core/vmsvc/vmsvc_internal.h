#ifndef BANGER_VMSVC_INTERNAL_H
#define BANGER_VMSVC_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>

#include "vmsvc/vmsvc.h"

#define VMSVC_ID_MAX 16

struct vmsvc_lock {
    char id[VMSVC_ID_MAX];
    pthread_mutex_t mutex;
    unsigned users;          /* holders and waiters; freed at 0 */
    struct vmsvc_lock *next;
};

struct vmsvc {
    const struct bg_config *cfg;
    struct store *store;
    const struct bg_plugins *plugins;
    struct vmsvc_vmm vmm;
    char *vms_state_dir;
    char *vms_runtime_dir;
    pthread_mutex_t locks_mutex;
    struct vmsvc_lock *locks;
    struct vmsvc_watch *watch; /* NULL: not watching */
};

/* Per-VM locks: entries exist only while someone holds or waits. */
struct vmsvc_lock *vmsvc_lock(struct vmsvc *svc, const char *id);
void vmsvc_unlock(struct vmsvc *svc, struct vmsvc_lock *lock);
void vmsvc_locks_free(struct vmsvc *svc);

/* The VMM watcher (vmsvc_watch.c). start: the thread; add: watch the VMM
 * `pid` of VM `id` (running, with its lock held by the caller or before
 * serving); stop: join the thread, forget the watches (VMs keep running). */
int vmsvc_watch_start(struct vmsvc *svc, struct banger_error *err);
void vmsvc_watch_add(struct vmsvc *svc, const char *id, pid_t pid);
void vmsvc_watch_stop(struct vmsvc *svc);

/* Run the VM's stop steps and record stopped (or error), lock held. */
int vmsvc_stop_locked(struct vmsvc *svc, const struct vm_record *rec, struct banger_error *err);

/* The VM `ref` names, when `caller` may act on it (vmsvc_may_act). */
int vmsvc_find_record(struct vmsvc *svc, uid_t caller, const char *ref, struct vm_record **out,
                      struct banger_error *err);
int vmsvc_vm_object(struct vmsvc *svc, const struct vm_record *rec, struct banger_vm **out,
                    struct banger_error *err);

#endif
