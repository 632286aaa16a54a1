/* bangerd end to end: a hostile guest's console. A guest that floods its
 * console (fc-double's FC_DOUBLE_CONSOLE_FLOOD, like `cat /dev/zero >
 * /dev/console`) cannot grow the host's disk past console_log_max_bytes, the
 * daemon keeps serving, and no console writer outlives its VM -- not even
 * across a daemon `kill -9`; a console carrying terminal escapes is shown
 * escaped by `vm logs`, as it was written with `--raw`. */
#include "config.h"

#include "e2e.h"

#include <check.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CAP (64 * 1024)
#define FLOOD_BYTES 8000000
#define WAIT_MS 60000 /* upper bound on waits; never asserted as a speed */

static struct e2e t;

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void setup(void)
{
    e2e_setup(&t, "console_log_max_bytes = \"64K\";\n", NULL);
}

static void teardown(void)
{
    unsetenv("FC_DOUBLE_CONSOLE_FLOOD");
    unsetenv("FC_DOUBLE_CONSOLE_FILE");
    e2e_teardown(&t);
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

/* Create and start a VM; its id (malloc'd). */
static char *create(const char *name)
{
    char params[96];
    snprintf(params, sizeof(params), "{\"name\":\"%s\"}", name);
    cJSON *r = ok(e2e_rpc(&t, "vm.create", params), name);
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    char *id = strdup(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    return id;
}

/* The exact bytes of a VM's console, from vm.logs with raw: true. */
static char *raw_logs(const char *name, long long offset, size_t *len, long long *next)
{
    char params[128];
    if (offset >= 0)
        snprintf(params, sizeof(params), "{\"vm\":\"%s\",\"raw\":true,\"offset\":%lld}", name,
                 offset);
    else
        snprintf(params, sizeof(params), "{\"vm\":\"%s\",\"raw\":true}", name);
    cJSON *r = ok(e2e_rpc(&t, "vm.logs", params), "vm.logs raw");
    const char *b64 = str(e2e_result(r), "data_base64");
    ck_assert_ptr_nonnull(b64);
    size_t n = strlen(b64);
    unsigned char *out = malloc(n / 4 * 3 + 1);
    int got = n ? EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n) : 0;
    ck_assert_int_ge(got, 0);
    for (size_t k = n; k > 0 && b64[k - 1] == '='; k--)
        got--;
    out[got] = '\0';
    *len = (size_t)got;
    if (next)
        *next = (long long)cJSON_GetObjectItem(e2e_result(r), "offset")->valuedouble;
    cJSON_Delete(r);
    return (char *)out;
}

/* Disk blocks taken by a VM's console files (all of firecracker.log*). */
static long long console_disk_bytes(const char *id, off_t *largest)
{
    static const char *const names[] = { "firecracker.log", "firecracker.log.1",
                                         "firecracker.log.start" };
    long long total = 0;
    *largest = 0;
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof(path), "%s/vms/%s/%s", t.state_dir, id, names[i]);
        if (stat(path, &st) == 0) {
            total += (long long)st.st_blocks * 512;
            if (st.st_size > *largest)
                *largest = st.st_size;
        }
    }
    return total;
}

START_TEST(flooding_guest_cannot_fill_the_disk)
{
    static const char done[] = "fc-double: console flood of 8000000 bytes done\n";
    setenv("FC_DOUBLE_CONSOLE_FLOOD", "8000000", 1);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
    char *id = create("flood");
    ck_assert_int_eq(e2e_live_console_writers(&t, NULL), 1);

    /* Megabytes go through; the disk never holds more than the cap. */
    bool finished = false;
    long long end = 0;
    for (int waited = 0; !finished && waited < WAIT_MS; waited += 50) {
        size_t len = 0;
        char *tail = raw_logs("flood", -1, &len, &end);
        finished = len >= strlen(done) && strcmp(tail + len - strlen(done), done) == 0;
        free(tail);
        off_t largest = 0;
        ck_assert_int_le(console_disk_bytes(id, &largest), CAP + 3 * 4096);
        ck_assert_int_le(largest, CAP / 2);
        if (!finished)
            sleep_ms(50);
    }
    ck_assert_msg(finished, "the flood's end never showed in vm logs");
    ck_assert_int_gt(end, FLOOD_BYTES);

    /* The daemon and its store keep working: another VM starts. */
    unsetenv("FC_DOUBLE_CONSOLE_FLOOD");
    char *id2 = create("calm");
    cJSON *r = ok(e2e_rpc(&t, "vm.list", NULL), "vm.list");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(e2e_result(r), "vms")), 2);
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_console_writers(&t, NULL), 2);

    /* Stop and delete leave no writer behind. */
    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"flood\"}"), "stop flood"));
    ck_assert_int_eq(e2e_live_console_writers(&t, NULL), 1);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"calm\"}"), "delete calm"));
    ck_assert_int_eq(e2e_live_console_writers(&t, NULL), 0);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    free(id);
    free(id2);
}
END_TEST

