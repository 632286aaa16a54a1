/* Config: defaults, every kind of bad input names file, line and key. */
#include "config.h"

#include "config/config.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct banger_error e;

static int load(const char *text, struct bg_config **cfg)
{
    bg_error_clear(&e);
    return config_load_string(text, "t.conf", cfg, &e);
}

static void expect_error(const char *text, const char *want)
{
    struct bg_config *cfg = NULL;
    ck_assert_int_lt(load(text, &cfg), 0);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(e.msg, want) != NULL, "error '%s' lacks '%s'", e.msg, want);
}

START_TEST(defaults_when_empty)
{
    struct bg_config *cfg = NULL;
    ck_assert_int_eq(load("", &cfg), 0);
    ck_assert_uint_eq(cfg->n_plugins, 5);
    const char *want[] = { "tap", "snapshot", "nat", "dns", "vsock" };
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(cfg->plugins[i], want[i]);
    ck_assert_str_eq(cfg->network.bridge, "br-banger");
    ck_assert_str_eq(cfg->network.cidr, "172.29.0.0/24");
    ck_assert_uint_eq(cfg->network.prefix_len, 24);
    ck_assert_uint_eq(cfg->vm_defaults.vcpu, 2);
    ck_assert_uint_eq(cfg->vm_defaults.memory_mib, 1024);
    ck_assert_uint_eq(cfg->vm_defaults.disk_size, 8ull << 30);
    ck_assert_str_eq(cfg->socket_group, "banger");
    ck_assert_str_eq(cfg->firecracker_bin, "firecracker");
    ck_assert_uint_eq(cfg->console_log_max_bytes, 4ull << 20);
    config_free(cfg);
}
END_TEST

START_TEST(missing_default_file_uses_defaults)
{
    struct bg_config *cfg = NULL;
    ck_assert_int_eq(config_load("/nonexistent/banger.conf", false, &cfg, &e), 0);
    ck_assert(!cfg->from_file);
    config_free(cfg);
    ck_assert_int_eq(config_load("/nonexistent/banger.conf", true, &cfg, &e), -ENOENT);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/banger.conf"));
}
END_TEST

START_TEST(full_file_parses)
{
    struct bg_config *cfg = NULL;
    const char *text =
        "state_dir = \"/srv/banger\";\nruntime_dir = \"/run/bg\";\n"
        "log_level = \"debug\";\nplugins = ( \"tap\", \"dns\" );\n"
        "vm_defaults = { vcpu = 4; memory_mib = 2048; disk_size = \"16G\"; overlay_size = 1073741824; };\n"
        "network = { bridge = \"br-test\"; cidr = \"10.77.0.0/16\"; };\n"
        "tap = { pool_size = 4; };\n"
        "console_log_max_bytes = \"64K\";\n";
    ck_assert_msg(load(text, &cfg) == 0, "%s", e.msg);
    ck_assert_str_eq(cfg->state_dir, "/srv/banger");
    ck_assert_uint_eq(cfg->console_log_max_bytes, 64 * 1024);
    ck_assert_uint_eq(cfg->vm_defaults.disk_size, 16ull << 30);
    ck_assert_uint_eq(cfg->vm_defaults.overlay_size, 1ull << 30);
    ck_assert_uint_eq(cfg->network.net, 0x0a4d0000u);
    ck_assert_uint_eq(cfg->network.prefix_len, 16);
    const struct banger_cfg *tap = config_group(cfg, "tap");
    long long v = 0;
    ck_assert_int_eq(bg_cfg_get_int(tap, "pool_size", &v, &e), 0);
    ck_assert_int_eq(v, 4);
    /* A plugin without a group gets an empty one. */
    const struct banger_cfg *dns = config_group(cfg, "dns");
    ck_assert_ptr_null(dns->setting);
    ck_assert_int_eq(bg_cfg_get_int(dns, "x", &v, &e), -ENOENT);
    config_free(cfg);
}
END_TEST

START_TEST(syntax_error_names_line)
{
    expect_error("state_dir = \"/x\";\nnetwork = { bridge = ; };\n", "t.conf:2:");
}
END_TEST

START_TEST(unknown_top_level_key)
{
    expect_error("\n\nstat_dir = \"/x\";\n", "t.conf:3: stat_dir: unknown key");
}
END_TEST

START_TEST(unknown_nested_key)
{
    expect_error("network = {\n  bridge = \"br0\";\n  cdir = \"10.0.0.0/24\";\n};\n",
                 "t.conf:3: network.cdir: unknown key");
}
END_TEST

