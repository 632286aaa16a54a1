/* The core's work disk (core/workdisk): a sparse ext4 labelled banger-work,
 * drive "work" with Writeback caching, made on the first start whatever the
 * root module, kept across stop/start, removed on destroy; a fault at each
 * sub-step leaves nothing, and never removes an existing disk. */
#include "config.h"

#include "rftutil.h"

#include "engine/engine.h"
#include "workdisk/workdisk.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fake_vmm {
    int launches, undos, stops;
    size_t drives_seen;
    int fail_launch;
};

static int fake_launch(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct fake_vmm *f = ctx;

    f->launches++;
    f->drives_seen = vm->contrib.n_drives;
    if (f->fail_launch)
        return bg_fail(err, -EIO, "launch failed");
    return 0;
}

static int fake_undo(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct fake_vmm *f = ctx;
    (void)vm;
    (void)err;
    f->undos++;
    return 0;
}

static int fake_stop(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct fake_vmm *f = ctx;
    (void)vm;
    (void)err;
    f->stops++;
    return 0;
}

struct wt {
    char dir[256];
    char image[300];
    struct fake_vmm vmm;
    struct workdisk_launch wl;
    struct engine_launch_ops ops;
};

static void wt_setup(struct wt *t)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "%s/bgwork.XXXXXX", tmp);
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->image, sizeof(t->image), "%s/rootfs.ext4", t->dir);
    t->ops = (struct engine_launch_ops){ .ctx = &t->vmm, .launch = fake_launch,
                                         .undo = fake_undo, .stop = fake_stop };
    workdisk_launch_wrap(&t->wl, &t->ops);
}

static void wt_teardown(struct wt *t)
{
    const char *argv[] = {"rm", "-rf", t->dir, NULL};
    ck_assert_int_eq(rft_run(argv, NULL), 0);
}

static char *dumpe2fs(const char *path)
{
    const char *argv[] = {"dumpe2fs", "-h", path, NULL};
    char *out = NULL;

    ck_assert_int_eq(rft_run(argv, &out), 0);
    return out;
}

START_TEST(ensure_makes_a_labelled_sparse_ext4)
{
    struct banger_error e = {0};
    struct wt t;
    char path[400], *out, *p;
    struct stat s1, s2;
    bool created = false;

    wt_setup(&t);
    snprintf(path, sizeof(path), "%s/work.ext4", t.dir);
    ck_assert_msg(workdisk_ensure(NULL, path, 96ull << 20, &created, &e) == 0, "%s", e.msg);
    ck_assert(created);
    ck_assert_int_eq(stat(path, &s1), 0);
    ck_assert_int_eq(s1.st_size, 96ll << 20);
    ck_assert_int_lt(s1.st_blocks * 512, 48ll << 20); /* sparse */
    out = dumpe2fs(path);
    ck_assert_msg(strstr(out, "Filesystem volume name:   " BANGER_WORK_LABEL "\n"), "%s", out);
    /* the filesystem spans the whole file */
    p = strstr(out, "Block count:");
    ck_assert_ptr_nonnull(p);
    {
        unsigned long long count = strtoull(p + strlen("Block count:"), NULL, 10);
        unsigned long long bsize = strtoull(strstr(out, "Block size:") + strlen("Block size:"),
                                            NULL, 10);
        ck_assert_uint_eq(count * bsize, 96ull << 20);
    }
    free(out);
    {
        const char *argv[] = {"blkid", "-o", "value", "-s", "LABEL", path, NULL};
        ck_assert_int_eq(rft_run(argv, &out), 0);
        ck_assert_str_eq(out, BANGER_WORK_LABEL "\n");
        free(out);
    }
    {
        const char *argv[] = {"e2fsck", "-n", "-f", path, NULL};
        ck_assert_int_eq(rft_run(argv, NULL), 0);
    }
    /* an existing disk is kept as it is */
    ck_assert_int_eq(workdisk_ensure(NULL, path, 128ull << 20, &created, &e), 0);
    ck_assert(!created);
    ck_assert_int_eq(stat(path, &s2), 0);
    ck_assert_uint_eq(s1.st_ino, s2.st_ino);
    ck_assert_int_eq(s2.st_size, 96ll << 20);

    ck_assert_int_eq(workdisk_remove(path, &e), 0);
    ck_assert(!dtu_exists(path));
    ck_assert_int_eq(workdisk_remove(path, &e), 0);

    /* a failure leaves no file behind */
    snprintf(path, sizeof(path), "%s/no-such-dir/work.ext4", t.dir);
    ck_assert_int_lt(workdisk_ensure(NULL, path, 64ull << 20, NULL, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "work disk"));
    wt_teardown(&t);
}
END_TEST

