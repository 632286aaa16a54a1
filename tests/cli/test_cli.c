/* The banger CLI against a fake bangerd: exact requests, output, exit
 * statuses, and that bad command lines never reach the socket. */
#define _GNU_SOURCE
#include "config.h"

#include <dirent.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "fake-bangerd.h"

static char test_dir[] = "/tmp/banger-cli-test.XXXXXX";
static char test_socket[128];

#define VM_JSON(name, state, ip)                                                              \
    "{\"id\":\"3f9c0a7b12de\",\"name\":\"" name "\",\"state\":\"" state "\",\"image\":\"default\"," \
    "\"image_id\":\"aa11\",\"vcpu\":2,\"memory_mib\":1024,\"disk_size\":8589934592,\"nat\":false," \
    "\"ip\":" ip ",\"mac\":\"06:00:ac:1d:00:02\",\"cid\":3,\"pid\":4242,\"last_error\":null,"   \
    "\"owner_uid\":0,\"created_at\":1764150000,\"started_at\":1764150001,\"updated_at\":1764150001}"
#define OK(result) "{\"v\":1,\"op_id\":\"op-00000001\",\"result\":" result "}\n"
#define NOT_FOUND(what) \
    "{\"v\":1,\"error\":{\"code\":\"not_found\",\"message\":\"no VM named '" what "'\",\"op_id\":\"op-1a2b3c4d\"}}\n"
#define IMAGE_JSON \
    "{\"id\":\"aa11\",\"name\":\"debian\",\"rootfs\":\"/img/rootfs.ext4\",\"kernel\":\"/img/vmlinux\"," \
    "\"initrd\":null,\"created_at\":1764150000,\"vms\":1}"

/* Every method answered with something plausible. */
static const struct fake_reply generic_replies[] = {
    { "vm.create", OK(VM_JSON("web", "running", "\"172.29.0.2\"")) },
    { "vm.start", OK(VM_JSON("web", "running", "\"172.29.0.2\"")) },
    { "vm.restart", OK(VM_JSON("web", "running", "\"172.29.0.2\"")) },
    { "vm.stop", OK(VM_JSON("web", "stopped", "null")) },
    { "vm.kill", OK(VM_JSON("web", "stopped", "null")) },
    { "vm.delete", OK("{\"id\":\"3f9c0a7b12de\",\"name\":\"web\"}") },
    { "vm.show", OK(VM_JSON("web", "running", "\"172.29.0.2\"")) },
    { "vm.list", OK("{\"vms\":[" VM_JSON("web", "running", "\"172.29.0.2\"") "]}") },
    { "vm.logs", OK("{\"data\":\"boot ok\\n\",\"offset\":8}") },
    { "vm.set", OK(VM_JSON("web", "stopped", "null")) },
    { "vm.prune", OK("{\"deleted\":[{\"id\":\"3f9c0a7b12de\",\"name\":\"old\"}]}") },
    { "image.register", OK(IMAGE_JSON) },
    { "image.list", OK("{\"images\":[" IMAGE_JSON "]}") },
    { "image.show", OK(IMAGE_JSON) },
    { "image.delete", OK(IMAGE_JSON) },
    { "daemon.status",
      OK("{\"version\":\"0.9.9\",\"pid\":77,\"uptime_s\":7300,\"socket\":\"/run/banger/bangerd.sock\","
         "\"state_dir\":\"/var/lib/banger\",\"vms\":2,\"running\":1,"
         "\"plugins\":[{\"name\":\"tap\",\"version\":\"1\",\"phases\":[\"start\",\"stop\"]}]}") },
    { "doctor", OK("{\"rows\":[{\"status\":\"PASS\",\"check\":\"kvm\",\"detail\":\"/dev/kvm\"},"
                   "{\"status\":\"WARN\",\"check\":\"image\",\"detail\":\"no default image\"}]}") },
    { NULL, NULL },
};

