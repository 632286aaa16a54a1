/* vm run / exec / ssh-config end to end: the real bangerd and banger, the
 * tap plugin, the core's work disk, and the Firecracker double with
 * its stand-in guest (a real sshd in private namespaces, FC_DOUBLE_STANDIN).
 * Each test unshares its own network namespace first, so the bridge, the
 * TAPs, the veths and every packet stay inside it. */
#include "config.h"

#include "e2e.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct e2e T;

static char *g_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *g_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
    va_end(ap);
    return s;
}

static void g_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static char *g_read(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0;
    if (!f)
        return NULL;
    if (getdelim(&buf, &len, '\0', f) < 0) {
        free(buf);
        buf = strdup("");
    }
    fclose(f);
    return buf;
}

static void g_run(const char *const *argv)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s failed", argv[0],
                  argv[1]);
}

static void g_setup(void)
{
    static const char *const plugins[] = { "tap", NULL };

    ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s (tests need root)",
                  strerror(errno));
    /* nogroup: test_member_key_opens_only_own_vms drives the daemon as two
     * of its members too. */
    e2e_setup_plugins(&T, plugins, "tap = { pool_size = 0; };\nsocket_group = \"nogroup\";\n",
                      NULL);
    char *home = g_printf("%s/home", T.dir);
    ck_assert_int_eq(mkdir(home, 0700), 0);
    setenv("HOME", home, 1);
    unsetenv("XDG_CACHE_HOME");
    unsetenv("XDG_CONFIG_HOME");
    free(home);
    setenv("FC_DOUBLE_STANDIN", "1", 1);
    e2e_start_daemon(&T);
    e2e_register_default_image(&T);
}

static void g_teardown(void)
{
    e2e_teardown(&T);
}

