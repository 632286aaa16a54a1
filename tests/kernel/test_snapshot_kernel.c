/* The snapshot capability against a real kernel (device-mapper and loop),
 * run inside the qemu guest by run-kernel-tests.sh. */
#include "config.h"

#include "ktutil.h"
#include "snap-dm.h"
#include "snap-loop.h"

#include "host/host.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONF_RETRIES(n) \
    "plugins = (\"snapshot\"); snapshot = { remove_retries = " #n "; };" \
    " vm_defaults = { disk_size = \"64M\"; overlay_size = \"64M\"; };"

static struct kt_env env;

static void setup_default(void) { kt_env_init(&env, CONF_RETRIES(20)); }
static void setup_two_retries(void) { kt_env_init(&env, CONF_RETRIES(2)); }
static void teardown(void) { kt_env_free(&env); }

static int start_vm(struct banger_vm *vm, struct banger_error *e)
{
    bg_error_clear(e);
    return env.plugin.cap->start(env.plugin.state, vm, BANGER_PHASE_BEFORE_LAUNCH, e);
}

static int stop_vm(struct banger_vm *vm, struct banger_error *e)
{
    bg_error_clear(e);
    return env.plugin.cap->stop(env.plugin.state, vm, e);
}

static void dm_path(struct banger_vm *vm, char *out, size_t len)
{
    snprintf(out, len, "/dev/mapper/banger-%s", vm->info.id);
}

/* Nothing of vm's left on the host: no dm device, no node, no bound loop,
 * no handle. */
static void assert_nothing_left(struct banger_vm *vm)
{
    char name[64], node[96];

    snprintf(name, sizeof(name), "banger-%s", vm->info.id);
    dm_path(vm, node, sizeof(node));
    ck_assert_int_eq(snap_dm_exists(name), 0);
    ck_assert_msg(!dtu_exists(node), "%s still exists", node);
    ck_assert_uint_eq(kt_bound_loops(env.dir), 0);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
}

static int debugfs(const char *dev, const char *req, char **out)
{
    const char *argv[] = {"debugfs", "-w", "-R", req, dev, NULL};
    return kt_run(argv, out);
}

static void e2fsck_clean(const char *dev)
{
    const char *argv[] = {"e2fsck", "-n", "-f", dev, NULL};
    ck_assert_int_eq(kt_run(argv, NULL), 0);
}

