/* bangerd end to end over RPC, with the Firecracker double: lifecycle,
 * parallel creates, errors, authorization, crash recovery, exact API bodies. */
#include "config.h"

#include "e2e.h"

#include <banger/capability.h>

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static struct e2e t;

static void setup(void)
{
    e2e_setup(&t, NULL, NULL);
    e2e_start_daemon(&t);
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

static void expect_error(cJSON *reply, const char *code, const char *in_message)
{
    ck_assert_ptr_nonnull(reply);
    ck_assert_msg(e2e_error_code(reply) && strcmp(e2e_error_code(reply), code) == 0,
                  "expected %s, got %s: %s", code, e2e_error_code(reply), e2e_error_message(reply));
    ck_assert_msg(strstr(e2e_error_message(reply), in_message) != NULL, "message '%s' lacks '%s'",
                  e2e_error_message(reply), in_message);
    const cJSON *e = cJSON_GetObjectItem(reply, "error");
    ck_assert_ptr_nonnull(str(e, "op_id"));
    cJSON_Delete(reply);
}

START_TEST(lifecycle_create_stop_start_delete)
{
    int events = 0;
    cJSON *r = ok(e2e_rpc_raw(&t, "{\"v\":1,\"method\":\"vm.create\",\"params\":{\"name\":\"web\"}}\n",
                              &events), "create");
    ck_assert_int_ge(events, 2); /* reserve, launch */
    const cJSON *vm = e2e_result(r);
    ck_assert_str_eq(str(vm, "state"), "running");
    ck_assert_str_eq(str(vm, "ip"), "172.29.0.2");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(vm, "pid")));
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
    cJSON_Delete(r);

    r = ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop");
    ck_assert_str_eq(str(e2e_result(r), "state"), "stopped");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    /* Stop is idempotent. */
    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop again"));

    r = ok(e2e_rpc(&t, "vm.start", "{\"vm\":\"web\"}"), "start");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);
    r = ok(e2e_rpc(&t, "vm.restart", "{\"vm\":\"web\"}"), "restart");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);

    r = ok(e2e_rpc(&t, "vm.kill", "{\"vm\":\"web\",\"signal\":\"KILL\"}"), "kill");
    ck_assert_str_eq(str(e2e_result(r), "state"), "stopped");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);

    r = ok(e2e_rpc(&t, "vm.set", "{\"vm\":\"web\",\"vcpu\":4,\"memory_mib\":2048}"), "set");
    ck_assert_int_eq(cJSON_GetObjectItem(e2e_result(r), "vcpu")->valueint, 4);
    cJSON_Delete(r);

    cJSON_Delete(ok(e2e_rpc(&t, "vm.start", "{\"vm\":\"web\"}"), "start"));
    expect_error(e2e_rpc(&t, "vm.set", "{\"vm\":\"web\",\"vcpu\":1}"), "busy", "is running");

    r = ok(e2e_rpc(&t, "vm.logs", "{\"vm\":\"web\"}"), "logs");
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(e2e_result(r), "data")));
    cJSON_Delete(r);

    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"web\"}"), "delete"));
    expect_error(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "not_found", "no VM named 'web'");
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
    /* Sockets gone too: nothing but bangerd.sock and the empty vms dir. */
    char *vms = NULL;
    ck_assert_int_ge(asprintf(&vms, "%s/vms", t.runtime_dir), 0);
    struct stat st;
    ck_assert_int_eq(stat(vms, &st), 0);
    free(vms);
}
END_TEST

START_TEST(api_bodies_are_exact)
{
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"api\",\"vcpu\":3,\"memory_mib\":512}"),
                    "create"));
    FILE *f = fopen(t.record, "re");
    ck_assert_ptr_nonnull(f);
    char line[8192];
    int seen = 0;
    while (fgets(line, sizeof(line), f)) {
        cJSON *rec = cJSON_Parse(line);
        ck_assert_ptr_nonnull(rec);
        const char *method = str(rec, "method"), *path = str(rec, "path");
        const cJSON *body = cJSON_GetObjectItem(rec, "body");
        char *b = cJSON_PrintUnformatted(body);
        if (strcmp(path, "/machine-config") == 0) {
            ck_assert_str_eq(method, "PUT");
            ck_assert_str_eq(b, "{\"vcpu_count\":3,\"mem_size_mib\":512}");
            seen |= 1;
        } else if (strcmp(path, "/boot-source") == 0) {
            char *want = NULL;
            ck_assert_int_ge(asprintf(&want, "\"kernel_image_path\":\"%s/images/", t.state_dir), 0);
            ck_assert_msg(strstr(b, want) && strstr(b, "/vmlinux\""), "%s", b);
            ck_assert_msg(strstr(b, "\"boot_args\":\"console=ttyS0 reboot=k panic=1 pci=off\""), "%s", b);
            free(want);
            seen |= 2;
        } else if (strcmp(path, "/actions") == 0) {
            ck_assert_str_eq(b, "{\"action_type\":\"InstanceStart\"}");
            seen |= 4;
        } else if (strcmp(path, "/drives/" BANGER_DRIVE_WORK) == 0) {
            /* core/workdisk: the guest's /root, flushes reach the host disk */
            char *want = NULL;
            ck_assert_int_ge(asprintf(&want, "{\"drive_id\":\"work\",\"path_on_host\":"
                                      "\"%s/vms/", t.state_dir), 0);
            ck_assert_msg(strncmp(b, want, strlen(want)) == 0, "%s", b);
            ck_assert_msg(strstr(b, "/work.ext4\",\"is_root_device\":false,"
                                    "\"is_read_only\":false,\"cache_type\":\"Writeback\"}"),
                          "%s", b);
            free(want);
            seen |= 8;
        }
        free(b);
        cJSON_Delete(rec);
    }
    fclose(f);
    ck_assert_int_eq(seen, 15);
}
END_TEST

