/* The guest agent end to end: the real bangerd with the vsock capability,
 * the Firecracker double relaying hybrid vsock to the real
 * banger-vsock-agent on a Unix socket (FC_DOUBLE_VSOCK_MAP), and the real
 * banger CLI. The agent reads /proc of its own namespace, which here is the
 * test's, so the test's own sockets show up in `banger vm ports`. */
#include "config.h"

#include "e2e.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_PORT "10789"
#define FAST_READY "vsock = { ready_timeout_ms = 3000; };\n"

static struct e2e t;
static char *agent_sock;
static pid_t agent_pid;

/* ---- helpers -------------------------------------------------------------- */

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static cJSON *ok(cJSON *reply, const char *what)
{
    ck_assert_msg(reply != NULL, "%s: no reply", what);
    ck_assert_msg(e2e_result(reply) != NULL, "%s: %s (%s)", what, e2e_error_message(reply),
                  e2e_error_code(reply));
    return reply;
}

static void expect_error(cJSON *reply, const char *code, const char *in_message)
{
    ck_assert_ptr_nonnull(reply);
    ck_assert_msg(e2e_error_code(reply) && strcmp(e2e_error_code(reply), code) == 0,
                  "expected %s, got %s: %s", code, e2e_error_code(reply), e2e_error_message(reply));
    ck_assert_msg(strstr(e2e_error_message(reply), in_message) != NULL, "message '%s' lacks '%s'",
                  e2e_error_message(reply), in_message);
    cJSON_Delete(reply);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool socket_accepts(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool up;

    ck_assert_int_ge(fd, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return up;
}

/* The VM's tree with the vsock capability; the double maps the agent port
 * to agent_sock. `plugins` false: no capability at all. */
static void start_tree(bool plugins, const char *extra_config)
{
    static const char *const vsock[] = { "vsock", NULL };
    static const char *const none[] = { NULL };

    e2e_setup_plugins(&t, plugins ? vsock : none, extra_config, NULL);
    /* Outside runtime_dir: e2e_live_vmms counts only the doubles. */
    ck_assert_int_ge(asprintf(&agent_sock, "%s/agent.sock", t.dir), 0);
    char *map = NULL;
    ck_assert_int_ge(asprintf(&map, AGENT_PORT "=%s", agent_sock), 0);
    /* The daemon hands its environment to firecracker (the double). */
    ck_assert_int_eq(setenv("FC_DOUBLE_VSOCK_MAP", map, 1), 0);
    free(map);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
}

/* The real agent on agent_sock, exec'd after `delay_ms`. Forked from the
 * test's main thread so PR_SET_PDEATHSIG ties it to the test process. */
static void start_agent(long delay_ms)
{
    char *listen = NULL;
    ck_assert_int_ge(asprintf(&listen, "unix:%s", agent_sock), 0);
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(t.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (delay_ms > 0)
            sleep_ms(delay_ms);
        execl(AGENT_BIN, "banger-vsock-agent", "--listen", listen, (char *)NULL);
        _exit(127);
    }
    free(listen);
    agent_pid = pid;
}

static void wait_agent_up(void)
{
    for (int i = 0; i < 500; i++) {
        if (socket_accepts(agent_sock))
            return;
        int status;
        if (waitpid(agent_pid, &status, WNOHANG) == agent_pid) {
            agent_pid = 0;
            ck_abort_msg("the agent exited at start-up (status %d); see %s", status, t.log);
        }
        sleep_ms(20);
    }
    ck_abort_msg("the agent did not listen on %s within 10 s", agent_sock);
}

static void stop_agent(void)
{
    int status;

    if (agent_pid <= 0)
        return;
    kill(agent_pid, SIGTERM);
    for (int i = 0; i < 250; i++) {
        if (waitpid(agent_pid, &status, WNOHANG) == agent_pid) {
            agent_pid = 0;
            return;
        }
        sleep_ms(20);
    }
    kill(agent_pid, SIGKILL);
    waitpid(agent_pid, &status, 0);
    agent_pid = 0;
}

static void teardown(void)
{
    stop_agent();
    if (t.dir)
        e2e_teardown(&t);
    free(agent_sock);
    agent_sock = NULL;
    unsetenv("FC_DOUBLE_VSOCK_MAP");
    unsetenv("FC_DOUBLE_EXIT_AFTER_MS");
    unsetenv("FC_DOUBLE_CONSOLE_FILE");
}

static char *vm_id(const char *name)
{
    char params[128];
    snprintf(params, sizeof(params), "{\"vm\":\"%s\"}", name);
    cJSON *r = ok(e2e_rpc(&t, "vm.show", params), "show");
    char *id = strdup(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    return id;
}

static cJSON *agent_rpc(const char *vm, const char *op)
{
    char params[256];
    snprintf(params, sizeof(params), "{\"vm\":\"%s\",\"op\":\"%s\"}", vm, op);
    return e2e_rpc(&t, "vm.agent", params);
}

/* Files named vsock.sock* in the VM's runtime dir (a missing dir: none). */
static int vsock_files(const char *id)
{
    char *dir = NULL;
    ck_assert_int_ge(asprintf(&dir, "%s/vms/%s", t.runtime_dir, id), 0);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strncmp(de->d_name, "vsock.sock", 10) == 0;
    if (d)
        closedir(d);
    free(dir);
    return n;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = calloc(1, 1 << 20);
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Attempts in the daemon log's "guest agent ... answered after N ms (K
 * attempts)" line, 0 when there is none. */
static int agent_attempts_logged(void)
{
    char *log = read_text(t.log);
    const char *at = strstr(log, "answered after");
    int attempts = 0;
    long long ms;
    if (at)
        sscanf(at, "answered after %lld ms (%d attempts", &ms, &attempts);
    free(log);
    return attempts;
}

static void host_boot_id(char *buf, size_t len)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, (int)len, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

/* A TCP listener on 127.0.0.1 with an ephemeral port. */
static int tcp_listener(int *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The state vm.show reports, polled until it is `want` or 10 s passed (the
 * record is written just after the stop steps that remove the files). */
static bool state_becomes(const char *name, const char *want)
{
    char params[128];
    snprintf(params, sizeof(params), "{\"vm\":\"%s\"}", name);
    long long deadline = now_ms() + 10000;
    for (;;) {
        cJSON *r = ok(e2e_rpc(&t, "vm.show", params), "show");
        bool same = strcmp(str(e2e_result(r), "state"), want) == 0;
        cJSON_Delete(r);
        if (same)
            return true;
        if (now_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(start_waits_for_agent_and_rpc_answers)
{
    start_tree(true, FAST_READY);
    start_agent(0);
    wait_agent_up();
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"web\"}"), "create");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);
    ck_assert_int_ge(agent_attempts_logged(), 1);

    r = ok(agent_rpc("web", "ping"), "ping");
    const cJSON *res = e2e_result(r);
    ck_assert_str_eq(str(res, "op"), "ping");
    ck_assert_str_eq(str(res, "vm"), "web");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(res, "ok")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(res, "latency_ms")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(res, "connect_ms")));
    ck_assert_double_ge(cJSON_GetObjectItem(res, "latency_ms")->valuedouble, 0);
    cJSON_Delete(r);

    char boot_id[64], host[256];
    host_boot_id(boot_id, sizeof(boot_id));
    ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
    r = ok(agent_rpc("web", "health"), "health");
    res = e2e_result(r);
    ck_assert_str_eq(str(res, "agent"), "banger-vsock-agent");
    ck_assert_str_eq(str(res, "version"), PACKAGE_VERSION);
    ck_assert_str_eq(str(res, "boot_id"), boot_id);
    ck_assert_str_eq(str(res, "hostname"), host);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(res, "uptime_ms")));
    cJSON_Delete(r);

    /* By id too; ports is an array. */
    char *id = vm_id("web");
    r = ok(agent_rpc(id, "ports"), "ports");
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(e2e_result(r), "ports")));
    cJSON_Delete(r);
    free(id);

    /* Through the CLI. */
    char *out = NULL, *err = NULL;
    int rc = e2e_cli(&t, &out, &err, (const char *const[]){ "vm", "ping", "web", NULL });
    ck_assert_msg(rc == 0, "vm ping: %d, %s", rc, err);
    ck_assert_msg(strstr(out, "web: agent answered in ") != NULL, "ping said: %s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(agent_two_seconds_late_still_starts)
{
    start_tree(true, FAST_READY);
    start_agent(2000);
    /* Not there when the start begins (the child sleeps first). */
    ck_assert(!socket_accepts(agent_sock));
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"late\"}"), "create");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);
    /* The capability had to try again: the first attempts found no agent. */
    ck_assert_int_gt(agent_attempts_logged(), 1);
    ck_assert_int_eq(e2e_live_vmms(&t), 1);
    cJSON_Delete(ok(agent_rpc("late", "health"), "health"));
}
END_TEST