START_TEST(wrong_type)
{
    expect_error("vm_defaults = { vcpu = \"two\"; };", "t.conf:1: vm_defaults.vcpu: expected an integer");
    expect_error("state_dir = 5;", "t.conf:1: state_dir: expected a string");
    expect_error("plugins = \"tap\";", "plugins: expected a list");
    expect_error("plugins = ( \"tap\", 3 );", "plugins: element 2 is not a string");
}
END_TEST

START_TEST(bad_values)
{
    expect_error("network = { cidr = \"172.29.0.0/33\"; };", "network.cidr: '172.29.0.0/33' is not an IPv4 CIDR");
    expect_error("network = { cidr = \"172.29.0.1/24\"; };", "host bits set");
    expect_error("network = { cidr = \"172.29.0.0/31\"; };", "must be between /8 and /30");
    expect_error("vm_defaults = { disk_size = \"8Q\"; };", "vm_defaults.disk_size: '8Q' is not a size");
    expect_error("vm_defaults = { vcpu = 0; };", "vm_defaults.vcpu: 0 is out of range");
    expect_error("log_level = \"loud\";", "log_level: 'loud' is not a level");
    expect_error("state_dir = \"relative\";", "state_dir: 'relative' must be an absolute path");
    expect_error("network = { bridge = \"a-very-long-bridge-name\"; };", "not a valid interface name");
    expect_error("plugins = ( \"tap\", \"tap\" );", "'tap' is listed twice");
    expect_error("plugins = ( \"Bad Name\" );", "is not a plugin name");
    expect_error("\nconsole_log_max_bytes = \"1K\";",
                 "t.conf:2: console_log_max_bytes: must be between 64K and 1G (got 1024 bytes)");
    expect_error("console_log_max_bytes = \"2G\";", "console_log_max_bytes: must be between 64K and 1G");
    expect_error("console_log_max_bytes = \"lots\";", "console_log_max_bytes: 'lots' is not a size");
}
END_TEST

START_TEST(rpc_group)
{
    struct bg_config *cfg = NULL;
    ck_assert_int_eq(load("", &cfg), 0);
    ck_assert_int_eq(cfg->rpc.send_timeout_ms, 5000);
    ck_assert_int_eq(cfg->rpc.max_connections_per_uid, 32);
    ck_assert_int_eq(cfg->rpc.shutdown_grace_ms, 3000);
    config_free(cfg);
    ck_assert_int_eq(load("rpc = { send_timeout_ms = 250; max_connections_per_uid = 4;\n"
                          "  shutdown_grace_ms = 0; };\n", &cfg), 0);
    ck_assert_int_eq(cfg->rpc.send_timeout_ms, 250);
    ck_assert_int_eq(cfg->rpc.max_connections_per_uid, 4);
    ck_assert_int_eq(cfg->rpc.shutdown_grace_ms, 0);
    config_free(cfg);
    expect_error("rpc = {\n  send_timeout_ms = 50;\n};\n",
                 "t.conf:2: rpc.send_timeout_ms: 50 is out of range (100..600000)");
    /* Root's reserved slots cannot be given to one uid. */
    expect_error("rpc = { max_connections_per_uid = 256; };",
                 "rpc.max_connections_per_uid: 256 is out of range (1..240)");
    expect_error("rpc = { max_connections_per_uid = 0; };", "out of range (1..240)");
    expect_error("rpc = { shutdown_grace_ms = \"3s\"; };",
                 "rpc.shutdown_grace_ms: expected an integer");
    expect_error("rpc = {\n  send_timeout = 5;\n};\n", "t.conf:2: rpc.send_timeout: unknown key");
    expect_error("rpc = 5;", "t.conf:1: rpc: expected a group");
}
END_TEST

/* debugfs's user: resolved at load, never root. This host has no
 * banger-helper, so the default is a uid per VM (jailer_uid_base + CID). */
START_TEST(helper_user)
{
    struct bg_config *cfg = NULL;
    ck_assert_int_eq(load("", &cfg), 0);
    ck_assert(cfg->helper_per_vm);
    config_free(cfg);
    ck_assert_msg(load("helper_user = \"daemon\";", &cfg) == 0, "%s", e.msg);
    ck_assert(!cfg->helper_per_vm);
    ck_assert_uint_eq(cfg->helper_uid, 1);
    config_free(cfg);
    expect_error("\nhelper_user = \"no-such-user\";", "t.conf:2: helper_user: user 'no-such-user' does not exist");
    expect_error("helper_user = \"root\";", "t.conf:1: helper_user: 'root' has uid or gid 0");
}
END_TEST

