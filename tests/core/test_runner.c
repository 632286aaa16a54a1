/* Runner: argv without a shell, captured output, exit status and signals,
 * timeouts, stdin, no inherited fds, explicit environment, the test hook. */
#include "config.h"

#include "runner/runner.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct banger_error e;

START_TEST(captures_output_and_status)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 0", NULL };
    ck_assert_msg(runner_run(argv, NULL, &res, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(res.out, "out\n");
    ck_assert_str_eq(res.err, "err\n");
    ck_assert_int_eq(res.exit_status, 0);
    runner_result_clear(&res);
}
END_TEST

START_TEST(no_shell_interpretation)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *argv[] = { "echo", "$HOME; rm -rf /", "`id`", NULL };
    ck_assert_int_eq(runner_run(argv, NULL, &res, &e), 0);
    ck_assert_str_eq(res.out, "$HOME; rm -rf / `id`\n");
    runner_result_clear(&res);
}
END_TEST

START_TEST(nonzero_exit_reports_last_stderr_line)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *argv[] = { "sh", "-c", "echo first >&2; echo 'the reason' >&2; exit 7", NULL };
    ck_assert_int_eq(runner_run(argv, NULL, &res, &e), -ECHILD);
    ck_assert_str_eq(e.msg, "sh exited with status 7: the reason");
    ck_assert_int_eq(res.exit_status, 7);
    runner_result_clear(&res);
}
END_TEST

START_TEST(signal_reported)
{
    const char *argv[] = { "sh", "-c", "kill -TERM $$", NULL };
    ck_assert_int_eq(runner_run(argv, NULL, NULL, &e), -ECHILD);
    ck_assert_str_eq(e.msg, "sh: killed by signal 15");
}
END_TEST

START_TEST(missing_program)
{
    const char *argv[] = { "banger-no-such-program", NULL };
    ck_assert_int_eq(runner_run(argv, NULL, NULL, &e), -ENOENT);
    ck_assert_str_eq(e.msg, "banger-no-such-program: program not found on PATH");
}
END_TEST

START_TEST(timeout_kills_the_child_and_its_group)
{
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .timeout_ms = 300 };
    const char *argv[] = { "sh", "-c", "sleep 30 & sleep 30", NULL };
    ck_assert_int_eq(runner_run(argv, &opts, NULL, &e), -ETIMEDOUT);
    ck_assert_str_eq(e.msg, "sh: timed out after 300 ms and was killed");
}
END_TEST

START_TEST(stdin_is_fed)
{
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .stdin_data = "hello\n", .stdin_len = 6 };
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *argv[] = { "cat", NULL };
    ck_assert_int_eq(runner_run(argv, &opts, &res, &e), 0);
    ck_assert_str_eq(res.out, "hello\n");
    runner_result_clear(&res);
}
END_TEST

START_TEST(no_fds_leak_into_the_child)
{
    int fd = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
    ck_assert_int_ge(fd, 3);
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *argv[] = { "ls", "/proc/self/fd", NULL };
    ck_assert_int_eq(runner_run(argv, NULL, &res, &e), 0);
    /* 0, 1, 2 and the fd ls opens to read the directory. */
    int count = 0;
    for (char *p = res.out; *p; p++)
        count += *p == '\n';
    ck_assert_msg(count == 4, "child saw %d fds:\n%s", count, res.out);
    runner_result_clear(&res);
    close(fd);
}
END_TEST

/* The child as another uid, with exactly the descriptors it was given. */
START_TEST(child_drops_to_uid_and_gets_passed_fds)
{
    char path[] = "/tmp/bgrunner-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "secret\n", 7), 7);
    ck_assert_int_eq(fchown(fd, 65534, 65534), 0);
    /* Placed on fds 4 and 5 although given in the other order. */
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int pass[] = { devnull, fd };
    const struct runner_child child = { .drop_privileges = true, .uid = 65534, .gid = 65534,
                                        .pass_fds = pass, .n_pass_fds = 2 };
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *id[] = { "sh", "-c", "id -u; id -g; id -G; grep NoNewPrivs /proc/self/status; "
                         "cat /proc/self/fd/5; readlink /proc/self/fd/4; ls /proc/self/fd", NULL };
    ck_assert_msg(runner_run_child(id, NULL, &child, &res, &e) == 0, "%s", e.msg);
    char *want = NULL;
    ck_assert_int_gt(asprintf(&want, "65534\n65534\n65534\nNoNewPrivs:\t1\nsecret\n/dev/null\n"
                              "0\n1\n2\n3\n4\n5\n"), 0);
    /* 3 is the fd ls reads the directory with (the status pipe closed on exec). */
    ck_assert_msg(strcmp(res.out, want) == 0, "child said:\n%s", res.out);
    free(want);
    runner_result_clear(&res);
    /* Root's files stay out of reach. */
    const char *shadow[] = { "cat", "/etc/shadow", NULL };
    ck_assert_int_lt(runner_run_child(shadow, NULL, &child, &res, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "Permission denied"));
    runner_result_clear(&res);
    close(devnull);
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(explicit_environment)
{
    setenv("BANGER_SECRET", "leak", 1);
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *argv[] = { "env", NULL };
    ck_assert_int_eq(runner_run(argv, NULL, &res, &e), 0);
    ck_assert_ptr_null(strstr(res.out, "BANGER_SECRET"));
    ck_assert_ptr_nonnull(strstr(res.out, "PATH="));
    runner_result_clear(&res);
    const char *envp[] = { "PATH=/usr/bin:/bin", "ONLY=this", NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .envp = envp };
    ck_assert_int_eq(runner_run(argv, &opts, &res, &e), 0);
    ck_assert_str_eq(res.out, "PATH=/usr/bin:/bin\nONLY=this\n");
    runner_result_clear(&res);
}
END_TEST

static char recorded[256];

static int record_hook(void *ctx, const char *const *argv, struct banger_run_result *res)
{
    (void)ctx;
    char *s = runner_argv_to_string(argv);
    snprintf(recorded, sizeof(recorded), "%s", s);
    free(s);
    res->exit_status = 0;
    res->out = strdup("faked\n");
    res->out_len = 6;
    res->err = strdup("");
    return 1;
}

START_TEST(hook_records_exact_argv)
{
    runner_set_hook(record_hook, NULL);
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *argv[] = { "mkfs.ext4", "-F", "-E", "root_owner=0:0", "/tmp/a b", NULL };
    ck_assert_int_eq(runner_run(argv, NULL, &res, &e), 0);
    runner_set_hook(NULL, NULL);
    ck_assert_str_eq(recorded, "mkfs.ext4 -F -E root_owner=0:0 '/tmp/a b'");
    ck_assert_str_eq(res.out, "faked\n");
    runner_result_clear(&res);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runner");
    TCase *tc = tcase_create("runner");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, captures_output_and_status);
    tcase_add_test(tc, no_shell_interpretation);
    tcase_add_test(tc, nonzero_exit_reports_last_stderr_line);
    tcase_add_test(tc, signal_reported);
    tcase_add_test(tc, missing_program);
    tcase_add_test(tc, timeout_kills_the_child_and_its_group);
    tcase_add_test(tc, stdin_is_fed);
    tcase_add_test(tc, no_fds_leak_into_the_child);
    tcase_add_test(tc, child_drops_to_uid_and_gets_passed_fds);
    tcase_add_test(tc, explicit_environment);
    tcase_add_test(tc, hook_records_exact_argv);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