START_TEST(agent_never_answering_fails_start_and_rolls_back)
{
    start_tree(true, FAST_READY);
    /* No agent: the double closes every CONNECT without a word. */
    expect_error(e2e_rpc(&t, "vm.create", "{\"name\":\"mute\"}"), "failed",
                 "agent never answered");
    cJSON *r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"mute\"}"), "show");
    const cJSON *vm = e2e_result(r);
    ck_assert_str_eq(str(vm, "state"), "error");
    ck_assert_msg(str(vm, "last_error") && strstr(str(vm, "last_error"), "agent never answered"),
                  "last_error: %s", str(vm, "last_error"));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(vm, "pid")));
    char *id = strdup(str(vm, "id"));
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    ck_assert_int_eq(vsock_files(id), 0);
    free(id);
    expect_error(agent_rpc("mute", "ping"), "failed", "VM 'mute' is not running");

    /* Once an agent is there, starting again works. */
    start_agent(0);
    wait_agent_up();
    r = ok(e2e_rpc(&t, "vm.start", "{\"vm\":\"mute\"}"), "start");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);
}
END_TEST

START_TEST(cli_health_and_ports_show_real_data)
{
    start_tree(true, FAST_READY);
    start_agent(0);
    wait_agent_up();
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"web\"}"), "create"));
    int port = 0, lfd = tcp_listener(&port);
    char endpoint[64], boot_id[64], host[256], comm[64] = "";
    snprintf(endpoint, sizeof(endpoint), "web.vm:%d ", port);
    host_boot_id(boot_id, sizeof(boot_id));
    ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
    ck_assert_int_eq(prctl(PR_GET_NAME, comm), 0);

    /* People: one line per listener, ours among them. */
    char *out = NULL, *err = NULL;
    int rc = e2e_cli(&t, &out, &err, (const char *const[]){ "vm", "ports", "web", NULL });
    ck_assert_msg(rc == 0, "vm ports: %d, %s", rc, err);
    ck_assert_msg(strncmp(out, "ENDPOINT", 8) == 0, "no header: %s", out);
    const char *line = strstr(out, endpoint);
    ck_assert_msg(line != NULL, "%s missing from:\n%s", endpoint, out);
    char expect[128];
    snprintf(expect, sizeof(expect), "(%d)", (int)getpid());
    const char *eol = strchr(line, '\n');
    char *row = strndup(line, eol ? (size_t)(eol - line) : strlen(line));
    ck_assert_msg(strstr(row, " tcp ") && strstr(row, "127.0.0.1") && strstr(row, comm) &&
                  strstr(row, expect), "row: %s", row);
    free(row);
    free(out);
    free(err);

    /* Scripts: the agent's reply. */
    rc = e2e_cli(&t, &out, &err, (const char *const[]){ "--json", "vm", "ports", "web", NULL });
    ck_assert_msg(rc == 0, "vm ports --json: %d, %s", rc, err);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    const cJSON *p;
    bool found = false;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "ports")) {
        const cJSON *num = cJSON_GetObjectItem(p, "port");
        const cJSON *pid = cJSON_GetObjectItem(p, "pid");
        if (cJSON_IsNumber(num) && num->valueint == port && str(p, "proto") &&
            strcmp(str(p, "proto"), "tcp") == 0) {
            ck_assert_str_eq(str(p, "addr"), "127.0.0.1");
            ck_assert(cJSON_IsNumber(pid) && pid->valueint == (int)getpid());
            found = true;
        }
    }
    ck_assert_msg(found, "port %d not in %s", port, out);
    cJSON_Delete(j);
    free(out);
    free(err);

    /* Closed: gone from the list. */
    close(lfd);
    rc = e2e_cli(&t, &out, &err, (const char *const[]){ "vm", "ports", "web", NULL });
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, endpoint) == NULL, "%s still listed:\n%s", endpoint, out);
    free(out);
    free(err);

    rc = e2e_cli(&t, &out, &err, (const char *const[]){ "vm", "health", "web", NULL });
    ck_assert_msg(rc == 0, "vm health: %d, %s", rc, err);
    ck_assert_msg(strncmp(out, "NAME", 4) == 0 && strstr(out, "web ") && strstr(out, " ok ") &&
                  strstr(out, boot_id) && strstr(out, host) && strstr(out, PACKAGE_VERSION),
                  "health said:\n%s", out);
    free(out);
    free(err);

    /* Several names: each in turn, the failure reported, exit 1. */
    rc = e2e_cli(&t, &out, &err, (const char *const[]){ "vm", "health", "web", "nosuch", NULL });
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(out, boot_id) && strstr(out, "nosuch") && strstr(out, "unreachable"),
                  "health said:\n%s", out);
    ck_assert_msg(strstr(err, "no VM named 'nosuch'"), "stderr: %s", err);
    free(out);
    free(err);
    rc = e2e_cli(&t, &out, &err,
                 (const char *const[]){ "--json", "vm", "ping", "web", "web", NULL });
    ck_assert_int_eq(rc, 0);
    j = cJSON_Parse(out);
    ck_assert_msg(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2, "ping --json: %s", out);
    cJSON_Delete(j);
    free(out);
    free(err);

    /* Usage errors never reach the daemon. */
    rc = e2e_cli(&t, NULL, &err, (const char *const[]){ "vm", "ports", NULL });
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "no VM named"), "stderr: %s", err);
    free(err);
    rc = e2e_cli(&t, NULL, &err,
                 (const char *const[]){ "vm", "ping", "--timeout", "0", "web", NULL });
    ck_assert_int_eq(rc, 2);
    free(err);
}
END_TEST

