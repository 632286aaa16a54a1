/* The reflink capability on real filesystems made by the test: xfs
 * (reflink=1) and btrfs share the image's extents (FIEMAP says SHARED),
 * ext4 gets a sparse copy with a warning naming the cost; the root is kept
 * across stop/start and removed on destroy; writes never reach the image;
 * every fault point and a crash mid-copy leave nothing behind. */
#include "config.h"

#include "rftutil.h"
#include "reflink-copy.h"

#include "host/host.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE_BYTES (64ull << 20)
#define IMAGE_DATA_MIB 16u

struct rt {
    struct rft_fs fs;
    struct rft_module mod;
    char image[400];
    char vms[400];
};

static void rt_setup(struct rt *t, const char *fstype, const char *reflink_group)
{
    struct banger_error e = {0};
    char conf[1024];

    rft_fs_make(&t->fs, fstype);
    snprintf(t->image, sizeof(t->image), "%s/rootfs.ext4", t->fs.mnt);
    snprintf(t->vms, sizeof(t->vms), "%s/vms", t->fs.mnt);
    ck_assert_int_eq(mkdir(t->vms, 0700), 0);
    rft_make_image(t->image, IMAGE_BYTES, IMAGE_DATA_MIB);
    snprintf(conf, sizeof(conf), "state_dir = \"%s\";\nreflink = { %s };\n", t->fs.mnt,
             reflink_group ? reflink_group : "");
    ck_assert_msg(rft_module_load(&t->mod, conf, &e) == 0, "%s", bg_error_text(&e));
}

static void rt_teardown(struct rt *t)
{
    const char *argv[] = {"rm", "-rf", t->vms, t->image, NULL};

    rft_module_free(&t->mod);
    ck_assert_int_eq(rft_run(argv, NULL), 0);
    rft_fs_free(&t->fs);
}

static int rt_start(struct rt *t, struct banger_vm *vm, struct banger_error *e)
{
    const struct banger_capability *cap = t->mod.plugin.cap;
    int r;

    bg_vm_contrib_reset(vm);
    memset(e, 0, sizeof(*e));
    r = cap->start(t->mod.plugin.state, vm, BANGER_PHASE_BEFORE_LAUNCH, e);
    if (r < 0) {
        /* what the engine does: rollback, which is this module's stop */
        struct banger_error u = {0};
        ck_assert_msg(cap->stop(t->mod.plugin.state, vm, &u) == 0, "%s", u.msg);
    }
    return r;
}

static int rt_stop(struct rt *t, struct banger_vm *vm, struct banger_error *e)
{
    memset(e, 0, sizeof(*e));
    return t->mod.plugin.cap->stop(t->mod.plugin.state, vm, e);
}

/* Every extent of `path` is shared with another file. */
static bool all_extents_shared(const char *path, unsigned *n_extents)
{
    size_t sz = sizeof(struct fiemap) + 512 * sizeof(struct fiemap_extent);
    struct fiemap *fm = calloc(1, sz);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool shared = true;

    ck_assert_int_ge(fd, 0);
    fm->fm_length = FIEMAP_MAX_OFFSET;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = 512;
    ck_assert_int_eq(ioctl(fd, FS_IOC_FIEMAP, fm), 0);
    for (unsigned i = 0; i < fm->fm_mapped_extents; i++)
        if (!(fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_SHARED))
            shared = false;
    *n_extents = fm->fm_mapped_extents;
    close(fd);
    free(fm);
    return shared;
}

static void write_into(const char *path, off_t at, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, text, strlen(text), at), (ssize_t)strlen(text));
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
}