START_TEST(writes_land_in_cow_base_untouched)
{
    struct banger_error e = {0};
    struct banger_vm *vm = kt_vm(&env, "00000000000a");
    uint64_t before = dtu_file_hash(env.image);
    char node[96], cow[700], src[700], req[800], *out = NULL;
    struct stat st0, st1;

    ck_assert_msg(start_vm(vm, &e) == 0, "%s", e.msg);
    dm_path(vm, node, sizeof(node));
    ck_assert_uint_eq(vm->contrib.n_drives, 1);
    ck_assert_str_eq(vm->contrib.drives[0].drive_id, BANGER_DRIVE_ROOT);
    ck_assert_str_eq(vm->contrib.drives[0].path_on_host, node);
    ck_assert(vm->contrib.drives[0].is_root_device);
    ck_assert(!vm->contrib.drives[0].is_read_only);
    ck_assert_ptr_nonnull(bg_vm_get_handle(vm, "snapshot.base_loop"));
    ck_assert_ptr_nonnull(bg_vm_get_handle(vm, "snapshot.cow_loop"));
    ck_assert_str_eq(bg_vm_get_handle(vm, "snapshot.dm"), node + strlen("/dev/mapper/"));

    snprintf(cow, sizeof(cow), "%s/overlay.cow", vm->info.state_dir);
    ck_assert_int_eq(stat(cow, &st0), 0);
    ck_assert_int_eq(st0.st_size, 64ll << 20);

    /* the known files read through the snapshot */
    ck_assert_int_eq(debugfs(node, "cat /hello.txt", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "hello from the image"));
    free(out);

    /* write a 2 MiB file through the dm device */
    snprintf(src, sizeof(src), "%s/payload", env.dir);
    {
        char buf[4096];
        int fd = open(src, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        memset(buf, 'z', sizeof(buf));
        for (int i = 0; i < 512; i++)
            ck_assert_int_eq(write(fd, buf, sizeof(buf)), sizeof(buf));
        close(fd);
    }
    snprintf(req, sizeof(req), "write %s /payload", src);
    ck_assert_int_eq(debugfs(node, req, NULL), 0);
    ck_assert_int_eq(debugfs(node, "stat /payload", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "Size: 2097152"));
    free(out);
    e2fsck_clean(node);

    ck_assert_int_eq(stat(cow, &st1), 0);
    ck_assert_int_gt(st1.st_blocks * 512, (long long)(2 << 20));
    ck_assert_uint_eq(dtu_file_hash(env.image), before);

    ck_assert_msg(stop_vm(vm, &e) == 0, "%s", e.msg);
    assert_nothing_left(vm);
    ck_assert_uint_eq(dtu_file_hash(env.image), before);
    ck_assert(dtu_exists(cow));
    ck_assert_int_eq(env.plugin.cap->destroy(env.plugin.state, vm, &e), 0);
    ck_assert(!dtu_exists(cow));
    bg_vm_free(vm);
}
END_TEST

/* The COW survives stop/start; a fresh VM object (daemon restart) stops
 * from handles.json alone. */
START_TEST(persists_across_stop_start)
{
    struct banger_error e = {0};
    struct banger_vm *vm = kt_vm(&env, "00000000000b");
    char node[96], cow[700], *out = NULL;
    struct stat w0, w1;

    ck_assert_msg(start_vm(vm, &e) == 0, "%s", e.msg);
    dm_path(vm, node, sizeof(node));
    ck_assert_int_eq(debugfs(node, "mkdir /kept", NULL), 0);
    snprintf(cow, sizeof(cow), "%s/overlay.cow", vm->info.state_dir);
    ck_assert_int_eq(stat(cow, &w0), 0);
    ck_assert_int_eq(stop_vm(vm, &e), 0);
    assert_nothing_left(vm);

    bg_vm_contrib_reset(vm);
    ck_assert_msg(start_vm(vm, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(debugfs(node, "stat /kept", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "Type: directory"));
    free(out);
    ck_assert_int_eq(stat(cow, &w1), 0);
    ck_assert_uint_eq(w0.st_ino, w1.st_ino);

    /* "daemon restart": a new VM object knows only handles.json */
    bg_vm_free(vm);
    vm = kt_vm(&env, "00000000000b");
    ck_assert_uint_eq(bg_vm_handle_count(vm), 3);
    ck_assert_int_eq(stop_vm(vm, &e), 0);
    assert_nothing_left(vm);
    ck_assert_int_eq(env.plugin.cap->destroy(env.plugin.state, vm, &e), 0);
    ck_assert(!dtu_exists(cow));
    bg_vm_free(vm);
}
END_TEST

static const char *const fault_points[] = {"snapshot.base-loop", "snapshot.cow-loop",
                                           "snapshot.dm-create"};

START_TEST(fault_after_each_substep_rolls_back)
{
    struct banger_error e = {0};
    struct banger_vm *vm = kt_vm(&env, "00000000000c");
    char want[128];
    int r;

    setenv("BANGER_FAULTS", fault_points[_i], 1);
    r = start_vm(vm, &e);
    unsetenv("BANGER_FAULTS");
    ck_assert_int_eq(r, -EIO);
    snprintf(want, sizeof(want), "injected fault at %s", fault_points[_i]);
    ck_assert_msg(strstr(e.msg, want) != NULL, "%s", e.msg);
    /* the engine's rollback of this module is its stop */
    ck_assert_msg(stop_vm(vm, &e) == 0, "%s", e.msg);
    assert_nothing_left(vm);
    /* and the next start works */
    bg_vm_contrib_reset(vm);
    ck_assert_msg(start_vm(vm, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(stop_vm(vm, &e), 0);
    assert_nothing_left(vm);
    bg_vm_free(vm);
}
END_TEST

/* A child that holds `path` open until it reads a byte from `release`. */
static pid_t hold_open(const char *path, int *release_w)
{
    int ready[2], rel[2];
    pid_t pid;
    char c;

    ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(rel, O_CLOEXEC), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            _exit(1);
        if (write(ready[1], "r", 1) != 1 || read(rel[0], &c, 1) < 0)
            _exit(2);
        close(fd);
        _exit(0);
    }
    close(ready[1]);
    close(rel[0]);
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    *release_w = rel[1];
    return pid;
}

static void release(pid_t pid, int release_w)
{
    int status;

    ck_assert_int_eq(write(release_w, "x", 1), 1);
    close(release_w);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

struct stop_job {
    struct banger_vm *vm;
    struct banger_error e;
    int r;
};

static void *stop_thread(void *arg)
{
    struct stop_job *job = arg;
    job->r = stop_vm(job->vm, &job->e);
    return NULL;
}

START_TEST(busy_device_released_during_retries)
{
    struct stop_job job = {0};
    struct banger_error e = {0};
    struct banger_vm *vm = kt_vm(&env, "00000000000d");
    const struct timespec wait = {.tv_sec = 0, .tv_nsec = 300 * 1000000L};
    char node[96];
    pthread_t t;
    int rel;
    pid_t pid;

    ck_assert_msg(start_vm(vm, &e) == 0, "%s", e.msg);
    dm_path(vm, node, sizeof(node));
    pid = hold_open(node, &rel);
    job.vm = vm;
    ck_assert_int_eq(pthread_create(&t, NULL, stop_thread, &job), 0);
    /* Let stop hit EBUSY a few times (its window with 20 retries is ~7 s). */
    nanosleep(&wait, NULL);
    release(pid, rel);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_msg(job.r == 0, "%s", job.e.msg);
    assert_nothing_left(vm);
    bg_vm_free(vm);
}
END_TEST

START_TEST(busy_device_never_released)
{
    struct banger_error e = {0};
    struct banger_vm *vm = kt_vm(&env, "00000000000e");
    char node[96];
    int rel, r;
    pid_t pid;

    ck_assert_msg(start_vm(vm, &e) == 0, "%s", e.msg);
    dm_path(vm, node, sizeof(node));
    pid = hold_open(node, &rel);
    r = stop_vm(vm, &e);
    ck_assert_int_eq(r, -EBUSY);
    ck_assert_msg(strstr(e.msg, "still busy after 2 retries") != NULL, "%s", e.msg);
    ck_assert_ptr_nonnull(strstr(e.msg, node + strlen("/dev/mapper/")));
    /* every handle kept, the device still there */
    ck_assert_uint_eq(bg_vm_handle_count(vm), 3);
    ck_assert(dtu_exists(node));
    release(pid, rel);
    ck_assert_msg(stop_vm(vm, &e) == 0, "%s", e.msg);
    assert_nothing_left(vm);
    bg_vm_free(vm);
}
END_TEST

#define N_PARALLEL 8

struct start_job {
    struct banger_vm *vm;
    struct banger_error e;
    int r;
};

static void *start_thread(void *arg)
{
    struct start_job *job = arg;
    job->r = start_vm(job->vm, &job->e);
    return NULL;
}

START_TEST(concurrent_starts_do_not_race)
{
    struct start_job jobs[N_PARALLEL];
    pthread_t t[N_PARALLEL];
    struct banger_error e = {0};

    for (int i = 0; i < N_PARALLEL; i++) {
        char id[16];
        snprintf(id, sizeof(id), "0000000001%02d", i);
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].vm = kt_vm(&env, id);
    }
    for (int i = 0; i < N_PARALLEL; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, start_thread, &jobs[i]), 0);
    for (int i = 0; i < N_PARALLEL; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < N_PARALLEL; i++) {
        ck_assert_msg(jobs[i].r == 0, "vm %d: %s", i, jobs[i].e.msg);
        ck_assert(dtu_exists(jobs[i].vm->contrib.drives[0].path_on_host));
        for (int k = 0; k < i; k++) {
            ck_assert_str_ne(jobs[i].vm->contrib.drives[0].path_on_host,
                             jobs[k].vm->contrib.drives[0].path_on_host);
            ck_assert_str_ne(bg_vm_get_handle(jobs[i].vm, "snapshot.base_loop"),
                             bg_vm_get_handle(jobs[k].vm, "snapshot.base_loop"));
            ck_assert_str_ne(bg_vm_get_handle(jobs[i].vm, "snapshot.cow_loop"),
                             bg_vm_get_handle(jobs[k].vm, "snapshot.cow_loop"));
            ck_assert_str_ne(bg_vm_get_handle(jobs[i].vm, "snapshot.cow_loop"),
                             bg_vm_get_handle(jobs[k].vm, "snapshot.base_loop"));
        }
    }
    ck_assert_uint_eq(kt_bound_loops(env.dir), 2 * N_PARALLEL);
    for (int i = 0; i < N_PARALLEL; i++) {
        ck_assert_msg(stop_vm(jobs[i].vm, &e) == 0, "%s", e.msg);
        ck_assert_uint_eq(bg_vm_handle_count(jobs[i].vm), 0);
    }
    for (int i = 0; i < N_PARALLEL; i++) {
        assert_nothing_left(jobs[i].vm);
        bg_vm_free(jobs[i].vm);
    }
}
END_TEST

START_TEST(reconcile_reaps_orphans)
{
    struct banger_error e = {0};
    struct banger_vm *live = kt_vm(&env, "00000000000f");
    struct banger_vm *orphan = kt_vm(&env, "0000000000ff");
    char **names = NULL, why[256];

    ck_assert_msg(start_vm(live, &e) == 0, "%s", e.msg);
    ck_assert_msg(start_vm(orphan, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(kt_bound_loops(env.dir), 4);

    ck_assert_msg(env.plugin.cap->reconcile(env.plugin.state, &live, 1, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(snap_dm_exists("banger-0000000000ff"), 0);
    ck_assert(!dtu_exists("/dev/mapper/banger-0000000000ff"));
    ck_assert_int_eq(snap_dm_exists("banger-00000000000f"), 1);
    ck_assert_uint_eq(kt_bound_loops(env.dir), 2);
    ck_assert_int_eq(snap_dm_list("banger-", &names, why, sizeof(why)), 0);
    ck_assert_ptr_nonnull(names[0]);
    ck_assert_str_eq(names[0], "banger-00000000000f");
    ck_assert_ptr_null(names[1]);
    snap_dm_list_free(names);

    /* the orphan's own stop is now a no-op */
    ck_assert_int_eq(stop_vm(orphan, &e), 0);
    ck_assert_uint_eq(bg_vm_handle_count(orphan), 0);
    ck_assert_int_eq(stop_vm(live, &e), 0);
    assert_nothing_left(orphan);
    assert_nothing_left(live);
    bg_vm_free(orphan);
    bg_vm_free(live);
}
END_TEST

START_TEST(second_start_refuses_existing_device)
{
    struct banger_error e = {0};
    struct banger_vm *vm = kt_vm(&env, "000000000010");

    ck_assert_msg(start_vm(vm, &e) == 0, "%s", e.msg);
    bg_vm_contrib_reset(vm);
    ck_assert_int_eq(start_vm(vm, &e), -EEXIST);
    ck_assert_ptr_nonnull(strstr(e.msg, "already exists"));
    ck_assert_int_eq(stop_vm(vm, &e), 0);
    assert_nothing_left(vm);
    bg_vm_free(vm);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("snapshot-kernel");
    TCase *tc = tcase_create("dm+loop");
    TCase *busy = tcase_create("busy");
    SRunner *sr;
    int failed;

    if (!getenv("BANGER_KTEST_GUEST"))
        fprintf(stderr, "note: meant to run inside the kernel harness (run-kernel-tests.sh)\n");
    tcase_add_checked_fixture(tc, setup_default, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, writes_land_in_cow_base_untouched);
    tcase_add_test(tc, persists_across_stop_start);
    tcase_add_loop_test(tc, fault_after_each_substep_rolls_back, 0,
                        (int)(sizeof(fault_points) / sizeof(fault_points[0])));
    tcase_add_test(tc, busy_device_released_during_retries);
    tcase_add_test(tc, concurrent_starts_do_not_race);
    tcase_add_test(tc, reconcile_reaps_orphans);
    tcase_add_test(tc, second_start_refuses_existing_device);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(busy, setup_two_retries, teardown);
    tcase_set_timeout(busy, 240);
    tcase_add_test(busy, busy_device_never_released);
    suite_add_tcase(s, busy);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