START_TEST(precise_errors)
{
    start_tree(true, FAST_READY);
    start_agent(0);
    wait_agent_up();
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"web\"}"), "create"));
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"idle\",\"start\":false}"), "create"));

    expect_error(agent_rpc("nosuch", "ping"), "not_found", "no VM named 'nosuch'");
    expect_error(agent_rpc("idle", "ping"), "failed", "VM 'idle' is not running");
    expect_error(agent_rpc("web", "exec"), "bad_request", "op must be ping, health or ports");
    expect_error(e2e_rpc(&t, "vm.agent", "{\"vm\":\"web\"}"), "bad_request", "op");
    expect_error(e2e_rpc(&t, "vm.agent", "{\"vm\":\"web\",\"op\":\"ping\",\"timeout_ms\":0}"),
                 "bad_request", "timeout_ms");
    expect_error(e2e_rpc(&t, "vm.agent", "{\"vm\":\"web\",\"op\":\"ping\",\"x\":1}"),
                 "bad_request", "x");

    /* The agent goes away: firecracker closes the CONNECT. */
    stop_agent();
    expect_error(agent_rpc("web", "health"), "failed",
                 "VM 'web': agent not answering on vsock port " AGENT_PORT);

    /* Something accepts in the "guest" but never answers: bounded. */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int mute = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(mute, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", agent_sock);
    unlink(agent_sock);
    ck_assert_int_eq(bind(mute, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(mute, 8), 0);
    expect_error(e2e_rpc(&t, "vm.agent", "{\"vm\":\"web\",\"op\":\"ping\",\"timeout_ms\":300}"),
                 "failed", "guest agent did not answer 'ping' within 300 ms");
    close(mute);
    unlink(agent_sock);

    /* The socket file is gone. */
    char *id = vm_id("web");
    char *uds = NULL;
    ck_assert_int_ge(asprintf(&uds, "%s/vms/%s/vsock.sock", t.runtime_dir, id), 0);
    ck_assert_int_eq(unlink(uds), 0);
    expect_error(agent_rpc("web", "ping"), "failed", "vsock socket missing");
    free(uds);
    free(id);

    /* Stopped: not running any more. */
    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop"));
    expect_error(agent_rpc("web", "ping"), "failed", "VM 'web' is not running");
    int rc = e2e_cli(&t, NULL, NULL, (const char *const[]){ "vm", "ping", "web", NULL });
    ck_assert_int_eq(rc, 1);
}
END_TEST

START_TEST(without_vsock_capability_there_is_no_channel)
{
    start_tree(false, NULL);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"bare\"}"), "create"));
    expect_error(agent_rpc("bare", "ping"), "failed", "the vsock capability is not loaded");
}
END_TEST

