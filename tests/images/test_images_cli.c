/* banger image import / pull end to end: the real bangerd (no plugins, the
 * Firecracker double never started) driven through the real banger CLI.
 * Tarballs and bundles are written by the test with libarchive. */
#include "config.h"

#include "e2e.h"
#include "images_test_util.h"

#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct e2e T;

static char *ic_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ic_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
    va_end(ap);
    return s;
}

static void ic_setup(void)
{
    e2e_setup(&T, NULL, NULL);
    e2e_start_daemon(&T);
}

static void ic_teardown(void)
{
    e2e_teardown(&T);
}

/* Every entry of state_dir/images, hidden temp files included. */
static int ic_images_dir_entries(void)
{
    char *dir = ic_printf("%s/images", T.state_dir);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (d)
        closedir(d);
    free(dir);
    return n;
}

/* `banger image list` mentions `name`. */
static bool ic_listed(const char *name)
{
    char *out = NULL, *err = NULL;
    const char *const argv[] = { "image", "list", NULL };
    int status = e2e_cli(&T, &out, &err, argv);
    ck_assert_msg(status == 0, "image list: exit %d; stderr: %s", status, err);
    bool found = strstr(out, name) != NULL;
    free(out);
    free(err);
    return found;
}

START_TEST(test_import_registers_image)
{
    char *tar = ic_printf("%s/root.tar.zst", T.dir);
    const struct itest_entry e[] = {
        { "./", 'd', NULL, 0 },
        { "./etc/", 'd', NULL, 0 },
        { "./etc/hostname", 'f', "guest\n", 0 },
        { "./usr/", 'd', NULL, 0 },
        { "./usr/bin/", 'd', NULL, 0 },
        { "./usr/bin/hello", 'f', "#!/bin/sh\necho hello\n", 0 },
    };
    itest_write_tar(tar, true, e, sizeof(e) / sizeof(e[0]));
    char *out = NULL, *err = NULL;
    const char *const import[] = { "image", "import", "--name", "imported", "--from-tar", tar,
                                   "--kernel", T.kernel, NULL };
    int status = e2e_cli(&T, &out, &err, import);
    ck_assert_msg(status == 0, "image import: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(out, "imported") != NULL, "stdout: %s", out);
    /* No sshd and no init banger knows: said, not silently accepted. */
    ck_assert_msg(strstr(err, "warning: the image has no sshd"), "stderr: %s", err);
    ck_assert_msg(strstr(err, "warning: the image has neither systemd nor busybox init"),
                  "stderr: %s", err);
    free(out);
    free(err);
    ck_assert(ic_listed("imported"));
    const char *const show[] = { "image", "show", "imported", NULL };
    status = e2e_cli(&T, &out, &err, show);
    ck_assert_msg(status == 0, "image show: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(out, "imported") != NULL, "stdout: %s", out);
    free(out);
    free(err);
    ck_assert_int_eq(ic_images_dir_entries(), 1);
    free(tar);
}
END_TEST

START_TEST(test_import_dotdot_refused_leaves_nothing)
{
    char *tar = ic_printf("%s/evil.tar", T.dir);
    const struct itest_entry e[] = { { "./etc", 'd', NULL, 0 }, { "../evil", 'f', "x", 0 } };
    itest_write_tar(tar, false, e, 2);
    char *out = NULL, *err = NULL;
    const char *const import[] = { "image", "import", "--name", "evil", "--from-tar", tar,
                                   "--kernel", T.kernel, NULL };
    int status = e2e_cli(&T, &out, &err, import);
    ck_assert_msg(status == 1, "image import: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "'../evil'") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    ck_assert(!ic_listed("evil"));
    char *escaped = ic_printf("%s/evil", T.state_dir);
    ck_assert_int_ne(access(escaped, F_OK), 0);
    free(escaped);
    free(tar);
}
END_TEST

static char *ic_bundle(const char *name, char hex[65])
{
    char *bundle = ic_printf("%s/bundle.tar.zst", T.dir);
    itest_write_bundle(bundle, name, false);
    size_t len = 0;
    char *data = itest_read(bundle, &len);
    itest_sha256_hex(data, len, hex);
    free(data);
    return bundle;
}

START_TEST(test_pull_local_bundle_registers)
{
    char hex[65];
    char *bundle = ic_bundle("from-bundle", hex);
    char *out = NULL, *err = NULL;
    const char *const pull[] = { "image", "pull", bundle, "--sha256", hex, NULL };
    int status = e2e_cli(&T, &out, &err, pull);
    ck_assert_msg(status == 0, "image pull: exit %d; stderr: %s", status, err);
    free(out);
    free(err);
    ck_assert(ic_listed("from-bundle"));
    const char *const show[] = { "image", "show", "from-bundle", NULL };
    ck_assert_int_eq(e2e_cli(&T, NULL, NULL, show), 0);
    ck_assert_int_eq(ic_images_dir_entries(), 1);
    free(bundle);
}
END_TEST

START_TEST(test_pull_wrong_sha256_leaves_nothing)
{
    char hex[65];
    char *bundle = ic_bundle("wrong-sum", hex);
    hex[0] = hex[0] == '0' ? '1' : '0';
    char *out = NULL, *err = NULL;
    const char *const pull[] = { "image", "pull", bundle, "--sha256", hex, NULL };
    int status = e2e_cli(&T, &out, &err, pull);
    ck_assert_msg(status == 1, "image pull: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "sha256") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    ck_assert(!ic_listed("wrong-sum"));
    free(bundle);
}
END_TEST

int main(void)
{
    /* The daemon inherits these: the built agent and this tree's guest files. */
    setenv("BANGER_AGENT_PATH", AGENT_BUILD_PATH, 1);
    setenv("BANGER_GUEST_DIR", GUEST_SRC_DIR, 1);
    Suite *s = suite_create("images-cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, ic_setup, ic_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_import_registers_image);
    tcase_add_test(tc, test_import_dotdot_refused_leaves_nothing);
    tcase_add_test(tc, test_pull_local_bundle_registers);
    tcase_add_test(tc, test_pull_wrong_sha256_leaves_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