struct create_arg {
    int i;
    cJSON *reply;
};

static void *create_thread(void *p)
{
    struct create_arg *a = p;
    a->reply = e2e_rpc(&t, "vm.create", "{}");
    return NULL;
}

START_TEST(twenty_parallel_creates_get_unique_identities)
{
    enum { N = 20 };
    pthread_t th[N];
    struct create_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct create_arg){ .i = i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, create_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    const char *keys[] = { "name", "ip", "mac", "id" };
    for (int i = 0; i < N; i++) {
        ok(args[i].reply, "parallel create");
        ck_assert_str_eq(str(e2e_result(args[i].reply), "state"), "running");
        for (int j = 0; j < i; j++) {
            for (size_t k = 0; k < 4; k++)
                ck_assert_str_ne(str(e2e_result(args[i].reply), keys[k]),
                                 str(e2e_result(args[j].reply), keys[k]));
            ck_assert_int_ne(cJSON_GetObjectItem(e2e_result(args[i].reply), "cid")->valueint,
                             cJSON_GetObjectItem(e2e_result(args[j].reply), "cid")->valueint);
        }
    }
    ck_assert_int_eq(e2e_live_vmms(&t), N);
    for (int i = 0; i < N; i++)
        cJSON_Delete(args[i].reply);
    cJSON *r = ok(e2e_rpc(&t, "vm.list", NULL), "list");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(e2e_result(r), "vms")), N);
    cJSON_Delete(r);
}
END_TEST

START_TEST(bad_requests_get_precise_errors)
{
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"dup\"}"), "create"));
    expect_error(e2e_rpc(&t, "vm.create", "{\"name\":\"dup\"}"), "already_exists", "VM name 'dup' already exists");
    expect_error(e2e_rpc(&t, "vm.create", "{\"name\":\"Bad_Name\"}"), "bad_request", "Bad_Name");
    expect_error(e2e_rpc(&t, "vm.create", "{\"vcpu\":0}"), "bad_request", "vcpu");
    expect_error(e2e_rpc(&t, "vm.create", "{\"memory_mib\":1}"), "bad_request", "memory");
    expect_error(e2e_rpc(&t, "vm.create", "{\"disk_size\":\"8Q\"}"), "bad_request", "is not a size");
    expect_error(e2e_rpc(&t, "vm.create", "{\"colour\":\"red\"}"), "bad_request", "unknown parameter \"colour\"");
    expect_error(e2e_rpc(&t, "vm.create", "{\"image\":\"nope\"}"), "not_found", "nope");
    expect_error(e2e_rpc(&t, "vm.stop", "{}"), "bad_request", "missing parameter \"vm\"");
    expect_error(e2e_rpc(&t, "vm.frobnicate", NULL), "bad_request", "unknown method 'vm.frobnicate'");
    expect_error(e2e_rpc_raw(&t, "{\"v\":2,\"method\":\"vm.list\"}\n", NULL), "bad_request",
                 "protocol version 2 is not supported");
    expect_error(e2e_rpc_raw(&t, "{\"method\":\"vm.list\"}\n", NULL), "bad_request", "no protocol version");
    expect_error(e2e_rpc_raw(&t, "this is not json\n", NULL), "bad_request", "not a JSON object");
    expect_error(e2e_rpc_raw(&t, "{\"v\":1,\"method\":\"vm.list\"}", NULL), "bad_request",
                 "not terminated by a newline");
    /* Oversized: 2 MiB without a newline. */
    size_t big = 2u << 20;
    char *huge = malloc(big + 1);
    memset(huge, 'x', big);
    huge[big] = '\0';
    expect_error(e2e_rpc_raw(&t, huge, NULL), "bad_request", "larger than");
    free(huge);
    /* The daemon is still fine. */
    cJSON_Delete(ok(e2e_rpc(&t, "vm.list", NULL), "list after abuse"));
}
END_TEST

