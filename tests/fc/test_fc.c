/* Firecracker driver (core/fc) against fc-double.
 *
 * Each test makes its own state and runtime dirs under one base dir. The VMMs
 * the driver spawns are detached (double fork, own session), so a failing
 * test cannot take them down with it: after the run, main() kills every
 * process whose command line names the base dir, then removes the dir. main()
 * is a child subreaper so that the exited VMMs are reaped here. */
#include "config.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "fc/fc.h"
#include "host/host.h"
#include "host/vm.h"
#include "util/fs.h"

#define T_ID "0123456789ab"
#define T_WAIT_MS 10000 /* upper bound on waits; never asserted as a speed */

static char t_base[32];
static char t_state[80];
static char t_run[80];
static char t_record[96];
static char t_sock[96];

static void t_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A fresh pair of dirs per test (each test runs in its own forked child). */
static void t_setup(void)
{
    char tmpl[64];
    snprintf(tmpl, sizeof(tmpl), "%s/tXXXXXX", t_base);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    snprintf(t_state, sizeof(t_state), "%s/state", tmpl);
    snprintf(t_run, sizeof(t_run), "%s/run", tmpl);
    snprintf(t_record, sizeof(t_record), "%s/record.jsonl", tmpl);
    snprintf(t_sock, sizeof(t_sock), "%s/api.sock", t_run);
    ck_assert_int_eq(mkdir(t_state, 0700), 0);
    ck_assert_int_eq(mkdir(t_run, 0700), 0);
    setenv("FC_DOUBLE_RECORD", t_record, 1);
}

static struct banger_vm *t_vm(void)
{
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .vcpu = 2, .id = T_ID, .name = "web",
        .ip = "172.29.0.2", .mac = "06:00:ac:1d:00:02", .gateway = "172.29.0.1",
        .prefix_len = 24, .cid = 3, .memory_mib = 256, .state_dir = t_state,
        .runtime_dir = t_run, .rootfs_path = "/images/rootfs.ext4",
        .kernel_path = "/images/vmlinux", .initrd_path = "/images/initrd.img",
        .bridge = "br-banger",
    };
    struct banger_vm *vm = NULL;
    struct banger_error e = { 0 };
    ck_assert_msg(bg_vm_new(&info, &vm, &e) == 0, "%s", bg_error_text(&e));
    return vm;
}

/* The contributions the before-launch capabilities would make. */
static void t_contribute(struct banger_vm *vm)
{
    const struct banger_host_api *h = bg_host_api();
    struct banger_error e = { 0 };
    struct banger_drive root = { .struct_size = sizeof(root), .is_root_device = true,
                                 .drive_id = BANGER_DRIVE_ROOT,
                                 .path_on_host = "/dev/mapper/bg-root" };
    struct banger_drive work = { .struct_size = sizeof(work), .drive_id = BANGER_DRIVE_WORK,
                                 .path_on_host = "/var/lib/banger/vms/x/work.ext4",
                                 .cache = BANGER_DRIVE_CACHE_WRITEBACK };
    struct banger_net_iface net = { .struct_size = sizeof(net), .iface_id = "eth0",
                                    .host_dev_name = "bgtap0",
                                    .guest_mac = "06:00:ac:1d:00:02" };
    char uds[200];
    snprintf(uds, sizeof(uds), "%s/vsock.sock", t_run);
    ck_assert_int_eq(h->add_drive(vm, &root, &e), 0);
    ck_assert_int_eq(h->add_drive(vm, &work, &e), 0);
    ck_assert_int_eq(h->set_net_iface(vm, &net, &e), 0);
    ck_assert_int_eq(h->set_vsock(vm, 3, uds, &e), 0);
    ck_assert_int_eq(h->add_kernel_arg(vm, "ip=172.29.0.2::172.29.0.1:255.255.255.0::eth0:off",
                                       &e), 0);
    ck_assert_int_eq(h->add_kernel_arg(vm, "quiet", &e), 0);
}

static struct fc_driver t_driver(void)
{
    return (struct fc_driver){ .firecracker_bin = FC_DOUBLE, .stop_grace_ms = 60000 };
}

static int t_launch(const struct fc_driver *drv, struct banger_vm *vm)
{
    struct banger_error e = { 0 };
    int r = fc_launch(drv, vm, &e);
    ck_assert_msg(r == 0, "launch: %s", bg_error_text(&e));
    return r;
}

static void t_kill(struct banger_vm *vm)
{
    struct banger_error e = { 0 };
    ck_assert_msg(fc_kill(vm, SIGKILL, &e) == 0, "kill: %s", bg_error_text(&e));
}

static bool t_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Recorded requests as "METHOD PATH BODY" lines, body re-encoded compactly. */
static char *t_recorded(void)
{
    char *text = NULL;
    struct banger_error e = { 0 };
    ck_assert_msg(fs_read_all(t_record, 1 << 20, &text, NULL, &e) == 0, "%s",
                  bg_error_text(&e));
    size_t cap = strlen(text) * 2 + 16, len = 0;
    char *out = calloc(1, cap);
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        ck_assert_ptr_nonnull(j);
        const cJSON *m = cJSON_GetObjectItem(j, "method"), *p = cJSON_GetObjectItem(j, "path");
        char *body = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "body"));
        len += (size_t)snprintf(out + len, cap - len, "%s %s %s\n", m->valuestring,
                                p->valuestring, body);
        cJSON_free(body);
        cJSON_Delete(j);
    }
    free(text);
    return out;
}

static pid_t t_pid_of_vm(void)
{
    return fc_find_pid(t_sock, 0);
}

/* Poll until no Firecracker serves the test socket. */
static bool t_wait_gone(void)
{
    for (int i = 0; i < T_WAIT_MS / 10; i++) {
        if (t_pid_of_vm() == 0)
            return true;
        t_sleep_ms(10);
    }
    return false;
}