/* The CLI with `input` on stdin; returns its exit status. */
static int g_cli(const char *input, char **out, char **err, const char *const *argv)
{
    char *in_path = g_printf("%s/stdin.txt", T.dir);
    char *out_path = g_printf("%s/stdout.txt", T.dir);
    char *err_path = g_printf("%s/stderr.txt", T.dir);
    g_write(in_path, input ? input : "");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int i = open(in_path, O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        const char *args[64];
        size_t n = 0;
        args[n++] = "banger";
        args[n++] = "--socket";
        args[n++] = T.socket;
        for (size_t k = 0; argv[k] && n < 62; k++)
            args[n++] = argv[k];
        args[n] = NULL;
        execv(BANGER_CLI, (char *const *)args);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    *out = g_read(out_path);
    *err = g_read(err_path);
    free(in_path);
    free(out_path);
    free(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int g_vm_count(void)
{
    cJSON *r = e2e_rpc(&T, "vm.list", NULL);
    ck_assert_ptr_nonnull(r);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(e2e_result(r), "vms"));
    cJSON_Delete(r);
    return n;
}

/* The stand-in ends asynchronously once its double is gone: poll (bounded). */
static void g_wait_no_processes(void)
{
    for (int i = 0; i < 200 && e2e_live_vmms(&T) > 0; i++)
        usleep(50 * 1000);
    ck_assert_int_eq(e2e_live_vmms(&T), 0);
}

static char *g_make_repo(void)
{
    char *repo = g_printf("%s/repo", T.dir);
    ck_assert_int_eq(mkdir(repo, 0755), 0);
    char *p;
    g_write(p = g_printf("%s/tracked.txt", repo), "tracked-content\n");
    free(p);
    g_write(p = g_printf("%s/.gitignore", repo), "ignored.txt\n");
    free(p);
    g_write(p = g_printf("%s/ignored.txt", repo), "ignored-content\n");
    free(p);
    g_write(p = g_printf("%s/untracked.txt", repo), "untracked-content\n");
    free(p);
    const char *const init[] = { "git", "-C", repo, "init", "-q", NULL };
    g_run(init);
    const char *const add[] = { "git", "-C", repo, "add", "tracked.txt", ".gitignore", NULL };
    g_run(add);
    return repo;
}

START_TEST(test_run_exit_status_and_rm)
{
    char *out, *err;
    const char *const argv[] = { "vm", "run", "--name", "seven", "--rm", "--", "sh", "-c",
                                 "exit 7", NULL };
    int status = g_cli(NULL, &out, &err, argv);
    ck_assert_msg(status == 7, "exit %d; stderr: %s", status, err);
    /* --rm: no VM, no dirs, no processes, no pinned key left. */
    ck_assert_int_eq(g_vm_count(), 0);
    ck_assert_int_eq(e2e_vm_dirs(&T), 0);
    g_wait_no_processes();
    char *hosts = g_printf("%s/ssh/known_hosts", T.state_dir);
    char *text = g_read(hosts);
    ck_assert_ptr_null(text ? strstr(text, "seven.vm") : NULL);
    free(text);
    free(hosts);
    free(out);
    free(err);
}
END_TEST

/* Start `vm run --rm -- sleep 30` as a child in its own process group, wait
 * until ssh answered (the CLI says "ready at"), then send `sig` to the whole
 * group as a terminal's Ctrl-C does, or to banger alone as kill(1) or a
 * supervisor does (banger must pass it on to its ssh). */
static void g_run_interrupted(int sig, bool whole_group)
{
    char *out_path = g_printf("%s/int-stdout.txt", T.dir);
    char *err_path = g_printf("%s/int-stderr.txt", T.dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        int i = open("/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        execl(BANGER_CLI, "banger", "--socket", T.socket, "vm", "run", "--name", "intr",
              "--rm", "--", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    int status = 0;
    bool ready = false, exited = false;
    /* Bounded: 30 s for the boot (the stand-in answers in well under that). */
    for (int i = 0; i < 600 && !ready && !exited; i++) {
        char *text = g_read(err_path);
        ready = text && strstr(text, "ready at") != NULL;
        free(text);
        exited = waitpid(pid, &status, WNOHANG) == pid;
        if (!ready && !exited)
            usleep(50 * 1000);
    }
    if (!exited && !ready)
        kill(-pid, SIGKILL);
    ck_assert_msg(!exited, "banger exited before the VM was ready (status %d)", status);
    ck_assert_msg(ready, "the VM was not ready within 30 s");
    ck_assert_int_eq(g_vm_count(), 1);
    /* Let ssh start the command: the signal must land while it runs. */
    usleep(300 * 1000);
    ck_assert_int_eq(kill(whole_group ? -pid : pid, sig), 0);
    /* Bounded wait, far below the 30 s sleep: the interrupt, not the
     * command, must end the run. */
    for (int i = 0; i < 400 && !exited; i++) {
        exited = waitpid(pid, &status, WNOHANG) == pid;
        if (!exited)
            usleep(50 * 1000);
    }
    if (!exited) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char *err = g_read(err_path);
    ck_assert_msg(exited, "banger still running 20 s after signal %d; stderr: %s", sig, err);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 128 + sig,
                  "status %#x, want exit %d; stderr: %s", status, 128 + sig, err);
    free(err);
    /* --rm still held: no VM, no dirs, no processes. */
    ck_assert_int_eq(g_vm_count(), 0);
    ck_assert_int_eq(e2e_vm_dirs(&T), 0);
    g_wait_no_processes();
    free(out_path);
    free(err_path);
}

START_TEST(test_run_rm_sigint)
{
    g_run_interrupted(SIGINT, true);
}
END_TEST

START_TEST(test_run_rm_sigint_banger_only)
{
    g_run_interrupted(SIGINT, false);
}
END_TEST

START_TEST(test_run_rm_sigterm)
{
    g_run_interrupted(SIGTERM, false);
}
END_TEST

START_TEST(test_run_repo_tracked_only)
{
    char *repo = g_make_repo();
    char *out, *err;
    /* -d: boots, copies, leaves it running. */
    const char *const run[] = { "vm", "run", "--name", "ws", "-d", repo, NULL };
    int status = g_cli(NULL, &out, &err, run);
    ck_assert_msg(status == 0, "exit %d; stderr: %s", status, err);
    ck_assert_ptr_nonnull(strstr(out, "banger vm ssh ws"));
    free(out);
    free(err);
    const char *const cat[] = { "vm", "exec", "ws", "--", "cat", "/root/repo/tracked.txt", NULL };
    status = g_cli(NULL, &out, &err, cat);
    ck_assert_msg(status == 0, "exit %d; stderr: %s", status, err);
    ck_assert_str_eq(out, "tracked-content\n");
    free(out);
    free(err);
    const char *const ign[] = { "vm", "exec", "ws", "--", "test", "-e", "/root/repo/ignored.txt",
                                NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, ign), 1);
    free(out);
    free(err);
    const char *const unt[] = { "vm", "exec", "ws", "--", "test", "-e",
                                "/root/repo/untracked.txt", NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, unt), 1);
    free(out);
    free(err);

    /* A command runs in /root/repo; --include-untracked adds untracked files. */
    const char *const run2[] = { "vm", "run", "--rm", "--include-untracked", repo, "--", "sh",
                                 "-c", "cat untracked.txt tracked.txt && test ! -e ignored.txt",
                                 NULL };
    status = g_cli(NULL, &out, &err, run2);
    ck_assert_msg(status == 0, "exit %d; stderr: %s", status, err);
    ck_assert_str_eq(out, "untracked-content\ntracked-content\n");
    free(out);
    free(err);
    ck_assert_int_eq(g_vm_count(), 1);
    free(repo);
}
END_TEST

START_TEST(test_exec_stdin_stdout_status)
{
    char *out, *err;
    const char *const run[] = { "vm", "run", "--name", "ex", "-d", NULL };
    int status = g_cli(NULL, &out, &err, run);
    ck_assert_msg(status == 0, "exit %d; stderr: %s", status, err);
    free(out);
    free(err);
    const char *const exec[] = { "vm", "exec", "ex", "--", "sh", "-c", "tr a-z A-Z; exit 3",
                                 NULL };
    status = g_cli("hello guest\n", &out, &err, exec);
    ck_assert_msg(status == 3, "exit %d; stderr: %s", status, err);
    ck_assert_str_eq(out, "HELLO GUEST\n");
    free(out);
    free(err);
    /* Words keep their boundaries and quotes through the guest's shell. */
    const char *const quoted[] = { "vm", "exec", "ex", "--", "printf", "[%s]", "a b", "it's",
                                   NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, quoted), 0);
    ck_assert_str_eq(out, "[a b][it's]");
    free(out);
    free(err);
    /* vm ssh NAME -- CMD runs CMD, as `ssh host CMD` does; options may
     * come first, as after ssh's destination. */
    const char *const ssh_cmd[] = { "vm", "ssh", "ex", "--", "-o", "LogLevel=QUIET", "sh", "-c",
                                    "'echo ssh-ran; exit 4'", NULL };
    status = g_cli(NULL, &out, &err, ssh_cmd);
    ck_assert_msg(status == 4, "exit %d; stderr: %s", status, err);
    ck_assert_str_eq(out, "ssh-ran\n");
    free(out);
    free(err);
    /* The login came through the work disk mounted at /root, as in a real
     * guest: the stand-in reads nothing else. */
    const char *const where[] = { "vm", "exec", "ex", "--", "findmnt", "-n", "-o",
                                  "FSTYPE,LABEL", "/root", NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, where), 0);
    ck_assert_msg(strstr(out, "ext4") && strstr(out, "banger-work"), "findmnt: %s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_changed_host_key_refused)
{
    char *out, *err;
    const char *const run[] = { "vm", "run", "--name", "kh", "-d", NULL };
    int status = g_cli(NULL, &out, &err, run);
    ck_assert_msg(status == 0, "exit %d; stderr: %s", status, err);
    free(out);
    free(err);
    const char *const ok[] = { "vm", "exec", "kh", "--", "true", NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, ok), 0);
    free(out);
    free(err);
    /* The same guest after a restart keeps its key. */
    const char *const stop[] = { "vm", "stop", "kh", NULL };
    const char *const start[] = { "vm", "start", "kh", NULL };
    ck_assert_int_eq(e2e_cli(&T, NULL, NULL, stop), 0);
    ck_assert_int_eq(e2e_cli(&T, NULL, NULL, start), 0);
    ck_assert_int_eq(g_cli(NULL, &out, &err, ok), 0);
    free(out);
    free(err);
    /* A stand-in with a new host key: refused, with a clear reason. */
    ck_assert_int_eq(e2e_cli(&T, NULL, NULL, stop), 0);
    char *pattern = g_printf("%s/vms/*/standin_host_ed25519", T.state_dir);
    glob_t gl;
    ck_assert_int_eq(glob(pattern, 0, NULL, &gl), 0);
    ck_assert_int_eq(gl.gl_pathc, 1);
    ck_assert_int_eq(unlink(gl.gl_pathv[0]), 0);
    globfree(&gl);
    free(pattern);
    ck_assert_int_eq(e2e_cli(&T, NULL, NULL, start), 0);
    status = g_cli(NULL, &out, &err, ok);
    ck_assert_int_ne(status, 0);
    ck_assert_msg(strstr(err, "host key changed") != NULL, "stderr: %s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_refusals_create_nothing)
{
    char *out, *err;
    char *plain = g_printf("%s/not-a-repo", T.dir);
    ck_assert_int_eq(mkdir(plain, 0755), 0);
    const char *const norepo[] = { "vm", "run", "--rm", plain, "--", "true", NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, norepo), 1);
    ck_assert_msg(strstr(err, "not inside a git work tree") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    const char *const noimage[] = { "vm", "run", "--image", "nope", "--", "true", NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, noimage), 1);
    ck_assert_msg(strstr(err, "no image named 'nope'") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    ck_assert_int_eq(g_vm_count(), 0);
    const char *const create[] = { "vm", "create", "--name", "taken", "--no-start", NULL };
    ck_assert_int_eq(e2e_cli(&T, NULL, NULL, create), 0);
    const char *const taken[] = { "vm", "run", "--name", "taken", "--", "true", NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, taken), 1);
    ck_assert_msg(strstr(err, "already exists") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    ck_assert_int_eq(g_vm_count(), 1);

    /* --dry-run: the file list and the plan, nothing created. */
    char *repo = g_make_repo();
    const char *const dry[] = { "vm", "run", "--dry-run", "--name", "dry", repo, "--", "make",
                                NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, dry), 0);
    ck_assert_ptr_nonnull(strstr(out, "  tracked.txt\n"));
    ck_assert_ptr_nonnull(strstr(out, "  .gitignore\n"));
    ck_assert_ptr_null(strstr(out, "ignored.txt\n  "));
    ck_assert_ptr_null(strstr(out, "  ignored.txt"));
    ck_assert_ptr_null(strstr(out, "untracked.txt"));
    ck_assert_ptr_nonnull(strstr(out, "would run: cd /root/repo && 'make'"));
    free(out);
    free(err);
    ck_assert_int_eq(g_vm_count(), 1);
    ck_assert_int_eq(e2e_live_vmms(&T), 0);
    free(repo);
    free(plain);
}
END_TEST

static int g_count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

START_TEST(test_ssh_config_install_idempotent)
{
    char *out, *err;
    char *ssh_dir = g_printf("%s/.ssh", getenv("HOME"));
    char *config = g_printf("%s/config", ssh_dir);
    const char *mine = "Host example\n    User me\n";
    ck_assert_int_eq(mkdir(ssh_dir, 0700), 0);
    g_write(config, mine);
    char *key = g_printf("%s/id_mine", ssh_dir);
    g_write(key, "not touched\n");

    const char *const install[] = { "ssh-config", "--install", NULL };
    for (int i = 0; i < 2; i++) {
        int status = g_cli(NULL, &out, &err, install);
        ck_assert_msg(status == 0, "exit %d; stderr: %s", status, err);
        free(out);
        free(err);
    }
    char *text = g_read(config);
    ck_assert_int_eq(g_count(text, "# >>> banger ssh-config"), 1);
    ck_assert_int_eq(g_count(text, "Include "), 1);
    ck_assert_ptr_nonnull(strstr(text, mine));
    /* At the top, so that it applies to every host. */
    ck_assert(strncmp(text, "# >>> banger ssh-config", 23) == 0);
    free(text);
    char *managed = g_printf("%s/.config/banger/ssh_config", getenv("HOME"));
    text = g_read(managed);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "Host *.vm"));
    ck_assert_ptr_nonnull(strstr(text, "/.cache/banger/ssh/id_ed25519"));
    free(text);

    const char *const uninstall[] = { "ssh-config", "--uninstall", NULL };
    ck_assert_int_eq(g_cli(NULL, &out, &err, uninstall), 0);
    free(out);
    free(err);
    text = g_read(config);
    ck_assert_str_eq(text, mine);
    free(text);
    ck_assert_int_ne(access(managed, F_OK), 0);
    text = g_read(key);
    ck_assert_str_eq(text, "not touched\n");
    free(text);
    free(managed);
    free(key);
    free(config);
    free(ssh_dir);
}
END_TEST

