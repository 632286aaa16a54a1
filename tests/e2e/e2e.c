#include "config.h"

#include "e2e.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char *e2e_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *e2e_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
    va_end(ap);
    return s;
}

static void e2e_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* A tiny ext4 image (superblock magic is what registration checks) and an
 * ELF file standing in for vmlinux: the double never boots them. */
static void e2e_make_image(struct e2e *t)
{
    t->rootfs = e2e_printf("%s/rootfs.ext4", t->dir);
    t->kernel = e2e_printf("%s/vmlinux", t->dir);
    int fd = open(t->rootfs, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 64 * 1024), 0);
    const unsigned char magic[2] = { 0x53, 0xEF };
    ck_assert_int_eq(pwrite(fd, magic, 2, 1024 + 56), 2);
    close(fd);
    fd = open(t->kernel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\177ELF\002\001\001", 7), 7);
    close(fd);
}

static void e2e_copy_plugin(const char *name, const char *dir)
{
    char *from = e2e_printf("%s/plugins/%s/.libs/%s.so", TOP_BUILDDIR, name, name);
    char *to = e2e_printf("%s/%s.so", dir, name);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execlp("cp", "cp", from, to, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "cannot copy %s (built?)", from);
    chmod(to, 0755);
    free(from);
    free(to);
}

void e2e_setup(struct e2e *t, const char *extra_config, const char *fc_bin)
{
    static const char *const none[] = { NULL };
    e2e_setup_plugins(t, none, extra_config, fc_bin);
}

void e2e_setup_plugins(struct e2e *t, const char *const *plugin_names, const char *extra_config,
                       const char *fc_bin)
{
    memset(t, 0, sizeof(*t));
    const char *base = getenv("E2E_BASE");
    char *tmpl = e2e_printf("%s/t-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    t->dir = tmpl;
    t->state_dir = e2e_printf("%s/state", t->dir);
    t->runtime_dir = e2e_printf("%s/run", t->dir);
    t->socket = e2e_printf("%s/bangerd.sock", t->runtime_dir);
    t->config = e2e_printf("%s/banger.conf", t->dir);
    t->log = e2e_printf("%s/bangerd.log", t->dir);
    t->record = e2e_printf("%s/fc-requests.jsonl", t->dir);
    char *plugins = e2e_printf("%s/plugins", t->dir);
    ck_assert_int_eq(mkdir(plugins, 0755), 0);
    e2e_make_image(t);
    char list[512] = "";
    size_t len = 0;
    for (size_t i = 0; plugin_names[i]; i++) {
        e2e_copy_plugin(plugin_names[i], plugins);
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s\"%s\"", i ? ", " : "",
                                plugin_names[i]);
    }
    char *conf = e2e_printf("state_dir = \"%s\";\nruntime_dir = \"%s\";\nplugin_dir = \"%s\";\n"
                            "plugins = ( %s );\nfirecracker_bin = \"%s\";\nstop_grace_ms = 3000;\n"
                            "log_level = \"debug\";\n%s",
                            t->state_dir, t->runtime_dir, plugins, list, fc_bin ? fc_bin : FC_DOUBLE,
                            extra_config ? extra_config : "");
    e2e_write(t->config, conf);
    free(conf);
    free(plugins);
}

void e2e_start_daemon(struct e2e *t)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("FC_DOUBLE_RECORD", t->record, 1);
        /* The uninstalled console log writer (core/fc/fc_console_log.c). */
        setenv("BANGER_CONSOLE_LOG", TOP_BUILDDIR "/core/console/banger-console-log", 0);
        execl(BANGERD, "bangerd", "--config", t->config, (char *)NULL);
        _exit(127);
    }
    t->daemon = pid;
    /* Ready when a request on the socket is answered. */
    for (int i = 0; i < 500; i++) {
        struct stat st;
        if (stat(t->socket, &st) == 0) {
            cJSON *r = e2e_rpc(t, "daemon.status", NULL);
            bool ok = r && e2e_result(r);
            cJSON_Delete(r);
            if (ok)
                return;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            t->daemon = 0;
            ck_abort_msg("bangerd exited during start-up (status %d); see %s", status, t->log);
        }
        usleep(20 * 1000);
    }
    ck_abort_msg("bangerd did not open %s within 10 s", t->socket);
}

void e2e_stop_daemon(struct e2e *t, int sig)
{
    if (t->daemon <= 0)
        return;
    kill(t->daemon, sig);
    int status;
    waitpid(t->daemon, &status, 0);
    t->daemon = 0;
}

static bool e2e_cmdline_mentions(pid_t pid, const char *needle)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static bool e2e_is_zombie(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return !paren || paren[2] == 'Z' || paren[2] == 'X';
}

