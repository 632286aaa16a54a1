/* core/guest without a daemon: known_hosts pinning and the key written into
 * an ext4 image. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/guest.h"
#include "host/host.h"
#include "host/vm.h"
#include "runner/runner.h"
#include "util/fs.h"

static char tmp[64];

static void units_setup(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/bgguest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    char *ssh = fs_join(tmp, "ssh");
    ck_assert_int_eq(mkdir(ssh, 0700), 0);
    free(ssh);
}

static void units_teardown(void)
{
    struct banger_error err = { 0 };
    fs_remove_tree(tmp, &err);
}

static char *units_hosts(void)
{
    char *path = guest_known_hosts_path(tmp);
    char *text = NULL;
    size_t len = 0;
    struct banger_error err = { 0 };
    if (fs_read_all(path, 1 << 20, &text, &len, &err) < 0)
        text = strdup("");
    free(path);
    return text;
}

START_TEST(test_line_names)
{
    ck_assert(guest_hosts_line_names("172.29.0.2,web.vm ssh-ed25519 AAA", "172.29.0.2"));
    ck_assert(guest_hosts_line_names("172.29.0.2,web.vm ssh-ed25519 AAA", "web.vm"));
    ck_assert(!guest_hosts_line_names("172.29.0.2,web.vm ssh-ed25519 AAA", "172.29.0.20"));
    ck_assert(!guest_hosts_line_names("172.29.0.2,web.vm ssh-ed25519 AAA", "we"));
    ck_assert(!guest_hosts_line_names("# 172.29.0.2 comment", "172.29.0.2"));
    ck_assert(!guest_hosts_line_names("172.29.0.3 ssh-ed25519 web.vm", "web.vm"));
}
END_TEST

START_TEST(test_pin_change_forget)
{
    struct banger_error err = { 0 };
    bool now = false;

    ck_assert_int_eq(guest_host_pin(tmp, "web", "172.29.0.2", "ssh-ed25519 AAAA1", &now, &err), 0);
    ck_assert(now);
    ck_assert_int_eq(guest_host_pin(tmp, "db", "172.29.0.3", "ssh-ed25519 BBBB1", &now, &err), 0);
    /* Same key again: accepted, nothing new pinned. */
    ck_assert_int_eq(guest_host_pin(tmp, "web", "172.29.0.2", "ssh-ed25519 AAAA1", &now, &err), 0);
    ck_assert(!now);
    /* A different key for the same VM is refused. */
    ck_assert_int_eq(guest_host_pin(tmp, "web", "172.29.0.2", "ssh-ed25519 ZZZZ", &now, &err),
                     -EKEYREJECTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "host key changed"));
    char *text = units_hosts();
    ck_assert_str_eq(text, "172.29.0.2,web.vm ssh-ed25519 AAAA1\n"
                           "172.29.0.3,db.vm ssh-ed25519 BBBB1\n");
    free(text);
    struct stat st;
    char *path = guest_known_hosts_path(tmp);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    free(path);
    /* Deleting web drops only its entry; the IP can then get a new key. */
    ck_assert_int_eq(guest_host_forget(tmp, "web", "172.29.0.2", &err), 0);
    text = units_hosts();
    ck_assert_str_eq(text, "172.29.0.3,db.vm ssh-ed25519 BBBB1\n");
    free(text);
    ck_assert_int_eq(guest_host_pin(tmp, "new", "172.29.0.2", "ssh-ed25519 CCCC", &now, &err), 0);
    ck_assert(now);
    /* Forgetting something unknown, or with no file, is fine. */
    ck_assert_int_eq(guest_host_forget(tmp, "nothing", "10.0.0.9", &err), 0);
}
END_TEST

/* ssh-keyscan, faked through the runner's hook: its stdout is `units_scan_out`. */
static const char *units_scan_out;

static int units_scan_hook(void *ctx, const char *const *argv, struct banger_run_result *res)
{
    (void)ctx;
    ck_assert_str_eq(argv[0], "ssh-keyscan");
    res->out = strdup(units_scan_out);
    res->out_len = strlen(units_scan_out);
    return 1;
}

static int units_scan(const char *out, char **key)
{
    struct banger_error err = { 0 };
    units_scan_out = out;
    runner_set_hook(units_scan_hook, NULL);
    int r = guest_host_scan("172.29.0.2", key, &err);
    runner_set_hook(NULL, NULL);
    return r;
}

