#include "config.h"

#include "engine/engine.h"
#include "host/host.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct engine_step {
    const struct bg_plugin *plugin; /* NULL: the launch step */
    enum banger_phase phase;
};

static size_t engine_build_steps(const struct bg_plugins *ps, struct engine_step *steps)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].cap->phases & BANGER_PHASE_BEFORE_LAUNCH)
            steps[n++] = (struct engine_step){ &ps->v[i], BANGER_PHASE_BEFORE_LAUNCH };
    steps[n++] = (struct engine_step){ NULL, BANGER_PHASE_BEFORE_LAUNCH };
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].cap->phases & BANGER_PHASE_AFTER_BOOT)
            steps[n++] = (struct engine_step){ &ps->v[i], BANGER_PHASE_AFTER_BOOT };
    return n;
}

/* The fault point of a step: "<plugin>.start", "<plugin>.after-boot", "launch". */
static void engine_step_name(const struct engine_step *s, char *buf, size_t len)
{
    if (!s->plugin)
        snprintf(buf, len, "launch");
    else
        snprintf(buf, len, "%s.%s", s->plugin->name,
                 s->phase == BANGER_PHASE_BEFORE_LAUNCH ? "start" : "after-boot");
}

static int engine_run_step(const struct engine_step *s, const struct engine_launch_ops *launch,
                           struct banger_vm *vm, struct banger_error *err)
{
    char point[96];
    engine_step_name(s, point, sizeof(point));
    int r;
    if (bg_fault_enabled(point)) {
        bg_log(BANGER_LOG_INFO, vm->info.id, "injecting fault at %s", point);
        r = bg_fail(err, -EIO, "injected fault at %s", point);
    } else if (!s->plugin) {
        r = launch && launch->launch ? launch->launch(launch->ctx, vm, err) : 0;
    } else {
        r = s->plugin->cap->start(s->plugin->state, vm, s->phase, err);
        if (r < 0 && err->code == 0)
            bg_fail(err, r, "start failed: %s", strerror(-r));
    }
    if (r < 0 && s->plugin)
        bg_error_prefix(err, "%s", s->plugin->name);
    return r;
}

static int engine_undo_step(const struct engine_step *s, const struct engine_launch_ops *launch,
                            struct banger_vm *vm, struct banger_error *err)
{
    int r = 0;
    if (!s->plugin) {
        if (launch && launch->undo)
            r = launch->undo(launch->ctx, vm, err);
    } else if (s->plugin->cap->rollback) {
        r = s->plugin->cap->rollback(s->plugin->state, vm, s->phase, err);
    } else if (s->plugin->cap->stop) {
        r = s->plugin->cap->stop(s->plugin->state, vm, err);
    }
    if (r < 0) {
        if (err->code == 0)
            bg_fail(err, r, "%s", strerror(-r));
        bg_error_prefix(err, "%s", s->plugin ? s->plugin->name : "launch");
    }
    return r;
}

int engine_start(const struct bg_plugins *ps, const struct engine_launch_ops *launch,
                 struct banger_vm *vm, engine_progress_fn progress, void *progress_ctx,
                 struct banger_error *err)
{
    struct engine_step *steps = xcalloc(2 * ps->n + 1, sizeof(*steps));
    size_t n = engine_build_steps(ps, steps);
    int r = 0;
    size_t k;

    bg_vm_contrib_reset(vm);
    for (k = 0; k < n; k++) {
        char name[96];
        engine_step_name(&steps[k], name, sizeof(name));
        if (progress)
            progress(progress_ctx, steps[k].plugin ? steps[k].plugin->name : "launch");
        bg_log(BANGER_LOG_DEBUG, vm->info.id, "step %s", name);
        struct banger_error e = { 0 };
        r = engine_run_step(&steps[k], launch, vm, &e);
        if (r < 0) {
            *err = e;
            break;
        }
    }
    if (r == 0)
        goto done;

