/* The console log writer (core/console/banger-console-log.c) and its ring
 * (core/fc/fc_console_ring.c, fc_console_log.c), against the real writer
 * program and fc-double: a guest's console cannot grow the host's disk past
 * the cap, readers see the last bytes in order, the writer runs as its VM's uid
 * with nothing but its descriptors, and stop leaves no writer behind. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fc/fc.h"
#include "host/host.h"
#include "host/vm.h"
#include "util/fs.h"

#define T_ID "0123456789ab"
#define T_WAIT_MS 20000 /* upper bound on waits; never asserted as a speed */
#define T_CAP (64 * 1024)

static char t_base[32];
static char t_state[80];
static char t_run[80];

static void t_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void t_setup(void)
{
    char tmpl[64];
    snprintf(tmpl, sizeof(tmpl), "%s/tXXXXXX", t_base);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    snprintf(t_state, sizeof(t_state), "%s/state", tmpl);
    snprintf(t_run, sizeof(t_run), "%s/run", tmpl);
    ck_assert_int_eq(mkdir(t_state, 0700), 0);
    ck_assert_int_eq(mkdir(t_run, 0700), 0);
    unsetenv("FC_DOUBLE_CONSOLE_FLOOD");
    unsetenv("FC_DOUBLE_CONSOLE_FILE");
}

static struct banger_vm *t_vm(void)
{
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .vcpu = 1, .id = T_ID, .name = "web",
        .memory_mib = 128, .state_dir = t_state, .runtime_dir = t_run,
        .rootfs_path = "/images/rootfs.ext4", .kernel_path = "/images/vmlinux",
    };
    struct banger_vm *vm = NULL;
    struct banger_error e = { 0 };
    ck_assert_msg(bg_vm_new(&info, &vm, &e) == 0, "%s", bg_error_text(&e));
    struct banger_drive root = { .struct_size = sizeof(root), .is_root_device = true,
                                 .drive_id = BANGER_DRIVE_ROOT, .path_on_host = "/dev/null" };
    ck_assert_int_eq(bg_host_api()->add_drive(vm, &root, &e), 0);
    return vm;
}

static off_t t_size(const char *name)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", t_state, name);
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Bytes the ring's files take on disk, not just their apparent size. */
static long long t_disk_bytes(void)
{
    static const char *const names[] = { "firecracker.log", "firecracker.log.1",
                                         "firecracker.log.start" };
    long long total = 0;
    for (size_t i = 0; i < 3; i++) {
        char path[160];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", t_state, names[i]);
        if (stat(path, &st) == 0)
            total += (long long)st.st_blocks * 512;
    }
    return total;
}

static bool t_exited(pid_t pid)
{
    return fc_pid_exited(pid) || (waitpid(pid, NULL, WNOHANG) == pid);
}

/* Run the writer on the ring in t_state with cap `max`; *in_fd is the pipe's
 * write end (the VMM's stdout). */
