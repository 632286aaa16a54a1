/* Step engine: ordered start, reverse rollback of exactly the steps that
 * ran (the failing one included), stop that never stops early, and stop
 * from handles.json alone after a crash. Test modules create marker files. */
#include "config.h"

#include "config/config.h"
#include "engine/engine.h"
#include "loader/loader.h"
#include "testutil.h"
#include "util/xalloc.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *plugin_dir, *marker_dir, *state_dir;
static struct bg_config *cfg;
static struct bg_plugins *plugins;
static struct banger_error e;
static char stage_log[512];

static void progress(void *ctx, const char *stage)
{
    (void)ctx;
    size_t len = strlen(stage_log);
    snprintf(stage_log + len, sizeof(stage_log) - len, "%s%s", len ? "," : "", stage);
}

/* The launch step stands in for Firecracker: a marker recorded as a handle. */
static int fake_launch(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    (void)ctx;
    char *path = xasprintf("%s/launch", marker_dir);
    int r = bg_vm_set_handle(vm, "launch.marker", path, err);
    if (r == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        r = fd < 0 ? bg_fail(err, -errno, "create %s", path) : 0;
        if (fd >= 0)
            close(fd);
    }
    free(path);
    return r;
}

static int fake_unlaunch(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    (void)ctx;
    const char *path = bg_vm_get_handle(vm, "launch.marker");
    if (path && unlink(path) < 0 && errno != ENOENT)
        return bg_fail(err, -errno, "remove %s", path);
    return bg_vm_set_handle(vm, "launch.marker", NULL, err);
}

static const struct engine_launch_ops launch_ops = {
    .launch = fake_launch, .undo = fake_unlaunch, .stop = fake_unlaunch,
};

/* Load alpha, beta (before launch) and gamma (after boot); `beta_extra` is
 * added to beta's config group. */
static void load_modules(const char *beta_extra)
{
    char *text = xasprintf(
        "plugin_dir = \"%s\";\nplugins = ( \"alpha\", \"beta\", \"gamma\" );\n"
        "alpha = { marker_dir = \"%s\"; };\nbeta = { marker_dir = \"%s\"; %s };\n"
        "gamma = { marker_dir = \"%s\"; };\n",
        plugin_dir, marker_dir, marker_dir, beta_extra, marker_dir);
    ck_assert_msg(config_load_string(text, "t.conf", &cfg, &e) == 0, "%s\n%s", e.msg, text);
    free(text);
    config_set_current(cfg);
    ck_assert_msg(plugins_load(cfg, &plugins, &e) == 0, "%s", e.msg);
}

static void setup(void)
{
    plugin_dir = tu_tempdir("engine-plugins");
    marker_dir = tu_tempdir("engine-markers");
    state_dir = tu_tempdir("engine-state");
    chmod(plugin_dir, 0755);
    const char *names[] = { "alpha", "beta", "gamma" };
    for (size_t i = 0; i < 3; i++) {
        char *from = xasprintf("%s/%s.so", TEST_MODULE_DIR, names[i]);
        char *to = xasprintf("%s/%s.so", plugin_dir, names[i]);
        tu_copy(from, to);
        free(from);
        free(to);
    }
    bg_error_clear(&e);
    stage_log[0] = '\0';
    unsetenv("BANGER_FAULTS");
}

static void teardown(void)
{
    plugins_unload(plugins);
    plugins = NULL;
    config_free(cfg);
    cfg = NULL;
    const char *dirs[] = { plugin_dir, marker_dir, state_dir };
    for (size_t i = 0; i < 3; i++)
        tu_rmtree(dirs[i]);
    free(plugin_dir);
    free(marker_dir);
    free(state_dir);
}

static bool marker(const char *name)
{
    char *p = xasprintf("%s/%s", marker_dir, name);
    bool r = tu_exists(p);
    free(p);
    return r;
}

static bool handles_file_exists(void)
{
    char *p = xasprintf("%s/handles.json", state_dir);
    bool r = tu_exists(p);
    free(p);
    return r;
}