START_TEST(vmm_exiting_on_its_own_is_stopped_without_a_request)
{
    /* The guest reboots 1.5 s after InstanceStart: Firecracker exits 0. */
    ck_assert_int_eq(setenv("FC_DOUBLE_EXIT_AFTER_MS", "1500", 1), 0);
    start_tree(true, FAST_READY);
    start_agent(0);
    wait_agent_up();
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"web\"}"), "create");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);
    char *id = vm_id("web");
    char *handles = NULL;
    ck_assert_int_ge(asprintf(&handles, "%s/vms/%s/handles.json", t.state_dir, id), 0);
    ck_assert(file_exists(handles));
    ck_assert_int_gt(vsock_files(id), 0);

    /* No request from here on: only the files and the processes are watched. */
    long long deadline = now_ms() + 20000, exited_at = 0, stopped_at = 0;
    while (now_ms() < deadline && !stopped_at) {
        if (!exited_at && e2e_live_vmms(&t) == 0)
            exited_at = now_ms();
        if (exited_at && !file_exists(handles) && vsock_files(id) == 0)
            stopped_at = now_ms();
        else
            sleep_ms(1);
    }
    ck_assert_msg(stopped_at, "the VM was not stopped within 20 s of its VMM exiting");
    /* Informative only (polling granularity ~1 ms plus a /proc scan). */
    fprintf(stderr, "e2e: VM stopped %lld ms after its VMM left /proc\n",
            stopped_at - exited_at);

    ck_assert(state_becomes("web", "stopped"));
    r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(e2e_result(r), "pid")));
    cJSON_Delete(r);
    char *log = read_text(t.log);
    ck_assert_msg(strstr(log, "exited on its own") != NULL, "no watcher line in the log");
    free(log);
    char *api = NULL;
    ck_assert_int_ge(asprintf(&api, "%s/vms/%s/api.sock", t.runtime_dir, id), 0);
    ck_assert(!file_exists(api));
    free(api);

    /* An explicit stop of a VM whose VMM is gone is a harmless no-op, and a
     * stop racing the watcher leaves it stopped, not in error. */
    unsetenv("FC_DOUBLE_EXIT_AFTER_MS");
    r = ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop");
    ck_assert_str_eq(str(e2e_result(r), "state"), "stopped");
    cJSON_Delete(r);
    free(handles);
    free(id);
}
END_TEST

