/* bangerd end to end: a VM belongs to the uid that created it. Two members
 * of socket_group (uids 61001 and 61002, both in nogroup) and root drive one
 * daemon: neither member may see, touch or ssh into the other's VMs, and
 * root sees and acts on all of them. */
#include "config.h"

#include "e2e.h"

#include <check.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* nogroup: the socket_group of these tests. */
#define MEMBER_GID 65534
#define UID_A 61001
#define UID_B 61002

static struct e2e t;

static void setup(void)
{
    e2e_setup(&t, "socket_group = \"nogroup\";\n", NULL);
    e2e_start_daemon(&t);
    /* The members reach the socket through the test tree. */
    ck_assert_int_eq(chmod(t.dir, 0755), 0);
    ck_assert_int_eq(chmod(t.runtime_dir, 0755), 0);
    e2e_register_default_image(&t);
}

static void teardown(void) { e2e_teardown(&t); }

static cJSON *as_a(const char *method, const char *params)
{
    return e2e_rpc_as(&t, UID_A, MEMBER_GID, method, params);
}

static cJSON *as_b(const char *method, const char *params)
{
    return e2e_rpc_as(&t, UID_B, MEMBER_GID, method, params);
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItem(o, key);
    ck_assert_msg(cJSON_IsNumber(it), "no number '%s'", key);
    return it->valuedouble;
}

static cJSON *ok(cJSON *reply, const char *what)
{
    ck_assert_msg(reply != NULL, "%s: no reply", what);
    ck_assert_msg(e2e_result(reply) != NULL, "%s: %s (%s)", what, e2e_error_message(reply),
                  e2e_error_code(reply));
    return reply;
}

/* The reply is the refusal of a VM that belongs to A. */
static void refused_as_not_owner(cJSON *reply, const char *what)
{
    ck_assert_msg(reply != NULL, "%s: no reply", what);
    ck_assert_msg(e2e_result(reply) == NULL, "%s: uid %d was allowed to act on uid %d's VM",
                  what, UID_B, UID_A);
    ck_assert_msg(e2e_error_code(reply) && strcmp(e2e_error_code(reply), "unauthorized") == 0,
                  "%s: code %s (%s)", what, e2e_error_code(reply), e2e_error_message(reply));
    ck_assert_msg(strstr(e2e_error_message(reply), "belongs to uid 61001"), "%s: %s", what,
                  e2e_error_message(reply));
    cJSON_Delete(reply);
}

/* Does the vm.list reply name this VM? */
static bool lists(const cJSON *reply, const char *name)
{
    const cJSON *vm;
    cJSON_ArrayForEach(vm, cJSON_GetObjectItem(e2e_result(reply), "vms")) {
        if (str(vm, "name") && strcmp(str(vm, "name"), name) == 0)
            return true;
    }
    return false;
}

static int list_count(const cJSON *reply)
{
    return cJSON_GetArraySize(cJSON_GetObjectItem(e2e_result(reply), "vms"));
}