START_TEST(test_launch_exact_bodies_and_graceful_stop)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    t_contribute(vm);
    t_launch(&drv, vm);

    char *rec = t_recorded();
    char expected[2048];
    snprintf(expected, sizeof(expected),
             "PUT /machine-config {\"vcpu_count\":2,\"mem_size_mib\":256}\n"
             "PUT /boot-source {\"kernel_image_path\":\"/images/vmlinux\","
             "\"initrd_path\":\"/images/initrd.img\",\"boot_args\":\"console=ttyS0 reboot=k "
             "panic=1 pci=off ip=172.29.0.2::172.29.0.1:255.255.255.0::eth0:off quiet\"}\n"
             "PUT /drives/root {\"drive_id\":\"root\",\"path_on_host\":"
             "\"/dev/mapper/bg-root\",\"is_root_device\":true,\"is_read_only\":false}\n"
             "PUT /drives/work {\"drive_id\":\"work\",\"path_on_host\":"
             "\"/var/lib/banger/vms/x/work.ext4\",\"is_root_device\":false,"
             "\"is_read_only\":false,\"cache_type\":\"Writeback\"}\n"
             "PUT /network-interfaces/eth0 {\"iface_id\":\"eth0\",\"host_dev_name\":\"bgtap0\","
             "\"guest_mac\":\"06:00:ac:1d:00:02\"}\n"
             "PUT /vsock {\"guest_cid\":3,\"uds_path\":\"%s/vsock.sock\"}\n"
             "PUT /actions {\"action_type\":\"InstanceStart\"}\n",
             t_run);
    ck_assert_str_eq(rec, expected);
    free(rec);

    /* Handles on disk, pid and socket agree with the live process. */
    char *hpath = NULL, *text = NULL;
    hpath = fs_join(t_state, "handles.json");
    ck_assert_int_eq(fs_read_all(hpath, 1 << 16, &text, NULL, &e), 0);
    cJSON *h = cJSON_Parse(text);
    char pid_text[24];
    snprintf(pid_text, sizeof(pid_text), "%d", vm->vmm_pid);
    ck_assert_str_eq(cJSON_GetObjectItem(h, FC_HANDLE_PID)->valuestring, pid_text);
    ck_assert_str_eq(cJSON_GetObjectItem(h, FC_HANDLE_API_SOCK)->valuestring, t_sock);
    cJSON_Delete(h);
    free(text);
    free(hpath);
    ck_assert_int_eq(t_pid_of_vm(), vm->vmm_pid);
    ck_assert_int_eq(bg_host_api()->vmm_pid(vm), vm->vmm_pid);

    /* A 60 s grace and a 30 s test timeout: only Ctrl-Alt-Del can end it in time. */
    ck_assert_msg(fc_stop(&drv, vm, drv.stop_grace_ms, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(t_pid_of_vm(), 0);
    ck_assert_int_eq(vm->vmm_pid, 0);
    ck_assert(!t_exists(t_sock));
    ck_assert(!t_exists(vm->contrib.vsock_uds));
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_PID));
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_API_SOCK));
    rec = t_recorded();
    ck_assert_ptr_nonnull(strstr(rec, "PUT /actions {\"action_type\":\"SendCtrlAltDel\"}\n"));
    free(rec);
    /* Stopping again is a no-op. */
    ck_assert_int_eq(fc_stop(&drv, vm, drv.stop_grace_ms, &e), 0);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_minimal_config_bodies)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    free((char *)vm->info.initrd_path);
    vm->info.initrd_path = NULL;
    t_launch(&drv, vm);
    char *rec = t_recorded();
    ck_assert_str_eq(rec, "PUT /machine-config {\"vcpu_count\":2,\"mem_size_mib\":256}\n"
                          "PUT /boot-source {\"kernel_image_path\":\"/images/vmlinux\","
                          "\"boot_args\":\"console=ttyS0 reboot=k panic=1 pci=off\"}\n"
                          "PUT /actions {\"action_type\":\"InstanceStart\"}\n");
    free(rec);
    t_kill(vm);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_failing_config_call_then_undo)
{
    struct fc_driver drv = t_driver();
    struct engine_launch_ops ops;
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    setenv("FC_DOUBLE_FAIL", "PUT /drives/root", 1);
    t_contribute(vm);
    fc_driver_launch_ops(&drv, &ops);
    ck_assert_int_lt(ops.launch(ops.ctx, vm, &e), 0);
    ck_assert_str_eq(bg_error_text(&e), "firecracker: PUT /drives/root: injected failure");
    ck_assert_int_ne(t_pid_of_vm(), 0);

    struct banger_error u = { 0 };
    ck_assert_msg(ops.undo(ops.ctx, vm, &u) == 0, "%s", bg_error_text(&u));
    ck_assert_int_eq(t_pid_of_vm(), 0);
    ck_assert(!t_exists(t_sock));
    ck_assert(!t_exists(vm->contrib.vsock_uds));
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_PID));
    /* Undo of nothing is fine too. */
    ck_assert_int_eq(ops.undo(ops.ctx, vm, &u), 0);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_failing_instance_start)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    setenv("FC_DOUBLE_FAIL", "PUT /actions InstanceStart", 1);
    ck_assert_int_lt(fc_launch(&drv, vm, &e), 0);
    ck_assert_str_eq(bg_error_text(&e),
                     "firecracker: PUT /actions InstanceStart: injected failure");
    t_kill(vm);
    ck_assert_int_eq(t_pid_of_vm(), 0);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_fault_points_then_undo)
{
    static const char *const points[] = { "fc.configure", "fc.start" };
    for (size_t i = 0; i < 2; i++) {
        struct fc_driver drv = t_driver();
        struct banger_vm *vm = t_vm();
        struct banger_error e = { 0 };
        char want[64];
        setenv("BANGER_FAULTS", points[i], 1);
        t_contribute(vm);
        ck_assert_int_eq(fc_launch(&drv, vm, &e), -EIO);
        snprintf(want, sizeof(want), "injected fault at %s", points[i]);
        ck_assert_str_eq(bg_error_text(&e), want);
        ck_assert_int_eq(t_pid_of_vm(), vm->vmm_pid);
        ck_assert_msg(fc_kill(vm, 0, &e) == 0, "%s", bg_error_text(&e));
        ck_assert_int_eq(t_pid_of_vm(), 0);
        ck_assert(!t_exists(t_sock));
        ck_assert(!t_exists(vm->contrib.vsock_uds));
        bg_vm_free(vm);
    }
    unsetenv("BANGER_FAULTS");
}
END_TEST