/* Through the launch wrapper: drive "work", Writeback, kept across
 * stop/start, removed by destroy. */
START_TEST(launch_step_lifecycle)
{
    struct banger_error e = {0};
    struct wt t;
    struct banger_vm *vm;
    char path[700];
    struct stat s1, s2;

    wt_setup(&t);
    vm = rft_vm(t.dir, "0123456789ab", t.image);
    snprintf(path, sizeof(path), "%s/work.ext4", vm->info.state_dir);
    ck_assert_msg(t.ops.launch(t.ops.ctx, vm, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(t.vmm.launches, 1);
    ck_assert_uint_eq(t.vmm.drives_seen, 1); /* the drive is there before the VMM starts */
    ck_assert_uint_eq(vm->contrib.n_drives, 1);
    ck_assert_str_eq(vm->contrib.drives[0].drive_id, BANGER_DRIVE_WORK);
    ck_assert_str_eq(vm->contrib.drives[0].path_on_host, path);
    ck_assert(!vm->contrib.drives[0].is_root_device);
    ck_assert(!vm->contrib.drives[0].is_read_only);
    ck_assert_int_eq(vm->contrib.drives[0].cache, BANGER_DRIVE_CACHE_WRITEBACK);
    ck_assert_int_eq(stat(path, &s1), 0);
    ck_assert_int_eq(s1.st_size, 64ll << 20);

    ck_assert_int_eq(t.ops.stop(t.ops.ctx, vm, &e), 0);
    ck_assert_int_eq(t.vmm.stops, 1);
    ck_assert(dtu_exists(path));
    bg_vm_contrib_reset(vm);
    ck_assert_int_eq(t.ops.launch(t.ops.ctx, vm, &e), 0);
    ck_assert_int_eq(stat(path, &s2), 0);
    ck_assert_uint_eq(s1.st_ino, s2.st_ino);

    /* a failing VMM launch is undone by the engine; the disk stays */
    t.vmm.fail_launch = 1;
    bg_vm_contrib_reset(vm);
    ck_assert_int_eq(t.ops.launch(t.ops.ctx, vm, &e), -EIO);
    ck_assert_int_eq(t.ops.undo(t.ops.ctx, vm, &e), 0);
    ck_assert_int_eq(t.vmm.undos, 1);
    ck_assert(dtu_exists(path));

    {
        struct bg_plugins none = { 0 };
        ck_assert_int_eq(engine_destroy(&none, &t.ops, vm, &e), 0);
    }
    ck_assert(!dtu_exists(path));
    ck_assert_int_eq(t.ops.destroy(t.ops.ctx, vm, &e), 0);
    bg_vm_free(vm);
    wt_teardown(&t);
}
END_TEST

static const char *const fault_points[] = {"workdisk.size", "workdisk.mkfs",
                                           "workdisk.add-drive"};

START_TEST(fault_after_each_substep_leaves_nothing)
{
    struct banger_error e = {0};
    struct wt t;
    struct banger_vm *vm;
    char path[700], tmp[710], want[128];
    int r;

    wt_setup(&t);
    vm = rft_vm(t.dir, "00000000000f", t.image);
    snprintf(path, sizeof(path), "%s/work.ext4", vm->info.state_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    setenv("BANGER_FAULTS", fault_points[_i], 1);
    r = t.ops.launch(t.ops.ctx, vm, &e);
    unsetenv("BANGER_FAULTS");
    ck_assert_int_eq(r, -EIO);
    snprintf(want, sizeof(want), "injected fault at %s", fault_points[_i]);
    ck_assert_msg(strstr(e.msg, want), "%s", e.msg);
    ck_assert_int_eq(t.vmm.launches, 0);
    ck_assert_int_eq(t.ops.undo(t.ops.ctx, vm, &e), 0);
    ck_assert(!dtu_exists(path));
    ck_assert(!dtu_exists(tmp));

    /* next start works; a fault then keeps the existing disk */
    bg_vm_contrib_reset(vm);
    ck_assert_msg(t.ops.launch(t.ops.ctx, vm, &e) == 0, "%s", e.msg);
    bg_vm_contrib_reset(vm);
    setenv("BANGER_FAULTS", "workdisk.add-drive", 1);
    ck_assert_int_eq(t.ops.launch(t.ops.ctx, vm, &e), -EIO);
    unsetenv("BANGER_FAULTS");
    ck_assert(dtu_exists(path));
    bg_vm_free(vm);
    wt_teardown(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("workdisk");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ensure_makes_a_labelled_sparse_ext4);
    tcase_add_test(tc, launch_step_lifecycle);
    tcase_add_loop_test(tc, fault_after_each_substep_leaves_nothing, 0,
                        sizeof(fault_points) / sizeof(fault_points[0]));
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