static pid_t t_writer(unsigned max, int *in_fd)
{
    struct fc_console_ring ring;
    struct banger_error e = { 0 };
    int p[2];
    char max_text[24];

    ck_assert_msg(fc_console_ring_open(t_state, true, &ring, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    snprintf(max_text, sizeof(max_text), "%u", max);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (dup2(p[0], 0) < 0 || dup2(ring.cur, 3) < 0 || dup2(ring.old, 4) < 0 ||
            dup2(ring.start, 5) < 0)
            _exit(126);
        close_range(6, ~0u, 0);
        execl(CONSOLE_LOG, CONSOLE_LOG, max_text, (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    fc_console_ring_close(&ring);
    *in_fd = p[1];
    return pid;
}

static void t_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        ck_assert_int_gt(n, 0);
        buf += n;
        len -= (size_t)n;
    }
}

/* Line i of the test stream: fixed width, so any offset names its content. */
#define T_LINE_LEN 16
static void t_line(long i, char out[T_LINE_LEN + 1])
{
    char text[32];
    snprintf(text, sizeof(text), "line %010ld\n", i % 10000000000L);
    memcpy(out, text, T_LINE_LEN + 1);
}

START_TEST(test_ring_stays_capped_and_reads_in_order)
{
    int in = -1;
    pid_t w = t_writer(T_CAP, &in);
    const long lines = (1 << 20) / T_LINE_LEN; /* 1 MiB through a 64 KiB ring */
    char buf[64 * T_LINE_LEN], line[T_LINE_LEN + 1];
    struct banger_error e = { 0 };

    for (long i = 0; i < lines; i += 64) {
        for (long k = 0; k < 64; k++) {
            t_line(i + k, line);
            memcpy(buf + k * T_LINE_LEN, line, T_LINE_LEN);
        }
        t_write_all(in, buf, sizeof(buf));
    }
    close(in);
    int status = 0;
    ck_assert_int_eq(waitpid(w, &status, 0), w);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* ends at EOF */

    ck_assert_int_le(t_size("firecracker.log"), T_CAP / 2);
    ck_assert_int_le(t_size("firecracker.log.1"), T_CAP / 2);
    ck_assert_int_le(t_disk_bytes(), T_CAP + 3 * 4096);

    /* The tail: the last bytes, in order, at their stream offsets. */
    struct fc_console_chunk c;
    ck_assert_int_eq(fc_console_read(t_state, -(1 << 20), 1 << 20, &c, &e), 0);
    ck_assert_int_eq(c.end, (long long)lines * T_LINE_LEN);
    ck_assert_int_eq(c.from + (long long)c.len, c.end);
    ck_assert_int_ge(c.len, T_CAP / 2);
    ck_assert_int_le(c.len, T_CAP);
    for (size_t off = 0; off < c.len; off += T_LINE_LEN) {
        long long at = c.from + (long long)off;
        ck_assert_int_eq(at % T_LINE_LEN, 0);
        t_line((long)(at / T_LINE_LEN), line);
        ck_assert_msg(memcmp(c.data + off, line, T_LINE_LEN) == 0, "at %lld: %.16s", at,
                      c.data + off);
    }
    long long ring_start = c.from;
    free(c.data);

    /* A follower's offset that was overwritten reads from the oldest byte; one
     * inside the ring reads from there; the end reads nothing. */
    ck_assert_int_eq(fc_console_read(t_state, 0, 100, &c, &e), 0);
    ck_assert_int_eq(c.from, ring_start);
    free(c.data);
    ck_assert_int_eq(fc_console_read(t_state, c.end - 32, 100, &c, &e), 0);
    ck_assert_int_eq(c.len, 32);
    t_line(lines - 2, line);
    ck_assert_int_eq(memcmp(c.data, line, T_LINE_LEN), 0);
    free(c.data);
    ck_assert_int_eq(fc_console_read(t_state, c.end, 100, &c, &e), 0);
    ck_assert_int_eq(c.len, 0);
    free(c.data);

    /* A second run of the VM continues the stream where the first ended. */
    long long first_end = c.end;
    w = t_writer(T_CAP, &in);
    t_write_all(in, "second boot\n", 12);
    close(in);
    ck_assert_int_eq(waitpid(w, NULL, 0), w);
    ck_assert_int_eq(fc_console_read(t_state, first_end, 100, &c, &e), 0);
    ck_assert_str_eq(c.data, "second boot\n");
    free(c.data);
}
END_TEST

/* A log from before the cap existed, far larger than it, is cut down when
 * the first writer starts, keeping its end. */
START_TEST(test_oversized_old_log_is_cut_down)
{
    char path[160], line[T_LINE_LEN + 1];
    struct banger_error e = { 0 };
    snprintf(path, sizeof(path), "%s/firecracker.log", t_state);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (long i = 0; i < 40000; i++) {
        t_line(i, line);
        fputs(line, f);
    }
    fclose(f);
    int in = -1;
    pid_t w = t_writer(T_CAP, &in);
    close(in);
    ck_assert_int_eq(waitpid(w, NULL, 0), w);
    ck_assert_int_le(t_disk_bytes(), T_CAP / 2 + 3 * 4096);
    struct fc_console_chunk c;
    ck_assert_int_eq(fc_console_read(t_state, -T_LINE_LEN, 100, &c, &e), 0);
    t_line(39999, line);
    ck_assert_str_eq(c.data, line);
    free(c.data);
}
END_TEST

/* The panic line that ended a boot is found even when it was rotated into
 * firecracker.log.1. */
START_TEST(test_summary_reads_across_the_rotation)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/firecracker.log.1", t_state);
    FILE *f = fopen(path, "w");
    /* Rotation cuts anywhere: the ring's first line is a fragment. */
    fputs("of a line cut by the rotation\n[    0.100000] early line\n[    0.200000] Kernel panic - not syncing: VFS: Unable to "
          "mount root fs\n[    0.300000] Rebooting", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/firecracker.log", t_state);
    f = fopen(path, "w");
    fputs(" in 1 seconds..\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/firecracker.log.start", t_state);
    f = fopen(path, "w");
    fputs("100000\n", f);
    fclose(f);
    struct banger_vm *vm = t_vm();
    char summary[512];
    fc_console_summary(vm, summary, sizeof(summary));
    ck_assert_str_eq(summary, "Kernel panic - not syncing: VFS: Unable to mount root fs "
                              "(console before it: early line)");
    bg_vm_free(vm);
}
END_TEST

static void t_fd_target(pid_t pid, int fd, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t n = readlink(path, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
}

static bool t_status_has(pid_t pid, const char *needle)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, needle) != NULL;
}

static void t_launch(struct fc_driver *drv, struct banger_vm *vm)
{
    struct banger_error e = { 0 };
    ck_assert_msg(fc_launch(drv, vm, &e) == 0, "launch: %s", bg_error_text(&e));
}

START_TEST(test_writer_runs_as_its_vms_uid_with_only_its_fds)
{
    struct fc_driver drv = { .firecracker_bin = FC_DOUBLE, .console_log_max_bytes = T_CAP };
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    char target[256], expect[256], pipe_name[64];

    t_launch(&drv, vm);
    pid_t w = fc_console_log_pid(vm);
    ck_assert_int_gt(w, 0);
    ck_assert_int_eq(atoi(bg_vm_get_handle(vm, FC_HANDLE_CONSOLE_PID)), w);
    /* The VM's own uid, base + CID, as its jailed VMM would have. */
    char uid_line[96];
    unsigned own = FC_DEFAULT_JAIL_UID_BASE + vm->info.cid;
    snprintf(uid_line, sizeof(uid_line), "Uid:\t%u\t%u\t%u\t%u\n", own, own, own, own);
    ck_assert_msg(t_status_has(w, uid_line), "writer is not uid %u", own);
    snprintf(uid_line, sizeof(uid_line), "Gid:\t%u\t%u\t%u\t%u\n", own, own, own, own);
    ck_assert(t_status_has(w, uid_line));
    /* So another user's process (nobody's, say) cannot signal it. */
    pid_t killer = fork();
    ck_assert_int_ge(killer, 0);
    if (killer == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(2);
        _exit(kill(w, SIGTERM) == 0 ? 0 : errno == EPERM ? 1 : 3);
    }
    int kstatus = 0;
    ck_assert_int_eq(waitpid(killer, &kstatus, 0), killer);
    ck_assert_msg(WIFEXITED(kstatus) && WEXITSTATUS(kstatus) == 1,
                  "nobody signalling the writer: exit %d (0: delivered, 1: EPERM as wanted)",
                  WIFEXITED(kstatus) ? WEXITSTATUS(kstatus) : -1);
    ck_assert(t_status_has(w, "Groups:\t \n"));
    ck_assert(t_status_has(w, "NoNewPrivs:\t1\n"));
    ck_assert(t_status_has(w, "CapEff:\t0000000000000000\n"));

    /* The VMM's stdout and stderr are the pipe the writer reads. */
    t_fd_target(vm->vmm_pid, 1, pipe_name, sizeof(pipe_name));
    ck_assert_msg(strncmp(pipe_name, "pipe:[", 6) == 0, "%s", pipe_name);
    t_fd_target(vm->vmm_pid, 2, target, sizeof(target));
    ck_assert_str_eq(target, pipe_name);
    t_fd_target(w, 0, target, sizeof(target));
    ck_assert_str_eq(target, pipe_name);
    static const char *const names[] = { "firecracker.log", "firecracker.log.1",
                                         "firecracker.log.start" };
    for (int fd = 3; fd <= 5; fd++) {
        t_fd_target(w, fd, target, sizeof(target));
        snprintf(expect, sizeof(expect), "%s/%s", t_state, names[fd - 3]);
        ck_assert_str_eq(target, expect);
    }
    for (int fd = 6; fd < 64; fd++) {
        t_fd_target(w, fd, target, sizeof(target));
        ck_assert_msg(target[0] == '\0', "writer holds fd %d: %s", fd, target);
    }
    struct stat st;
    for (size_t i = 0; i < 3; i++) {
        snprintf(expect, sizeof(expect), "%s/%s", t_state, names[i]);
        ck_assert_int_eq(stat(expect, &st), 0);
        ck_assert_int_eq(st.st_uid, 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
    }

    ck_assert_msg(fc_kill(vm, SIGKILL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(t_exited(w));
    ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_CONSOLE_PID));
    bg_vm_free(vm);
}
END_TEST

/* A guest doing `cat /dev/zero > /dev/console`: megabytes through a 64 KiB
 * ring, the disk holds no more than the cap, and stop ends the writer. */
START_TEST(test_flooding_guest_stays_within_the_cap)
{
    struct fc_driver drv = { .firecracker_bin = FC_DOUBLE, .console_log_max_bytes = T_CAP,
                             .stop_grace_ms = 5000 };
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    static const char done[] = "fc-double: console flood of 8000000 bytes done\n";

    setenv("FC_DOUBLE_CONSOLE_FLOOD", "8000000", 1);
    t_launch(&drv, vm);
    unsetenv("FC_DOUBLE_CONSOLE_FLOOD");
    pid_t w = fc_console_log_pid(vm);
    ck_assert_int_gt(w, 0);
    struct fc_console_chunk c = { 0 };
    bool finished = false;
    for (int waited = 0; !finished && waited < T_WAIT_MS; waited += 20) {
        ck_assert_int_eq(fc_console_read(t_state, -(long long)strlen(done), 100, &c, &e), 0);
        finished = strcmp(c.data, done) == 0;
        free(c.data);
        ck_assert_int_le(t_disk_bytes(), T_CAP + 3 * 4096);
        if (!finished)
            t_sleep_ms(20);
    }
    ck_assert_msg(finished, "the flood did not come through");
    ck_assert_int_gt(c.end, 8000000);
    ck_assert_int_le(t_size("firecracker.log"), T_CAP / 2);
    ck_assert_int_le(t_size("firecracker.log.1"), T_CAP / 2);

    ck_assert_msg(fc_stop(&drv, vm, 5000, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(t_exited(w));
    bg_vm_free(vm);
}
END_TEST

static pid_t t_impostor(uid_t uid, const char *open_path)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open_path ? open(open_path, O_RDONLY) : -1;
        (void)fd;
        if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
            _exit(126);
        pause();
        _exit(0);
    }
    t_sleep_ms(50);
    return pid;
}

/* Only the process that holds the VM's log open for writing is the writer:
 * neither a user's process named by a tampered handle, nor a root reader
 * of the log, is ever signalled. */
START_TEST(test_stop_signals_only_the_writer)
{
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    char text[24], log_path[160];
    snprintf(log_path, sizeof(log_path), "%s/firecracker.log", t_state);
    int fd = open(log_path, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);

    pid_t nobody = t_impostor(65534, NULL);
    pid_t reader = t_impostor(0, log_path);
    pid_t victims[] = { nobody, reader };
    for (size_t i = 0; i < 2; i++) {
        snprintf(text, sizeof(text), "%d", (int)victims[i]);
        ck_assert_int_eq(bg_vm_set_handle(vm, FC_HANDLE_CONSOLE_PID, text, &e), 0);
        ck_assert_int_eq(fc_console_log_pid(vm), 0);
        ck_assert_msg(fc_console_log_stop(vm, &e) == 0, "%s", bg_error_text(&e));
        ck_assert_ptr_null(bg_vm_get_handle(vm, FC_HANDLE_CONSOLE_PID));
        ck_assert_int_eq(waitpid(victims[i], NULL, WNOHANG), 0);
        ck_assert_int_eq(kill(victims[i], 0), 0);
    }
    kill(nobody, SIGKILL);
    kill(reader, SIGKILL);
    waitpid(nobody, NULL, 0);
    waitpid(reader, NULL, 0);
    bg_vm_free(vm);
}
END_TEST

/* Something that inherited the VMM's stdout (QEMU under banger-vmm-qemu)
 * keeps the pipe open: stop does not wait for it, it kills the writer. */
START_TEST(test_stop_kills_a_writer_whose_pipe_stays_open)
{
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    int in = -1;
    char text[24];
    pid_t w = t_writer(T_CAP, &in);
    t_write_all(in, "still open\n", 11);
    snprintf(text, sizeof(text), "%d", (int)w);
    ck_assert_int_eq(bg_vm_set_handle(vm, FC_HANDLE_CONSOLE_PID, text, &e), 0);
    for (int waited = 0; fc_console_log_pid(vm) != w && waited < T_WAIT_MS; waited += 10)
        t_sleep_ms(10); /* until it dropped to nobody and runs */
    ck_assert_int_eq(fc_console_log_pid(vm), w);
    ck_assert_msg(fc_console_log_stop(vm, &e) == 0, "%s", bg_error_text(&e));
    int status = 0;
    ck_assert_int_eq(waitpid(w, &status, 0), w);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(in);
    bg_vm_free(vm);
}
END_TEST

/* VMMs of a failed test name the base dir on their command line (their
 * writers end with them). */
static void t_sweep(void)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[64], buf[4096];
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;
        if (fd >= 0)
            close(fd);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n > 0 ? n : 0] = '\0';
        if (strstr(buf, t_base))
            kill(pid, SIGKILL);
    }
    if (d)
        closedir(d);
}