START_TEST(test_stop_without_launch_is_a_no_op)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    char *hpath = fs_join(t_state, "handles.json");
    ck_assert_int_eq(fc_stop(&drv, vm, 1000, &e), 0);
    ck_assert_int_eq(fc_kill(vm, SIGKILL, &e), 0);
    ck_assert(!t_exists(hpath));
    free(hpath);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_stop_falls_back_to_kill)
{
    static const char *const extra[] = { "--ignore-ctrl-alt-del", NULL };
    struct fc_driver drv = t_driver();
    drv.extra_args = extra;
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    t_launch(&drv, vm);
    pid_t pid = vm->vmm_pid;
    ck_assert_msg(fc_stop(&drv, vm, 300, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(fc_pid_exited(pid));
    ck_assert_int_eq(t_pid_of_vm(), 0);
    ck_assert(!t_exists(t_sock));
    char *rec = t_recorded();
    ck_assert_ptr_nonnull(strstr(rec, "PUT /actions {\"action_type\":\"SendCtrlAltDel\"}\n"));
    free(rec);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_engine_stop_through_ops)
{
    static const char *const extra[] = { "--ignore-ctrl-alt-del", NULL };
    struct fc_driver drv = t_driver();
    drv.extra_args = extra;
    drv.stop_grace_ms = 200;
    struct engine_launch_ops ops;
    struct bg_plugins none = { 0 };
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    fc_driver_launch_ops(&drv, &ops);
    ck_assert_msg(engine_start(&none, &ops, vm, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_ne(t_pid_of_vm(), 0);
    ck_assert_msg(engine_stop(&none, &ops, vm, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(t_pid_of_vm(), 0);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_stale_sockets_do_not_block_launch)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    char stale_vsock[200];
    /* A socket file left by a process that died: bound, never unlinked. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t_sock);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    snprintf(stale_vsock, sizeof(stale_vsock), "%s/vsock.sock_10789", t_run);
    fd = open(stale_vsock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    t_contribute(vm);
    ck_assert(t_exists(t_sock));

    t_launch(&drv, vm);
    ck_assert(!t_exists(stale_vsock));
    ck_assert_int_eq(t_pid_of_vm(), vm->vmm_pid);
    t_kill(vm);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_second_launch_refused_while_running)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    t_launch(&drv, vm);
    pid_t pid = vm->vmm_pid;
    ck_assert_int_eq(fc_launch(&drv, vm, &e), -EBUSY);
    ck_assert_int_eq(t_pid_of_vm(), pid);
    t_kill(vm);
    bg_vm_free(vm);
}
END_TEST

/* A `sleep` child that dies with the test process. */
static pid_t t_sleeper(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl("/bin/sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    return pid;
}

START_TEST(test_rediscovery_by_api_socket)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    t_launch(&drv, vm);
    pid_t pid = vm->vmm_pid;
    bg_vm_free(vm);

    /* A fresh object from the same state dir, as after a daemon restart. */
    struct banger_vm *again = t_vm();
    ck_assert_int_eq(again->vmm_pid, 0);
    ck_assert_int_eq(fc_adopt(again), pid);
    ck_assert_int_eq(again->vmm_pid, pid);
    ck_assert_int_eq(fc_find_pid(t_sock, 0), pid);

    /* A recorded pid that now belongs to another process is not accepted. */
    pid_t other = t_sleeper();
    char text[24];
    snprintf(text, sizeof(text), "%d", (int)other);
    ck_assert_int_eq(bg_vm_set_handle(again, FC_HANDLE_PID, text, &e), 0);
    bg_vm_free(again);
    struct banger_vm *third = t_vm();
    ck_assert_str_eq(bg_vm_get_handle(third, FC_HANDLE_PID), text);
    ck_assert_int_eq(fc_find_pid(t_sock, other), pid);

    ck_assert_msg(fc_stop(&drv, third, 5000, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(fc_find_pid(t_sock, other), 0);
    /* The stop after the VMM is gone must not touch the stale pid either. */
    ck_assert_int_eq(bg_vm_set_handle(third, FC_HANDLE_PID, text, &e), 0);
    ck_assert_int_eq(fc_kill(third, SIGKILL, &e), 0);
    ck_assert_int_eq(waitpid(other, NULL, WNOHANG), 0);
    ck_assert_int_eq(kill(other, 0), 0);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    bg_vm_free(third);
}
END_TEST

/* `sh -c 'sleep 60; :' fc --api-sock <t_sock>`, as root or as `uid`: a
 * command line like a VMM's. */
static pid_t t_impostor(uid_t uid)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
            _exit(126);
        execl("/bin/sh", "sh", "-c", "sleep 60; :", "fc", "--api-sock", t_sock, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        char path[64], buf[16] = "";
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;
        if (fd >= 0)
            close(fd);
        if (n > 2 && strcmp(buf, "sh") == 0)
            return pid;
        t_sleep_ms(5);
    }
    ck_abort_msg("impostor did not start");
    return -1;
}

static bool t_alive(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == 0 && kill(pid, 0) == 0;
}

START_TEST(test_impostor_is_not_the_vmm)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    char text[24];

    /* A user's process naming the socket: never found, never signalled. */
    pid_t nobody = t_impostor(65534);
    ck_assert_int_eq(fc_find_pid(t_sock, 0), 0);
    ck_assert_int_eq(fc_find_pid(t_sock, nobody), 0);
    snprintf(text, sizeof(text), "%d", (int)nobody);
    ck_assert_int_eq(bg_vm_set_handle(vm, FC_HANDLE_PID, text, &e), 0);
    ck_assert_msg(fc_kill(vm, SIGKILL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(t_alive(nobody));

    /* It does not block a launch, and the listener is the VMM. */
    t_launch(&drv, vm);
    pid_t pid = vm->vmm_pid;
    ck_assert_int_eq(fc_find_pid(t_sock, nobody), pid);

    /* While the VMM listens, even a root process naming the socket is not it. */
    pid_t root = t_impostor(0);
    ck_assert_int_eq(fc_find_pid(t_sock, root), pid);

    ck_assert_msg(fc_stop(&drv, vm, 5000, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(fc_find_pid(t_sock, nobody), 0);
    ck_assert(t_alive(nobody));
    ck_assert(t_alive(root));
    kill(nobody, SIGKILL);
    waitpid(nobody, NULL, 0);
    kill(root, SIGKILL);
    waitpid(root, NULL, 0);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_vmm_survives_its_spawner)
{
    int pfd[2];
    ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct fc_driver drv = t_driver();
        struct banger_vm *vm = t_vm();
        struct banger_error e = { 0 };
        int pid = fc_launch(&drv, vm, &e) == 0 ? vm->vmm_pid : -1;
        ssize_t w = write(pfd[1], &pid, sizeof(pid));
        (void)w;
        _exit(0); /* no stop: the VMM must outlive us */
    }
    close(pfd[1]);
    int pid = 0;
    ck_assert_int_eq(read(pfd[0], &pid, sizeof(pid)), (ssize_t)sizeof(pid));
    close(pfd[0]);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(t_pid_of_vm(), pid);

    /* Not our child, not our grandchild's zombie: its parent is someone else. */
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    char state;
    int ppid, pgrp, session;
    ck_assert_int_eq(sscanf(strrchr(buf, ')') + 2, "%c %d %d %d", &state, &ppid, &pgrp,
                            &session), 4);
    ck_assert_int_ne(ppid, getpid());
    ck_assert_int_ne(ppid, child);
    ck_assert_int_ne(session, getsid(0));

    struct banger_vm *vm = t_vm();
    t_kill(vm);
    ck_assert_int_eq(t_pid_of_vm(), 0);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_missing_binary)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    drv.firecracker_bin = "/nonexistent/firecracker";
    ck_assert_int_eq(fc_launch(&drv, vm, &e), -ENOENT);
    ck_assert_ptr_nonnull(strstr(bg_error_text(&e), "/nonexistent/firecracker"));
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_PID));
    drv.firecracker_bin = "banger-no-such-firecracker";
    ck_assert_int_eq(fc_launch(&drv, vm, &e), -ENOENT);
    ck_assert_ptr_nonnull(strstr(bg_error_text(&e), "banger-no-such-firecracker"));
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_exit_before_api_reports_log_line)
{
    /* The double's last words: "fc-double: bad --http-api-max-payload-size 'x'". */
    static const char *const extra[] = { "--http-api-max-payload-size", "x", NULL };
    struct fc_driver drv = t_driver();
    drv.extra_args = extra;
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    ck_assert_int_lt(fc_launch(&drv, vm, &e), 0);
    ck_assert_str_eq(bg_error_text(&e), "firecracker exited before its API socket was ready: "
                                        "fc-double: bad --http-api-max-payload-size 'x'");
    ck_assert_int_eq(fc_kill(vm, SIGKILL, &e), 0);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_exit_on_start_detected)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    setenv("FC_DOUBLE_EXIT_ON_START", "1", 1);
    t_launch(&drv, vm);
    ck_assert(t_wait_gone());
    ck_assert_int_eq(fc_check_alive(vm, &e), -ESRCH);
    ck_assert_ptr_nonnull(strstr(bg_error_text(&e), "firecracker exited"));
    ck_assert_int_eq(vm->vmm_pid, 0);
    /* The double leaves its socket behind; stop clears it. */
    ck_assert(t_exists(t_sock));
    ck_assert_int_eq(fc_stop(&drv, vm, 1000, &e), 0);
    ck_assert(!t_exists(t_sock));
    bg_vm_free(vm);
}
END_TEST

/* The target of /proc/<pid>/fd/<fd>, or "" when the fd is not open. */
static void t_fd_target(pid_t pid, int fd, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t n = readlink(path, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
}

START_TEST(test_vmm_process_hygiene)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    char sentinel[128], target[256], expect_log[128];
    /* An inheritable fd the VMM must not see. */
    snprintf(sentinel, sizeof(sentinel), "%s/sentinel", t_state);
    int leak = open(sentinel, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(leak, 0);
    mode_t old = umask(022);
    t_launch(&drv, vm);
    umask(old);
    close(leak);
    pid_t pid = vm->vmm_pid;

    t_fd_target(pid, 0, target, sizeof(target));
    ck_assert_str_eq(target, "/dev/null");
    /* stdout and stderr: the console log writer's pipe, never the file itself. */
    snprintf(expect_log, sizeof(expect_log), "%s/firecracker.log", t_state);
    t_fd_target(pid, 1, target, sizeof(target));
    ck_assert_msg(strncmp(target, "pipe:[", 6) == 0, "%s", target);
    char out_pipe[256];
    snprintf(out_pipe, sizeof(out_pipe), "%s", target);
    t_fd_target(pid, 2, target, sizeof(target));
    ck_assert_str_eq(target, out_pipe);
    for (int fd = 3; fd < 64; fd++) {
        t_fd_target(pid, fd, target, sizeof(target));
        ck_assert_msg(strcmp(target, sentinel) != 0, "fd %d leaked into the VMM", fd);
    }

    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "Umask:\t0077\n"));
    struct stat st;
    ck_assert_int_eq(stat(t_sock, &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0);
    ck_assert_int_eq(stat(expect_log, &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0);
    t_kill(vm);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_check_alive_while_running)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    t_launch(&drv, vm);
    pid_t pid = vm->vmm_pid;
    ck_assert_int_eq(fc_check_alive(vm, &e), 0);
    ck_assert_int_eq(vm->vmm_pid, pid);
    t_kill(vm);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_version)
{
    struct banger_error e = { 0 };
    char *v = NULL;
    ck_assert_msg(fc_version(FC_DOUBLE, &v, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_str_eq(v, "1.16.1");
    ck_assert(fc_version_supported(v));
    free(v);
    ck_assert(!fc_version_supported("1.4.9"));
    ck_assert(!fc_version_supported("1.7.9"));
    ck_assert(fc_version_supported("1.8.0"));
    ck_assert_int_gt(fc_version_compare("1.10.0", "1.9.9"), 0);
    ck_assert_int_lt(fc_version_compare("garbage", "1.0.0"), 0);
    ck_assert_int_eq(fc_version_compare("2.0.1", "2.0.1"), 0);
    ck_assert_int_eq(fc_version("/nonexistent/firecracker", &v, &e), -ENOENT);
    ck_assert_ptr_nonnull(strstr(bg_error_text(&e), "/nonexistent/firecracker"));
}
END_TEST

static void t_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_too_old_firecracker_is_refused_before_spawning)
{
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    setenv("FC_DOUBLE_VERSION", "1.7.0", 1);
    ck_assert_int_eq(fc_launch(&drv, vm, &e), -ENOTSUP);
    ck_assert_str_eq(bg_error_text(&e),
                     "firecracker 1.7.0 is older than 1.8.0, the first release that describes "
                     "virtio devices in ACPI, which the guest kernel needs to find its disks");
    /* Nothing ran: no process, no handle, no request. */
    ck_assert_int_eq(t_pid_of_vm(), 0);
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_PID));
    ck_assert(!t_exists(t_record));
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_image_manifest_asks_for_a_newer_firecracker)
{
    char rootfs[160], manifest[160];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs.ext4", t_state);
    snprintf(manifest, sizeof(manifest), "%s/manifest.json", t_state);
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .vcpu = 1, .id = T_ID, .name = "web", .cid = 3,
        .memory_mib = 128, .state_dir = t_state, .runtime_dir = t_run, .rootfs_path = rootfs,
        .kernel_path = "/images/vmlinux",
    };
    struct banger_vm *vm = NULL;
    struct banger_error e = { 0 };
    struct fc_driver drv = t_driver();
    ck_assert_int_eq(bg_vm_new(&info, &vm, &e), 0);

    /* The double is 1.16.1; an image built for a later release is refused. */
    t_write(manifest, "{\"name\":\"default\",\"boot\":{\"device_discovery\":\"acpi\","
                      "\"min_firecracker\":\"1.17.0\"}}");
    ck_assert_int_eq(fc_launch(&drv, vm, &e), -ENOTSUP);
    ck_assert_str_eq(bg_error_text(&e),
                     "firecracker 1.16.1 is older than 1.17.0, which this VM's image asks for "
                     "(manifest.json boot.min_firecracker): its kernel finds its disks through "
                     "virtio devices described in ACPI");
    ck_assert_int_eq(t_pid_of_vm(), 0);

    /* What build-default writes is satisfied by 1.16.1. */
    t_write(manifest, "{\"boot\":{\"device_discovery\":\"acpi\",\"min_firecracker\":"
                      "\"1.8.0\"}}");
    t_launch(&drv, vm);
    t_kill(vm);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_version_is_cached_until_the_binary_changes)
{
    char copy[160];
    struct banger_error e = { 0 };
    char *v = NULL;
    snprintf(copy, sizeof(copy), "%s/firecracker", t_state);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execlp("cp", "cp", FC_DOUBLE, copy, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    setenv("FC_DOUBLE_VERSION", "1.9.0", 1);
    ck_assert_int_eq(fc_version_cached(copy, &v, &e), 0);
    ck_assert_str_eq(v, "1.9.0");
    free(v);
    /* Not asked again: the answer is remembered. */
    setenv("FC_DOUBLE_VERSION", "1.10.0", 1);
    ck_assert_int_eq(fc_version_cached(copy, &v, &e), 0);
    ck_assert_str_eq(v, "1.9.0");
    free(v);
    /* An upgraded binary (new mtime) is asked again. */
    struct timespec times[2] = { { 0, UTIME_NOW }, { 12345, 0 } };
    ck_assert_int_eq(utimensat(AT_FDCWD, copy, times, 0), 0);
    ck_assert_int_eq(fc_version_cached(copy, &v, &e), 0);
    ck_assert_str_eq(v, "1.10.0");
    free(v);
}
END_TEST

START_TEST(test_guest_panic_is_quoted_when_the_vmm_exits)
{
    char console[160];
    struct fc_driver drv = t_driver();
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    snprintf(console, sizeof(console), "%s/console.txt", t_state);
    t_write(console, "[    0.612345] VFS: Cannot open root device \"vda\" or unknown-block(0,0): "
                     "error -6\r\n"
                     "[    0.615000] Kernel panic - not syncing: VFS: Unable to mount root fs on "
                     "unknown-block(0,0)\r\n"
                     "[    0.620000] Rebooting in 1 seconds..\r\n");
    setenv("FC_DOUBLE_CONSOLE_FILE", console, 1);
    setenv("FC_DOUBLE_EXIT_AFTER_MS", "0", 1);
    t_launch(&drv, vm);
    ck_assert(t_wait_gone());
    ck_assert_int_eq(fc_check_alive(vm, &e), -ESRCH);
    ck_assert_str_eq(bg_error_text(&e),
                     "firecracker exited: Kernel panic - not syncing: VFS: Unable to mount root "
                     "fs on unknown-block(0,0) (console before it: VFS: Cannot open root device "
                     "\"vda\" or unknown-block(0,0): error -6)");
    ck_assert_int_eq(fc_stop(&drv, vm, 1000, &e), 0);

    /* The next boot appends to the same log; a crashing VMM (exit 1) whose
     * initrd found no disk is explained by this boot's lines only. */
    t_write(console, "banger-initrd: waiting for /dev/vda\nbanger-initrd: no root device "
                     "/dev/vda\n");
    unsetenv("FC_DOUBLE_EXIT_AFTER_MS");
    setenv("FC_DOUBLE_EXIT_ON_START", "1", 1);
    t_launch(&drv, vm);
    ck_assert(t_wait_gone());
    ck_assert_int_eq(fc_check_alive(vm, &e), -ESRCH);
    ck_assert_str_eq(bg_error_text(&e),
                     "firecracker exited: banger-initrd: no root device /dev/vda (console "
                     "before it: banger-initrd: waiting for /dev/vda)");
    ck_assert_int_eq(fc_stop(&drv, vm, 1000, &e), 0);
    bg_vm_free(vm);
}
END_TEST

/* ---- under the jailer (tests/fcdouble/jailer-standin) ------------------ */

#define T_JAIL_UID_BASE 1500000000u
#define T_JAIL_UID (T_JAIL_UID_BASE + 3) /* + the VM's CID */

static char t_jail_base[96];
static char t_jail_top[160];
static char t_jail_sock[200];

/* Real files for everything the VMM opens: it checks them at PUT time
 * (FC_DOUBLE_CHECK_PATHS) as the VM uid, inside its chroot. */
static struct banger_vm *t_jail_vm(struct fc_driver *drv)
{
    static char kernel[128], initrd[128], rootfs[128], work[128], uds[128];
    snprintf(t_jail_base, sizeof(t_jail_base), "%.*s/jail", (int)(strlen(t_state) - 6), t_state);
    snprintf(t_jail_top, sizeof(t_jail_top), "%s/fc-double/" T_ID, t_jail_base);
    snprintf(t_jail_sock, sizeof(t_jail_sock), "%s/root/run/api.sock", t_jail_top);
    snprintf(kernel, sizeof(kernel), "%s/vmlinux", t_state);
    snprintf(initrd, sizeof(initrd), "%s/initrd.img", t_state);
    snprintf(rootfs, sizeof(rootfs), "%s/root.ext4", t_state);
    snprintf(work, sizeof(work), "%s/work.ext4", t_state);
    snprintf(uds, sizeof(uds), "%s/vsock.sock", t_run);
    const char *files[] = { kernel, initrd, rootfs, work };
    for (size_t i = 0; i < 4; i++) {
        int fd = open(files[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, i < 2 ? 0644 : 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "x", 1), 1);
        close(fd);
    }
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .vcpu = 1, .id = T_ID, .name = "web", .ip = "172.29.0.2",
        .mac = "06:00:ac:1d:00:02", .gateway = "172.29.0.1", .prefix_len = 24, .cid = 3,
        .memory_mib = 256, .state_dir = t_state, .runtime_dir = t_run, .rootfs_path = rootfs,
        .kernel_path = kernel, .initrd_path = initrd, .bridge = "br-banger",
    };
    struct banger_vm *vm = NULL;
    struct banger_error e = { 0 };
    ck_assert_msg(bg_vm_new(&info, &vm, &e) == 0, "%s", bg_error_text(&e));
    const struct banger_host_api *h = bg_host_api();
    struct banger_drive rd = { .struct_size = sizeof(rd), .is_root_device = true,
                               .drive_id = BANGER_DRIVE_ROOT, .path_on_host = rootfs };
    struct banger_drive wd = { .struct_size = sizeof(wd), .drive_id = BANGER_DRIVE_WORK,
                               .path_on_host = work };
    ck_assert_int_eq(h->add_drive(vm, &rd, &e), 0);
    ck_assert_int_eq(h->add_drive(vm, &wd, &e), 0);
    ck_assert_int_eq(h->set_vsock(vm, 3, uds, &e), 0);
    *drv = (struct fc_driver){ .firecracker_bin = FC_DOUBLE, .stop_grace_ms = 60000,
                               .jailer_bin = JAILER_STANDIN, .jail_base = t_jail_base,
                               .jail_uid_base = T_JAIL_UID_BASE };
    setenv("FC_DOUBLE_CHECK_PATHS", "1", 1);
    return vm;
}

/* "Uid:" or "Gid:" of /proc/<pid>/status: real and effective both `want`? */
static bool t_proc_ids_are(pid_t pid, const char *field, unsigned long want)
{
    char path[64], line[256];
    bool ok = false;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f)) {
        unsigned long real, eff;
        if (strncmp(line, field, n) == 0 && sscanf(line + n, " %lu %lu", &real, &eff) == 2)
            ok = real == want && eff == want;
    }
    fclose(f);
    return ok;
}

/* Is anything mounted at or below `dir` in our mount namespace? */
static bool t_mounted_below(const char *dir)
{
    char *text = NULL;
    struct banger_error e = { 0 };
    ck_assert_int_eq(fs_read_all("/proc/self/mountinfo", 1 << 22, &text, NULL, &e), 0);
    bool found = strstr(text, dir) != NULL;
    free(text);
    return found;
}

START_TEST(test_jailed_vmm_runs_unprivileged_in_its_chroot)
{
    struct fc_driver drv;
    struct banger_vm *vm = t_jail_vm(&drv);
    struct banger_error e = { 0 };
    t_launch(&drv, vm);
    pid_t pid = vm->vmm_pid;

    /* Not root: the VM's own uid and gid, no groups. */
    ck_assert_msg(t_proc_ids_are(pid, "Uid:", T_JAIL_UID), "VMM pid %d is not uid %u", (int)pid,
                  T_JAIL_UID);
    ck_assert(t_proc_ids_are(pid, "Gid:", T_JAIL_UID));
    /* Its root is the jail, which holds the copied binary and its devices. */
    char path[256], jail_root[200];
    snprintf(jail_root, sizeof(jail_root), "%s/root", t_jail_top);
    struct stat proc_root, jail;
    snprintf(path, sizeof(path), "/proc/%d/root/", (int)pid);
    ck_assert_int_eq(stat(path, &proc_root), 0);
    ck_assert_int_eq(stat(jail_root, &jail), 0);
    ck_assert(proc_root.st_dev == jail.st_dev && proc_root.st_ino == jail.st_ino);
    snprintf(path, sizeof(path), "%s/fc-double", jail_root);
    ck_assert(t_exists(path));
    snprintf(path, sizeof(path), "%s/dev/net/tun", jail_root);
    struct stat tun;
    ck_assert_int_eq(stat(path, &tun), 0);
    ck_assert(S_ISCHR(tun.st_mode) && tun.st_uid == T_JAIL_UID);
    /* Nobody else can look inside. */
    snprintf(path, sizeof(path), "%s/fc-double", t_jail_base);
    ck_assert_int_eq(stat(path, &jail), 0);
    ck_assert_int_eq(jail.st_mode & 0777, 0700);
    ck_assert_int_eq(jail.st_uid, 0);

    /* The double got paths inside the chroot, and could open them there. */
    char *rec = t_recorded();
    ck_assert_msg(strstr(rec, "\"kernel_image_path\":\"/vmlinux\",\"initrd_path\":\"/initrd\""),
                  "%s", rec);
    ck_assert_ptr_nonnull(strstr(rec, "\"path_on_host\":\"/drive-root\""));
    ck_assert_ptr_nonnull(strstr(rec, "\"path_on_host\":\"/drive-work\""));
    ck_assert_ptr_nonnull(strstr(rec, "\"uds_path\":\"/run/vsock.sock\""));
    ck_assert_ptr_nonnull(strstr(rec, "PUT /actions {\"action_type\":\"InstanceStart\"}"));
    ck_assert_ptr_null(strstr(rec, t_state));
    free(rec);
    /* The writable disks are the VM uid's; the API socket is in the jail, the
     * vsock socket reachable at its usual host path. */
    snprintf(path, sizeof(path), "%s/work.ext4", t_state);
    struct stat disk;
    ck_assert_int_eq(stat(path, &disk), 0);
    ck_assert_int_eq(disk.st_uid, T_JAIL_UID);
    ck_assert_int_eq(fc_find_pid(t_jail_sock, 0), pid);
    ck_assert_str_eq(bg_vm_get_handle(vm, FC_HANDLE_API_SOCK), t_jail_sock);
    ck_assert_str_eq(bg_vm_get_handle(vm, FC_HANDLE_JAIL_DIR), t_jail_top);
    struct stat run_dir;
    snprintf(path, sizeof(path), "%s/root/run", t_jail_top);
    ck_assert_int_eq(stat(path, &run_dir), 0);
    ck_assert_int_eq(run_dir.st_uid, T_JAIL_UID);
    ck_assert_int_eq(run_dir.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/vsock.sock", t_run);
    struct stat vs;
    ck_assert_int_eq(stat(path, &vs), 0); /* through the symlink, the VMM's socket */
    ck_assert(S_ISSOCK(vs.st_mode) && vs.st_uid == T_JAIL_UID);

    /* After a restart: found again by its socket and recorded uid. */
    bg_vm_free(vm);
    vm = t_jail_vm(&drv);
    ck_assert_int_eq(fc_adopt(vm), pid);

    /* Stop removes the jail: no mount, no tree, no symlink; the runtime dir stays root's. */
    ck_assert_msg(fc_stop(&drv, vm, drv.stop_grace_ms, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(fc_pid_exited(pid));
    ck_assert(!t_exists(t_jail_top));
    snprintf(path, sizeof(path), "%s/fc-double", t_jail_base);
    ck_assert(!t_exists(path)); /* its last jail gone, the exec dir too */
    ck_assert(!t_mounted_below(t_jail_base));
    snprintf(path, sizeof(path), "%s/vsock.sock", t_run);
    ck_assert(!t_exists(path));
    struct stat run;
    ck_assert_int_eq(stat(t_run, &run), 0);
    ck_assert_int_eq(run.st_uid, 0);
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_JAIL_DIR));
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_JAIL_UID));
    /* The disk itself is untouched by the removal of its link. */
    snprintf(path, sizeof(path), "%s/work.ext4", t_state);
    ck_assert(t_exists(path));
    bg_vm_free(vm);
    unsetenv("FC_DOUBLE_CHECK_PATHS");
}
END_TEST

