/* Table tests for the name rules and the IPv4/CIDR helpers. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/cidr.h"
#include "store/names.h"

static const char name63[] = "a23456789012345678901234567890123456789012345678901234567890123";
static const char name64[] = "a234567890123456789012345678901234567890123456789012345678901234";

static const struct {
    const char *name;
    bool valid;
} vm_names[] = {
    {"a", true},
    {"web", true},
    {"web-1", true},
    {"0", true},
    {"9lives", true},
    {"a--b", true},
    {name63, true},
    {"", false},
    {name64, false},
    {"-a", false},
    {"a-", false},
    {"-", false},
    {"Web", false},
    {"a_b", false},
    {"a.b", false},
    {"a b", false},
    {"a/b", false},
    {"caf\xc3\xa9", false},
    {"tab\t", false},
};

START_TEST(test_vm_name_table)
{
    char err[256];

    for (size_t i = 0; i < sizeof(vm_names) / sizeof(vm_names[0]); i++) {
        int r;

        err[0] = '\0';
        r = vm_name_check(vm_names[i].name, err, sizeof(err));
        ck_assert_msg(vm_name_valid(vm_names[i].name) == vm_names[i].valid, "'%s'",
                      vm_names[i].name);
        ck_assert_msg((r == 0) == vm_names[i].valid, "'%s' -> %d", vm_names[i].name, r);
        if (!vm_names[i].valid) {
            ck_assert_int_eq(r, -EINVAL);
            ck_assert_msg(err[0] != '\0', "no reason for '%s'", vm_names[i].name);
        }
    }
    ck_assert(!vm_name_valid(NULL));
}
END_TEST

START_TEST(test_vm_name_messages)
{
    char err[256];

    ck_assert_int_eq(vm_name_check("Web", err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'Web'"));
    ck_assert_ptr_nonnull(strstr(err, "lowercase"));
    ck_assert_int_eq(vm_name_check("web-", err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "start or end with '-'"));
    ck_assert_int_eq(vm_name_check(name64, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "at most 63"));
    /* A NULL buffer is allowed. */
    ck_assert_int_eq(vm_name_check("", NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_image_name_table)
{
    static const struct {
        const char *name;
        bool valid;
    } cases[] = {
        {"debian-12", true},  {"Ubuntu_22.04", true}, {"alpine:3.19", true},
        {"x", true},          {"", false},            {"-x", false},
        {".hidden", false},   {"a/b", false},         {"a b", false},
        {"../etc", false},
    };
    char longname[IMAGE_NAME_MAX + 2];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(image_name_valid(cases[i].name) == cases[i].valid, "'%s'", cases[i].name);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert(!image_name_valid(longname));
    longname[IMAGE_NAME_MAX] = '\0';
    ck_assert(image_name_valid(longname));
}
END_TEST

static const struct {
    const char *text;
    int ret;
    uint32_t net;
    unsigned prefix;
    const char *msg; /* substring of the reason, for failures */
} cidrs[] = {
    {"172.29.0.0/24", 0, 0xAC1D0000u, 24, NULL},
    {"10.0.0.0/8", 0, 0x0A000000u, 8, NULL},
    {"192.168.7.0/30", 0, 0xC0A80700u, 30, NULL},
    {"10.1.2.248/29", 0, 0x0A0102F8u, 29, NULL},
    {"", -EINVAL, 0, 0, "empty"},
    {"172.29.0.0", -EINVAL, 0, 0, "ADDRESS/PREFIX"},
    {"172.29.0.0/", -EINVAL, 0, 0, "prefix"},
    {"/24", -EINVAL, 0, 0, "address"},
    {"172.29.0/24", -EINVAL, 0, 0, "not an IPv4 address"},
    {"172.29.0.256/24", -EINVAL, 0, 0, "not an IPv4 address"},
    {"abc/24", -EINVAL, 0, 0, "not an IPv4 address"},
    {" 172.29.0.0/24", -EINVAL, 0, 0, "not an IPv4 address"},
    {"172.29.0.0/24x", -EINVAL, 0, 0, "prefix"},
    {"172.29.0.0/-1", -EINVAL, 0, 0, "prefix"},
    {"172.29.0.0/ 8", -EINVAL, 0, 0, "prefix"},
    {"172.29.0.0/024", -EINVAL, 0, 0, "prefix"},
    {"172.29.0.0/33", -EINVAL, 0, 0, "at most /32"},
    {"172.29.0.0/31", -EINVAL, 0, 0, "room for a gateway"},
    {"172.29.0.0/32", -EINVAL, 0, 0, "room for a gateway"},
    {"10.0.0.0/7", -EINVAL, 0, 0, "too large"},
    {"0.0.0.0/0", -EINVAL, 0, 0, "too large"},
    {"172.29.0.1/24", -EINVAL, 0, 0, "did you mean 172.29.0.0/24"},
    {"172.29.0.0/24/1", -EINVAL, 0, 0, "prefix"},
};

START_TEST(test_cidr_table)
{
    for (size_t i = 0; i < sizeof(cidrs) / sizeof(cidrs[0]); i++) {
        uint32_t net = 0xdeadbeef;
        unsigned prefix = 99;
        char err[256] = "";
        int r;

        r = cidr_parse(cidrs[i].text, &net, &prefix, err, sizeof(err));
        ck_assert_msg(r == cidrs[i].ret, "'%s' -> %d (%s)", cidrs[i].text, r, err);
        if (r == 0) {
            ck_assert_uint_eq(net, cidrs[i].net);
            ck_assert_uint_eq(prefix, cidrs[i].prefix);
        } else {
            /* Outputs untouched on failure. */
            ck_assert_uint_eq(net, 0xdeadbeef);
            ck_assert_uint_eq(prefix, 99);
            ck_assert_msg(strstr(err, cidrs[i].msg), "'%s': reason '%s' lacks '%s'",
                          cidrs[i].text, err, cidrs[i].msg);
        }
    }
    ck_assert_int_eq(cidr_parse(NULL, NULL, NULL, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_ip_and_mac_format)
{
    char buf[IP4_STR_MAX], mac[MAC_STR_MAX];
    uint32_t addr;

    ip4_format(0xAC1D0005u, buf, sizeof(buf));
    ck_assert_str_eq(buf, "172.29.0.5");
    ip4_format(0xFFFFFFFFu, buf, sizeof(buf));
    ck_assert_str_eq(buf, "255.255.255.255");
    mac_from_ip4(0xAC1D0005u, mac, sizeof(mac));
    ck_assert_str_eq(mac, "06:00:AC:1D:00:05");
    mac_from_ip4(0x0A00FF0Au, mac, sizeof(mac));
    ck_assert_str_eq(mac, "06:00:0A:00:FF:0A");

    ck_assert_int_eq(ip4_parse("10.0.255.1", &addr), 0);
    ck_assert_uint_eq(addr, 0x0A00FF01u);
    ck_assert_int_eq(ip4_parse("10.0.255", &addr), -EINVAL);
    ck_assert_int_eq(ip4_parse("010.0.0.1", &addr), -EINVAL);
    ck_assert_int_eq(ip4_parse(NULL, &addr), -EINVAL);

    ck_assert_uint_eq(cidr_mask(24), 0xFFFFFF00u);
    ck_assert_uint_eq(cidr_mask(0), 0);
    ck_assert_uint_eq(cidr_mask(32), 0xFFFFFFFFu);
    ck_assert_uint_eq(cidr_gateway(0xAC1D0000u), 0xAC1D0001u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store-names");
    TCase *tc = tcase_create("names");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_vm_name_table);
    tcase_add_test(tc, test_vm_name_messages);
    tcase_add_test(tc, test_image_name_table);
    tcase_add_test(tc, test_cidr_table);
    tcase_add_test(tc, test_ip_and_mac_format);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