/* argv after the program name, with --socket pointing at the fake. */
static void run_with(const struct fake_reply *replies, struct fake_result *res, const char *const *args)
{
    const char *argv[40] = { "--socket", test_socket };
    struct fake_opts opts = { .socket_path = test_socket, .replies = replies };
    int n = 2;

    for (int i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fake_run(&opts, argv, res);
}

#define RUN(replies, res, ...) run_with((replies), (res), (const char *const[]){ __VA_ARGS__, NULL })

/* --- exact requests, one per command and flag ---------------------------- */

struct request_case {
    const char *args[16];
    const char *request;
};

static const struct request_case request_cases[] = {
    { { "vm", "create" }, "{\"v\":1,\"method\":\"vm.create\",\"params\":{}}" },
    { { "vm", "create", "--name", "web", "--image", "debian", "--vcpu", "4", "--memory", "2G",
        "--disk-size", "8G", "--nat", "--no-start" },
      "{\"v\":1,\"method\":\"vm.create\",\"params\":{\"name\":\"web\",\"image\":\"debian\",\"vcpu\":4,"
      "\"memory_mib\":2048,\"disk_size\":8589934592,\"nat\":true,\"start\":false}}" },
    { { "vm", "create", "--memory", "512", "--disk-size", "1048576" },
      "{\"v\":1,\"method\":\"vm.create\",\"params\":{\"memory_mib\":512,\"disk_size\":1048576}}" },
    { { "vm", "create", "--memory=512M", "--disk-size=512M" },
      "{\"v\":1,\"method\":\"vm.create\",\"params\":{\"memory_mib\":512,\"disk_size\":536870912}}" },
    { { "vm", "start", "web" }, "{\"v\":1,\"method\":\"vm.start\",\"params\":{\"vm\":\"web\"}}" },
    { { "vm", "stop", "web" }, "{\"v\":1,\"method\":\"vm.stop\",\"params\":{\"vm\":\"web\"}}" },
    { { "vm", "restart", "web" }, "{\"v\":1,\"method\":\"vm.restart\",\"params\":{\"vm\":\"web\"}}" },
    { { "vm", "delete", "3f9c0a7b12de" },
      "{\"v\":1,\"method\":\"vm.delete\",\"params\":{\"vm\":\"3f9c0a7b12de\"}}" },
    { { "vm", "kill", "web" }, "{\"v\":1,\"method\":\"vm.kill\",\"params\":{\"vm\":\"web\"}}" },
    { { "vm", "kill", "--signal", "sigterm", "web" },
      "{\"v\":1,\"method\":\"vm.kill\",\"params\":{\"vm\":\"web\",\"signal\":\"TERM\"}}" },
    { { "vm", "kill", "web", "--signal=9" },
      "{\"v\":1,\"method\":\"vm.kill\",\"params\":{\"vm\":\"web\",\"signal\":9}}" },
    { { "vm", "prune", "-f" }, "{\"v\":1,\"method\":\"vm.prune\"}" },
    { { "vm", "list" }, "{\"v\":1,\"method\":\"vm.list\"}" },
    { { "vm", "ls" }, "{\"v\":1,\"method\":\"vm.list\"}" },
    { { "ps" }, "{\"v\":1,\"method\":\"vm.list\"}" },
    { { "vm", "show", "web" }, "{\"v\":1,\"method\":\"vm.show\",\"params\":{\"vm\":\"web\"}}" },
    { { "vm", "logs", "web" }, "{\"v\":1,\"method\":\"vm.logs\",\"params\":{\"vm\":\"web\"}}" },
    { { "vm", "set", "web", "--vcpu", "3", "--memory", "1536" },
      "{\"v\":1,\"method\":\"vm.set\",\"params\":{\"vm\":\"web\",\"vcpu\":3,\"memory_mib\":1536}}" },
    { { "vm", "set", "--memory", "4G", "web" },
      "{\"v\":1,\"method\":\"vm.set\",\"params\":{\"vm\":\"web\",\"memory_mib\":4096}}" },
    { { "image", "register", "--name", "debian", "--rootfs", "/img/rootfs.ext4", "--kernel",
        "/img/vmlinux", "--initrd", "/img/initrd.img" },
      "{\"v\":1,\"method\":\"image.register\",\"params\":{\"name\":\"debian\",\"rootfs\":\"/img/rootfs.ext4\","
      "\"kernel\":\"/img/vmlinux\",\"initrd\":\"/img/initrd.img\"}}" },
    { { "image", "list" }, "{\"v\":1,\"method\":\"image.list\"}" },
    { { "image", "show", "debian" }, "{\"v\":1,\"method\":\"image.show\",\"params\":{\"image\":\"debian\"}}" },
    { { "image", "delete", "debian" },
      "{\"v\":1,\"method\":\"image.delete\",\"params\":{\"image\":\"debian\"}}" },
    { { "doctor" }, "{\"v\":1,\"method\":\"doctor\"}" },
    { { "daemon", "status" }, "{\"v\":1,\"method\":\"daemon.status\"}" },
    { { "--json", "daemon", "status" }, "{\"v\":1,\"method\":\"daemon.status\"}" },
    { { "version" }, "{\"v\":1,\"method\":\"daemon.status\"}" },
};

START_TEST(test_exact_request)
{
    const struct request_case *tc = &request_cases[_i];
    struct fake_result res;

    run_with(generic_replies, &res, tc->args);
    ck_assert_msg(res.exit_status == 0, "%s %s: exit %d, stderr: %s", tc->args[0],
                  tc->args[1] ? tc->args[1] : "", res.exit_status, res.err);
    ck_assert_int_eq(res.nrequests, 1);
    ck_assert_str_eq(res.requests[0], tc->request);
    ck_assert_str_eq(res.err, "");
    ck_assert_str_ne(res.out, "");
    fake_result_free(&res);
}
END_TEST

START_TEST(test_register_relative_paths)
{
    struct fake_result res;
    char cwd[PATH_MAX];
    char expected[3 * PATH_MAX];

    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    RUN(generic_replies, &res, "image", "register", "--name", "debian", "--rootfs", "./rootfs.ext4",
        "--kernel", "boot/vmlinux");
    ck_assert_int_eq(res.exit_status, 0);
    snprintf(expected, sizeof(expected),
             "{\"v\":1,\"method\":\"image.register\",\"params\":{\"name\":\"debian\","
             "\"rootfs\":\"%s/rootfs.ext4\",\"kernel\":\"%s/boot/vmlinux\"}}",
             cwd, cwd);
    ck_assert_str_eq(res.requests[0], expected);
    fake_result_free(&res);
}
END_TEST

/* --- progress and results --------------------------------------------------- */

static const struct fake_reply create_with_progress[] = {
    { "vm.create",
      "{\"v\":1,\"progress\":{\"stage\":\"reserve\",\"elapsed_ms\":1}}\n"
      "{\"v\":1,\"progress\":{\"stage\":\"tap\",\"elapsed_ms\":12}}\n"
      "{\"v\":1,\"progress\":{\"stage\":\"boot\",\"elapsed_ms\":1400}}\n"
      OK(VM_JSON("web", "running", "\"172.29.0.2\"")) },
    { NULL, NULL },
};

START_TEST(test_progress_consumed_not_tty)
{
    struct fake_result res;

    RUN(create_with_progress, &res, "vm", "create", "--name", "web");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_msg(strncmp(res.out, "web running at 172.29.0.2 \u2014 ready in ", 38) == 0, "out: %s",
                  res.out);
    ck_assert_str_eq(res.err, ""); /* no progress when stderr is not a terminal */
    fake_result_free(&res);
}
END_TEST

START_TEST(test_progress_on_tty)
{
    const char *argv[] = { "--socket", test_socket, "vm", "create", "--name", "web", NULL };
    struct fake_opts opts = { .socket_path = test_socket, .replies = create_with_progress,
                              .stderr_tty = true };
    struct fake_result res;

    fake_run(&opts, argv, &res);
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_msg(strstr(res.err, "tap") && strstr(res.err, "12ms"), "stderr: %s", res.err);
    ck_assert_msg(strstr(res.err, "boot") && strstr(res.err, "1.4s"), "stderr: %s", res.err);
    ck_assert_ptr_nonnull(strstr(res.out, "web running at 172.29.0.2"));
    fake_result_free(&res);
}
END_TEST

START_TEST(test_create_no_start)
{
    static const struct fake_reply replies[] = {
        { "vm.create", OK(VM_JSON("web", "created", "\"172.29.0.2\"")) },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "vm", "create", "--name", "web", "--no-start");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_str_eq(res.out, "web created; start it with: banger vm start web\n");
    fake_result_free(&res);
}
END_TEST

START_TEST(test_json_output_parses)
{
    struct fake_result res;
    cJSON *doc;

    RUN(create_with_progress, &res, "--json", "vm", "create", "--name", "web");
    ck_assert_int_eq(res.exit_status, 0);
    doc = cJSON_Parse(res.out);
    ck_assert_msg(cJSON_IsObject(doc), "not JSON: %s", res.out);
    ck_assert_str_eq(cJSON_GetObjectItem(doc, "name")->valuestring, "web");
    ck_assert_str_eq(cJSON_GetObjectItem(doc, "ip")->valuestring, "172.29.0.2");
    cJSON_Delete(doc);
    fake_result_free(&res);

    /* --json after the command works too. */
    RUN(generic_replies, &res, "vm", "list", "--json");
    ck_assert_int_eq(res.exit_status, 0);
    doc = cJSON_Parse(res.out);
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(doc, "vms")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "vms")), 1);
    cJSON_Delete(doc);
    fake_result_free(&res);

    /* Several VMs: one array of results. */
    RUN(generic_replies, &res, "--json", "vm", "stop", "a", "b");
    ck_assert_int_eq(res.exit_status, 0);
    doc = cJSON_Parse(res.out);
    ck_assert_msg(cJSON_IsArray(doc), "not an array: %s", res.out);
    ck_assert_int_eq(cJSON_GetArraySize(doc), 2);
    cJSON_Delete(doc);
    fake_result_free(&res);

    RUN(generic_replies, &res, "--json", "version");
    doc = cJSON_Parse(res.out);
    ck_assert_str_eq(cJSON_GetObjectItem(doc, "daemon")->valuestring, "0.9.9");
    ck_assert_str_eq(cJSON_GetObjectItem(doc, "cli")->valuestring, PACKAGE_VERSION);
    cJSON_Delete(doc);
    fake_result_free(&res);
}
END_TEST

