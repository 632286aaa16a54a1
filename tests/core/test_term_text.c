/* util/term_text: what vm logs lets through to a terminal, and base64. */
#include "config.h"

#include "util/term_text.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void expect(const char *in, size_t len, const char *want)
{
    char *out = bg_term_escape(in, len, false, NULL);
    ck_assert_str_eq(out, want);
    /* Escaped text escapes to itself. */
    char *again = bg_term_escape(out, strlen(out), false, NULL);
    ck_assert_str_eq(again, out);
    free(again);
    free(out);
}

START_TEST(controls_are_shown_not_obeyed)
{
    expect("\x1b]0;pwned\a", 10, "\\x1b]0;pwned\\x07");
    expect("\x1b[2J", 4, "\\x1b[2J");
    expect("a\0b", 3, "a\\x00b");
    expect("\x7f\x08\x0c", 3, "\\x7f\\x08\\x0c");
    expect("line\r\nnext\rover", 15, "line\nnext\\x0dover");
    expect("tab\there\n", 9, "tab\there\n");
    /* C1 controls (U+0080..U+009F) in UTF-8: CSI is U+009B. */
    expect("\xc2\x9b" "31m", 5, "\\xc2\\x9b31m");
}
END_TEST

START_TEST(utf8_is_kept_and_invalid_bytes_escaped)
{
    expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa7", 14, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa7");
    expect("\xc3\x28", 2, "\\xc3(");             /* bad continuation */
    expect("\xc0\xaf", 2, "\\xc0\\xaf");         /* overlong '/' */
    expect("\xed\xa0\x80", 3, "\\xed\\xa0\\x80"); /* UTF-16 surrogate */
    expect("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80"); /* beyond U+10FFFF */
    expect("\xff", 1, "\\xff");
}
END_TEST

START_TEST(a_cut_character_waits_for_the_next_read)
{
    size_t used = 0;
    char *out = bg_term_escape("ok \xe2\x82", 5, true, &used);
    ck_assert_str_eq(out, "ok ");
    ck_assert_uint_eq(used, 3);
    free(out);
    out = bg_term_escape("x\r", 2, true, &used);
    ck_assert_str_eq(out, "x");
    ck_assert_uint_eq(used, 1);
    free(out);
    /* Alone, it is shown (escaped): a reader never stalls on it. */
    out = bg_term_escape("\xe2\x82", 2, true, &used);
    ck_assert_str_eq(out, "\\xe2\\x82");
    ck_assert_uint_eq(used, 2);
    free(out);
}
END_TEST

START_TEST(base64_round_trip_with_nuls)
{
    static const char bytes[] = "a\0b\x1b[2J\n";
    char *text = bg_base64_encode(bytes, 8);
    ck_assert_str_eq(text, "YQBiG1sySgo=");
    char *back = NULL;
    size_t len = 0;
    ck_assert_int_eq(bg_base64_decode(text, &back, &len), 0);
    ck_assert_uint_eq(len, 8);
    ck_assert_int_eq(memcmp(back, bytes, 8), 0);
    free(back);
    free(text);
    text = bg_base64_encode("", 0);
    ck_assert_str_eq(text, "");
    ck_assert_int_eq(bg_base64_decode(text, &back, &len), 0);
    ck_assert_uint_eq(len, 0);
    free(back);
    free(text);
    ck_assert_int_lt(bg_base64_decode("abc", &back, &len), 0);
    ck_assert_int_lt(bg_base64_decode("ab!?", &back, &len), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("term_text");
    TCase *tc = tcase_create("term_text");
    tcase_add_test(tc, controls_are_shown_not_obeyed);
    tcase_add_test(tc, utf8_is_kept_and_invalid_bytes_escaped);
    tcase_add_test(tc, a_cut_character_waits_for_the_next_read);
    tcase_add_test(tc, base64_round_trip_with_nuls);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
