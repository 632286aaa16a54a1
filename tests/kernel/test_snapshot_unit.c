/* Host-side tests of the snapshot capability: the logic that needs no
 * device-mapper (names, image checks, config, error paths). The dm/loop
 * tests run in the kernel harness. */
#include "config.h"

#include "ktutil.h"
#include "snap-loop.h"
#include "snap-util.h"

#include "host/host.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONF "plugins = (\"snapshot\"); vm_defaults = { disk_size = \"64M\"; overlay_size = \"64M\"; };"

START_TEST(dm_name_derivation)
{
    char name[64];

    ck_assert_int_eq(snap_dm_name("0123456789ab", name, sizeof(name)), 0);
    ck_assert_str_eq(name, "banger-0123456789ab");
    ck_assert_int_eq(snap_dm_name("", name, sizeof(name)), -EINVAL);
    ck_assert_int_eq(snap_dm_name(NULL, name, sizeof(name)), -EINVAL);
    ck_assert_int_eq(snap_dm_name("../etc", name, sizeof(name)), -EINVAL);
    ck_assert_int_eq(snap_dm_name("ABC", name, sizeof(name)), -EINVAL);
    ck_assert_int_eq(snap_dm_name("0123456789ab", name, 8), -ENAMETOOLONG);
    ck_assert(snap_is_own_dm_name("banger-0123456789ab"));
    ck_assert(!snap_is_own_dm_name("banger-"));
    ck_assert(!snap_is_own_dm_name("vg0-root"));
    ck_assert(!snap_is_own_dm_name(NULL));
}
END_TEST

START_TEST(backoff_grows_and_is_capped)
{
    ck_assert_uint_eq(snap_backoff_ms(1), 10);
    ck_assert_uint_eq(snap_backoff_ms(2), 20);
    for (unsigned a = 2; a < 40; a++)
        ck_assert_uint_ge(snap_backoff_ms(a), snap_backoff_ms(a - 1));
    ck_assert_uint_eq(snap_backoff_ms(1000), 500);
}
END_TEST