/* Pids of live processes whose cmdline mentions the tree. */
static int e2e_scan(struct e2e *t, bool kill_them)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0 || pid == getpid() || pid == t->daemon)
            continue;
        /* A VMM of this tree: its API socket lives in our runtime dir (the
         * CLI's --socket does too, hence the --api-sock). */
        if (!e2e_cmdline_mentions(pid, t->runtime_dir) || !e2e_cmdline_mentions(pid, "--api-sock") ||
            e2e_is_zombie(pid))
            continue;
        n++;
        if (getenv("E2E_DEBUG"))
            fprintf(stderr, "e2e: live VMM pid %d\n", pid);
        if (kill_them)
            kill(pid, SIGKILL);
    }
    if (d)
        closedir(d);
    return n;
}

int e2e_live_vmms(struct e2e *t) { return e2e_scan(t, false); }

int e2e_live_console_writers(struct e2e *t, pid_t *first)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(de->d_name);
        char path[64], target[PATH_MAX];
        if (pid <= 0 || e2e_is_zombie(pid))
            continue;
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        target[len > 0 ? len : 0] = '\0';
        const char *base = strrchr(target, '/');
        if (!base || strcmp(base + 1, "banger-console-log") != 0)
            continue;
        /* Its fd 3 is the VM's firecracker.log, under this tree's state dir. */
        snprintf(path, sizeof(path), "/proc/%d/fd/3", (int)pid);
        len = readlink(path, target, sizeof(target) - 1);
        target[len > 0 ? len : 0] = '\0';
        if (strncmp(target, t->state_dir, strlen(t->state_dir)) != 0)
            continue;
        if (n++ == 0 && first)
            *first = pid;
    }
    if (d)
        closedir(d);
    return n;
}

static int e2e_count(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

int e2e_vm_dirs(struct e2e *t)
{
    char *a = e2e_printf("%s/vms", t->state_dir);
    char *b = e2e_printf("%s/vms", t->runtime_dir);
    int n = e2e_count(a) + e2e_count(b);
    free(a);
    free(b);
    return n;
}

static void e2e_rm_rf(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static char e2e_base[64];

void e2e_run_begin(void)
{
    snprintf(e2e_base, sizeof(e2e_base), "/tmp/bge-XXXXXX");
    if (!mkdtemp(e2e_base)) {
        perror("mkdtemp");
        exit(1);
    }
    /* Searchable, so a test may let another uid reach one socket below. */
    chmod(e2e_base, 0711);
    setenv("E2E_BASE", e2e_base, 1);
}

void e2e_run_end(void)
{
    /* Daemons and VMMs of failed tests: everything naming the base dir. */
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid > 0 && pid != getpid() && e2e_cmdline_mentions(pid, e2e_base))
            kill(pid, SIGKILL);
    }
    if (d)
        closedir(d);
    if (getenv("E2E_KEEP"))
        fprintf(stderr, "kept %s\n", e2e_base);
    else
        e2e_rm_rf(e2e_base);
}

void e2e_teardown(struct e2e *t)
{
    e2e_stop_daemon(t, SIGKILL);
    e2e_scan(t, true);
    if (!getenv("E2E_KEEP"))
        e2e_rm_rf(t->dir);
    char *ptrs[] = { t->dir, t->state_dir, t->runtime_dir, t->socket, t->config, t->log,
                     t->record, t->rootfs, t->kernel };
    for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++)
        free(ptrs[i]);
    memset(t, 0, sizeof(*t));
}

static char *e2e_slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* In a forked child: become uid/gid with only the group gid. */
static void e2e_become(uid_t uid, gid_t gid)
{
    if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
        _exit(126);
}

