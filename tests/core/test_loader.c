/* Loader: accepts a good module, refuses each kind of bad one with its own
 * message, and leaves nothing mapped or open afterwards. */
#include "config.h"

#include "config/config.h"
#include "loader/loader.h"
#include "testutil.h"
#include "util/xalloc.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;
static struct banger_error e;

static void install(const char *name)
{
    char *from = xasprintf("%s/%s.so", TEST_MODULE_DIR, name);
    char *to = xasprintf("%s/%s.so", dir, name);
    tu_copy(from, to);
    chmod(to, 0755);
    free(from);
    free(to);
}

static void setup(void)
{
    dir = tu_tempdir("plugins");
    chmod(dir, 0755);
    bg_error_clear(&e);
}

static void teardown(void)
{
    tu_rmtree(dir);
    free(dir);
}

/* Load with `plugins = ( list )` and extra config text. */
static int load(const char *list, const char *extra, struct bg_plugins **ps)
{
    char *text = xasprintf("plugin_dir = \"%s\";\nplugins = ( %s );\n%s", dir, list, extra ? extra : "");
    struct bg_config *cfg = NULL;
    int r = config_load_string(text, "t.conf", &cfg, &e);
    free(text);
    ck_assert_msg(r == 0, "config: %s", e.msg);
    config_set_current(cfg);
    r = plugins_load(cfg, ps, &e);
    config_free(cfg);
    return r;
}

static bool module_mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[1024];
    char *want = xasprintf("/%s.so", name);
    bool found = false;
    while (f && fgets(line, sizeof(line), f))
        if (strstr(line, dir) && strstr(line, want))
            found = true;
    if (f)
        fclose(f);
    free(want);
    return found;
}

static void expect_refused(const char *list, const char *extra, const char *want)
{
    struct bg_plugins *ps = NULL;
    ck_assert_int_lt(load(list, extra, &ps), 0);
    ck_assert_ptr_null(ps);
    ck_assert_msg(strstr(e.msg, want) != NULL, "error '%s' lacks '%s'", e.msg, want);
}

START_TEST(good_module_loads_and_unloads)
{
    install("alpha");
    install("beta");
    struct bg_plugins *ps = NULL;
    ck_assert_msg(load("\"alpha\", \"beta\"", NULL, &ps) == 0, "%s", e.msg);
    ck_assert_uint_eq(ps->n, 2);
    ck_assert_str_eq(ps->v[0].cap->name, "alpha");
    ck_assert_str_eq(ps->v[1].cap->name, "beta");
    ck_assert(module_mapped("alpha"));
    plugins_unload(ps);
    ck_assert(!module_mapped("alpha"));
    ck_assert(!module_mapped("beta"));
}
END_TEST

START_TEST(wrong_abi_version)
{
    install("badabi");
    expect_refused("\"badabi\"", NULL, "plugin badabi: ");
    ck_assert_ptr_nonnull(strstr(e.msg, "was built for capability ABI 99, this daemon speaks ABI 1"));
    ck_assert_int_eq(e.code, -EPROTO);
    ck_assert(!module_mapped("badabi"));
}
END_TEST

START_TEST(short_struct_size)
{
    install("shortsize");
    expect_refused("\"shortsize\"", NULL, "descriptor is 16 bytes, smaller than");
    ck_assert(!module_mapped("shortsize"));
}
END_TEST

START_TEST(missing_entry_symbol)
{
    install("noentry");
    expect_refused("\"noentry\"", NULL, "does not export banger_capability_v1()");
    ck_assert(!module_mapped("noentry"));
}
END_TEST

START_TEST(unknown_name_lists_available)
{
    install("alpha");
    install("beta");
    expect_refused("\"nope\"", NULL, "plugin nope: no module named 'nope' in ");
    ck_assert_ptr_nonnull(strstr(e.msg, "(available: "));
    ck_assert_ptr_nonnull(strstr(e.msg, "alpha"));
    ck_assert_ptr_nonnull(strstr(e.msg, "beta"));
}
END_TEST

START_TEST(group_writable_file_refused)
{
    if (geteuid() != 0)
        return; /* the checks apply to a root daemon only */
    install("alpha");
    char *p = xasprintf("%s/alpha.so", dir);
    chmod(p, 0775);
    expect_refused("\"alpha\"", NULL, "alpha.so is writable by its group");
    free(p);
}
END_TEST