START_TEST(test_error_reply)
{
    static const struct fake_reply replies[] = {
        { "vm.show", NOT_FOUND("web") },
        { "vm.start", "{\"v\":1,\"error\":{\"code\":\"busy\",\"message\":\"VM web is busy\"}}\n" },
        { "vm.stop", "{\"v\":1,\"error\":{\"code\":\"busy\",\"message\":\"too many\",\"op_id\":\"\"}}\n" },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "vm", "show", "web");
    ck_assert_int_eq(res.exit_status, 1);
    ck_assert_str_eq(res.err, "banger: no VM named 'web' (not_found, op-1a2b3c4d)\n");
    ck_assert_str_eq(res.out, "");
    fake_result_free(&res);

    /* Without an op id. */
    RUN(replies, &res, "vm", "start", "web");
    ck_assert_int_eq(res.exit_status, 1);
    ck_assert_str_eq(res.err, "banger: VM web is busy (busy)\n");
    fake_result_free(&res);

    /* An empty op id is no op id. */
    RUN(replies, &res, "vm", "stop", "web");
    ck_assert_int_eq(res.exit_status, 1);
    ck_assert_str_eq(res.err, "banger: too many (busy)\n");
    fake_result_free(&res);
}
END_TEST

START_TEST(test_bad_replies)
{
    static const struct fake_reply replies[] = {
        { "vm.show", "this is not json\n" },
        { "vm.list", "" },
        { "vm.start", "{\"v\":1,\"op_id\":\"op-1\"}\n" },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "vm", "show", "web");
    ck_assert_int_eq(res.exit_status, 1);
    ck_assert_str_eq(res.err, "banger: bangerd sent a reply that is not a JSON object\n");
    fake_result_free(&res);

    RUN(replies, &res, "vm", "list");
    ck_assert_int_eq(res.exit_status, 1);
    ck_assert_str_eq(res.err, "banger: bangerd closed the connection before answering\n");
    fake_result_free(&res);

    RUN(replies, &res, "vm", "start", "web");
    ck_assert_int_eq(res.exit_status, 1);
    ck_assert_str_eq(res.err, "banger: bangerd sent a reply with neither a result nor an error\n");
    fake_result_free(&res);
}
END_TEST