START_TEST(start_runs_in_order_and_stop_undoes_all)
{
    load_modules("");
    struct banger_vm *vm = tu_vm(state_dir);
    ck_assert_msg(engine_start(plugins, &launch_ops, vm, progress, NULL, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(stage_log, "alpha,beta,launch,gamma");
    ck_assert(marker("alpha.start") && marker("beta.start") && marker("launch") &&
              marker("gamma.after-boot"));
    /* Before-launch modules contributed to the VMM config; after-boot came too late. */
    ck_assert_uint_eq(vm->contrib.n_kernel_args, 3);
    ck_assert_str_eq(vm->contrib.kernel_args[0], "testmod=alpha");
    ck_assert_str_eq(vm->contrib.kernel_args[1], "testmod=beta");
    ck_assert(handles_file_exists());
    ck_assert_msg(engine_stop(plugins, &launch_ops, vm, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(tu_count_entries(marker_dir), 0);
    ck_assert(!handles_file_exists());
    /* Stop is idempotent. */
    ck_assert_msg(engine_stop(plugins, &launch_ops, vm, &e) == 0, "%s", e.msg);
    bg_vm_free(vm);
}
END_TEST

static const char *const fault_points[] = { "alpha.start", "beta.start", "launch", "gamma.after-boot" };

START_TEST(injected_fault_at_every_position_rolls_back_everything)
{
    load_modules("");
    setenv("BANGER_FAULTS", fault_points[_i], 1);
    struct banger_vm *vm = tu_vm(state_dir);
    ck_assert_int_eq(engine_start(plugins, &launch_ops, vm, progress, NULL, &e), -EIO);
    char want[96];
    snprintf(want, sizeof(want), "injected fault at %s", fault_points[_i]);
    ck_assert_msg(strstr(e.msg, want) != NULL, "%s", e.msg);
    ck_assert_msg(tu_count_entries(marker_dir) == 0, "markers left after fault at %s",
                  fault_points[_i]);
    ck_assert(!handles_file_exists());
    ck_assert_uint_eq(vm->contrib.n_kernel_args, 0);
    ck_assert_ptr_nonnull(strstr(stage_log, "rollback"));
    bg_vm_free(vm);
}
END_TEST

START_TEST(failing_step_is_rolled_back_too)
{
    /* beta does its work and then fails: its own rollback must remove it. */
    load_modules("fail_after_work = true;");
    struct banger_vm *vm = tu_vm(state_dir);
    ck_assert_int_eq(engine_start(plugins, &launch_ops, vm, NULL, NULL, &e), -EIO);
    ck_assert_str_eq(e.msg, "beta: configured to fail after work");
    ck_assert_uint_eq(tu_count_entries(marker_dir), 0);
    ck_assert(!marker("launch"));
    bg_vm_free(vm);
}
END_TEST

START_TEST(stop_runs_every_step_past_a_failure)
{
    load_modules("");
    struct banger_vm *vm = tu_vm(state_dir);
    ck_assert_int_eq(engine_start(plugins, &launch_ops, vm, NULL, NULL, &e), 0);
    /* Make beta's marker impossible to unlink: a non-empty directory. */
    char *beta = xasprintf("%s/beta.start", marker_dir);
    char *inner = xasprintf("%s/keep", beta);
    ck_assert_int_eq(unlink(beta), 0);
    ck_assert_int_eq(mkdir(beta, 0700), 0);
    tu_write(inner, "x");
    ck_assert_int_lt(engine_stop(plugins, &launch_ops, vm, &e), 0);
    ck_assert_msg(strstr(e.msg, "beta: remove") != NULL, "%s", e.msg);
    /* Everyone else still stopped. */
    ck_assert(!marker("alpha.start") && !marker("launch") && !marker("gamma.after-boot"));
    /* beta's handle is kept for a later stop. */
    ck_assert(handles_file_exists());
    ck_assert_ptr_nonnull(bg_vm_get_handle(vm, "beta.start"));
    unlink(inner);
    rmdir(beta);
    ck_assert_msg(engine_stop(plugins, &launch_ops, vm, &e) == 0, "%s", e.msg);
    ck_assert(!handles_file_exists());
    free(beta);
    free(inner);
    bg_vm_free(vm);
}
END_TEST

START_TEST(stop_after_crash_uses_handles_alone)
{
    load_modules("crash = true;");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct banger_vm *vm = tu_vm(state_dir);
        struct banger_error err = { 0 };
        engine_start(plugins, &launch_ops, vm, NULL, NULL, &err);
        _exit(0); /* not reached: beta _exits mid-sequence */
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    ck_assert(marker("alpha.start") && marker("beta.start"));
    /* A new daemon knows nothing but what is on disk. */
    struct banger_vm *vm = tu_vm(state_dir);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 2);
    ck_assert_msg(engine_stop(plugins, &launch_ops, vm, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(tu_count_entries(marker_dir), 0);
    ck_assert(!handles_file_exists());
    bg_vm_free(vm);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, start_runs_in_order_and_stop_undoes_all);
    tcase_add_loop_test(tc, injected_fault_at_every_position_rolls_back_everything, 0,
                        (int)(sizeof(fault_points) / sizeof(fault_points[0])));
    tcase_add_test(tc, failing_step_is_rolled_back_too);
    tcase_add_test(tc, stop_runs_every_step_past_a_failure);
    tcase_add_test(tc, stop_after_crash_uses_handles_alone);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