START_TEST(test_scan_takes_only_a_key)
{
    char *key = NULL;
    ck_assert_int_eq(units_scan("# 172.29.0.2:22 SSH-2.0-OpenSSH_9.2p1\n"
                                "172.29.0.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRp+/C= x\r\n", &key), 0);
    ck_assert_str_eq(key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRp+/C=");
    free(key);
    /* What lands in known_hosts is a base64 blob, as ssh-keyscan prints it:
     * an empty one, or one with other bytes in it, is no key (the fuzzer's
     * finds: "#" and a tab inside the blob, nothing after the type). */
    key = NULL;
    ck_assert_int_eq(units_scan("172.29.0.2 ssh-ed25519 AAAAC3Nza#C1lZDI1\n", &key), -EAGAIN);
    ck_assert_int_eq(units_scan("172.29.0.2 ssh-ed25519 AAAA\tmore\n", &key), -EAGAIN);
    ck_assert_int_eq(units_scan("172.29.0.2 ssh-ed25519 \n", &key), -EAGAIN);
    ck_assert_int_eq(units_scan("172.29.0.2 ssh-ed25519  AAAA\n", &key), -EAGAIN);
    ck_assert_ptr_null(key);
    /* A bad line does not hide a good one after it. */
    ck_assert_int_eq(units_scan("172.29.0.2 ssh-ed25519 \x1b[2J\n172.29.0.2 ssh-ed25519 BBBB\n", &key), 0);
    ck_assert_str_eq(key, "ssh-ed25519 BBBB");
    free(key);
}
END_TEST

static char *units_debugfs(const char *disk, const char *request)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    struct banger_error err = { 0 };
    const char *const argv[] = { "debugfs", "-R", request, disk, NULL };
    ck_assert_int_eq(runner_run(argv, NULL, &res, &err), 0);
    char *out = strdup(res.out ? res.out : "");
    runner_result_clear(&res);
    return out;
}