/* A failure at any launch step, then the engine's undo: nothing is left. */
START_TEST(test_jailed_launch_fault_leaves_nothing)
{
    static const char *const points[] = { "fc.configure", "fc.start" };
    for (size_t i = 0; i < 2; i++) {
        struct fc_driver drv;
        struct banger_vm *vm = t_jail_vm(&drv);
        struct banger_error e = { 0 };
        setenv("BANGER_FAULTS", points[i], 1);
        ck_assert_int_eq(fc_launch(&drv, vm, &e), -EIO);
        pid_t pid = vm->vmm_pid;
        ck_assert_int_gt(pid, 0);
        ck_assert(t_exists(t_jail_top));
        ck_assert_msg(fc_kill(vm, 0, &e) == 0, "%s", bg_error_text(&e));
        ck_assert(fc_pid_exited(pid));
        ck_assert(!t_exists(t_jail_top));
        ck_assert(!t_mounted_below(t_jail_base));
        ck_assert(!t_exists(t_jail_sock));
        ck_assert(!t_exists(vm->contrib.vsock_uds));
        bg_vm_free(vm);
    }
    /* The jailer itself refuses: no VMM, and undo still clears the jail. */
    setenv("BANGER_FAULTS", "", 1);
    struct fc_driver drv;
    struct banger_vm *vm = t_jail_vm(&drv);
    struct banger_error e = { 0 };
    const char *const bad[] = { "--no-such-flag", NULL };
    drv.extra_args = bad;
    ck_assert_int_lt(fc_launch(&drv, vm, &e), 0);
    ck_assert_msg(fc_kill(vm, 0, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(!t_exists(t_jail_top));
    ck_assert(!t_mounted_below(t_jail_base));
    bg_vm_free(vm);
    unsetenv("BANGER_FAULTS");
    unsetenv("FC_DOUBLE_CHECK_PATHS");
}
END_TEST

/* Without CAP_NET_ADMIN the jailed VMM can attach only to a TAP it owns: the
 * VM's TAP is given to the VM uid for the run and back to root at stop. In a
 * network namespace of this test only. */
static int t_attach_tap_as(const char *dev, uid_t uid)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
            _exit(126);
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        _exit(fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_jailed_vmm_owns_its_tap_only_while_it_runs)
{
    ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "bgjail0");
    ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
    ck_assert_int_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
    close(fd);

    struct fc_driver drv;
    struct banger_vm *vm = t_jail_vm(&drv);
    struct banger_error e = { 0 };
    struct banger_net_iface net = { .struct_size = sizeof(net), .iface_id = "eth0",
                                    .host_dev_name = "bgjail0", .guest_mac = "06:00:ac:1d:00:02" };
    ck_assert_int_eq(bg_host_api()->set_net_iface(vm, &net, &e), 0);
    t_launch(&drv, vm);
    ck_assert_int_eq(t_attach_tap_as("bgjail0", T_JAIL_UID), 0);
    ck_assert_int_eq(t_attach_tap_as("bgjail0", T_JAIL_UID + 1), 1);
    ck_assert_msg(fc_stop(&drv, vm, drv.stop_grace_ms, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(t_attach_tap_as("bgjail0", T_JAIL_UID), 1);
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_JAIL_TAP));
    bg_vm_free(vm);
    unsetenv("FC_DOUBLE_CHECK_PATHS");
}
END_TEST

/* A block device (a dm snapshot in production; a loop device node here)
 * becomes a node of the jail's own with the same dev_t, the VM uid's; the
 * host's node is not touched. */
START_TEST(test_jailed_block_device_is_a_node_in_the_jail)
{
    struct stat host_before, host_after, node;
    ck_assert_int_eq(stat("/dev/loop0", &host_before), 0);
    ck_assert(S_ISBLK(host_before.st_mode));
    struct fc_driver drv;
    struct banger_vm *vm = t_jail_vm(&drv);
    struct banger_error e = { 0 };
    struct banger_drive dev = { .struct_size = sizeof(dev), .drive_id = "scratch",
                                .path_on_host = "/dev/loop0" };
    ck_assert_int_eq(bg_host_api()->add_drive(vm, &dev, &e), 0);
    t_launch(&drv, vm); /* the double opened /drive-scratch as the VM uid */
    char path[256];
    snprintf(path, sizeof(path), "%s/root/drive-scratch", t_jail_top);
    ck_assert_int_eq(stat(path, &node), 0);
    ck_assert(S_ISBLK(node.st_mode));
    ck_assert(node.st_rdev == host_before.st_rdev);
    ck_assert_int_eq(node.st_uid, T_JAIL_UID);
    ck_assert_int_eq(node.st_mode & 0777, 0600);
    char *rec = t_recorded();
    ck_assert_ptr_nonnull(strstr(rec, "\"path_on_host\":\"/drive-scratch\""));
    free(rec);
    ck_assert_int_eq(stat("/dev/loop0", &host_after), 0);
    ck_assert_int_eq(host_after.st_uid, host_before.st_uid);
    ck_assert_int_eq(host_after.st_mode, host_before.st_mode);
    ck_assert_msg(fc_stop(&drv, vm, drv.stop_grace_ms, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(!t_exists(t_jail_top));
    bg_vm_free(vm);
    unsetenv("FC_DOUBLE_CHECK_PATHS");
}
END_TEST

/* A chroot base others may write to could have its jails swapped: refused. */
START_TEST(test_jail_base_writable_by_others_is_refused)
{
    struct fc_driver drv;
    struct banger_vm *vm = t_jail_vm(&drv);
    struct banger_error e = { 0 };
    ck_assert_int_eq(mkdir(t_jail_base, 0777), 0);
    ck_assert_int_eq(chmod(t_jail_base, 0777), 0);
    ck_assert_int_eq(fc_launch(&drv, vm, &e), -EPERM);
    ck_assert_msg(strstr(bg_error_text(&e), "must be root's and writable by root alone"), "%s",
                  bg_error_text(&e));
    ck_assert_int_eq(vm->vmm_pid, 0);
    ck_assert_msg(fc_kill(vm, 0, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(!t_exists(t_jail_top));
    bg_vm_free(vm);
    unsetenv("FC_DOUBLE_CHECK_PATHS");
}
END_TEST

/* The jail uid's listener counts only where root lent the directory. */
START_TEST(test_jail_uid_listener_elsewhere_is_not_a_vmm)
{
    /* A process of the jail uid that binds a socket in a directory it owns
     * but root did not lend (an ordinary writable parent) is not a VMM. */
    char dir[128], sock[200];
    snprintf(dir, sizeof(dir), "%.*s/open", (int)(strlen(t_state) - 6), t_state);
    ck_assert_int_eq(mkdir(dir, 01777), 0);
    ck_assert_int_eq(chmod(dir, 01777), 0);
    char parent[128];
    snprintf(parent, sizeof(parent), "%.*s", (int)(strlen(t_state) - 6), t_state);
    ck_assert_int_eq(chmod(parent, 0711), 0);
    ck_assert_int_eq(chmod(t_base, 0711), 0);
    snprintf(sock, sizeof(sock), "%s/d/api.sock", dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setgroups(0, NULL) < 0 || setgid(T_JAIL_UID) < 0 || setuid(T_JAIL_UID) < 0)
            _exit(126);
        char d[160];
        snprintf(d, sizeof(d), "%s/d", dir);
        if (mkdir(d, 0700) < 0)
            _exit(125);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock) >= sizeof(sa.sun_path))
            _exit(123);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
            _exit(124);
        pause();
        _exit(0);
    }
    for (int i = 0; i < T_WAIT_MS / 10 && !t_exists(sock); i++)
        t_sleep_ms(10);
    ck_assert(t_exists(sock));
    ck_assert_int_eq(fc_find_pid(sock, pid), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    /* Even in a directory root did lend (root's closed parent), a listener of
     * the jail uid that is not rooted in that jail is not the VMM. */
    char lent_parent[128], lent[160], lent_sock[200];
    snprintf(lent_parent, sizeof(lent_parent), "%.*s/lent", (int)(strlen(t_state) - 6), t_state);
    snprintf(lent, sizeof(lent), "%s/run", lent_parent);
    snprintf(lent_sock, sizeof(lent_sock), "%s/api.sock", lent);
    ck_assert_int_eq(mkdir(lent_parent, 0755), 0);
    ck_assert_int_eq(mkdir(lent, 0700), 0);
    ck_assert_int_eq(chown(lent, T_JAIL_UID, T_JAIL_UID), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setgroups(0, NULL) < 0 || setgid(T_JAIL_UID) < 0 || setuid(T_JAIL_UID) < 0)
            _exit(126);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", lent_sock) >=
            sizeof(sa.sun_path))
            _exit(123);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
            _exit(124);
        pause();
        _exit(0);
    }
    for (int i = 0; i < T_WAIT_MS / 10 && !t_exists(lent_sock); i++)
        t_sleep_ms(10);
    ck_assert(t_exists(lent_sock));
    ck_assert_int_eq(fc_find_pid(lent_sock, pid), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
END_TEST

/* ---- main: run, then kill anything left under the base dir -------------- */

static bool t_cmdline_mentions(pid_t pid, const char *needle)
{
    char path[64], buf[8192];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1)
        if (strstr(buf + off, needle))
            return true;
    return false;
}

static void t_sweep(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        if (t_cmdline_mentions(pid, t_base) || t_proc_ids_are(pid, "Uid:", T_JAIL_UID)) {
            fprintf(stderr, "test_fc: killing leftover pid %d\n", (int)pid);
            kill(pid, SIGKILL);
        }
    }
    closedir(d);
}

static void t_unmount_below(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096], point[4096];
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 && strstr(point, dir) == point)
            umount2(point, MNT_DETACH);
    if (f)
        fclose(f);
}