/* --- usage errors: exit 2 and no connection --------------------------------- */

static const char *const usage_cases[][10] = {
    { "vm", "start", "Web" },
    { "vm", "start", "-bad-" },
    { "vm", "stop", "ok", "also_bad" },
    { "vm", "delete", "a234567890123456789012345678901234567890123456789012345678901234" },
    { "vm", "start" },
    { "vm", "create", "--name", "a_b" },
    { "vm", "create", "--name", "web-" },
    { "vm", "create", "--vcpu", "0" },
    { "vm", "create", "--vcpu", "two" },
    { "vm", "create", "--memory", "lots" },
    { "vm", "create", "--memory", "1500K" },
    { "vm", "create", "--disk-size", "8Q" },
    { "vm", "create", "--image", "-x" },
    { "vm", "create", "extra" },
    { "vm", "create", "--name" },
    { "vm", "stop", "--bogus", "web" },
    { "vm", "kill", "--signal", "USR9", "web" },
    { "vm", "set", "web" },
    { "vm", "set", "web", "--vcpu", "-1" },
    { "vm", "show", "a", "b" },
    { "vm", "logs", "-x", "web" },
    { "vm", "prune" }, /* stdin is not a terminal and no -f */
    { "vm", "frob" },
    { "vm" },
    { "image", "register", "--name", "x" },
    { "image", "register", "--name", "-x", "--rootfs", "r", "--kernel", "k" },
    { "image", "show" },
    { "daemon", "restart" },
    { "completion", "zsh" },
    { "frob" },
    { "--socket" },
};