START_TEST(stop_and_delete_are_not_disturbed_by_the_watcher)
{
    start_tree(true, FAST_READY);
    start_agent(0);
    wait_agent_up();
    for (int i = 0; i < 3; i++) {
        cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"web\"}"), "create"));
        /* The VMM exits because of this stop: the watcher sees the exit
         * while stop holds the VM and must leave the result alone. */
        cJSON *r = ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"web\"}"), "stop");
        ck_assert_str_eq(str(e2e_result(r), "state"), "stopped");
        cJSON_Delete(r);
        r = ok(e2e_rpc(&t, "vm.start", "{\"vm\":\"web\"}"), "start");
        ck_assert_str_eq(str(e2e_result(r), "state"), "running");
        cJSON_Delete(r);
        r = ok(e2e_rpc(&t, "vm.restart", "{\"vm\":\"web\"}"), "restart");
        ck_assert_str_eq(str(e2e_result(r), "state"), "running");
        cJSON_Delete(r);
        sleep_ms(200); /* room for a wrong stop by the watcher to show */
        r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
        ck_assert_str_eq(str(e2e_result(r), "state"), "running");
        cJSON_Delete(r);
        ck_assert_int_eq(e2e_live_vmms(&t), 1);
        cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"web\"}"), "delete"));
        ck_assert_int_eq(e2e_live_vmms(&t), 0);
    }
}
END_TEST

