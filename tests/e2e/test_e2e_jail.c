/* bangerd end to end with jailer_bin set (tests/fcdouble/jailer-standin): the
 * VMM runs as its VM's uid inside its chroot, survives a kill -9 of the
 * daemon and is adopted, and stop, delete and reconcile leave no jail. */
#include "config.h"

#include "e2e.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* Apart from tests/fc's, so that a leftover of one is never taken for the other's. */
#define UID_BASE 1600000000u
#define UID_SPAN 65536u

static struct e2e t;
static char *jail_base;

static void setup(void)
{
    e2e_setup(&t, NULL, NULL);
    jail_base = NULL;
    ck_assert_int_gt(asprintf(&jail_base, "%s/jail", t.dir), 0);
    FILE *f = fopen(t.config, "ae");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "jailer_bin = \"%s\";\njailer_chroot_base = \"%s\";\njailer_uid_base = %u;\n",
            JAILER_STANDIN, jail_base, UID_BASE);
    fclose(f);
    /* The double opens the kernel and drives as Firecracker does, as the VM uid. */
    setenv("FC_DOUBLE_CHECK_PATHS", "1", 1);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
}

/* Real uid of pid, or -1. */
static long proc_uid(pid_t pid)
{
    char path[64], line[256];
    long uid = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Uid: %ld", &uid) == 1)
            break;
    if (f)
        fclose(f);
    return uid;
}

static bool proc_zombie(pid_t pid)
{
    char path[64], buf[512] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* The VM's console writer runs as the VM's uid too; it is not a VMM. */
static bool proc_is_console_writer(pid_t pid)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = '\0';
        fclose(f);
    }
    return strncmp(comm, "banger-console", 14) == 0;
}

/* Live VMMs running as a jail uid of this test (kill_them: every process of
 * those uids); the pid of the last VMM. */
static int jailed_vmms(pid_t *last, bool kill_them)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(de->d_name);
        long uid = pid > 0 ? proc_uid(pid) : -1;
        if (uid < (long)UID_BASE || uid >= (long)(UID_BASE + UID_SPAN) || proc_zombie(pid))
            continue;
        if (kill_them)
            kill(pid, SIGKILL);
        if (proc_is_console_writer(pid))
            continue;
        n++;
        if (last)
            *last = pid;
    }
    if (d)
        closedir(d);
    return n;
}

static bool mounted_below(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    bool found = false;
    while (f && fgets(line, sizeof(line), f))
        found = found || strstr(line, dir) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void unmount_below(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096], point[4096];
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 && strstr(point, dir) == point)
            umount2(point, MNT_DETACH);
    if (f)
        fclose(f);
}

static void teardown(void)
{
    e2e_stop_daemon(&t, SIGKILL);
    jailed_vmms(NULL, true);
    /* Never remove the tree through a bind a failed test left. */
    unmount_below(t.dir);
    e2e_teardown(&t);
    free(jail_base);
    unsetenv("FC_DOUBLE_CHECK_PATHS");
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static cJSON *ok(cJSON *reply, const char *what)
{
    ck_assert_msg(reply != NULL, "%s: no reply", what);
    ck_assert_msg(e2e_result(reply) != NULL, "%s: %s (%s)", what, e2e_error_message(reply),
                  e2e_error_code(reply));
    return reply;
}

static char *jail_of(const char *id)
{
    char *p = NULL;
    ck_assert_int_gt(asprintf(&p, "%s/fc-double/%s", jail_base, id), 0);
    return p;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The one jailed VMM: not root, rooted in the VM's jail. */
static pid_t assert_jailed(const char *id)
{
    pid_t pid = 0;
    ck_assert_int_eq(jailed_vmms(&pid, false), 1);
    ck_assert_int_gt(proc_uid(pid), 0);
    char *jail = jail_of(id), *root = NULL, *proc_root = NULL;
    ck_assert_int_gt(asprintf(&root, "%s/root", jail), 0);
    ck_assert_int_gt(asprintf(&proc_root, "/proc/%d/root/", (int)pid), 0);
    struct stat a, b;
    ck_assert_int_eq(stat(proc_root, &a), 0);
    ck_assert_int_eq(stat(root, &b), 0);
    ck_assert_msg(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "pid %d is not rooted in %s",
                  (int)pid, root);
    free(proc_root);
    free(root);
    free(jail);
    return pid;
}

START_TEST(jailed_vmm_survives_restart_and_stop_removes_the_jail)
{
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"web\"}"), "create");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    char *id = strdup(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    pid_t pid = assert_jailed(id);

    /* kill -9 of the daemon: the VMM runs on and is adopted by the next one. */
    e2e_stop_daemon(&t, SIGKILL);
    e2e_start_daemon(&t);
    ck_assert_int_eq(assert_jailed(id), pid);
    r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);

    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop"));
    char *jail = jail_of(id);
    ck_assert_int_eq(jailed_vmms(NULL, false), 0);
    ck_assert(!exists(jail));
    ck_assert(!mounted_below(jail_base));

    /* Start again, then delete: the same. */
    cJSON_Delete(ok(e2e_rpc(&t, "vm.start", "{\"vm\":\"web\"}"), "start"));
    assert_jailed(id);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"web\"}"), "delete"));
    ck_assert_int_eq(jailed_vmms(NULL, false), 0);
    ck_assert(!exists(jail));
    ck_assert(!mounted_below(jail_base));
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
    free(jail);
    free(id);
}
END_TEST

START_TEST(reconcile_stops_jailed_vmm_of_vm_gone_from_store)
{
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"ghost\"}"), "create");
    char *id = strdup(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    assert_jailed(id);
    e2e_stop_daemon(&t, SIGKILL);

    /* The record goes behind the daemon's back. */
    char *db_path = NULL, *sql = NULL;
    ck_assert_int_gt(asprintf(&db_path, "%s/banger.db", t.state_dir), 0);
    ck_assert_int_gt(asprintf(&sql, "DELETE FROM vms WHERE id = '%s'", id), 0);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_changes(db), 1);
    sqlite3_close(db);

    e2e_start_daemon(&t);
    ck_assert_int_eq(jailed_vmms(NULL, false), 0);
    char *jail = jail_of(id);
    ck_assert(!exists(jail));
    ck_assert(!mounted_below(jail_base));
    char *run = NULL;
    ck_assert_int_gt(asprintf(&run, "%s/vms/%s", t.runtime_dir, id), 0);
    ck_assert(!exists(run));
    free(run);
    free(jail);
    free(sql);
    free(db_path);
    free(id);
}
END_TEST

int main(void)
{
    e2e_run_begin();
    Suite *s = suite_create("e2e-jail");
    TCase *tc = tcase_create("jail");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, jailed_vmm_survives_restart_and_stop_removes_the_jail);
    tcase_add_test(tc, reconcile_stops_jailed_vmm_of_vm_gone_from_store);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* A failed test's teardown does not run: its jailed VMMs name no test
     * path, and its jail binds must go before the tree is removed. */
    jailed_vmms(NULL, true);
    const char *base = getenv("E2E_BASE");
    if (base)
        unmount_below(base);
    e2e_run_end();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