START_TEST(test_usage_error_no_connection)
{
    const char *const *args = usage_cases[_i];
    struct fake_result res;

    run_with(generic_replies, &res, args);
    ck_assert_msg(res.exit_status == 2, "%s %s: exit %d", args[0], args[1] ? args[1] : "",
                  res.exit_status);
    ck_assert_int_eq(res.connections, 0);
    ck_assert_msg(strncmp(res.err, "banger: ", 8) == 0 || strncmp(res.err, "Usage:", 6) == 0,
                  "stderr: %s", res.err);
    fake_result_free(&res);
}
END_TEST

START_TEST(test_bad_name_names_the_rule)
{
    struct fake_result res;

    RUN(generic_replies, &res, "vm", "stop", "Web");
    ck_assert_int_eq(res.exit_status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "only lowercase letters, digits and '-'"));
    fake_result_free(&res);

    RUN(generic_replies, &res, "vm", "stop", "web-");
    ck_assert_int_eq(res.exit_status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "must not start or end with '-'"));
    fake_result_free(&res);
}
END_TEST

START_TEST(test_help_everywhere)
{
    static const char *const cases[][4] = {
        { "--help" }, { "-h" }, { "vm", "--help" }, { "vm", "create", "--help" },
        { "vm", "stop", "-h" }, { "vm", "kill", "--help" }, { "vm", "logs", "-h" },
        { "image", "register", "-h" }, { "doctor", "--help" }, { "daemon", "--help" },
        { "completion", "--help" }, { "ps", "-h" },
    };
    struct fake_result res;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_with(generic_replies, &res, cases[i]);
        ck_assert_int_eq(res.exit_status, 0);
        ck_assert_msg(strncmp(res.out, "Usage: banger", 13) == 0, "%s: %s", cases[i][0], res.out);
        ck_assert_int_eq(res.connections, 0);
        fake_result_free(&res);
    }
}
END_TEST

/* --- reaching the daemon ------------------------------------------------------ */

START_TEST(test_missing_socket)
{
    char path[256];
    char expected[512];
    const char *argv[] = { "--socket", path, "vm", "list", NULL };
    struct fake_opts opts = { 0 };
    struct fake_result res;

    snprintf(path, sizeof(path), "%s/absent.sock", test_dir);
    fake_run(&opts, argv, &res);
    ck_assert_int_eq(res.exit_status, 1);
    snprintf(expected, sizeof(expected),
             "banger: cannot reach bangerd at %s: No such file or directory "
             "(is it running? sudo systemctl start bangerd)\n",
             path);
    ck_assert_str_eq(res.err, expected);
    fake_result_free(&res);
}
END_TEST

START_TEST(test_env_socket)
{
    const char *argv[] = { "vm", "list", NULL };
    struct fake_opts opts = { .socket_path = test_socket, .replies = generic_replies,
                              .env_socket = test_socket };
    struct fake_result res;

    fake_run(&opts, argv, &res);
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_int_eq(res.nrequests, 1);
    fake_result_free(&res);
}
END_TEST

START_TEST(test_version_without_daemon)
{
    const char *argv[] = { "--socket", "/nonexistent/banger.sock", "version", NULL };
    struct fake_opts opts = { 0 };
    struct fake_result res;

    fake_run(&opts, argv, &res);
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_str_eq(strtok(res.out, "\n"), "banger  " PACKAGE_VERSION);
    ck_assert_ptr_nonnull(strstr(res.out + strlen(res.out) + 1, "bangerd not reachable"));
    fake_result_free(&res);
}
END_TEST