START_TEST(world_writable_dir_refused)
{
    if (geteuid() != 0)
        return;
    install("alpha");
    chmod(dir, 0777);
    expect_refused("\"alpha\"", NULL, "is writable by everyone");
    ck_assert_ptr_nonnull(strstr(e.msg, "plugin_dir"));
}
END_TEST

START_TEST(foreign_owner_refused)
{
    if (geteuid() != 0)
        return;
    install("alpha");
    char *p = xasprintf("%s/alpha.so", dir);
    ck_assert_int_eq(chown(p, 1234, 1234), 0);
    expect_refused("\"alpha\"", NULL, "alpha.so is owned by uid 1234, not root");
    free(p);
}
END_TEST

START_TEST(writable_parent_dir_refused)
{
    if (geteuid() != 0)
        return;
    /* dir/sub holds the module; dir (its parent) is group-writable and not
     * sticky, so someone else could swap sub for their own. */
    char *sub = xasprintf("%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    char *from = xasprintf("%s/alpha.so", TEST_MODULE_DIR);
    char *to = xasprintf("%s/alpha.so", sub);
    tu_copy(from, to);
    chmod(dir, 0775);
    struct banger_error err = { 0 };
    ck_assert_int_eq(loader_check_path_safe(to, &err), -EPERM);
    ck_assert_ptr_nonnull(strstr(err.msg, "writable by its group"));
    /* With the sticky bit (like /tmp) the parent is acceptable. */
    chmod(dir, 01777);
    ck_assert_msg(loader_check_path_safe(to, &err) == 0, "%s", err.msg);
    chmod(dir, 0755);
    free(sub);
    free(from);
    free(to);
}
END_TEST

START_TEST(requires_order_checked)
{
    install("alpha");
    install("needsalpha");
    expect_refused("\"needsalpha\", \"alpha\"", NULL,
                   "plugin needsalpha: requires 'alpha' to come earlier in 'plugins'");
    struct bg_plugins *ps = NULL;
    ck_assert_msg(load("\"alpha\", \"needsalpha\"", NULL, &ps) == 0, "%s", e.msg);
    plugins_unload(ps);
}
END_TEST

START_TEST(failing_init_refuses_start)
{
    install("alpha");
    install("beta");
    expect_refused("\"alpha\", \"beta\"", "beta = { fail_init = true; };\n",
                   "plugin beta: configured to fail init");
    ck_assert(!module_mapped("alpha"));
    ck_assert(!module_mapped("beta"));
}
END_TEST

START_TEST(plugin_validates_its_group)
{
    install("alpha");
    expect_refused("\"alpha\"", "alpha = {\n  colour = \"red\";\n};\n",
                   "plugin alpha: t.conf:4: alpha.colour: unknown key");
}
END_TEST

START_TEST(file_name_must_match)
{
    install("alpha");
    char *from = xasprintf("%s/alpha.so", dir);
    char *to = xasprintf("%s/renamed.so", dir);
    ck_assert_int_eq(rename(from, to), 0);
    expect_refused("\"renamed\"", NULL, "calls itself 'alpha'; the file name says 'renamed'");
    free(from);
    free(to);
}
END_TEST

START_TEST(repeated_load_leaks_no_fds)
{
    install("alpha");
    size_t before = tu_count_entries("/proc/self/fd");
    for (int i = 0; i < 50; i++) {
        struct bg_plugins *ps = NULL;
        ck_assert_int_eq(load("\"alpha\"", NULL, &ps), 0);
        plugins_unload(ps);
        ck_assert_int_lt(load("\"nope\"", NULL, &ps), 0);
    }
    ck_assert_uint_eq(tu_count_entries("/proc/self/fd"), before);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, good_module_loads_and_unloads);
    tcase_add_test(tc, wrong_abi_version);
    tcase_add_test(tc, short_struct_size);
    tcase_add_test(tc, missing_entry_symbol);
    tcase_add_test(tc, unknown_name_lists_available);
    tcase_add_test(tc, group_writable_file_refused);
    tcase_add_test(tc, world_writable_dir_refused);
    tcase_add_test(tc, foreign_owner_refused);
    tcase_add_test(tc, writable_parent_dir_refused);
    tcase_add_test(tc, requires_order_checked);
    tcase_add_test(tc, failing_init_refuses_start);
    tcase_add_test(tc, plugin_validates_its_group);
    tcase_add_test(tc, file_name_must_match);
    tcase_add_test(tc, repeated_load_leaks_no_fds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
