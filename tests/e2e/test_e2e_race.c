/* bangerd end to end: a create racing a delete of the same VM, VMMs of VMs
 * that left the store, and processes that only claim to be a VMM. */
#include "config.h"

#include "e2e.h"

#include <check.h>
#include <dirent.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534

static struct e2e t;

static void setup(void)
{
    e2e_setup(&t, NULL, NULL);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
}

/* The daemon holds every create this long between reservation and lock. */
static void setup_paused(void)
{
    setenv("BANGER_FAULTS", "vmsvc.create-pause", 1);
    e2e_setup(&t, NULL, NULL);
    e2e_start_daemon(&t);
    unsetenv("BANGER_FAULTS");
    e2e_register_default_image(&t);
}

static void teardown(void) { e2e_teardown(&t); }

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

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int runtime_vm_dirs(void)
{
    char *path = NULL;
    ck_assert_int_gt(asprintf(&path, "%s/vms", t.runtime_dir), 0);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    free(path);
    return n;
}

static char *api_sock_of(const char *id)
{
    char *path = NULL;
    ck_assert_int_gt(asprintf(&path, "%s/vms/%s/api.sock", t.runtime_dir, id), 0);
    return path;
}

struct create_arg {
    const char *name;
    cJSON *reply;
};

static void *create_thread(void *p)
{
    struct create_arg *a = p;
    char params[128];
    snprintf(params, sizeof(params), "{\"name\":\"%s\"}", a->name);
    a->reply = e2e_rpc(&t, "vm.create", params);
    return NULL;
}

START_TEST(create_racing_delete_leaves_no_vmm)
{
    struct create_arg a = { .name = "race" };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, create_thread, &a), 0);
    /* The record appears at once; the create then waits before its lock. */
    cJSON *shown = NULL;
    for (int i = 0; i < 200 && !shown; i++) {
        cJSON *r = e2e_rpc(&t, "vm.show", "{\"vm\":\"race\"}");
        if (r && e2e_result(r))
            shown = r;
        else {
            cJSON_Delete(r);
            sleep_ms(5);
        }
    }
    ck_assert_msg(shown != NULL, "the create never reserved 'race'");
    ck_assert_str_eq(str(e2e_result(shown), "state"), "created");
    char *sock = api_sock_of(str(e2e_result(shown), "id"));
    cJSON_Delete(shown);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"race\"}"), "delete during create"));
    pthread_join(th, NULL);

    ck_assert_ptr_nonnull(a.reply);
    ck_assert_msg(e2e_result(a.reply) == NULL, "the create of a deleted VM succeeded");
    ck_assert_str_eq(e2e_error_code(a.reply), "not_found");
    ck_assert_msg(strstr(e2e_error_message(a.reply), "deleted while it was being created"),
                  "message: %s", e2e_error_message(a.reply));
    cJSON_Delete(a.reply);

    /* Nothing left: no VMM, no socket, no dirs (and so no handles), no record. */
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    ck_assert_int_eq(access(sock, F_OK), -1);
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
    cJSON *r = e2e_rpc(&t, "vm.show", "{\"vm\":\"race\"}");
    ck_assert_str_eq(e2e_error_code(r), "not_found");
    cJSON_Delete(r);

    /* The name and the IP are free again, and exactly one VM holds the IP. */
    r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"race\"}"), "create again");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    ck_assert_str_eq(str(e2e_result(r), "ip"), "172.29.0.2");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
    r = ok(e2e_rpc(&t, "vm.list", NULL), "list");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(e2e_result(r), "vms")), 1);
    cJSON_Delete(r);
    free(sock);
}
END_TEST

START_TEST(reconcile_kills_vmm_of_vm_gone_from_store)
{
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"ghost\"}"), "create");
    char *id = strdup(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
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
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    ck_assert_int_eq(runtime_vm_dirs(), 0);
    /* The freed IP goes to one VM only. */
    r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"next\"}"), "create next");
    ck_assert_str_eq(str(e2e_result(r), "ip"), "172.29.0.2");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
    free(sql);
    free(db_path);
    free(id);
}
END_TEST

/* A process of `nobody` whose command line names the VM's API socket the
 * way a VMM's does: `sh -c 'sleep 60; :' fc --api-sock <path>`. */
static pid_t impostor_start(const char *api_sock)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
            _exit(126);
        execl("/bin/sh", "sh", "-c", "sleep 60; :", "fc", "--api-sock", api_sock, (char *)NULL);
        _exit(127);
    }
    /* Until it has exec'd, its command line is ours. */
    for (int i = 0; i < 200; i++) {
        char path[64], buf[256] = "";
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        FILE *f = fopen(path, "re");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        if (n > 2 && strcmp(buf, "sh") == 0)
            return pid;
        sleep_ms(5);
    }
    ck_abort_msg("impostor did not start");
    return -1;
}

static bool impostor_alive(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == 0 && kill(pid, 0) == 0;
}

static void impostor_end(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

START_TEST(impostor_of_other_uid_is_never_taken_for_the_vmm)
{
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"web\",\"start\":false}"), "create");
    char *sock = api_sock_of(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    pid_t fake = impostor_start(sock);

    /* Start is not refused as "already running". */
    r = ok(e2e_rpc(&t, "vm.start", "{\"vm\":\"web\"}"), "start beside the impostor");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    int real = cJSON_GetObjectItem(e2e_result(r), "pid")->valueint;
    ck_assert_int_ne(real, fake);
    cJSON_Delete(r);
    r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
    ck_assert_int_eq(cJSON_GetObjectItem(e2e_result(r), "pid")->valueint, real);
    cJSON_Delete(r);

    /* Stop (and a stop of the stopped VM) never signals it. */
    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop"));
    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop again"));
    ck_assert_msg(impostor_alive(fake), "vm stop signalled the impostor");

    /* Reconcile does not adopt it: the VM's real VMM dies with the daemon
     * down, the impostor stays, and the VM comes back stopped. */
    r = ok(e2e_rpc(&t, "vm.start", "{\"vm\":\"web\"}"), "start again");
    real = cJSON_GetObjectItem(e2e_result(r), "pid")->valueint;
    cJSON_Delete(r);
    e2e_stop_daemon(&t, SIGKILL);
    ck_assert_int_eq(kill(real, SIGKILL), 0);
    for (int i = 0; i < 200 && kill(real, 0) == 0; i++)
        sleep_ms(5);
    e2e_start_daemon(&t);
    r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show after restart");
    ck_assert_str_eq(str(e2e_result(r), "state"), "stopped");
    ck_assert(!cJSON_IsNumber(cJSON_GetObjectItem(e2e_result(r), "pid")));
    cJSON_Delete(r);
    ck_assert_msg(impostor_alive(fake), "reconcile signalled the impostor");

    /* Delete does not touch it either. */
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"web\"}"), "delete"));
    ck_assert_msg(impostor_alive(fake), "vm delete signalled the impostor");
    impostor_end(fake);
    free(sock);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e-race");
    TCase *race = tcase_create("race");
    tcase_set_timeout(race, 120);
    tcase_add_checked_fixture(race, setup_paused, teardown);
    tcase_add_test(race, create_racing_delete_leaves_no_vmm);
    suite_add_tcase(s, race);
    TCase *ident = tcase_create("identity");
    tcase_set_timeout(ident, 120);
    tcase_add_checked_fixture(ident, setup, teardown);
    tcase_add_test(ident, reconcile_kills_vmm_of_vm_gone_from_store);
    tcase_add_test(ident, impostor_of_other_uid_is_never_taken_for_the_vmm);
    suite_add_tcase(s, ident);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