/* ---- VMs belong to their creator: ssh ---------------------------------- */

#define G_NOGROUP 65534

struct g_member {
    uid_t uid;
    char *home;
};

/* Two accounts of the host whose primary group is nogroup, the daemon's
 * socket_group here: ssh needs the uid to exist, so these cannot be made up. */
static void g_members(struct g_member m[2])
{
    size_t n = 0;
    struct passwd *pw;
    setpwent();
    while (n < 2 && (pw = getpwent()) != NULL) {
        if (pw->pw_uid != 0 && pw->pw_gid == G_NOGROUP)
            m[n++].uid = pw->pw_uid;
    }
    endpwent();
    ck_assert_msg(n == 2, "the host needs two accounts with primary group nogroup");
    for (size_t i = 0; i < 2; i++) {
        m[i].home = g_printf("%s/home-%u", T.dir, (unsigned)m[i].uid);
        ck_assert_int_eq(mkdir(m[i].home, 0700), 0);
        ck_assert_int_eq(chown(m[i].home, m[i].uid, G_NOGROUP), 0);
    }
    /* The members reach the socket through the test tree. */
    ck_assert_int_eq(chmod(T.dir, 0755), 0);
    ck_assert_int_eq(chmod(T.runtime_dir, 0755), 0);
}

/* The CLI as the member, with its own HOME. */
static int g_cli_as(const struct g_member *m, char **out, char **err, const char *const *argv)
{
    char *home = strdup(getenv("HOME"));
    setenv("HOME", m->home, 1);
    int status = e2e_cli_as(&T, m->uid, G_NOGROUP, out, err, argv);
    setenv("HOME", home, 1);
    free(home);
    return status;
}

