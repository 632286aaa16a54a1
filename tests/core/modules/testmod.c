/* A capability module for the core's tests. One source, built under several
 * names (TESTMOD_NAME). Its config group says what to do:
 *   marker_dir = "/tmp/x";  start creates <dir>/<name>.<phase>, recording
 *                           the path as handle "<name>.<phase>" first
 *   fail_init = true;       init fails
 *   fail_after_work = true; start creates its marker, then fails
 *   crash = true;           start creates its marker, then _exit(3)s
 *   after_boot = true;      run after boot instead of before launch
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <banger/capability.h>

#ifndef TESTMOD_NAME
#error TESTMOD_NAME must be defined
#endif

static const struct banger_host_api *host;

struct testmod {
    const char *marker_dir;
    bool fail_after_work;
    bool crash;
};

static const char *testmod_phase_name(enum banger_phase phase)
{
    return phase == BANGER_PHASE_AFTER_BOOT ? "after-boot" : "start";
}

static int testmod_init(const struct banger_host_api *h, const struct banger_cfg *cfg,
                        void **state, struct banger_error *err)
{
    static const char *const keys[] = { "marker_dir", "fail_init", "fail_after_work", "crash",
                                        "after_boot", NULL };
    host = h;
    int r = host->cfg_check_keys(cfg, keys, err);
    if (r < 0)
        return r;
    bool fail_init = false;
    r = host->cfg_get_bool(cfg, "fail_init", &fail_init, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (fail_init)
        return host->fail(err, -ENODEV, "configured to fail init");
    struct testmod *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    if (host->cfg_get_string(cfg, "marker_dir", &t->marker_dir, err) == -EINVAL ||
        host->cfg_get_bool(cfg, "fail_after_work", &t->fail_after_work, err) == -EINVAL ||
        host->cfg_get_bool(cfg, "crash", &t->crash, err) == -EINVAL) {
        free(t);
        return -EINVAL;
    }
    *state = t;
    return 0;
}

static void testmod_fini(void *state) { free(state); }

static int testmod_start(void *state, struct banger_vm *vm, enum banger_phase phase,
                         struct banger_error *err)
{
    struct testmod *t = state;
    if (!t->marker_dir)
        return 0;
    char key[64], path[512];
    snprintf(key, sizeof(key), "%s.%s", TESTMOD_NAME, testmod_phase_name(phase));
    snprintf(path, sizeof(path), "%s/%s.%s", t->marker_dir, TESTMOD_NAME, testmod_phase_name(phase));
    int r = host->set_handle(vm, key, path, err);
    if (r < 0)
        return r;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return host->fail(err, -errno, "create %s", path);
    close(fd);
    if (t->crash)
        _exit(3);
    if (t->fail_after_work)
        return host->fail(err, -EIO, "configured to fail after work");
    return host->add_kernel_arg(vm, "testmod=" TESTMOD_NAME, err);
}

static int testmod_remove(struct banger_vm *vm, enum banger_phase phase, struct banger_error *err)
{
    char key[64];
    snprintf(key, sizeof(key), "%s.%s", TESTMOD_NAME, testmod_phase_name(phase));
    const char *path = host->get_handle(vm, key);
    if (!path)
        return 0;
    if (unlink(path) < 0 && errno != ENOENT)
        return host->fail(err, -errno, "remove %s", path);
    return host->set_handle(vm, key, NULL, err);
}

static int testmod_rollback(void *state, struct banger_vm *vm, enum banger_phase phase,
                            struct banger_error *err)
{
    (void)state;
    return testmod_remove(vm, phase, err);
}

static int testmod_stop(void *state, struct banger_vm *vm, struct banger_error *err)
{
    (void)state;
    int r1 = testmod_remove(vm, BANGER_PHASE_BEFORE_LAUNCH, err);
    int r2 = testmod_remove(vm, BANGER_PHASE_AFTER_BOOT, err);
    return r1 < 0 ? r1 : r2;
}

static const struct banger_capability testmod_desc = {
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .struct_size = sizeof(struct banger_capability),
    .name = TESTMOD_NAME,
    .version = "1.0",
    .description = "test module",
#ifdef TESTMOD_AFTER_BOOT
    .phases = BANGER_PHASE_AFTER_BOOT,
#else
    .phases = BANGER_PHASE_BEFORE_LAUNCH,
#endif
#ifdef TESTMOD_REQUIRES
    .requires = (const char *const[]){ TESTMOD_REQUIRES, NULL },
#endif
    .init = testmod_init,
    .fini = testmod_fini,
    .start = testmod_start,
    .rollback = testmod_rollback,
    .stop = testmod_stop,
};

BANGER_CAPABILITY_DEFINE(testmod_desc)
