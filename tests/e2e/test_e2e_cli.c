/* The banger CLI against the real bangerd and the Firecracker double: every
 * command, error output and exit status, crash recovery, slow and failing
 * VMMs. */
#include "config.h"

#include "e2e.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static struct e2e t;

static void teardown(void)
{
    e2e_teardown(&t);
    unsetenv("FC_DOUBLE_VERSION");
}

/* Run the CLI; assert its exit status; return stdout (caller frees). */
static char *cli(int want_status, const char *const *argv, char **err_out)
{
    char *out = NULL, *err = NULL;
    int status = e2e_cli(&t, &out, &err, argv);
    ck_assert_msg(status == want_status, "banger %s %s: exit %d, want %d\nstdout: %s\nstderr: %s",
                  argv[0], argv[1] ? argv[1] : "", status, want_status, out, err);
    if (err_out)
        *err_out = err;
    else
        free(err);
    return out;
}

#define CLI(status, ...) cli(status, (const char *const[]){ __VA_ARGS__, NULL }, NULL)

static void contains(const char *text, const char *want)
{
    ck_assert_msg(text && strstr(text, want) != NULL, "'%s' not in:\n%s", want, text ? text : "(null)");
}

static void start_with_image(const char *extra_config, const char *fc_bin)
{
    e2e_setup(&t, extra_config, fc_bin);
    e2e_start_daemon(&t);
    free(CLI(0, "image", "register", "--name", "default", "--rootfs", t.rootfs, "--kernel", t.kernel));
}

START_TEST(every_command)
{
    start_with_image(NULL, NULL);
    char *out;
    out = CLI(0, "image", "list");
    contains(out, "default");
    free(out);
    out = CLI(0, "image", "show", "default");
    contains(out, "rootfs:");
    free(out);

    out = CLI(0, "vm", "create", "--name", "web", "--vcpu", "1", "--memory", "512");
    contains(out, "web running at 172.29.0.2");
    free(out);
    out = CLI(0, "vm", "create", "--name", "db", "--no-start");
    contains(out, "db created");
    free(out);
    out = CLI(0, "vm", "list");
    contains(out, "NAME  OWNER  STATE");
    /* Made by root, so root's. */
    contains(out, "web   root   running");
    contains(out, "db    root   created");
    free(out);
    out = CLI(0, "ps", "--json");
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "--json output does not parse: %s", out);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "vms"), 0);
    const cJSON *owner = cJSON_GetObjectItem(first, "owner_uid");
    ck_assert_msg(cJSON_IsNumber(owner) && owner->valueint == 0, "no owner_uid 0 in: %s", out);
    cJSON_Delete(j);
    free(out);
    out = CLI(0, "vm", "show", "web");
    contains(out, "172.29.0.2");
    contains(out, "512M");
    free(out);
    free(CLI(0, "vm", "start", "db"));
    free(CLI(0, "vm", "stop", "web", "db"));
    free(CLI(0, "vm", "set", "web", "--vcpu", "2", "--memory", "1G"));
    out = CLI(0, "vm", "show", "web", "--json");
    contains(out, "\"memory_mib\":\t1024");
    free(out);
    free(CLI(0, "vm", "restart", "web"));
    free(CLI(0, "vm", "kill", "--signal", "TERM", "web"));
    out = CLI(0, "vm", "logs", "web");
    free(out);
    free(CLI(0, "daemon", "status"));
    out = CLI(0, "version");
    contains(out, "bangerd");
    free(out);
    out = CLI(0, "doctor");
    contains(out, "firecracker");
    contains(out, "banger-console-log, 4194304 bytes per VM");
    free(out);
    out = CLI(0, "completion", "bash");
    contains(out, "complete");
    free(out);
    free(CLI(0, "vm", "delete", "web"));
    out = CLI(0, "vm", "prune", "-f");
    contains(out, "db");
    free(out);
    free(CLI(0, "image", "delete", "default"));
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
}
END_TEST

START_TEST(errors_name_the_code_and_operation)
{
    start_with_image(NULL, NULL);
    free(CLI(0, "vm", "create", "--name", "web"));
    char *err = NULL;
    free(cli(1, (const char *const[]){ "vm", "create", "--name", "web", NULL }, &err));
    contains(err, "banger: VM name 'web' already exists (already_exists, op-");
    free(err);
    free(cli(1, (const char *const[]){ "vm", "stop", "nope", NULL }, &err));
    contains(err, "banger: no VM named 'nope' (not_found, op-");
    free(err);
    free(cli(2, (const char *const[]){ "vm", "create", "--name", "-bad-", NULL }, &err));
    contains(err, "invalid VM name");
    free(err);
    free(cli(1, (const char *const[]){ "vm", "set", "web", "--vcpu", "4", NULL }, &err));
    contains(err, "(busy, op-");
    free(err);
    free(cli(1, (const char *const[]){ "image", "delete", "default", NULL }, &err));
    contains(err, "is used by VM(s) web");
    free(err);
    /* Registration refuses what Firecracker cannot boot. */
    free(cli(1, (const char *const[]){ "image", "register", "--name", "x", "--rootfs", t.kernel,
                                        "--kernel", t.kernel, NULL }, &err));
    contains(err, "is not an ext4 filesystem");
    free(err);
}
END_TEST