static int e2e_cli_common(struct e2e *t, bool as_other, uid_t uid, gid_t gid, char **out,
                          char **err, const char *const *argv)
{
    int po[2], pe[2];
    ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        if (as_other)
            e2e_become(uid, gid);
        const char *args[64];
        size_t n = 0;
        args[n++] = "banger";
        args[n++] = "--socket";
        args[n++] = t->socket;
        for (size_t i = 0; argv[i] && n < 62; i++)
            args[n++] = argv[i];
        args[n] = NULL;
        execv(BANGER_CLI, (char *const *)args);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    /* Read both pipes without deadlock: stderr is small, read it after. */
    char *o = e2e_slurp_fd(po[0]);
    char *e = e2e_slurp_fd(pe[0]);
    close(po[0]);
    close(pe[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int e2e_cli(struct e2e *t, char **out, char **err, const char *const *argv)
{
    return e2e_cli_common(t, false, 0, 0, out, err, argv);
}

int e2e_cli_as(struct e2e *t, uid_t uid, gid_t gid, char **out, char **err,
               const char *const *argv)
{
    return e2e_cli_common(t, true, uid, gid, out, err, argv);
}

/* Send one request line and read every reply line; NULL when the socket
 * does not accept. No check assertions: a forked child runs it too. */
static char *e2e_exchange(const char *socket_path, const char *line)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        close(fd);
        return NULL;
    }
    size_t len = strlen(line);
    for (size_t done = 0; done < len;) {
        ssize_t w = send(fd, line + done, len - done, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    /* Like a client that sent everything it had. */
    shutdown(fd, SHUT_WR);
    char *all = e2e_slurp_fd(fd);
    close(fd);
    return all;
}

/* The final line of a reply (progress events counted). Frees all. */
static cJSON *e2e_parse_reply(char *all, int *events)
{
    cJSON *final = NULL;
    int n_events = 0;
    for (char *save = NULL, *l = strtok_r(all, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(l);
        ck_assert_msg(j != NULL, "daemon sent a line that is not JSON: %s", l);
        if (cJSON_GetObjectItem(j, "progress")) {
            n_events++;
            cJSON_Delete(j);
            continue;
        }
        cJSON_Delete(final);
        final = j;
    }
    free(all);
    if (events)
        *events = n_events;
    return final;
}

cJSON *e2e_rpc_raw(struct e2e *t, const char *line, int *events)
{
    char *all = e2e_exchange(t->socket, line);
    return all ? e2e_parse_reply(all, events) : NULL;
}

cJSON *e2e_rpc_as(struct e2e *t, uid_t uid, gid_t gid, const char *method,
                  const char *params_json)
{
    char *line = e2e_printf("{\"v\":1,\"method\":\"%s\",\"params\":%s}\n", method,
                            params_json ? params_json : "{}");
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        e2e_become(uid, gid);
        char *all = e2e_exchange(t->socket, line);
        if (!all)
            _exit(3);
        size_t len = strlen(all);
        for (size_t done = 0; done < len;) {
            ssize_t w = write(p[1], all + done, len - done);
            if (w <= 0)
                _exit(4);
            done += (size_t)w;
        }
        _exit(0);
    }
    close(p[1]);
    char *all = e2e_slurp_fd(p[0]);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    free(line);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s as uid %u: the client failed (status %d)", method, (unsigned)uid, status);
    return e2e_parse_reply(all, NULL);
}

cJSON *e2e_rpc(struct e2e *t, const char *method, const char *params_json)
{
    char *line = e2e_printf("{\"v\":1,\"method\":\"%s\",\"params\":%s}\n", method,
                            params_json ? params_json : "{}");
    cJSON *r = e2e_rpc_raw(t, line, NULL);
    free(line);
    return r;
}

const char *e2e_error_code(const cJSON *reply)
{
    const cJSON *e = cJSON_GetObjectItem(reply, "error");
    const cJSON *c = e ? cJSON_GetObjectItem(e, "code") : NULL;
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

const char *e2e_error_message(const cJSON *reply)
{
    const cJSON *e = cJSON_GetObjectItem(reply, "error");
    const cJSON *m = e ? cJSON_GetObjectItem(e, "message") : NULL;
    return cJSON_IsString(m) ? m->valuestring : "";
}

const cJSON *e2e_result(const cJSON *reply) { return cJSON_GetObjectItem(reply, "result"); }

void e2e_register_default_image(struct e2e *t)
{
    char *params = e2e_printf("{\"name\":\"default\",\"rootfs\":\"%s\",\"kernel\":\"%s\"}",
                              t->rootfs, t->kernel);
    cJSON *r = e2e_rpc(t, "image.register", params);
    ck_assert_msg(r && e2e_result(r), "image.register: %s", r ? e2e_error_message(r) : "no reply");
    cJSON_Delete(r);
    free(params);
}

/* ---- helpers for the attacker's view (test_e2e_rpc, test_e2e_chaos) ----- */

void e2e_enter_netns(void)
{
    if (unshare(CLONE_NEWNET) < 0) {
        perror("unshare(CLONE_NEWNET)");
        exit(1);
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 ||
        (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)) {
        perror("lo up");
        exit(1);
    }
    close(fd);
}

pid_t e2e_fork_as_member_uid(uid_t uid)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        gid_t g = 65534;
        if (setgroups(1, &g) < 0 || setgid(65534) < 0 || setuid(uid) < 0)
            _exit(126);
    }
    return pid;
}

pid_t e2e_fork_as_member(void) { return e2e_fork_as_member_uid(65534); }

void e2e_open_tree(struct e2e *t)
{
    ck_assert_int_eq(chmod(t->dir, 0755), 0);
    ck_assert_int_eq(chmod(t->runtime_dir, 0755), 0);
}

int e2e_connect(struct e2e *t)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", t->socket);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

long long e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool e2e_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    long long until = e2e_now_ms() + timeout_ms;
    do {
        if (waitpid(pid, status, WNOHANG) == pid)
            return true;
        usleep(10 * 1000);
    } while (e2e_now_ms() < until);
    return false;
}

int e2e_log_count(struct e2e *t, const char *needle)
{
    FILE *f = fopen(t->log, "re");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) >= 0)
        n += strstr(line, needle) != NULL;
    free(line);
    fclose(f);
    return n;
}