/* The whole life of one VM's root on `fstype`. */
static void lifecycle(const char *fstype, bool expect_clone)
{
    struct banger_error e = {0};
    struct rt t;
    struct banger_vm *vm;
    char root[700], logf[700], *log;
    uint64_t image_hash;
    struct stat s0, s1;
    unsigned extents = 0;

    rt_setup(&t, fstype, NULL);
    snprintf(logf, sizeof(logf), "%s/daemon.log", t.fs.dir);
    rft_capture_stderr(logf);
    image_hash = dtu_file_hash(t.image);
    vm = rft_vm(t.vms, "0123456789ab", t.image);
    snprintf(root, sizeof(root), "%s/root.ext4", vm->info.state_dir);

    ck_assert_msg(rt_start(&t, vm, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(vm->contrib.n_drives, 1);
    ck_assert_str_eq(vm->contrib.drives[0].drive_id, BANGER_DRIVE_ROOT);
    ck_assert_str_eq(vm->contrib.drives[0].path_on_host, root);
    ck_assert(vm->contrib.drives[0].is_root_device);
    ck_assert(!vm->contrib.drives[0].is_read_only);
    ck_assert_int_eq(vm->contrib.drives[0].cache, BANGER_DRIVE_CACHE_WRITEBACK);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);

    /* same bytes, same size */
    ck_assert_int_eq(stat(root, &s0), 0);
    ck_assert_int_eq(s0.st_size, (off_t)IMAGE_BYTES);
    ck_assert_uint_eq(dtu_file_hash(root), image_hash);
    log = rft_captured();
    if (expect_clone) {
        ck_assert_msg(all_extents_shared(root, &extents), "%s: copy has unshared extents",
                      fstype);
        ck_assert_uint_gt(extents, 0);
        ck_assert_msg(strstr(log, "cloned from") != NULL, "%s", log);
        ck_assert_msg(strstr(log, "cannot clone") == NULL, "%s", log);
    } else {
        /* sparse: the copy allocates what the image does, not its size */
        ck_assert_uint_le(rft_allocated(root), rft_allocated(t.image) + (1u << 20));
        ck_assert_uint_lt(rft_allocated(root), IMAGE_BYTES / 2);
        ck_assert_msg(strstr(log, "cannot clone files (reflink)") && strstr(log, "bytes written"),
                      "%s", log);
    }
    free(log);

    /* the guest writes into its root: the image never changes */
    write_into(root, 1 << 20, "written by the guest");
    write_into(root, 40 << 20, "and more");
    ck_assert_uint_eq(dtu_file_hash(t.image), image_hash);
    ck_assert_uint_ne(dtu_file_hash(root), image_hash);

    /* stop: idempotent; the root is kept and reused on the next start */
    ck_assert_int_eq(rt_stop(&t, vm, &e), 0);
    ck_assert_int_eq(rt_stop(&t, vm, &e), 0);
    ck_assert(dtu_exists(root));
    ck_assert_msg(rt_start(&t, vm, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(stat(root, &s1), 0);
    ck_assert_uint_eq(s0.st_ino, s1.st_ino);
    ck_assert_uint_ne(dtu_file_hash(root), image_hash);
    {
        char *out = NULL;
        const char *argv[] = {"e2fsck", "-n", "-f", t.image, NULL};
        ck_assert_int_eq(rft_run(argv, &out), 0);
        free(out);
    }

    /* "daemon restart": a fresh VM object stops from handles.json alone */
    bg_vm_free(vm);
    vm = rft_vm(t.vms, "0123456789ab", t.image);
    ck_assert_int_eq(rt_stop(&t, vm, &e), 0);
    ck_assert_int_eq(t.mod.plugin.cap->destroy(t.mod.plugin.state, vm, &e), 0);
    ck_assert(!dtu_exists(root));
    ck_assert_int_eq(t.mod.plugin.cap->destroy(t.mod.plugin.state, vm, &e), 0);
    ck_assert_uint_eq(dtu_file_hash(t.image), image_hash);
    bg_vm_free(vm);
    rt_teardown(&t);
}

START_TEST(xfs_root_is_a_reflink)
{
    lifecycle("xfs", true);
}
END_TEST

START_TEST(btrfs_root_is_a_reflink)
{
    lifecycle("btrfs", true);
}
END_TEST

START_TEST(ext4_root_is_a_sparse_copy)
{
    lifecycle("ext4", false);
}
END_TEST

/* The copy takes no space on a reflink filesystem. */
START_TEST(xfs_clone_takes_no_space)
{
    struct rt t;
    char dst[700], why[256];
    struct bg_copy_stats stats;
    unsigned long long used_before, used_after;

    rt_setup(&t, "xfs", NULL);
    snprintf(dst, sizeof(dst), "%s/copy", t.vms);
    {
        char *out = NULL;
        const char *argv[] = {"df", "-B1", "--output=used", t.fs.mnt, NULL};
        ck_assert_int_eq(rft_run(argv, &out), 0);
        used_before = strtoull(strchr(out, '\n') + 1, NULL, 10);
        free(out);
    }
    ck_assert_msg(bg_copy_file(t.image, dst, 0600, false, &stats, why, sizeof(why)) == 0, "%s",
                  why);
    ck_assert(stats.cloned);
    ck_assert_uint_eq(stats.bytes_copied, 0);
    sync();
    {
        char *out = NULL;
        const char *argv[] = {"df", "-B1", "--output=used", t.fs.mnt, NULL};
        ck_assert_int_eq(rft_run(argv, &out), 0);
        used_after = strtoull(strchr(out, '\n') + 1, NULL, 10);
        free(out);
    }
    /* 16 MiB of image data; the clone may cost some metadata, not the data */
    ck_assert_msg(used_after < used_before + (2u << 20), "used %llu -> %llu", used_before,
                  used_after);
    unlink(dst);
    rt_teardown(&t);
}
END_TEST

START_TEST(require_reflink_refuses_the_slow_copy)
{
    struct banger_error e = {0};
    struct rt t;
    struct banger_vm *vm;
    char root[700];

    rt_setup(&t, "ext4", "require_reflink = true;");
    vm = rft_vm(t.vms, "00000000000r", t.image);
    ck_assert_int_eq(rt_start(&t, vm, &e), -EOPNOTSUPP);
    ck_assert_msg(strstr(e.msg, "require_reflink") && strstr(e.msg, "cannot clone"), "%s", e.msg);
    snprintf(root, sizeof(root), "%s/root.ext4", vm->info.state_dir);
    ck_assert(!dtu_exists(root));
    strcat(root, ".tmp");
    ck_assert(!dtu_exists(root));
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
    bg_vm_free(vm);
    rt_teardown(&t);
}
END_TEST

static const char *const fault_points[] = {"reflink.copy", "reflink.add-drive"};

/* A fault after each sub-step: the start fails, the rollback (stop) leaves
 * no file and no handle, and the next start works. On xfs and ext4. */
static void fault_rolls_back(const char *fstype, const char *point)
{
    struct banger_error e = {0};
    struct rt t;
    struct banger_vm *vm;
    char root[700], partial[710], want[128];
    uint64_t image_hash;
    int r;

    rt_setup(&t, fstype, NULL);
    image_hash = dtu_file_hash(t.image);
    vm = rft_vm(t.vms, "00000000000f", t.image);
    snprintf(root, sizeof(root), "%s/root.ext4", vm->info.state_dir);
    snprintf(partial, sizeof(partial), "%s.tmp", root);
    setenv("BANGER_FAULTS", point, 1);
    r = rt_start(&t, vm, &e);
    unsetenv("BANGER_FAULTS");
    ck_assert_int_eq(r, -EIO);
    snprintf(want, sizeof(want), "injected fault at %s", point);
    ck_assert_msg(strstr(e.msg, want) != NULL, "%s", e.msg);
    ck_assert(!dtu_exists(root));
    ck_assert(!dtu_exists(partial));
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
    ck_assert_uint_eq(dtu_file_hash(t.image), image_hash);

    ck_assert_msg(rt_start(&t, vm, &e) == 0, "%s", e.msg);
    ck_assert(dtu_exists(root));
    /* a fault on a later start never removes the VM's existing root */
    setenv("BANGER_FAULTS", "reflink.add-drive", 1);
    r = rt_start(&t, vm, &e);
    unsetenv("BANGER_FAULTS");
    ck_assert_int_eq(r, -EIO);
    ck_assert(dtu_exists(root));
    ck_assert_int_eq(t.mod.plugin.cap->destroy(t.mod.plugin.state, vm, &e), 0);
    ck_assert(!dtu_exists(root));
    bg_vm_free(vm);
    rt_teardown(&t);
}

START_TEST(fault_xfs)
{
    fault_rolls_back("xfs", fault_points[_i]);
}
END_TEST

START_TEST(fault_ext4)
{
    fault_rolls_back("ext4", fault_points[_i]);
}
END_TEST

/* A crash during the copy leaves root.ext4.tmp and its handle: a later stop
 * (a new daemon, handles.json only) removes it; a handle naming anything
 * else is refused, not removed. */
START_TEST(stop_removes_a_crashed_copy_from_handles)
{
    struct banger_error e = {0};
    struct rt t;
    struct banger_vm *vm;
    char partial[700], other[700];

    rt_setup(&t, "ext4", NULL);
    vm = rft_vm(t.vms, "00000000000c", t.image);
    snprintf(partial, sizeof(partial), "%s/root.ext4.tmp", vm->info.state_dir);
    close(open(partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    ck_assert_int_eq(bg_vm_set_handle(vm, "reflink.partial", partial, &e), 0);
    bg_vm_free(vm);

    vm = rft_vm(t.vms, "00000000000c", t.image);
    ck_assert_int_eq(rt_stop(&t, vm, &e), 0);
    ck_assert(!dtu_exists(partial));
    ck_assert_ptr_null(bg_vm_get_handle(vm, "reflink.partial"));
    ck_assert_int_eq(rt_stop(&t, vm, &e), 0);

    snprintf(other, sizeof(other), "%s/precious", vm->info.state_dir);
    close(open(other, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    ck_assert_int_eq(bg_vm_set_handle(vm, "reflink.partial", other, &e), 0);
    ck_assert_int_eq(rt_stop(&t, vm, &e), -EINVAL);
    ck_assert(dtu_exists(other));
    unlink(other);
    bg_vm_free(vm);
    rt_teardown(&t);
}
END_TEST

START_TEST(start_errors_name_the_cause)
{
    struct banger_error e = {0};
    struct rt t;
    struct banger_vm *vm;
    char bad[700];

    rt_setup(&t, "ext4", NULL);
    snprintf(bad, sizeof(bad), "%s/missing.ext4", t.fs.mnt);
    vm = rft_vm(t.vms, "00000000000e", bad);
    ck_assert_int_eq(rt_start(&t, vm, &e), -ENOENT);
    ck_assert_msg(strstr(e.msg, "missing.ext4") && strstr(e.msg, "missing"), "%s", e.msg);
    bg_vm_free(vm);
    snprintf(bad, sizeof(bad), "%s/not-ext4", t.fs.mnt);
    {
        FILE *f = fopen(bad, "we");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 1000; i++)
            fputs("not a filesystem\n", f);
        fclose(f);
    }
    vm = rft_vm(t.vms, "00000000000d", bad);
    ck_assert_int_eq(rt_start(&t, vm, &e), -EINVAL);
    ck_assert_msg(strstr(e.msg, "not an ext4 filesystem"), "%s", e.msg);
    bg_vm_free(vm);
    rt_teardown(&t);
}
END_TEST

/* The image on another filesystem than the VM's state dir: no clone is
 * possible across filesystems, the sparse copy still works. */
START_TEST(image_on_another_filesystem_is_copied)
{
    struct banger_error e = {0};
    struct rt t;
    struct banger_vm *vm;
    char other[400], root[700];

    rt_setup(&t, "xfs", NULL);
    snprintf(other, sizeof(other), "%s/other.ext4", t.fs.dir); /* on TMPDIR, not the xfs */
    rft_make_image(other, 32ull << 20, 2);
    vm = rft_vm(t.vms, "00000000000x", other);
    ck_assert_msg(rt_start(&t, vm, &e) == 0, "%s", e.msg);
    snprintf(root, sizeof(root), "%s/root.ext4", vm->info.state_dir);
    ck_assert_uint_eq(dtu_file_hash(root), dtu_file_hash(other));
    ck_assert_uint_lt(rft_allocated(root), 16ull << 20);
    ck_assert_int_eq(t.mod.plugin.cap->destroy(t.mod.plugin.state, vm, &e), 0);
    unlink(other);
    bg_vm_free(vm);
    rt_teardown(&t);
}
END_TEST

/* Doctor's row: PASS on xfs, WARN on ext4, FAIL there with require_reflink. */
static void doctor_says(const char *fstype, const char *group, enum banger_doctor_status want)
{
    struct banger_doctor d;
    struct rt t;

    rt_setup(&t, fstype, group);
    bg_doctor_init(&d);
    ck_assert_int_eq(t.mod.plugin.cap->doctor(t.mod.plugin.state, &d), 0);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_msg(d.rows[0].status == want, "%s: %s", d.rows[0].check, d.rows[0].detail);
    ck_assert_ptr_nonnull(strstr(d.rows[0].detail, t.fs.mnt));
    bg_doctor_done(&d);
    rt_teardown(&t);
}

START_TEST(doctor_rows)
{
    doctor_says("xfs", NULL, BANGER_DOCTOR_PASS);
    doctor_says("ext4", NULL, BANGER_DOCTOR_WARN);
    doctor_says("ext4", "require_reflink = true;", BANGER_DOCTOR_FAIL);
}
END_TEST

START_TEST(config_validation)
{
    struct banger_error e = {0};
    struct rft_module m;

    ck_assert_int_eq(rft_module_load(&m, "reflink = { require_reflink = true; };\n", &e), 0);
    rft_module_free(&m);
    ck_assert_int_eq(rft_module_load(&m, "reflink = { copy = true; };\n", &e), -EINVAL);
    ck_assert_msg(strstr(e.msg, "test.conf:2") && strstr(e.msg, "copy"), "%s", e.msg);
    rft_module_free(&m);
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(rft_module_load(&m, "reflink = { require_reflink = \"yes\"; };\n", &e),
                     -EINVAL);
    ck_assert_msg(strstr(e.msg, "require_reflink"), "%s", e.msg);
    rft_module_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reflink");
    TCase *tc = tcase_create("filesystems");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, xfs_root_is_a_reflink);
    tcase_add_test(tc, btrfs_root_is_a_reflink);
    tcase_add_test(tc, ext4_root_is_a_sparse_copy);
    tcase_add_test(tc, xfs_clone_takes_no_space);
    tcase_add_test(tc, require_reflink_refuses_the_slow_copy);
    tcase_add_loop_test(tc, fault_xfs, 0, sizeof(fault_points) / sizeof(fault_points[0]));
    tcase_add_loop_test(tc, fault_ext4, 0, sizeof(fault_points) / sizeof(fault_points[0]));
    tcase_add_test(tc, stop_removes_a_crashed_copy_from_handles);
    tcase_add_test(tc, start_errors_name_the_cause);
    tcase_add_test(tc, image_on_another_filesystem_is_copied);
    tcase_add_test(tc, doctor_rows);
    tcase_add_test(tc, config_validation);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