START_TEST(other_uid_is_unauthorized)
{
    /* Let anyone connect, so the daemon's own credential check decides. */
    ck_assert_int_eq(chmod(t.socket, 0666), 0);
    ck_assert_int_eq(chmod(t.runtime_dir, 0755), 0);
    ck_assert_int_eq(chmod(t.dir, 0755), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(3);
        cJSON *r = e2e_rpc(&t, "vm.list", NULL);
        const char *code = r ? e2e_error_code(r) : NULL;
        _exit(code && strcmp(code, "unauthorized") == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "uid 65534 was not refused (%d)", status);
}
END_TEST

START_TEST(disconnecting_client_does_not_abort)
{
    /* Send a create and hang up before any reply: the VM must still come up. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", t.socket);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    const char line[] = "{\"v\":1,\"method\":\"vm.create\",\"params\":{\"name\":\"gone\"}}\n";
    ck_assert_int_eq(send(fd, line, sizeof(line) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(line) - 1));
    close(fd);

    const char *state = NULL;
    cJSON *r = NULL;
    for (int i = 0; i < 500; i++) {
        cJSON_Delete(r);
        r = e2e_rpc(&t, "vm.show", "{\"vm\":\"gone\"}");
        state = r && e2e_result(r) ? str(e2e_result(r), "state") : NULL;
        if (state && strcmp(state, "running") == 0)
            break;
        usleep(20 * 1000);
    }
    ck_assert_msg(state && strcmp(state, "running") == 0, "VM of a vanished client is '%s'",
                  state ? state : "(not created)");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
}
END_TEST

/* The reflink root module with the core's work disk, through the real
 * daemon: drive root is the VM's own copy, drive work the labelled disk,
 * both Writeback, both kept across stop/start, both gone after delete.
 * state_dir here cannot clone, so the copy is the logged fallback. */
static void setup_reflink(void)
{
    static const char *const plugins[] = { "reflink", NULL };
    e2e_setup_plugins(&t, plugins, NULL, NULL);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
}

/* The recorded body of PUT <path> (the last one), malloc'd, or NULL. */
static char *recorded_body(const char *path)
{
    FILE *f = fopen(t.record, "re");
    char line[8192], *found = NULL;
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        cJSON *rec = cJSON_Parse(line);
        ck_assert_ptr_nonnull(rec);
        if (strcmp(str(rec, "path"), path) == 0) {
            free(found);
            found = cJSON_PrintUnformatted(cJSON_GetObjectItem(rec, "body"));
        }
        cJSON_Delete(rec);
    }
    fclose(f);
    return found;
}

START_TEST(reflink_root_and_core_work_disk)
{
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"rl\"}"), "create");
    char *id = strdup(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    char *root = NULL, *work = NULL, *want = NULL, *body;
    ck_assert_int_ge(asprintf(&root, "%s/vms/%s/root.ext4", t.state_dir, id), 0);
    ck_assert_int_ge(asprintf(&work, "%s/vms/%s/work.ext4", t.state_dir, id), 0);

    body = recorded_body("/drives/" BANGER_DRIVE_ROOT);
    ck_assert_int_ge(asprintf(&want, "{\"drive_id\":\"root\",\"path_on_host\":\"%s\","
                              "\"is_root_device\":true,\"is_read_only\":false,"
                              "\"cache_type\":\"Writeback\"}", root), 0);
    ck_assert_str_eq(body, want);
    free(body);
    free(want);
    body = recorded_body("/drives/" BANGER_DRIVE_WORK);
    ck_assert_int_ge(asprintf(&want, "{\"drive_id\":\"work\",\"path_on_host\":\"%s\","
                              "\"is_root_device\":false,\"is_read_only\":false,"
                              "\"cache_type\":\"Writeback\"}", work), 0);
    ck_assert_str_eq(body, want);
    free(body);
    free(want);

    struct stat r0, w0, r1, w1;
    ck_assert_int_eq(stat(root, &r0), 0);
    ck_assert_int_eq(stat(work, &w0), 0);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"rl\"}"), "stop"));
    cJSON_Delete(ok(e2e_rpc(&t, "vm.start", "{\"vm\":\"rl\"}"), "start"));
    ck_assert_int_eq(stat(root, &r1), 0);
    ck_assert_int_eq(stat(work, &w1), 0);
    ck_assert_uint_eq(r0.st_ino, r1.st_ino);
    ck_assert_uint_eq(w0.st_ino, w1.st_ino);

    /* the daemon log names the cost of the copy */
    FILE *f = fopen(t.log, "re");
    char line[4096];
    bool warned = false;
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        warned |= strstr(line, "cannot clone files (reflink)") && strstr(line, "bytes written");
    fclose(f);
    ck_assert(warned);

    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"rl\"}"), "delete"));
    ck_assert_int_ne(stat(root, &r1), 0);
    ck_assert_int_ne(stat(work, &w1), 0);
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
    free(root);
    free(work);
    free(id);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e-daemon");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lifecycle_create_stop_start_delete);
    tcase_add_test(tc, api_bodies_are_exact);
    tcase_add_test(tc, twenty_parallel_creates_get_unique_identities);
    tcase_add_test(tc, bad_requests_get_precise_errors);
    tcase_add_test(tc, other_uid_is_unauthorized);
    tcase_add_test(tc, disconnecting_client_does_not_abort);
    suite_add_tcase(s, tc);
    TCase *rl = tcase_create("reflink");
    tcase_set_timeout(rl, 120);
    tcase_add_checked_fixture(rl, setup_reflink, teardown);
    tcase_add_test(rl, reflink_root_and_core_work_disk);
    suite_add_tcase(s, rl);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