START_TEST(test_setup_and_inject)
{
    struct banger_error err = { 0 };
    /* The identity is made once and then kept. */
    ck_assert_msg(guest_ssh_setup(tmp, 0, &err) == 0, "%s", err.msg);
    char *key = guest_ssh_key_path(tmp, 0);
    struct stat st1, st2;
    ck_assert_int_eq(stat(key, &st1), 0);
    ck_assert_int_eq(st1.st_mode & 0777, 0600);
    ck_assert_int_eq(guest_ssh_setup(tmp, 0, &err), 0);
    ck_assert_int_eq(stat(key, &st2), 0);
    ck_assert_int_eq(st1.st_ino, st2.st_ino);
    free(key);

    char *disk = fs_join(tmp, "work.ext4");
    int fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 16 << 20), 0);
    close(fd);
    const char *const mkfs[] = { "mkfs.ext4", "-q", "-F", disk, NULL };
    ck_assert_msg(runner_run(mkfs, NULL, NULL, &err) == 0, "%s", err.msg);
    /* Twice: the second boot replaces the file. As the daemon does it: as
     * nobody, the disk root's 0600 in a root-only directory. */
    const struct guest_inject_as nobody = { .drop_privileges = true, .uid = 65534, .gid = 65534 };
    ck_assert_msg(guest_inject_key(disk, "ssh-ed25519 AAAAold banger\n", &nobody, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(guest_inject_key(disk, "ssh-ed25519 AAAAnew banger\n", &nobody, &err) == 0,
                  "%s", err.msg);
    /* The disk was only lent: root's again, mode unchanged. */
    ck_assert_int_eq(stat(disk, &st1), 0);
    ck_assert_int_eq(st1.st_uid, 0);
    ck_assert_int_eq(st1.st_mode & 07777, 0600);
    char *text = units_debugfs(disk, "cat /.ssh/authorized_keys");
    ck_assert_str_eq(text, "ssh-ed25519 AAAAnew banger\n");
    free(text);
    text = units_debugfs(disk, "stat /.ssh");
    ck_assert_ptr_nonnull(strstr(text, "Type: directory"));
    ck_assert_ptr_nonnull(strstr(text, "Mode:  0700"));
    ck_assert_ptr_nonnull(strstr(text, "User:     0   Group:     0"));
    free(text);
    text = units_debugfs(disk, "stat /.ssh/authorized_keys");
    ck_assert_ptr_nonnull(strstr(text, "Type: regular"));
    ck_assert_ptr_nonnull(strstr(text, "Mode:  0600"));
    ck_assert_ptr_nonnull(strstr(text, "User:     0   Group:     0"));
    free(text);
    /* The file system stays clean (lesson: modes carry the type bits). */
    const char *const fsck[] = { "e2fsck", "-fn", disk, NULL };
    ck_assert_msg(runner_run(fsck, NULL, NULL, &err) == 0, "%s", err.msg);
    /* No copy of the key was left beside the disk (it went by memfd). */
    char *scratch = fs_join(tmp, "authorized_keys.tmp");
    ck_assert_int_ne(access(scratch, F_OK), 0);
    free(scratch);
    /* An owner's key and root's: both lines, nothing else. */
    ck_assert_msg(guest_inject_key(disk, "ssh-ed25519 AAAAowner banger-uid-1001\n\n"
                                         "ssh-ed25519 AAAAroot banger\n", &nobody, &err) == 0,
                  "%s", err.msg);
    text = units_debugfs(disk, "cat /.ssh/authorized_keys");
    ck_assert_str_eq(text, "ssh-ed25519 AAAAowner banger-uid-1001\nssh-ed25519 AAAAroot banger\n");
    free(text);
    ck_assert_int_eq(guest_inject_key(disk, "not a key\n", &nobody, &err), -EINVAL);
    /* Not an ext4 image: a clear failure. */
    ck_assert_int_lt(guest_inject_key(tmp, "ssh-ed25519 AAAA\n", &nobody, &err), 0);
    free(disk);
}
END_TEST

/* A hostile disk may take over debugfs: what it then runs as, and what it
 * can reach. A stand-in debugfs records its uid and whether the disk is
 * readable by path, then runs the real one. */
/* A stand-in debugfs in a fresh dir others may search: it appends `id -u`,
 * `id -G` and whether it can read `disk` by path to the returned log. */
static char *units_recording_debugfs(const char *disk, char *bin, char **log)
{
    struct banger_error err = { 0 };
    ck_assert_ptr_nonnull(mkdtemp(bin));
    ck_assert_int_eq(chmod(bin, 0755), 0);
    *log = fs_join(bin, "debugfs.log");
    char *wrapper = fs_join(bin, "debugfs");
    int fd = open(*log, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fchmod(fd, 0666), 0);
    close(fd);
    char *text = NULL;
    ck_assert_int_gt(asprintf(&text,
                              "#!/bin/sh\n"
                              "{ id -u; id -G; cat '%s' >/dev/null 2>&1 && echo read-by-path; } >>'%s'\n"
                              "exec debugfs \"$@\"\n", disk, *log), 0);
    ck_assert_int_eq(fs_write_atomic(wrapper, text, strlen(text), 0755, &err), 0);
    free(text);
    return wrapper;
}

static int units_inner_launch(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    (void)vm;
    (void)err;
    *(int *)ctx += 1;
    return 0;
}

/* The daemon's default without a banger-helper user: each VM's injection
 * runs as a uid of that VM's own (base + CID), which no other process has. */
START_TEST(test_launch_injects_as_the_vms_own_uid)
{
    struct banger_error err = { 0 };
    ck_assert_msg(guest_ssh_setup(tmp, 0, &err) == 0, "%s", err.msg);
    char *disk = fs_join(tmp, "work.ext4");
    int fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 16 << 20), 0);
    close(fd);
    const char *const mkfs[] = { "mkfs.ext4", "-q", "-F", disk, NULL };
    ck_assert_msg(runner_run(mkfs, NULL, NULL, &err) == 0, "%s", err.msg);
    char bin[] = "/tmp/bgguest-bin-XXXXXX";
    char *log = NULL;
    char *wrapper = units_recording_debugfs(disk, bin, &log);

    char *vm_state = fs_join(tmp, "vm");
    ck_assert_int_eq(mkdir(vm_state, 0700), 0);
    struct banger_vm_info info = { .struct_size = sizeof(info), .vcpu = 1, .id = "0123456789ab",
                                   .name = "web", .cid = 7, .state_dir = vm_state,
                                   .runtime_dir = vm_state };
    struct banger_vm *vm = NULL;
    ck_assert_msg(bg_vm_new(&info, &vm, &err) == 0, "%s", err.msg);
    struct banger_drive work = { .struct_size = sizeof(work), .drive_id = GUEST_WORK_DRIVE_ID,
                                 .path_on_host = disk };
    ck_assert_int_eq(bg_host_api()->add_drive(vm, &work, &err), 0);

    int launched = 0;
    struct engine_launch_ops ops = { .ctx = &launched, .launch = units_inner_launch };
    struct guest_launch gl;
    const struct guest_inject_as as = { .drop_privileges = true, .per_vm_uid_base = 1500000000u,
                                        .debugfs = wrapper };
    guest_launch_wrap(&gl, tmp, NULL, &as, &ops);
    ck_assert_msg(ops.launch(ops.ctx, vm, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(launched, 1);
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(fs_read_all(log, 1 << 16, &text, &len, &err), 0);
    ck_assert_str_eq(text, "1500000007\n1500000007\n1500000007\n1500000007\n"
                           "1500000007\n1500000007\n");
    free(text);
    guest_launch_done(&gl);
    bg_vm_free(vm);
    fs_remove_tree(bin, &err);
    free(vm_state);
    free(log);
    free(wrapper);
    free(disk);
}
END_TEST

START_TEST(test_debugfs_unprivileged)
{
    struct banger_error err = { 0 };
    char *disk = fs_join(tmp, "work.ext4");
    int fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 16 << 20), 0);
    close(fd);
    const char *const mkfs[] = { "mkfs.ext4", "-q", "-F", disk, NULL };
    ck_assert_msg(runner_run(mkfs, NULL, NULL, &err) == 0, "%s", err.msg);

    char bin[] = "/tmp/bgguest-bin-XXXXXX";
    char *log = NULL;
    char *wrapper = units_recording_debugfs(disk, bin, &log);
    char *text = NULL;

    const struct guest_inject_as as = { .drop_privileges = true, .uid = 65534, .gid = 65534,
                                        .debugfs = wrapper };
    ck_assert_msg(guest_inject_key(disk, "ssh-ed25519 AAAAx banger\n", &as, &err) == 0, "%s",
                  err.msg);
    size_t len = 0;
    ck_assert_int_eq(fs_read_all(log, 1 << 16, &text, &len, &err), 0);
    /* stat, write, read-back: three runs, each as 65534 with no other group. */
    ck_assert_str_eq(text, "65534\n65534\n65534\n65534\n65534\n65534\n");
    free(text);
    text = units_debugfs(disk, "cat /.ssh/authorized_keys");
    ck_assert_str_eq(text, "ssh-ed25519 AAAAx banger\n");
    free(text);
    fs_remove_tree(bin, &err);
    free(log);
    free(wrapper);
    free(disk);
}
END_TEST