START_TEST(superblock_check)
{
    struct kt_env env;
    char why[512], path[600];
    uint64_t size = 0;
    int fd;

    kt_env_init(&env, CONF);
    ck_assert_int_eq(snap_check_ext4(env.image, &size, why, sizeof(why)), 0);
    ck_assert_uint_eq(size, 32u << 20);

    snprintf(path, sizeof(path), "%s/zeros.img", env.dir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
    ck_assert_int_eq(snap_check_ext4(path, NULL, why, sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "not an ext4 filesystem"));
    ck_assert_ptr_nonnull(strstr(why, "0xEF53"));

    snprintf(path, sizeof(path), "%s/missing.img", env.dir);
    ck_assert_int_eq(snap_check_ext4(path, NULL, why, sizeof(why)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(why, "missing"));

    /* a valid superblock but a size the block layer cannot take */
    snprintf(path, sizeof(path), "%s/odd.img", env.dir);
    {
        const char *cp[] = {"cp", env.image, path, NULL};
        ck_assert_int_eq(kt_run(cp, NULL), 0);
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    ck_assert_int_eq(write(fd, "x", 1), 1);
    close(fd);
    ck_assert_int_eq(snap_check_ext4(path, NULL, why, sizeof(why)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "multiple of 512"));
    ck_assert_int_eq(snap_check_ext4(env.dir, NULL, why, sizeof(why)), -EINVAL);
    kt_env_free(&env);
}
END_TEST

static int init_with(const char *conf, struct banger_error *e)
{
    struct bg_config *cfg = NULL;
    struct bg_plugin p;
    int r;

    r = config_load_string(conf, "t.conf", &cfg, e);
    if (r < 0)
        return r;
    config_set_current(cfg);
    ck_assert_int_eq(loader_open(BUILDDIR "/plugins/snapshot/.libs", "snapshot", false, &p, e), 0);
    r = p.cap->init(bg_host_api(), config_group(cfg, "snapshot"), &p.state, e);
    if (r == 0)
        p.cap->fini(p.state);
    loader_close(&p);
    config_set_current(NULL);
    config_free(cfg);
    return r;
}

START_TEST(config_validation)
{
    struct banger_error e = {0};

    ck_assert_int_eq(init_with("plugins = (\"snapshot\");", &e), 0);
    ck_assert_int_eq(init_with("plugins = (\"snapshot\"); snapshot = { remove_retries = 3; };", &e),
                     0);
    ck_assert_int_eq(init_with("plugins = (\"snapshot\"); snapshot = { retries = 3; };", &e),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "retries"));
    bg_error_clear(&e);
    ck_assert_int_eq(init_with("plugins = (\"snapshot\"); snapshot = { remove_retries = -1; };",
                               &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "remove_retries"));
    ck_assert_ptr_nonnull(strstr(e.msg, "between 0 and"));
    bg_error_clear(&e);
    ck_assert_int_eq(init_with("plugins = (\"snapshot\"); snapshot = { remove_retries = \"x\"; };",
                               &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "remove_retries"));
}
END_TEST

/* start fails with a precise reason before touching any host object. */
START_TEST(start_errors_name_the_cause)
{
    struct banger_error e = {0};
    struct kt_env env;
    struct banger_vm *vm;
    char bad[600];
    int fd, r;

    kt_env_init(&env, CONF);
    vm = kt_vm(&env, "0123456789ab");

    snprintf(bad, sizeof(bad), "%s/nope.ext4", env.dir);
    free((char *)vm->info.rootfs_path);
    vm->info.rootfs_path = strdup(bad);
    r = env.plugin.cap->start(env.plugin.state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e);
    ck_assert_int_eq(r, -ENOENT);
    ck_assert_ptr_nonnull(strstr(e.msg, "missing"));
    ck_assert_ptr_nonnull(strstr(e.msg, "nope.ext4"));
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);

    fd = open(bad, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ck_assert_int_eq(ftruncate(fd, 4 << 20), 0);
    close(fd);
    bg_error_clear(&e);
    r = env.plugin.cap->start(env.plugin.state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e);
    ck_assert_int_eq(r, -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "not an ext4 filesystem"));
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);

    /* Where the kernel has no device-mapper (this host), say so and leave
     * nothing behind. */
    if (!dtu_exists("/dev/mapper/control")) {
        free((char *)vm->info.rootfs_path);
        vm->info.rootfs_path = strdup(env.image);
        bg_error_clear(&e);
        r = env.plugin.cap->start(env.plugin.state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e);
        ck_assert_int_lt(r, 0);
        ck_assert_msg(strstr(e.msg, "device-mapper") != NULL, "%s", e.msg);
        ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
        ck_assert_uint_eq(kt_bound_loops(env.dir), 0);
        ck_assert_int_eq(env.plugin.cap->stop(env.plugin.state, vm, &e), 0);
    }
    bg_vm_free(vm);
    kt_env_free(&env);
}
END_TEST

START_TEST(loop_detach_rules)
{
    char why[256];

    ck_assert_int_eq(snap_loop_detach("/dev/sda", NULL, why, sizeof(why)), -EINVAL);
    ck_assert_int_eq(snap_loop_detach("/dev/loopx", NULL, why, sizeof(why)), -EINVAL);
    /* not bound, or bound to another file: done, untouched */
    ck_assert_int_eq(snap_loop_detach("/dev/loop999999", NULL, why, sizeof(why)), 0);
    ck_assert_int_eq(snap_loop_detach("/dev/loop0", "/nonexistent/banger/file", why,
                                      sizeof(why)), 0);
}
END_TEST

/* destroy removes the COW file and tolerates its absence. */
START_TEST(destroy_removes_files)
{
    struct banger_error e = {0};
    struct kt_env env;
    struct banger_vm *vm;
    char cow[700];

    kt_env_init(&env, CONF);
    vm = kt_vm(&env, "0123456789ab");
    snprintf(cow, sizeof(cow), "%s/overlay.cow", vm->info.state_dir);
    close(open(cow, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    ck_assert_int_eq(env.plugin.cap->destroy(env.plugin.state, vm, &e), 0);
    ck_assert(!dtu_exists(cow));
    ck_assert_int_eq(env.plugin.cap->destroy(env.plugin.state, vm, &e), 0);
    bg_vm_free(vm);
    kt_env_free(&env);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("snapshot-host");
    TCase *tc = tcase_create("units");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, dm_name_derivation);
    tcase_add_test(tc, backoff_grows_and_is_capped);
    tcase_add_test(tc, superblock_check);
    tcase_add_test(tc, config_validation);
    tcase_add_test(tc, start_errors_name_the_cause);
    tcase_add_test(tc, loop_detach_rules);
    tcase_add_test(tc, destroy_removes_files);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