START_TEST(jailer_keys)
{
    struct bg_config *cfg = NULL;
    ck_assert_int_eq(load("", &cfg), 0);
    ck_assert_str_eq(cfg->jailer_bin, "");
    ck_assert_str_eq(cfg->jailer_chroot_base, "/srv/jailer");
    ck_assert_uint_eq(cfg->jailer_uid_base, 1500000000u);
    config_free(cfg);
    ck_assert_msg(load("jailer_bin = \"jailer\";\njailer_chroot_base = \"/var/jail\";\n"
                       "jailer_uid_base = 200000;\n", &cfg) == 0, "%s", e.msg);
    ck_assert_str_eq(cfg->jailer_bin, "jailer");
    ck_assert_str_eq(cfg->jailer_chroot_base, "/var/jail");
    ck_assert_uint_eq(cfg->jailer_uid_base, 200000);
    config_free(cfg);
    expect_error("\njailer_uid_base = 1000;", "t.conf:2: jailer_uid_base: 1000 is out of range");
    expect_error("jailer_chroot_base = \"jail\";", "t.conf:1: jailer_chroot_base: 'jail' must be an absolute path");
    expect_error("jailer_chroot_base = \"/\";", "jailer_chroot_base: '/' must be an absolute path below /");
}
END_TEST

START_TEST(plugin_group_for_disabled_plugin_is_unknown)
{
    expect_error("plugins = ( \"tap\" );\nnat = { uplink = \"eth0\"; };",
                 "t.conf:2: nat: unknown key (not a core setting, and no plugin of that name is in 'plugins')");
}
END_TEST

START_TEST(plugin_group_check_keys)
{
    struct bg_config *cfg = NULL;
    ck_assert_int_eq(load("plugins = ( \"tap\" );\ntap = {\n pool_size = 2;\n pool_sise = 3;\n};", &cfg), 0);
    static const char *const keys[] = { "pool_size", "prefix", NULL };
    ck_assert_int_eq(bg_cfg_check_keys(config_group(cfg, "tap"), keys, &e), -EINVAL);
    ck_assert_str_eq(e.msg, "t.conf:4: tap.pool_sise: unknown key (known keys: pool_size, prefix)");
    bg_cfg_fail(config_group(cfg, "tap"), "pool_size", &e, "must be below %d", 2);
    ck_assert_str_eq(e.msg, "t.conf:3: tap.pool_size: must be below 2");
    const char *s = NULL;
    ck_assert_int_eq(bg_cfg_get_string(config_group(cfg, "tap"), "pool_size", &s, &e), -EINVAL);
    ck_assert_str_eq(e.msg, "t.conf:3: tap.pool_size: expected a string");
    config_free(cfg);
}
END_TEST

START_TEST(size_parser)
{
    uint64_t v;
    ck_assert_int_eq(config_parse_size("8G", &v), 0);
    ck_assert_uint_eq(v, 8ull << 30);
    ck_assert_int_eq(config_parse_size("512MiB", &v), 0);
    ck_assert_uint_eq(v, 512ull << 20);
    ck_assert_int_eq(config_parse_size("4096", &v), 0);
    ck_assert_uint_eq(v, 4096);
    ck_assert_int_lt(config_parse_size("", &v), 0);
    ck_assert_int_lt(config_parse_size("-1G", &v), 0);
    ck_assert_int_lt(config_parse_size("1X", &v), 0);
    ck_assert_int_lt(config_parse_size("99999999999T", &v), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_when_empty);
    tcase_add_test(tc, missing_default_file_uses_defaults);
    tcase_add_test(tc, full_file_parses);
    tcase_add_test(tc, syntax_error_names_line);
    tcase_add_test(tc, unknown_top_level_key);
    tcase_add_test(tc, unknown_nested_key);
    tcase_add_test(tc, wrong_type);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, rpc_group);
    tcase_add_test(tc, helper_user);
    tcase_add_test(tc, jailer_keys);
    tcase_add_test(tc, plugin_group_for_disabled_plugin_is_unknown);
    tcase_add_test(tc, plugin_group_check_keys);
    tcase_add_test(tc, size_parser);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