/* A writer left over from a crash (its pipe still held open) would
 * interleave with the new one on the same ring: start ends it first. */
START_TEST(test_start_ends_a_stale_writer)
{
    struct fc_driver drv = { .firecracker_bin = FC_DOUBLE, .console_log_max_bytes = T_CAP };
    struct banger_vm *vm = t_vm();
    struct banger_error e = { 0 };
    int in = -1;
    char text[24];
    pid_t stale = t_writer(T_CAP, &in);
    snprintf(text, sizeof(text), "%d", (int)stale);
    ck_assert_int_eq(bg_vm_set_handle(vm, FC_HANDLE_CONSOLE_PID, text, &e), 0);
    for (int waited = 0; fc_console_log_pid(vm) != stale && waited < T_WAIT_MS; waited += 10)
        t_sleep_ms(10);
    t_launch(&drv, vm);
    int status = 0;
    ck_assert_int_eq(waitpid(stale, &status, 0), stale);
    pid_t w = fc_console_log_pid(vm);
    ck_assert_int_gt(w, 0);
    ck_assert_int_ne(w, stale);
    ck_assert_msg(fc_kill(vm, SIGKILL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert(t_exited(w));
    close(in);
    bg_vm_free(vm);
}
END_TEST

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
    snprintf(t_base, sizeof(t_base), "/tmp/bgcl.XXXXXX");
    if (!mkdtemp(t_base)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(t_base, 0711); /* the writer (nobody) needs nothing inside, by path */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    setenv("BANGER_CONSOLE_LOG", CONSOLE_LOG, 1);

    Suite *s = suite_create("fc_console_log");
    TCase *tc = tcase_create("writer");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, t_setup, NULL);
    tcase_add_test(tc, test_ring_stays_capped_and_reads_in_order);
    tcase_add_test(tc, test_oversized_old_log_is_cut_down);
    tcase_add_test(tc, test_summary_reads_across_the_rotation);
    tcase_add_test(tc, test_writer_runs_as_its_vms_uid_with_only_its_fds);
    tcase_add_test(tc, test_flooding_guest_stays_within_the_cap);
    tcase_add_test(tc, test_stop_signals_only_the_writer);
    tcase_add_test(tc, test_stop_kills_a_writer_whose_pipe_stays_open);
    tcase_add_test(tc, test_start_ends_a_stale_writer);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    t_sweep();
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    nftw(t_base, t_rm, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