START_TEST(adopted_vm_is_watched_after_a_daemon_restart)
{
    /* Long enough for a restart under the sanitizers on a busy machine. */
    ck_assert_int_eq(setenv("FC_DOUBLE_EXIT_AFTER_MS", "6000", 1), 0);
    start_tree(true, FAST_READY);
    start_agent(0);
    wait_agent_up();
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"web\"}"), "create"));
    e2e_stop_daemon(&t, SIGTERM);
    e2e_start_daemon(&t);
    cJSON *r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
    ck_assert_str_eq(str(e2e_result(r), "state"), "running");
    char *id = strdup(str(e2e_result(r), "id"));
    cJSON_Delete(r);
    long long deadline = now_ms() + 20000;
    while (now_ms() < deadline && vsock_files(id) > 0)
        sleep_ms(20);
    ck_assert_int_eq(vsock_files(id), 0);
    ck_assert(state_becomes("web", "stopped"));
    char *log = read_text(t.log);
    ck_assert_msg(strstr(log, "adopted running VM 'web'") && strstr(log, "exited on its own"),
                  "not adopted and then stopped by the watcher");
    free(log);
    free(id);
}
END_TEST

START_TEST(guest_panic_is_quoted_when_the_vmm_exits_during_the_agent_wait)
{
    char *console = NULL;
    start_tree(true, FAST_READY);
    ck_assert_int_ge(asprintf(&console, "%s/console.txt", t.dir), 0);
    write_text(console,
               "[    0.612345] VFS: Cannot open root device \"vda\" or unknown-block(0,0): "
               "error -6\r\n"
               "[    0.613000] Please append a correct \"root=\" boot option; here are the "
               "available partitions:\r\n"
               "[    0.615000] Kernel panic - not syncing: VFS: Unable to mount root fs on "
               "unknown-block(0,0)\r\n"
               "[    0.620000] Rebooting in 1 seconds..\r\n");
    /* The daemon's environment reaches the VMMs it starts. */
    e2e_stop_daemon(&t, SIGTERM);
    ck_assert_int_eq(setenv("FC_DOUBLE_CONSOLE_FILE", console, 1), 0);
    ck_assert_int_eq(setenv("FC_DOUBLE_EXIT_AFTER_MS", "300", 1), 0);
    e2e_start_daemon(&t);
    /* No agent: the guest panics and Firecracker exits 0 during the wait. */
    expect_error(e2e_rpc(&t, "vm.create", "{\"name\":\"web\"}"), "failed",
                 "firecracker exited while waiting for the guest agent: Kernel panic - not "
                 "syncing: VFS: Unable to mount root fs on unknown-block(0,0) (console before "
                 "it: VFS: Cannot open root device \"vda\" or unknown-block(0,0): error -6 | "
                 "Please append a correct \"root=\" boot option; here are the available "
                 "partitions:)");
    cJSON *r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
    ck_assert_str_eq(str(e2e_result(r), "state"), "error");
    ck_assert_ptr_nonnull(strstr(str(e2e_result(r), "last_error"), "Kernel panic"));
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);

    /* A guest that panics but whose VMM stays up (panic=-1): the timeout
     * quotes the console too. */
    e2e_stop_daemon(&t, SIGTERM);
    unsetenv("FC_DOUBLE_EXIT_AFTER_MS");
    e2e_start_daemon(&t);
    expect_error(e2e_rpc(&t, "vm.start", "{\"vm\":\"web\"}"), "failed",
                 "agent never answered");
    r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"web\"}"), "show");
    ck_assert_ptr_nonnull(strstr(str(e2e_result(r), "last_error"),
                                 "; guest console: Kernel panic - not syncing: VFS: Unable"));
    cJSON_Delete(r);
    free(console);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e-agent");
    TCase *tc = tcase_create("agent");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, start_waits_for_agent_and_rpc_answers);
    tcase_add_test(tc, agent_two_seconds_late_still_starts);
    tcase_add_test(tc, agent_never_answering_fails_start_and_rolls_back);
    tcase_add_test(tc, cli_health_and_ports_show_real_data);
    tcase_add_test(tc, precise_errors);
    tcase_add_test(tc, without_vsock_capability_there_is_no_channel);
    tcase_add_test(tc, vmm_exiting_on_its_own_is_stopped_without_a_request);
    tcase_add_test(tc, stop_and_delete_are_not_disturbed_by_the_watcher);
    tcase_add_test(tc, adopted_vm_is_watched_after_a_daemon_restart);
    tcase_add_test(tc, guest_panic_is_quoted_when_the_vmm_exits_during_the_agent_wait);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* A failed test skips its teardown; this kills what it left, agents
     * included (their socket path names the run's base dir). */
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