/* Plain ssh as the member with `key`, host key unchecked: what a member who
 * holds a key could try against any address on the bridge. */
static int g_ssh_as(const struct g_member *m, const char *key, const char *ip, char **err)
{
    char *err_path = g_printf("%s/ssh-stderr.txt", T.dir);
    char *dest = g_printf("root@%s", ip);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        gid_t g = G_NOGROUP;
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(e, 2);
        if (setgroups(1, &g) < 0 || setgid(G_NOGROUP) < 0 || setuid(m->uid) < 0)
            _exit(126);
        setenv("HOME", m->home, 1);
        execlp("ssh", "ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o",
               "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
               "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=15", dest, "--", "true",
               (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    *err = g_read(err_path);
    free(err_path);
    free(dest);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(test_member_key_opens_only_own_vms)
{
    struct g_member m[2] = { 0 };
    char *out, *err;
    g_members(m);

    /* A runs a VM and reaches it over ssh with the key banger gave A. */
    const char *const run[] = { "vm", "run", "--name", "wa", "-d", NULL };
    int status = g_cli_as(&m[0], &out, &err, run);
    ck_assert_msg(status == 0, "A's vm run: exit %d; stderr: %s", status, err);
    free(out);
    free(err);
    const char *const exec[] = { "vm", "exec", "wa", "--", "echo", "owner-in", NULL };
    status = g_cli_as(&m[0], &out, &err, exec);
    ck_assert_msg(status == 0 && strcmp(out, "owner-in\n") == 0, "A's exec: %d %s %s", status,
                  out, err);
    free(out);
    free(err);

    /* B is refused by the daemon... */
    status = g_cli_as(&m[1], &out, &err, exec);
    ck_assert_msg(status != 0 && strstr(err, "belongs to uid"), "B's exec: %d %s %s", status, out,
                  err);
    free(out);
    free(err);
    /* ...and the key B holds does not open A's guest. */
    const char *const ssh_config[] = { "ssh-config", NULL };
    status = g_cli_as(&m[1], &out, &err, ssh_config);
    ck_assert_msg(status == 0, "B's ssh-config: %d %s", status, err);
    free(out);
    free(err);
    char *key_b = g_printf("%s/.cache/banger/ssh/id_ed25519", m[1].home);
    struct stat st;
    ck_assert_int_eq(stat(key_b, &st), 0);
    ck_assert_int_eq(st.st_uid, m[1].uid);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    cJSON *r = e2e_rpc(&T, "vm.show", "{\"vm\":\"wa\"}");
    const cJSON *ip = cJSON_GetObjectItem(e2e_result(r), "ip");
    ck_assert(cJSON_IsString(ip));
    status = g_ssh_as(&m[1], key_b, ip->valuestring, &err);
    ck_assert_msg(status == 255 && strstr(err, "Permission denied"),
                  "B's own key logged in to A's VM: ssh exit %d; stderr: %s", status, err);
    free(err);
    /* The same ssh with A's key works, so the refusal was the key's. */
    char *key_a = g_printf("%s/.cache/banger/ssh/id_ed25519", m[0].home);
    status = g_ssh_as(&m[0], key_a, ip->valuestring, &err);
    ck_assert_msg(status == 0, "A's key: ssh exit %d; stderr: %s", status, err);
    free(err);
    cJSON_Delete(r);

    /* Root reaches every VM. */
    const char *const root_exec[] = { "vm", "exec", "wa", "--", "echo", "root-in", NULL };
    status = g_cli(NULL, &out, &err, root_exec);
    ck_assert_msg(status == 0 && strcmp(out, "root-in\n") == 0, "root's exec: %d %s %s", status,
                  out, err);
    free(out);
    free(err);
    const char *const del[] = { "vm", "delete", "wa", NULL };
    ck_assert_int_eq(g_cli_as(&m[0], &out, &err, del), 0);
    free(out);
    free(err);
    g_wait_no_processes();
    free(key_a);
    free(key_b);
    free(m[0].home);
    free(m[1].home);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("guest-e2e");
    TCase *tc = tcase_create("e2e");
    tcase_add_checked_fixture(tc, g_setup, g_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_run_exit_status_and_rm);
    tcase_add_test(tc, test_run_rm_sigint);
    tcase_add_test(tc, test_run_rm_sigint_banger_only);
    tcase_add_test(tc, test_run_rm_sigterm);
    tcase_add_test(tc, test_run_repo_tracked_only);
    tcase_add_test(tc, test_exec_stdin_stdout_status);
    tcase_add_test(tc, test_changed_host_key_refused);
    tcase_add_test(tc, test_refusals_create_nothing);
    tcase_add_test(tc, test_ssh_config_install_idempotent);
    tcase_add_test(tc, test_member_key_opens_only_own_vms);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