    /* Unwind k, k-1, ..., 0. Every undo runs; their failures are reported
     * after the reason the start failed. */
    bg_log(BANGER_LOG_WARNING, vm->info.id, "start failed: %s; rolling back", bg_error_text(err));
    if (progress)
        progress(progress_ctx, "rollback");
    struct banger_error undo_errors = { 0 };
    for (size_t i = k + 1; i-- > 0;) {
        struct banger_error e = { 0 };
        if (engine_undo_step(&steps[i], launch, vm, &e) < 0) {
            bg_log(BANGER_LOG_ERROR, vm->info.id, "rollback: %s", bg_error_text(&e));
            bg_error_join(&undo_errors, &e);
        }
    }
    if (undo_errors.code) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof(err->msg) - len, " (rollback also failed: %s)",
                 bg_error_text(&undo_errors));
    } else {
        struct banger_error e = { 0 };
        if (bg_vm_clear_handles(vm, &e) < 0)
            bg_log(BANGER_LOG_WARNING, vm->info.id, "%s", bg_error_text(&e));
    }
    bg_vm_contrib_reset(vm);
done:
    free(steps);
    return r;
}

static int engine_stop_plugin(const struct bg_plugin *p, struct banger_vm *vm,
                              struct banger_error *all)
{
    if (!p->cap->stop)
        return 0;
    struct banger_error e = { 0 };
    int r = p->cap->stop(p->state, vm, &e);
    if (r < 0) {
        if (e.code == 0)
            bg_fail(&e, r, "%s", strerror(-r));
        bg_error_prefix(&e, "%s", p->name);
        bg_log(BANGER_LOG_ERROR, vm->info.id, "stop: %s", bg_error_text(&e));
        bg_error_join(all, &e);
    }
    return r;
}

int engine_stop(const struct bg_plugins *ps, const struct engine_launch_ops *launch,
                struct banger_vm *vm, struct banger_error *err)
{
    struct banger_error all = { 0 };

    /* Reverse of start: after-boot-only modules, the VMM, then the rest. */
    for (size_t i = ps->n; i-- > 0;)
        if (!(ps->v[i].cap->phases & BANGER_PHASE_BEFORE_LAUNCH))
            engine_stop_plugin(&ps->v[i], vm, &all);
    if (launch && launch->stop) {
        struct banger_error e = { 0 };
        if (launch->stop(launch->ctx, vm, &e) < 0) {
            bg_error_prefix(&e, "firecracker");
            bg_log(BANGER_LOG_ERROR, vm->info.id, "stop: %s", bg_error_text(&e));
            bg_error_join(&all, &e);
        }
    }
    for (size_t i = ps->n; i-- > 0;)
        if (ps->v[i].cap->phases & BANGER_PHASE_BEFORE_LAUNCH)
            engine_stop_plugin(&ps->v[i], vm, &all);

    bg_vm_contrib_reset(vm);
    if (all.code) {
        *err = all;
        return all.code;
    }
    return bg_vm_clear_handles(vm, err);
}

int engine_destroy(const struct bg_plugins *ps, const struct engine_launch_ops *launch,
                   struct banger_vm *vm, struct banger_error *err)
{
    struct banger_error all = { 0 };
    if (launch && launch->destroy) {
        struct banger_error e = { 0 };
        int r = launch->destroy(launch->ctx, vm, &e);
        if (r < 0) {
            if (e.code == 0)
                bg_fail(&e, r, "%s", strerror(-r));
            bg_error_join(&all, &e);
        }
    }
    for (size_t i = ps->n; i-- > 0;) {
        const struct bg_plugin *p = &ps->v[i];
        if (!p->cap->destroy)
            continue;
        struct banger_error e = { 0 };
        int r = p->cap->destroy(p->state, vm, &e);
        if (r < 0) {
            if (e.code == 0)
                bg_fail(&e, r, "%s", strerror(-r));
            bg_error_prefix(&e, "%s", p->name);
            bg_error_join(&all, &e);
        }
    }
    if (all.code) {
        *err = all;
        return all.code;
    }
    return 0;
}

int engine_reconcile(const struct bg_plugins *ps, struct banger_vm *const *live, size_t n,
                     struct banger_error *err)
{
    struct banger_error all = { 0 };
    for (size_t i = 0; i < ps->n; i++) {
        const struct bg_plugin *p = &ps->v[i];
        if (!p->cap->reconcile)
            continue;
        struct banger_error e = { 0 };
        int r = p->cap->reconcile(p->state, live, n, &e);
        if (r < 0) {
            if (e.code == 0)
                bg_fail(&e, r, "%s", strerror(-r));
            bg_error_prefix(&e, "%s", p->name);
            bg_log(BANGER_LOG_WARNING, NULL, "reconcile: %s", bg_error_text(&e));
            bg_error_join(&all, &e);
        }
    }
    if (all.code) {
        *err = all;
        return all.code;
    }
    return 0;
}
