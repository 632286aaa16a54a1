/* vsock.so loaded by the daemon's own loader and driven through the real
 * host API (core/libbangercore.la): config validation, the vsock device,
 * readiness through the shim, and idempotent socket clean-up; and the
 * daemon's own agent client (vm.agent) against a hostile reply. */
#include "config.h"

#include "agent-harness.h"
#include "vsock-shim.h"

#include "config/config.h"
#include "daemon/agent_client.h"
#include "host/host.h"
#include "host/vm.h"
#include "loader/loader.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static struct bg_plugin plugin;
static struct bg_config *cfg;

static void setup(void)
{
    struct banger_error err = {0};

    /* Check ends a failed fixture without exit handlers: make the
     * temporary directory only after everything that can fail here. */
    ck_assert_msg(loader_open(VSOCK_PLUGIN_DIR, "vsock", false, &plugin, &err) == 0, "%s",
                  err.msg);
    ck_assert_str_eq(plugin.cap->name, "vsock");
    ck_assert_uint_eq(plugin.cap->phases, BANGER_PHASE_BEFORE_LAUNCH | BANGER_PHASE_AFTER_BOOT);
    ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
}

static void teardown(void)
{
    loader_close(&plugin);
    config_free(cfg);
    cfg = NULL;
}

/* init with `text` as the config; returns init's result, message in err. */
static int init_with(const char *text, void **state, struct banger_error *err)
{
    config_free(cfg);
    cfg = NULL;
    ck_assert_msg(config_load_string(text, "test.conf", &cfg, err) == 0, "%s", err->msg);
    config_set_current(cfg);
    return plugin.cap->init(bg_host_api(), config_group(cfg, "vsock"), state, err);
}

START_TEST(config_validation)
{
    struct banger_error err = {0};
    void *state = NULL;

    ck_assert_int_eq(init_with("", &state, &err), 0); /* defaults */
    plugin.cap->fini(state);
    ck_assert_int_eq(init_with("vsock = { port = 1024; ready_timeout_ms = 500; };", &state, &err),
                     0);
    plugin.cap->fini(state);
    ck_assert_int_lt(init_with("vsock = { port = 0; };", &state, &err), 0);
    ck_assert_msg(strstr(err.msg, "port") != NULL, "%s", err.msg);
    ck_assert_int_lt(init_with("vsock = { ready_timeout_ms = 10; };", &state, &err), 0);
    ck_assert_msg(strstr(err.msg, "ready_timeout_ms") != NULL, "%s", err.msg);
    ck_assert_int_lt(init_with("vsock = { prot = 1; };", &state, &err), 0);
    ck_assert_msg(strstr(err.msg, "prot") != NULL, "%s", err.msg);
    ck_assert_int_lt(init_with("vsock = { port = \"x\"; };", &state, &err), 0);
}
END_TEST

static struct banger_vm *make_vm(void)
{
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .vcpu = 1, .id = "0123456789ab", .name = "t",
        .ip = "172.29.0.2", .mac = "02:00:00:00:00:02", .gateway = "172.29.0.1",
        .prefix_len = 24, .cid = 3, .memory_mib = 128, .state_dir = dir, .runtime_dir = dir};
    struct banger_error err = {0};
    struct banger_vm *vm = NULL;

    ck_assert_msg(bg_vm_new(&info, &vm, &err) == 0, "%s", err.msg);
    return vm;
}

static void touch(const char *name)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static int exists(const char *name)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

START_TEST(lifecycle)
{
    struct banger_error err = {0};
    struct agent_proc agent;
    struct vsock_shim shim;
    struct banger_vm *vm;
    void *state = NULL;
    char uds[100];

    ck_assert_int_eq(init_with("vsock = { ready_timeout_ms = 10000; };", &state, &err), 0);
    vm = make_vm();
    snprintf(uds, sizeof(uds), "%s/vsock.sock", dir);

    /* Before launch: stale sockets removed, handle recorded, device set. */
    touch("vsock.sock");
    touch("vsock.sock_1234");
    touch("vsock.sock_x"); /* not ours to remove */
    ck_assert_msg(plugin.cap->start(state, vm, BANGER_PHASE_BEFORE_LAUNCH, &err) == 0, "%s",
                  err.msg);
    ck_assert_str_eq(bg_vm_get_handle(vm, "vsock.uds"), uds);
    ck_assert_str_eq(vm->contrib.vsock_uds, uds);
    ck_assert_uint_eq(vm->contrib.vsock_cid, 3);
    ck_assert(!exists("vsock.sock") && !exists("vsock.sock_1234") && exists("vsock.sock_x"));

    /* After boot: the agent answers through the shim. */
    ck_assert_int_eq(agent_proc_start(&agent, 0), 0);
    ck_assert_int_eq(agent_proc_wait_ready(&agent), 0);
    ck_assert_int_eq(vsock_shim_start(&shim, uds, agent.sock, SHIM_FORWARD), 0);
    vm->vmm_pid = getpid();
    ck_assert_msg(plugin.cap->start(state, vm, BANGER_PHASE_AFTER_BOOT, &err) == 0, "%s",
                  err.msg);

    /* No VMM: reported as such, not as a silent agent. */
    vm->vmm_pid = 0;
    ck_assert_int_eq(plugin.cap->start(state, vm, BANGER_PHASE_AFTER_BOOT, &err), -ESRCH);
    ck_assert_msg(strstr(err.msg, "firecracker exited") != NULL, "%s", err.msg);
    vsock_shim_stop(&shim);
    ck_assert_int_eq(agent_proc_stop(&agent), 0);

    /* Stop removes the sockets and the handle, and is idempotent. */
    touch("vsock.sock");
    touch("vsock.sock_52");
    ck_assert_msg(plugin.cap->stop(state, vm, &err) == 0, "%s", err.msg);
    ck_assert(!exists("vsock.sock") && !exists("vsock.sock_52"));
    ck_assert_ptr_null(bg_vm_get_handle(vm, "vsock.uds"));
    ck_assert_msg(plugin.cap->stop(state, vm, &err) == 0, "%s", err.msg);
    ck_assert_msg(plugin.cap->rollback(state, vm, BANGER_PHASE_AFTER_BOOT, &err) == 0, "%s",
                  err.msg);

    bg_vm_free(vm);
    plugin.cap->fini(state);
}
END_TEST

/* The guest's error text reaches the client's terminal only escaped (found
 * by tests/fuzz/fuzz_vsock_health in the module's copy of this check). */
START_TEST(agent_client_escapes_guest_text)
{
    struct banger_error err = {0};
    struct agent_reply reply;
    struct vsock_shim shim;
    char uds[128];

    snprintf(uds, sizeof(uds), "%s/v.sock", dir);
    ck_assert_int_eq(vsock_shim_start_reply(&shim, uds, "{\"v\":1,\"ok\":false,\"op\":\"ports\","
                                            "\"error\":\"busy\\u001b[2J\\nroot# \"}"), 0);
    ck_assert_int_eq(agent_request(uds, 10789, "ports", 10000, &reply, &err), -EREMOTEIO);
    ck_assert_str_eq(err.msg, "guest agent error: busy\\x1b[2J\\x0aroot# ");
    ck_assert_ptr_null(reply.json);
    vsock_shim_stop(&shim);
}
END_TEST

static Suite *vsock_plugin_suite(void)
{
    Suite *s = suite_create("vsock-plugin");
    TCase *tc = tcase_create("module");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, config_validation);
    tcase_add_test(tc, lifecycle);
    tcase_add_test(tc, agent_client_escapes_guest_text);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vsock_plugin_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