START_TEST(members_cannot_touch_each_others_vms)
{
    cJSON *r = ok(as_a("vm.create", "{\"name\":\"web-a\"}"), "A creates web-a");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    ck_assert_int_eq((int)num(e2e_result(r), "owner_uid"), UID_A);
    int pid = (int)num(e2e_result(r), "pid");
    char *id = strdup(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    cJSON_Delete(ok(as_a("vm.create", "{\"name\":\"idle-a\",\"start\":false}"), "A creates idle"));

    /* B names A's VM: every method refuses, by name and by id. */
    static const struct { const char *method, *params; } tries[] = {
        { "vm.show", "{\"vm\":\"web-a\"}" },
        { "vm.stop", "{\"vm\":\"web-a\"}" },
        { "vm.restart", "{\"vm\":\"web-a\"}" },
        { "vm.kill", "{\"vm\":\"web-a\"}" },
        { "vm.delete", "{\"vm\":\"web-a\"}" },
        { "vm.logs", "{\"vm\":\"web-a\"}" },
        { "vm.ssh_info", "{\"vm\":\"web-a\"}" },
        { "vm.agent", "{\"vm\":\"web-a\",\"op\":\"ping\"}" },
        { "vm.start", "{\"vm\":\"idle-a\"}" },
        { "vm.set", "{\"vm\":\"idle-a\",\"vcpu\":1}" },
        { "vm.delete", "{\"vm\":\"idle-a\"}" },
    };
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
        refused_as_not_owner(as_b(tries[i].method, tries[i].params), tries[i].method);
    char params[64];
    snprintf(params, sizeof(params), "{\"vm\":\"%s\"}", id);
    refused_as_not_owner(as_b("vm.stop", params), "vm.stop by id");

    /* Names are one namespace: B cannot take A's. */
    r = as_b("vm.create", "{\"name\":\"web-a\",\"start\":false}");
    ck_assert_str_eq(e2e_error_code(r), "already_exists");
    cJSON_Delete(r);

    /* B's list and prune see only B's VMs. */
    cJSON_Delete(ok(as_b("vm.create", "{\"name\":\"web-b\",\"start\":false}"), "B creates"));
    r = ok(as_b("vm.list", NULL), "B lists");
    ck_assert_int_eq(list_count(r), 1);
    ck_assert(lists(r, "web-b"));
    cJSON_Delete(r);
    r = ok(as_b("vm.prune", NULL), "B prunes");
    const cJSON *deleted = cJSON_GetObjectItem(e2e_result(r), "deleted");
    ck_assert_int_eq(cJSON_GetArraySize(deleted), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(deleted, 0), "name"), "web-b");
    cJSON_Delete(r);

    /* A's VMs are untouched: the same VMM still runs, idle-a still exists. */
    r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web-a\"}"), "root shows web-a");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    ck_assert_int_eq((int)num(e2e_result(r), "pid"), pid);
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
    r = ok(as_a("vm.list", NULL), "A lists");
    ck_assert_int_eq(list_count(r), 2);
    ck_assert(lists(r, "web-a") && lists(r, "idle-a"));
    cJSON_Delete(r);

    /* The CLI: B's table lacks A's VMs; root's shows them with their owner. */
    cJSON_Delete(ok(as_b("vm.create", "{\"name\":\"web-b\",\"start\":false}"), "B again"));
    char *out = NULL, *err = NULL;
    const char *const list_argv[] = { "vm", "list", NULL };
    ck_assert_int_eq(e2e_cli_as(&t, UID_B, MEMBER_GID, &out, &err, list_argv), 0);
    ck_assert_msg(strstr(out, "OWNER") && strstr(out, "web-b") && !strstr(out, "web-a") &&
                  !strstr(out, "idle-a"), "B's vm list:\n%s%s", out, err);
    free(out);
    free(err);
    struct passwd *pw = getpwuid(UID_A);
    char owner_a[64];
    snprintf(owner_a, sizeof(owner_a), "%s", pw ? pw->pw_name : "61001");
    ck_assert_int_eq(e2e_cli(&t, &out, &err, list_argv), 0);
    ck_assert_msg(strstr(out, "web-a") && strstr(out, "idle-a") && strstr(out, "web-b") &&
                  strstr(out, owner_a), "root's vm list:\n%s%s", out, err);
    free(out);
    free(err);

    /* Root acts on A's VM; A still acts on its own. */
    r = ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web-a\"}"), "root stops web-a");
    ck_assert_str_eq(str(e2e_result(r), "state"), "stopped");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    cJSON_Delete(ok(as_a("vm.delete", "{\"vm\":\"web-a\"}"), "A deletes web-a"));
    cJSON_Delete(ok(as_a("vm.delete", "{\"vm\":\"idle-a\"}"), "A deletes idle-a"));
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"web-b\"}"), "root deletes web-b"));
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
    free(id);
}
END_TEST

/* debugfs's view of a file inside an ext4 image. */
static char *disk_cat(const char *disk, const char *file)
{
    char request[256];
    snprintf(request, sizeof(request), "cat %s", file);
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 2);
        dup2(p[1], 1);
        execlp("debugfs", "debugfs", "-R", request, disk, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap);
    ssize_t n;
    while (len + 1 < cap && (n = read(p[0], buf + len, cap - len - 1)) > 0)
        len += (size_t)n;
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "debugfs %s", disk);
    return buf;
}

static char *dup_result(const cJSON *reply, const char *key)
{
    const char *v = str(e2e_result(reply), key);
    ck_assert_msg(v && v[0], "no %s", key);
    return strdup(v);
}