/* --- people output ------------------------------------------------------------ */

/* No account has this uid on a test host. */
#define CLI_TEST_NO_SUCH_UID 3999999999u

START_TEST(test_list_table_alignment)
{
    long long now = (long long)time(NULL);
    char list_reply[4096];
    char expected[1024];
    struct fake_reply replies[] = { { "vm.list", list_reply }, { NULL, NULL } };
    struct fake_result res;

    /* Ages far from a unit boundary, so a slow run cannot change them. */
    snprintf(list_reply, sizeof(list_reply),
             "{\"v\":1,\"op_id\":\"op-2\",\"result\":{\"vms\":["
             "{\"name\":\"web\",\"state\":\"running\",\"ip\":\"172.29.0.2\",\"image\":\"default\","
             "\"vcpu\":2,\"memory_mib\":1024,\"created_at\":%lld,\"owner_uid\":0},"
             "{\"name\":\"db-primary\",\"state\":\"stopped\",\"ip\":null,\"image\":\"debian-12\","
             "\"vcpu\":4,\"memory_mib\":4096,\"created_at\":%lld,\"owner_uid\":%u},"
             "{\"name\":\"x\",\"state\":\"error\",\"ip\":\"172.29.0.14\",\"image\":\"alpine\","
             "\"vcpu\":16,\"memory_mib\":1536,\"created_at\":%lld}]}}\n",
             now - 3 * 86400 - 600, now - 2 * 3600 - 600, (unsigned)CLI_TEST_NO_SUCH_UID,
             now - 3 * 60 - 20);
    /* Root by name, a uid the host does not know by number, and "-" from a
     * daemon that sends no owner. */
    snprintf(expected, sizeof(expected), "%s",
             "NAME        OWNER       STATE    IP           IMAGE      VCPU  MEM    AGE\n"
             "web         root        running  172.29.0.2   default    2     1024M  3d\n"
             "db-primary  3999999999  stopped  -            debian-12  4     4G     2h\n"
             "x           -           error    172.29.0.14  alpine     16    1536M  3m\n");
    ck_assert_ptr_null(getpwuid(CLI_TEST_NO_SUCH_UID));
    RUN(replies, &res, "ps");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_str_eq(res.out, expected);
    fake_result_free(&res);
}
END_TEST

START_TEST(test_show_key_value)
{
    struct fake_result res;

    RUN(generic_replies, &res, "vm", "show", "web");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_ptr_nonnull(strstr(res.out, "name:       web\n"));
    ck_assert_ptr_nonnull(strstr(res.out, "owner:      root\n"));
    ck_assert_ptr_nonnull(strstr(res.out, "state:      running\n"));
    ck_assert_ptr_nonnull(strstr(res.out, "memory:     1024M\n"));
    ck_assert_ptr_nonnull(strstr(res.out, "disk size:  8G\n"));
    ck_assert_ptr_nonnull(strstr(res.out, "ip:         172.29.0.2\n"));
    fake_result_free(&res);
}
END_TEST

START_TEST(test_multi_stop_keeps_going)
{
    static const struct fake_reply replies[] = {
        { "vm.stop", OK(VM_JSON("a", "stopped", "null")) },
        { "vm.stop", NOT_FOUND("b") },
        { "vm.stop", OK(VM_JSON("c", "stopped", "null")) },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "vm", "stop", "a", "b", "c");
    ck_assert_int_eq(res.exit_status, 1);
    ck_assert_int_eq(res.nrequests, 3);
    ck_assert_str_eq(res.requests[2], "{\"v\":1,\"method\":\"vm.stop\",\"params\":{\"vm\":\"c\"}}");
    ck_assert_str_eq(res.out, "a stopped\nc stopped\n");
    ck_assert_str_eq(res.err, "banger: no VM named 'b' (not_found, op-1a2b3c4d)\n");
    fake_result_free(&res);
}
END_TEST