static int t_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int main(void)
{
    snprintf(t_base, sizeof(t_base), "/tmp/bgfc.XXXXXX");
    if (!mkdtemp(t_base)) {
        perror("mkdtemp");
        return 1;
    }
    /* Orphaned VMMs re-parent to us rather than to a pid 1 that may not reap. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    unsetenv("FC_DOUBLE_FAIL");
    unsetenv("FC_DOUBLE_EXIT_ON_START");
    setenv("BANGER_CONSOLE_LOG", CONSOLE_LOG, 1);

    Suite *s = suite_create("fc");
    TCase *tc = tcase_create("driver");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, t_setup, NULL);
    tcase_add_test(tc, test_launch_exact_bodies_and_graceful_stop);
    tcase_add_test(tc, test_minimal_config_bodies);
    tcase_add_test(tc, test_failing_config_call_then_undo);
    tcase_add_test(tc, test_failing_instance_start);
    tcase_add_test(tc, test_fault_points_then_undo);
    tcase_add_test(tc, test_stop_without_launch_is_a_no_op);
    tcase_add_test(tc, test_stop_falls_back_to_kill);
    tcase_add_test(tc, test_engine_stop_through_ops);
    tcase_add_test(tc, test_stale_sockets_do_not_block_launch);
    tcase_add_test(tc, test_second_launch_refused_while_running);
    tcase_add_test(tc, test_rediscovery_by_api_socket);
    tcase_add_test(tc, test_impostor_is_not_the_vmm);
    tcase_add_test(tc, test_vmm_survives_its_spawner);
    tcase_add_test(tc, test_missing_binary);
    tcase_add_test(tc, test_exit_before_api_reports_log_line);
    tcase_add_test(tc, test_exit_on_start_detected);
    tcase_add_test(tc, test_check_alive_while_running);
    tcase_add_test(tc, test_vmm_process_hygiene);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_too_old_firecracker_is_refused_before_spawning);
    tcase_add_test(tc, test_image_manifest_asks_for_a_newer_firecracker);
    tcase_add_test(tc, test_version_is_cached_until_the_binary_changes);
    tcase_add_test(tc, test_guest_panic_is_quoted_when_the_vmm_exits);
    tcase_add_test(tc, test_jailed_vmm_runs_unprivileged_in_its_chroot);
    tcase_add_test(tc, test_jailed_launch_fault_leaves_nothing);
    tcase_add_test(tc, test_jail_uid_listener_elsewhere_is_not_a_vmm);
    tcase_add_test(tc, test_jailed_vmm_owns_its_tap_only_while_it_runs);
    tcase_add_test(tc, test_jail_base_writable_by_others_is_refused);
    tcase_add_test(tc, test_jailed_block_device_is_a_node_in_the_jail);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    t_sweep();
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    /* A jail a failed test left bound must not lead the removal into the
     * runtime dir through its bind. */
    t_unmount_below(t_base);
    nftw(t_base, t_rm, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
