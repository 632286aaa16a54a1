/* handles.json: written atomically before set_handle returns, reloaded by a
 * new VM object, corrupt files set aside instead of trusted. */
#include "config.h"

#include "host/vm.h"
#include "testutil.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static void setup(void) { dir = tu_tempdir("handles"); }
static void teardown(void)
{
    tu_rmtree(dir);
    free(dir);
}

START_TEST(set_handle_is_on_disk_when_it_returns)
{
    struct banger_vm *vm = tu_vm(dir);
    struct banger_error e = { 0 };
    ck_assert_int_eq(bg_vm_set_handle(vm, "tap.dev", "bgtap3", &e), 0);
    char *path = xasprintf("%s/handles.json", dir);
    char *text = NULL;
    ck_assert_int_eq(fs_read_all(path, 1 << 20, &text, NULL, &e), 0);
    ck_assert_ptr_nonnull(strstr(text, "\"tap.dev\":\t\"bgtap3\""));
    free(text);
    /* No temp files left beside it. */
    ck_assert_uint_eq(tu_count_entries(dir), 1);
    ck_assert_int_eq(bg_vm_set_handle(vm, "tap.dev", NULL, &e), 0);
    ck_assert_ptr_null(bg_vm_get_handle(vm, "tap.dev"));
    bg_vm_free(vm);
    free(path);
}
END_TEST

/* Stopping a VM that never ran removes handles it never had: that must
 * write nothing, so it needs no directory (none is made for it). */
START_TEST(removing_an_absent_handle_writes_nothing)
{
    char *gone = xasprintf("%s/vms/never-started", dir);
    struct banger_vm *vm = tu_vm(gone);
    struct banger_error e = { 0 };
    ck_assert_int_eq(bg_vm_set_handle(vm, "tap.dev", NULL, &e), 0);
    ck_assert_int_eq(bg_vm_set_handle(vm, "fc.pid", NULL, &e), 0);
    ck_assert_int_eq(access(gone, F_OK), -1);
    ck_assert_uint_eq(tu_count_entries(dir), 0);
    /* A real change still has to be written, and fails without the dir. */
    ck_assert_int_lt(bg_vm_set_handle(vm, "tap.dev", "bgtap3", &e), 0);
    ck_assert_ptr_null(bg_vm_get_handle(vm, "tap.dev"));
    bg_vm_free(vm);
    free(gone);
}
END_TEST

START_TEST(new_vm_object_reloads_handles)
{
    struct banger_error e = { 0 };
    struct banger_vm *vm = tu_vm(dir);
    ck_assert_int_eq(bg_vm_set_handle(vm, "snapshot.dm", "banger-0123456789ab", &e), 0);
    ck_assert_int_eq(bg_vm_set_handle(vm, "tap.dev", "bgtap1", &e), 0);
    bg_vm_free(vm);
    vm = tu_vm(dir);
    ck_assert_str_eq(bg_vm_get_handle(vm, "snapshot.dm"), "banger-0123456789ab");
    ck_assert_str_eq(bg_vm_get_handle(vm, "tap.dev"), "bgtap1");
    ck_assert_int_eq(bg_vm_clear_handles(vm, &e), 0);
    bg_vm_free(vm);
    vm = tu_vm(dir);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
    bg_vm_free(vm);
}
END_TEST

START_TEST(corrupt_handles_are_set_aside)
{
    char *path = xasprintf("%s/handles.json", dir);
    tu_write(path, "{\"tap.dev\": \"bgt");
    struct banger_vm *vm = tu_vm(dir);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
    char *aside = xasprintf("%s.corrupt", path);
    ck_assert(tu_exists(aside));
    ck_assert(!tu_exists(path));
    bg_vm_free(vm);
    tu_write(path, "{\"tap.dev\": 5}");
    vm = tu_vm(dir);
    ck_assert_uint_eq(bg_vm_handle_count(vm), 0);
    bg_vm_free(vm);
    free(path);
    free(aside);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("handles");
    TCase *tc = tcase_create("handles");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, set_handle_is_on_disk_when_it_returns);
    tcase_add_test(tc, removing_an_absent_handle_writes_nothing);
    tcase_add_test(tc, new_vm_object_reloads_handles);
    tcase_add_test(tc, corrupt_handles_are_set_aside);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