START_TEST(failed_config_call_rolls_back_and_shows_fault_message)
{
    setenv("FC_DOUBLE_FAIL", "PUT /boot-source", 1);
    start_with_image(NULL, NULL);
    unsetenv("FC_DOUBLE_FAIL");
    char *err = NULL;
    free(cli(1, (const char *const[]){ "vm", "create", "--name", "web", NULL }, &err));
    contains(err, "firecracker: PUT /boot-source: injected failure");
    free(err);
    char *out = CLI(0, "vm", "show", "web");
    contains(out, "error");
    contains(out, "injected failure");
    free(out);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    /* Nothing left in the VM's runtime dir (sockets) and no handles. */
    char *path = NULL;
    cJSON *r = e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}");
    const char *id = cJSON_GetObjectItem(e2e_result(r), "id")->valuestring;
    ck_assert_int_ge(asprintf(&path, "%s/vms/%s/handles.json", t.state_dir, id), 0);
    ck_assert_msg(access(path, F_OK) != 0, "%s left behind", path);
    free(path);
    ck_assert_int_ge(asprintf(&path, "%s/vms/%s/api.sock", t.runtime_dir, id), 0);
    ck_assert_msg(access(path, F_OK) != 0, "%s left behind", path);
    free(path);
    cJSON_Delete(r);
}
END_TEST

START_TEST(stop_falls_back_to_kill_when_ctrl_alt_del_is_ignored)
{
    /* A wrapper that makes the double ignore Ctrl-Alt-Del. */
    char *wrapper = NULL;
    char tmpl[] = "/tmp/bge-wrap-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    ck_assert_int_ge(asprintf(&wrapper, "%s/firecracker", tmpl), 0);
    FILE *f = fopen(wrapper, "we");
    fprintf(f, "#!/bin/sh\nexec %s --ignore-ctrl-alt-del \"$@\"\n", FC_DOUBLE);
    fclose(f);
    chmod(wrapper, 0755);
    start_with_image("", wrapper);
    free(CLI(0, "vm", "create", "--name", "stubborn"));
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    char *out = CLI(0, "vm", "stop", "stubborn");
    clock_gettime(CLOCK_MONOTONIC, &b);
    free(out);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    out = CLI(0, "vm", "show", "stubborn");
    contains(out, "stopped");
    free(out);
    /* Reported, not asserted: the grace window is 3 s in this config. */
    fprintf(stderr, "stop with Ctrl-Alt-Del ignored took %.2f s\n",
            (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    unlink(wrapper);
    rmdir(tmpl);
    free(wrapper);
}
END_TEST

START_TEST(kill_9_of_bangerd_mid_create_then_restart_is_consistent)
{
    /* InstanceStart answers after 3 s: the daemon dies while it waits. */
    setenv("FC_DOUBLE_BOOT_DELAY_MS", "3000", 1);
    start_with_image(NULL, NULL);
    unsetenv("FC_DOUBLE_BOOT_DELAY_MS");
    free(CLI(0, "vm", "create", "--name", "steady"));

    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = { "vm", "create", "--name", "victim", NULL };
        e2e_cli(&t, NULL, NULL, (const char *const *)argv);
        _exit(0);
    }
    /* Wait until the victim's VMM exists, then kill the daemon hard. */
    for (int i = 0; i < 200 && e2e_live_vmms(&t) < 2; i++)
        usleep(20 * 1000);
    ck_assert_int_eq(e2e_live_vmms(&t), 2);
    e2e_stop_daemon(&t, SIGKILL);
    int status;
    waitpid(pid, &status, 0);

    e2e_start_daemon(&t);
    /* The running VM was adopted; the half-created one was cleaned up. */
    char *out = CLI(0, "vm", "show", "steady");
    contains(out, "running");
    free(out);
    out = CLI(0, "vm", "show", "victim");
    contains(out, "error");
    contains(out, "interrupted");
    free(out);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
    /* And it can be started again, then everything deleted without leaks. */
    free(CLI(0, "vm", "start", "victim"));
    free(CLI(0, "vm", "delete", "victim", "steady"));
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
}
END_TEST

START_TEST(vms_survive_a_daemon_restart)
{
    start_with_image(NULL, NULL);
    free(CLI(0, "vm", "create", "--name", "web"));
    e2e_stop_daemon(&t, SIGTERM);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
    e2e_start_daemon(&t);
    char *out = CLI(0, "vm", "show", "web");
    contains(out, "running");
    free(out);
    free(CLI(0, "vm", "stop", "web"));
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
}
END_TEST

START_TEST(dead_vmm_is_noticed_at_restart)
{
    start_with_image(NULL, NULL);
    free(CLI(0, "vm", "create", "--name", "web"));
    e2e_stop_daemon(&t, SIGKILL);
    /* The VMM dies while no daemon watches. */
    cJSON *dummy = NULL;
    (void)dummy;
    pid_t killer = fork();
    if (killer == 0) {
        execlp("pkill", "pkill", "-KILL", "-f", t.runtime_dir, (char *)NULL);
        _exit(127);
    }
    waitpid(killer, NULL, 0);
    for (int i = 0; i < 100 && e2e_live_vmms(&t) > 0; i++)
        usleep(20 * 1000);
    e2e_start_daemon(&t);
    char *out = CLI(0, "vm", "show", "web");
    contains(out, "stopped");
    free(out);
    char *sock = NULL;
    cJSON *r = e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}");
    ck_assert_int_ge(asprintf(&sock, "%s/vms/%s/api.sock", t.runtime_dir,
                              cJSON_GetObjectItem(e2e_result(r), "id")->valuestring), 0);
    ck_assert_msg(access(sock, F_OK) != 0, "stale %s left", sock);
    cJSON_Delete(r);
    free(sock);
}
END_TEST

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