START_TEST(ssh_keys_are_per_owner)
{
    cJSON *r = ok(as_a("vm.create", "{\"name\":\"web-a\"}"), "A creates web-a");
    char *id = dup_result(r, "id");
    char *ip = dup_result(r, "ip");
    cJSON_Delete(r);

    /* Each asks without a VM: each gets a key of its own. */
    cJSON *ka = ok(as_a("vm.ssh_info", NULL), "A's key");
    cJSON *kb = ok(as_b("vm.ssh_info", NULL), "B's key");
    cJSON *kr = ok(e2e_rpc(&t, "vm.ssh_info", NULL), "root's key");
    char *priv_a = dup_result(ka, "private_key"), *pub_a = dup_result(ka, "public_key");
    char *priv_b = dup_result(kb, "private_key"), *pub_b = dup_result(kb, "public_key");
    char *priv_r = dup_result(kr, "private_key"), *pub_r = dup_result(kr, "public_key");
    ck_assert_msg(strcmp(priv_a, priv_b) != 0, "A and B were handed the same private key");
    ck_assert_str_ne(priv_a, priv_r);
    ck_assert_str_ne(priv_b, priv_r);
    cJSON_Delete(ka);
    cJSON_Delete(kb);
    cJSON_Delete(kr);

    /* B asking for A's VM gets no key at all. */
    r = as_b("vm.ssh_info", "{\"vm\":\"web-a\"}");
    ck_assert_ptr_null(cJSON_GetObjectItem(r, "result"));
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_ptr_null(strstr(text, "PRIVATE KEY"));
    free(text);
    refused_as_not_owner(r, "ssh_info of A's VM");

    /* A's guest accepts A's key and root's, never B's. */
    char *disk = NULL;
    ck_assert_int_gt(asprintf(&disk, "%s/vms/%s/work.ext4", t.state_dir, id), 0);
    char *authorized = disk_cat(disk, "/.ssh/authorized_keys");
    pub_a[strcspn(pub_a, "\n")] = '\0';
    pub_b[strcspn(pub_b, "\n")] = '\0';
    pub_r[strcspn(pub_r, "\n")] = '\0';
    ck_assert_msg(strstr(authorized, pub_a), "A's key is not in A's VM:\n%s", authorized);
    ck_assert_msg(strstr(authorized, pub_r), "root's key is not in A's VM:\n%s", authorized);
    ck_assert_msg(!strstr(authorized, pub_b), "B's key opens A's VM:\n%s", authorized);

    /* The keys are root's files, private, one directory per uid. */
    char *key_a = NULL, *dir_a = NULL;
    ck_assert_int_gt(asprintf(&dir_a, "%s/ssh/uid-%d", t.state_dir, UID_A), 0);
    ck_assert_int_gt(asprintf(&key_a, "%s/id_ed25519", dir_a), 0);
    struct stat st;
    ck_assert_int_eq(stat(dir_a, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(st.st_uid, 0);
    ck_assert_int_eq(stat(key_a, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_uid, 0);

    /* Pinned host keys: each member sees only the lines of its own VMs. */
    char *hosts = NULL, *hosts_text = NULL;
    ck_assert_int_gt(asprintf(&hosts, "%s/ssh/known_hosts", t.state_dir), 0);
    ck_assert_int_gt(asprintf(&hosts_text, "%s,web-a.vm ssh-ed25519 AAAAweba\n"
                              "172.29.0.250,else.vm ssh-ed25519 AAAAelse\n", ip), 0);
    FILE *f = fopen(hosts, "we");
    ck_assert_ptr_nonnull(f);
    fputs(hosts_text, f);
    ck_assert_int_eq(fclose(f), 0);
    r = ok(as_b("vm.ssh_info", NULL), "B's known_hosts");
    ck_assert_str_eq(str(e2e_result(r), "known_hosts"), "");
    cJSON_Delete(r);
    r = ok(as_a("vm.ssh_info", NULL), "A's known_hosts");
    ck_assert_ptr_nonnull(strstr(str(e2e_result(r), "known_hosts"), "AAAAweba"));
    ck_assert_ptr_null(strstr(str(e2e_result(r), "known_hosts"), "AAAAelse"));
    cJSON_Delete(r);
    r = ok(e2e_rpc(&t, "vm.ssh_info", NULL), "root's known_hosts");
    ck_assert_str_eq(str(e2e_result(r), "known_hosts"), hosts_text);
    cJSON_Delete(r);

    cJSON_Delete(ok(as_a("vm.delete", "{\"vm\":\"web-a\"}"), "A deletes web-a"));
    free(hosts);
    free(hosts_text);
    free(key_a);
    free(dir_a);
    free(authorized);
    free(disk);
    free(priv_a);
    free(pub_a);
    free(priv_b);
    free(pub_b);
    free(priv_r);
    free(pub_r);
    free(id);
    free(ip);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e-owner");
    TCase *tc = tcase_create("owner");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, members_cannot_touch_each_others_vms);
    tcase_add_test(tc, ssh_keys_are_per_owner);
    suite_add_tcase(s, tc);
    e2e_run_begin();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    e2e_run_end();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