/* The writer is detached like the VMM: a daemon killed with SIGKILL and
 * started again finds it still logging, and the next stop ends it. */
START_TEST(writer_survives_daemon_kill_and_ends_at_stop)
{
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
    char *id = create("web");
    pid_t before = 0, after = 0;
    ck_assert_int_eq(e2e_live_console_writers(&t, &before), 1);

    e2e_stop_daemon(&t, SIGKILL);
    e2e_start_daemon(&t);
    ck_assert_int_eq(e2e_live_console_writers(&t, &after), 1);
    ck_assert_int_eq(after, before);
    cJSON *r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);
    size_t len = 0;
    char *log = raw_logs("web", -1, &len, NULL);
    ck_assert_msg(strstr(log, "Running Firecracker"), "%s", log);
    free(log);

    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop"));
    ck_assert_int_eq(e2e_live_console_writers(&t, NULL), 0); /* gone or a zombie */
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    free(id);
}
END_TEST

/* A VMM that died while the daemon was down: reconcile tears the VM down
 * from its handles, the console writer's included. */
START_TEST(reconcile_leaves_no_writer_of_a_dead_vmm)
{
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
    char *id = create("web");
    ck_assert_int_eq(e2e_live_console_writers(&t, NULL), 1);
    cJSON *r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
    pid_t vmm = (pid_t)cJSON_GetObjectItem(e2e_result(r), "pid")->valueint;
    cJSON_Delete(r);
    ck_assert_int_gt(vmm, 0);

    e2e_stop_daemon(&t, SIGKILL);
    ck_assert_int_eq(kill(vmm, SIGKILL), 0);
    for (int waited = 0; e2e_live_vmms(&t) > 0 && waited < WAIT_MS; waited += 20)
        sleep_ms(20);
    e2e_start_daemon(&t);
    ck_assert_int_eq(e2e_live_console_writers(&t, NULL), 0);
    char *path = NULL, *handles = NULL;
    ck_assert_int_gt(asprintf(&path, "%s/vms/%s/handles.json", t.state_dir, id), 0);
    FILE *f = fopen(path, "r");
    if (f) {
        handles = calloc(1, 65536);
        ck_assert_uint_lt(fread(handles, 1, 65535, f), 65535);
        fclose(f);
        ck_assert_msg(!strstr(handles, "fc.console_pid"), "%s", handles);
    }
    r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show after");
    ck_assert_str_eq(str(e2e_result(r), "state"), "stopped");
    cJSON_Delete(r);
    free(handles);
    free(path);
    free(id);
}
END_TEST

/* A console that retitles the terminal, clears it, and carries a NUL. */
START_TEST(vm_logs_escapes_the_console_unless_raw)
{
    static const char console[] = "hello \xc3\xa9\x1b]0;pwned\a\x1b[2Jafter\r\nnul:\0:end\n";
    char *path = NULL;
    ck_assert_int_gt(asprintf(&path, "%s/console.txt", t.dir), 0);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(console, 1, sizeof(console) - 1, f), sizeof(console) - 1);
    fclose(f);
    setenv("FC_DOUBLE_CONSOLE_FILE", path, 1);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
    char *id = create("web");

    /* vm.logs is asked before the double copied the file: wait for its end. */
    size_t len = 0;
    char *raw = NULL;
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        free(raw);
        raw = raw_logs("web", -1, &len, NULL);
        if (len >= 5 && memcmp(raw + len - 5, ":end\n", 5) == 0)
            break;
        sleep_ms(50);
    }
    ck_assert_int_ge(len, sizeof(console) - 1);
    ck_assert_int_eq(memcmp(raw + len - (sizeof(console) - 1), console, sizeof(console) - 1), 0);

    const char *const plain[] = { "vm", "logs", "web", NULL };
    char *out = NULL;
    ck_assert_int_eq(e2e_cli(&t, &out, NULL, plain), 0);
    ck_assert_msg(strstr(out, "hello \xc3\xa9\\x1b]0;pwned\\x07\\x1b[2Jafter\nnul:\\x00:end\n"),
                  "%s", out);
    ck_assert_ptr_null(strchr(out, '\x1b'));
    ck_assert_ptr_null(strchr(out, '\a'));
    free(out);

    const char *const as_is[] = { "vm", "logs", "--raw", "web", NULL };
    ck_assert_int_eq(e2e_cli(&t, &out, NULL, as_is), 0);
    ck_assert_msg(strstr(out, "hello \xc3\xa9\x1b]0;pwned\a\x1b[2Jafter\r\nnul:"), "%s", out);
    free(out);
    free(raw);
    free(id);
    free(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e-console");
    TCase *tc = tcase_create("console");
    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, flooding_guest_cannot_fill_the_disk);
    tcase_add_test(tc, writer_survives_daemon_kill_and_ends_at_stop);
    tcase_add_test(tc, reconcile_leaves_no_writer_of_a_dead_vmm);
    tcase_add_test(tc, vm_logs_escapes_the_console_unless_raw);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