START_TEST(test_logs_follow)
{
    static const struct fake_reply replies[] = {
        { "vm.logs", OK("{\"data\":\"hello\\n\",\"offset\":6}") },
        { "vm.logs", OK("{\"data\":\"\",\"offset\":6}") },
        { "vm.logs", OK("{\"data\":\"bye\\n\",\"offset\":10}") },
        { "vm.show", OK(VM_JSON("web", "stopped", "null")) },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "vm", "logs", "-f", "web");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_str_eq(res.out, "hello\nbye\n");
    ck_assert_int_eq(res.nrequests, 4);
    ck_assert_str_eq(res.requests[0], "{\"v\":1,\"method\":\"vm.logs\",\"params\":{\"vm\":\"web\"}}");
    ck_assert_str_eq(res.requests[1],
                     "{\"v\":1,\"method\":\"vm.logs\",\"params\":{\"vm\":\"web\",\"offset\":6}}");
    ck_assert_str_eq(res.requests[2], "{\"v\":1,\"method\":\"vm.show\",\"params\":{\"vm\":\"web\"}}");
    ck_assert_str_eq(res.requests[3],
                     "{\"v\":1,\"method\":\"vm.logs\",\"params\":{\"vm\":\"web\",\"offset\":6}}");
    fake_result_free(&res);
}
END_TEST

/* A hostile guest's console (a title change, a screen clear, a bare CR,
 * a C1 CSI, invalid UTF-8) reaches the terminal as text, not as commands,
 * even when the daemon's "data" carries the raw bytes; valid UTF-8,
 * newlines and tabs are kept. */
START_TEST(test_logs_escape_control_bytes)
{
    static const struct fake_reply replies[] = {
        { "vm.logs", OK("{\"data\":\"ok \\u00e9\\t\\u001b]0;pwned\\u0007\\u001b[2J"
                        "x\\ry\\r\\n\\u009b\\u007f\\n\",\"offset\":30}") },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "vm", "logs", "web");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_str_eq(res.requests[0], "{\"v\":1,\"method\":\"vm.logs\",\"params\":{\"vm\":\"web\"}}");
    ck_assert_str_eq(res.out, "ok \xc3\xa9\t\\x1b]0;pwned\\x07\\x1b[2Jx\\x0dy\n"
                              "\\xc2\\x9b\\x7f\n");
    fake_result_free(&res);
}
END_TEST

/* --raw asks for the bytes (base64 in "data_base64", so NULs survive JSON)
 * and prints them exactly, escapes and all. */
START_TEST(test_logs_raw)
{
    static const struct fake_reply replies[] = {
        /* "a\0b\x1b[2J\n" */
        { "vm.logs", OK("{\"data_base64\":\"YQBiG1sySgo=\",\"offset\":8}") },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "vm", "logs", "--raw", "web");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_str_eq(res.requests[0],
                     "{\"v\":1,\"method\":\"vm.logs\",\"params\":{\"vm\":\"web\",\"raw\":true}}");
    ck_assert_uint_eq(res.out_len, 8);
    ck_assert_int_eq(memcmp(res.out, "a\0b\x1b[2J\n", 8), 0);
    fake_result_free(&res);
}
END_TEST

/* vm health and vm ports print what a guest's agent said: a hostile guest's
 * hostname or process name is shown escaped, not obeyed by the terminal. */
START_TEST(test_agent_tables_escape_guest_text)
{
    static const struct fake_reply replies[] = {
        { "vm.agent", OK("{\"vm\":\"web\",\"version\":\"1\",\"uptime_ms\":1000,"
                         "\"hostname\":\"h\\u001b]0;pwned\\u0007\",\"boot_id\":\"b\\u001b[2J\",\"latency_ms\":1}") },
        { NULL, NULL },
    };
    static const struct fake_reply port_replies[] = {
        { "vm.agent", OK("{\"vm\":\"web\",\"ports\":[{\"proto\":\"tcp\",\"addr\":\"0.0.0.0\","
                         "\"port\":22,\"comm\":\"ssh\\u001b[31md\",\"pid\":7}]}") },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "vm", "health", "web");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_msg(!memchr(res.out, 0x1b, res.out_len) && !memchr(res.out, 0x07, res.out_len),
                  "raw control bytes in: %s", res.out);
    ck_assert_ptr_nonnull(strstr(res.out, "h\\x1b]0;pwned\\x07"));
    ck_assert_ptr_nonnull(strstr(res.out, "b\\x1b[2J"));
    fake_result_free(&res);
    RUN(port_replies, &res, "vm", "ports", "web");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_msg(!memchr(res.out, 0x1b, res.out_len), "raw ESC in: %s", res.out);
    ck_assert_ptr_nonnull(strstr(res.out, "ssh\\x1b[31md (7)"));
    fake_result_free(&res);
}
END_TEST

