/* The CLI's formatting and parsing helpers, compiled in from cli/output.c. */
#include "output.c"

#include <check.h>

START_TEST(test_age)
{
    char buf[32];

    out_format_age(5, buf, sizeof(buf));
    ck_assert_str_eq(buf, "5s");
    out_format_age(-3, buf, sizeof(buf));
    ck_assert_str_eq(buf, "0s");
    out_format_age(59, buf, sizeof(buf));
    ck_assert_str_eq(buf, "59s");
    out_format_age(180, buf, sizeof(buf));
    ck_assert_str_eq(buf, "3m");
    out_format_age(2 * 3600 + 59, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2h");
    out_format_age(4 * 86400 + 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "4d");
}
END_TEST

START_TEST(test_sizes_out)
{
    char buf[32];

    out_format_mib(1024, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1024M");
    out_format_mib(2048, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2G");
    out_format_mib(2560, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2560M");
    out_format_mib(512, buf, sizeof(buf));
    ck_assert_str_eq(buf, "512M");
    out_format_bytes(8ULL << 30, buf, sizeof(buf));
    ck_assert_str_eq(buf, "8G");
    out_format_bytes(3ULL << 29, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1.5G");
    out_format_bytes(512ULL << 20, buf, sizeof(buf));
    ck_assert_str_eq(buf, "512M");
    out_format_bytes(100, buf, sizeof(buf));
    ck_assert_str_eq(buf, "100B");
    out_format_bytes(2ULL << 40, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2T");
}
END_TEST

START_TEST(test_durations)
{
    char buf[32];

    out_format_duration_ms(12, buf, sizeof(buf));
    ck_assert_str_eq(buf, "12ms");
    out_format_duration_ms(1400, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1.4s");
    out_format_duration_ms(125000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2m05s");
}
END_TEST

START_TEST(test_parse_sizes)
{
    unsigned long long bytes = 0;
    long long mib = 0;

    ck_assert_int_eq(out_parse_size("8G", &bytes), 0);
    ck_assert_uint_eq(bytes, 8ULL << 30);
    ck_assert_int_eq(out_parse_size("512M", &bytes), 0);
    ck_assert_uint_eq(bytes, 512ULL << 20);
    ck_assert_int_eq(out_parse_size("4k", &bytes), 0);
    ck_assert_uint_eq(bytes, 4096);
    ck_assert_int_eq(out_parse_size("8GiB", &bytes), 0);
    ck_assert_uint_eq(bytes, 8ULL << 30);
    ck_assert_int_eq(out_parse_size("2gb", &bytes), 0);
    ck_assert_uint_eq(bytes, 2ULL << 30);
    ck_assert_int_eq(out_parse_size("123", &bytes), 0);
    ck_assert_uint_eq(bytes, 123);
    ck_assert_int_eq(out_parse_size("123B", &bytes), 0);
    ck_assert_uint_eq(bytes, 123);
    ck_assert_int_lt(out_parse_size("", &bytes), 0);
    ck_assert_int_lt(out_parse_size("G", &bytes), 0);
    ck_assert_int_lt(out_parse_size("-1G", &bytes), 0);
    ck_assert_int_lt(out_parse_size("8Q", &bytes), 0);
    ck_assert_int_lt(out_parse_size("8GX", &bytes), 0);
    ck_assert_int_lt(out_parse_size("99999999999999T", &bytes), 0);

    ck_assert_int_eq(out_parse_mib("1024", &mib), 0);
    ck_assert_int_eq(mib, 1024);
    ck_assert_int_eq(out_parse_mib("2G", &mib), 0);
    ck_assert_int_eq(mib, 2048);
    ck_assert_int_lt(out_parse_mib("1500K", &mib), 0);
    ck_assert_int_lt(out_parse_mib("0", &mib), 0);
    ck_assert_int_lt(out_parse_mib("0M", &mib), 0);
}
END_TEST

START_TEST(test_table)
{
    static const char *const headers[] = { "A", "LONGER" , "C" };
    const char *row1[] = { "wide-cell", NULL, "x" };
    const char *row2[] = { "b", "y", "last" };
    struct out_table t;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    out_table_init(&t, 3, headers);
    out_table_add(&t, row1);
    out_table_add(&t, row2);
    out_table_print(&t, f);
    out_table_free(&t);
    out_table_free(NULL);
    fclose(f);
    ck_assert_str_eq(buf, "A          LONGER  C\n"
                          "wide-cell  -       x\n"
                          "b          y       last\n");
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("output");
    TCase *tc = tcase_create("output");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_age);
    tcase_add_test(tc, test_sizes_out);
    tcase_add_test(tc, test_durations);
    tcase_add_test(tc, test_parse_sizes);
    tcase_add_test(tc, test_table);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