#define TOO_OLD "firecracker 1.7.0 is older than 1.8.0, the first release that describes " \
                "virtio devices in ACPI, which the guest kernel needs to find its disks"

START_TEST(too_old_firecracker_is_reported_at_start_and_refused_at_launch)
{
    /* The daemon hands its environment to the double, --version included. */
    setenv("FC_DOUBLE_VERSION", "1.7.0", 1);
    start_with_image(NULL, NULL);
    /* Serving anyway: Firecracker may be upgraded while the daemon runs. */
    char *log = read_file(t.log);
    contains(log, TOO_OLD);
    free(log);
    char *err = NULL;
    char *out = cli(1, (const char *const[]){ "doctor", NULL }, NULL);
    contains(out, "FAIL");
    contains(out, TOO_OLD);
    free(out);
    free(cli(1, (const char *const[]){ "vm", "create", "--name", "web", NULL }, &err));
    contains(err, TOO_OLD);
    free(err);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
}
END_TEST

START_TEST(image_asking_for_a_newer_firecracker_is_refused)
{
    start_with_image(NULL, NULL);
    cJSON *r = e2e_rpc(&t, "image.show", "{\"image\":\"default\"}");
    ck_assert_msg(r && e2e_result(r), "image.show: %s", r ? e2e_error_message(r) : "no reply");
    const cJSON *rootfs = cJSON_GetObjectItem(e2e_result(r), "rootfs");
    ck_assert(cJSON_IsString(rootfs));
    char *manifest = NULL;
    const char *slash = strrchr(rootfs->valuestring, '/');
    ck_assert_int_ge(asprintf(&manifest, "%.*s/manifest.json", (int)(slash - rootfs->valuestring),
                              rootfs->valuestring), 0);
    cJSON_Delete(r);
    /* The registered image's manifest, as build-default writes it for a
     * later Firecracker than the double's 1.16.1. */
    char *text = read_file(manifest);
    cJSON *m = cJSON_Parse(text);
    ck_assert_ptr_nonnull(m);
    cJSON *boot = cJSON_AddObjectToObject(m, "boot");
    cJSON_AddStringToObject(boot, "device_discovery", "acpi");
    cJSON_AddStringToObject(boot, "min_firecracker", "1.17.0");
    char *out_text = cJSON_Print(m);
    FILE *f = fopen(manifest, "we");
    ck_assert_ptr_nonnull(f);
    fputs(out_text, f);
    fclose(f);
    char *err = NULL;
    free(cli(1, (const char *const[]){ "vm", "create", "--name", "web", NULL }, &err));
    contains(err, "firecracker 1.16.1 is older than 1.17.0, which this VM's image asks for");
    free(err);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    cJSON_free(out_text);
    cJSON_Delete(m);
    free(text);
    free(manifest);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e-cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, every_command);
    tcase_add_test(tc, errors_name_the_code_and_operation);
    tcase_add_test(tc, failed_config_call_rolls_back_and_shows_fault_message);
    tcase_add_test(tc, stop_falls_back_to_kill_when_ctrl_alt_del_is_ignored);
    tcase_add_test(tc, kill_9_of_bangerd_mid_create_then_restart_is_consistent);
    tcase_add_test(tc, vms_survive_a_daemon_restart);
    tcase_add_test(tc, dead_vmm_is_noticed_at_restart);
    tcase_add_test(tc, too_old_firecracker_is_reported_at_start_and_refused_at_launch);
    tcase_add_test(tc, image_asking_for_a_newer_firecracker_is_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
