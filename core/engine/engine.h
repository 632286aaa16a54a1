/* The step engine: a VM start is the before-launch capabilities in the
 * operator's order, then the launch step (the Firecracker driver), then the
 * after-boot capabilities. When step k fails, steps k, k-1, ..., 0 are rolled
 * back (the failing one included, since it may have half-done its work).
 * Stop runs every capability's stop in reverse and never stops early. */
#ifndef BANGER_ENGINE_H
#define BANGER_ENGINE_H

#include "host/vm.h"
#include "loader/loader.h"
#include "util/error.h"

struct engine_launch_ops {
    void *ctx;
    /* Launch the VMM with vm->contrib and boot it. */
    int (*launch)(void *ctx, struct banger_vm *vm, struct banger_error *err);
    /* Undo a (possibly partial) launch: kill the VMM, remove its sockets. */
    int (*undo)(void *ctx, struct banger_vm *vm, struct banger_error *err);
    /* Graceful stop of a running VMM (falls back to kill); idempotent. */
    int (*stop)(void *ctx, struct banger_vm *vm, struct banger_error *err);
    /* The VM is deleted (after stop): remove what the launch step keeps
     * across stop/start (the work disk). May be NULL. */
    int (*destroy)(void *ctx, struct banger_vm *vm, struct banger_error *err);
};

/* Called as each step begins ("tap", "launch", "vsock", ...) and once with
 * "rollback" when a start unwinds. May be NULL. */
typedef void (*engine_progress_fn)(void *ctx, const char *stage);

int engine_start(const struct bg_plugins *plugins, const struct engine_launch_ops *launch,
                 struct banger_vm *vm, engine_progress_fn progress, void *progress_ctx,
                 struct banger_error *err);

/* Stop everything for vm; works from handles alone. On full success the
 * VM's handles.json is removed; otherwise it stays for a later stop. */
int engine_stop(const struct bg_plugins *plugins, const struct engine_launch_ops *launch,
                struct banger_vm *vm, struct banger_error *err);

/* After stop, when the VM is deleted: the launch step's destroy, then every
 * capability's destroy in reverse order, never stopping early. */
int engine_destroy(const struct bg_plugins *plugins, const struct engine_launch_ops *launch,
                   struct banger_vm *vm, struct banger_error *err);

/* Every live VM for each capability's reconcile. */
int engine_reconcile(const struct bg_plugins *plugins, struct banger_vm *const *live, size_t n,
                     struct banger_error *err);

#endif