/* Each uid has its own pair under ssh/uid-N, root's own, private to root. */
START_TEST(test_key_per_uid)
{
    struct banger_error err = { 0 };
    char *root_key = guest_ssh_key_path(tmp, 0);
    char *a_key = guest_ssh_key_path(tmp, 1001);
    char *b_key = guest_ssh_key_path(tmp, 1002);
    char *want = fs_join(tmp, "ssh/uid-1001/id_ed25519");
    ck_assert_str_eq(a_key, want);
    free(want);
    ck_assert_msg(guest_ssh_setup(tmp, 1001, &err) == 0, "%s", err.msg);
    ck_assert_msg(guest_ssh_setup(tmp, 1002, &err) == 0, "%s", err.msg);
    ck_assert_msg(guest_ssh_setup(tmp, 0, &err) == 0, "%s", err.msg);
    struct stat st;
    char *dir = fs_join(tmp, "ssh/uid-1001");
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(st.st_uid, geteuid());
    ck_assert_int_eq(stat(a_key, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_uid, geteuid());
    free(dir);
    char *a = NULL, *b = NULL, *r = NULL;
    ck_assert_int_eq(fs_read_all(a_key, 1 << 16, &a, NULL, &err), 0);
    ck_assert_int_eq(fs_read_all(b_key, 1 << 16, &b, NULL, &err), 0);
    ck_assert_int_eq(fs_read_all(root_key, 1 << 16, &r, NULL, &err), 0);
    ck_assert_str_ne(a, b);
    ck_assert_str_ne(a, r);
    ck_assert_str_ne(b, r);
    free(a);
    free(b);
    free(r);
    free(root_key);
    free(a_key);
    free(b_key);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("guest-units");
    TCase *tc = tcase_create("units");
    tcase_add_checked_fixture(tc, units_setup, units_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_line_names);
    tcase_add_test(tc, test_pin_change_forget);
    tcase_add_test(tc, test_scan_takes_only_a_key);
    tcase_add_test(tc, test_setup_and_inject);
    tcase_add_test(tc, test_key_per_uid);
    tcase_add_test(tc, test_debugfs_unprivileged);
    tcase_add_test(tc, test_launch_injects_as_the_vms_own_uid);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