START_TEST(test_doctor_fail_exit)
{
    static const struct fake_reply replies[] = {
        { "doctor", OK("{\"rows\":[{\"status\":\"PASS\",\"check\":\"kvm\",\"detail\":\"/dev/kvm\"},"
                       "{\"status\":\"FAIL\",\"check\":\"firecracker\",\"detail\":\"not on PATH\"}]}") },
        { NULL, NULL },
    };
    struct fake_result res;

    RUN(replies, &res, "doctor");
    ck_assert_int_eq(res.exit_status, 1);
    ck_assert_str_eq(res.out, "STATUS  CHECK        DETAIL\n"
                              "PASS    kvm          /dev/kvm\n"
                              "FAIL    firecracker  not on PATH\n");
    fake_result_free(&res);

    RUN(generic_replies, &res, "doctor");
    ck_assert_int_eq(res.exit_status, 0);
    fake_result_free(&res);
}
END_TEST

START_TEST(test_completion_bash)
{
    char path[256];
    struct fake_result res;
    FILE *f;
    pid_t pid;
    int status;

    RUN(generic_replies, &res, "completion", "bash");
    ck_assert_int_eq(res.exit_status, 0);
    ck_assert_uint_gt(strlen(res.out), 100);
    ck_assert_ptr_nonnull(strstr(res.out, "complete -F _banger banger"));
    ck_assert_ptr_nonnull(strstr(res.out, "--disk-size"));
    ck_assert_int_eq(res.connections, 0);

    snprintf(path, sizeof(path), "%s/completion-%d.bash", test_dir, (int)getpid());
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(res.out, f);
    ck_assert_int_eq(fclose(f), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execlp("bash", "bash", "-n", path, (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    unlink(path);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bash -n rejected the script");
    fake_result_free(&res);
}
END_TEST

static void setup(void)
{
    snprintf(test_socket, sizeof(test_socket), "%s/bangerd-%d.sock", test_dir, (int)getpid());
}

static void remove_test_dir(void)
{
    DIR *dir = opendir(test_dir);
    struct dirent *ent;
    char path[512];

    while (dir && (ent = readdir(dir)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", test_dir, ent->d_name);
        unlink(path);
    }
    if (dir)
        closedir(dir);
    rmdir(test_dir);
}

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_exact_request, 0, (int)(sizeof(request_cases) / sizeof(request_cases[0])));
    tcase_add_test(tc, test_register_relative_paths);
    tcase_add_test(tc, test_progress_consumed_not_tty);
    tcase_add_test(tc, test_progress_on_tty);
    tcase_add_test(tc, test_create_no_start);
    tcase_add_test(tc, test_json_output_parses);
    tcase_add_test(tc, test_error_reply);
    tcase_add_test(tc, test_bad_replies);
    tcase_add_loop_test(tc, test_usage_error_no_connection, 0,
                        (int)(sizeof(usage_cases) / sizeof(usage_cases[0])));
    tcase_add_test(tc, test_bad_name_names_the_rule);
    tcase_add_test(tc, test_help_everywhere);
    tcase_add_test(tc, test_missing_socket);
    tcase_add_test(tc, test_env_socket);
    tcase_add_test(tc, test_version_without_daemon);
    tcase_add_test(tc, test_list_table_alignment);
    tcase_add_test(tc, test_show_key_value);
    tcase_add_test(tc, test_multi_stop_keeps_going);
    tcase_add_test(tc, test_logs_follow);
    tcase_add_test(tc, test_logs_escape_control_bytes);
    tcase_add_test(tc, test_logs_raw);
    tcase_add_test(tc, test_agent_tables_escape_guest_text);
    tcase_add_test(tc, test_doctor_fail_exit);
    tcase_add_test(tc, test_completion_bash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (access(BANGER_BIN, X_OK) != 0) {
        fprintf(stderr, "test_cli: %s is not built\n", BANGER_BIN);
        return 1;
    }
    if (!mkdtemp(test_dir)) {
        perror("mkdtemp");
        return 1;
    }
    sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_test_dir();
    return failed == 0 ? 0 : 1;
}
