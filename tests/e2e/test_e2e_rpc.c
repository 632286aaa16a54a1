/* bangerd end to end, as an attacker holding the socket would: a client
 * that stops reading, SIGTERM with connections and calls still open, one
 * uid opening every connection it can, and readers racing a delete. Runs in
 * a network namespace of its own. */
#include "config.h"

#include "e2e.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_BYTES (1024 * 1024)
/* A daemon that needs longer than this after SIGTERM is stuck, not slow:
 * the grace for running calls is 3 s. */
#define EXIT_BOUND_MS 10000

static struct e2e t;

static void teardown(void) { e2e_teardown(&t); }

static cJSON *ok(cJSON *reply, const char *what)
{
    ck_assert_msg(reply != NULL, "%s: no reply", what);
    ck_assert_msg(e2e_result(reply) != NULL, "%s: %s (%s)", what, e2e_error_message(reply),
                  e2e_error_code(reply));
    return reply;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static char *path_of(const char *a, const char *b, const char *c)
{
    char *p = NULL;
    ck_assert_int_gt(asprintf(&p, "%s/%s/%s", a, b, c), 0);
    return p;
}

static void send_line(int fd, const char *line)
{
    size_t len = strlen(line);
    ck_assert_int_eq(send(fd, line, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* A stopped VM whose console log holds 1 MiB: vm.logs from offset 0
 * answers with a line several times bigger than a socket buffer. */
static void make_vm_with_big_log(const char *name)
{
    char params[128];
    snprintf(params, sizeof(params), "{\"name\":\"%s\",\"start\":false}", name);
    cJSON *r = ok(e2e_rpc(&t, "vm.create", params), "create");
    char *dir = path_of(t.state_dir, "vms", str(e2e_result(r), "id"));
    cJSON_Delete(r);
    ck_assert(mkdir(dir, 0700) == 0 || errno == EEXIST);
    char *log = NULL;
    ck_assert_int_gt(asprintf(&log, "%s/firecracker.log", dir), 0);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    char *chunk = malloc(LOG_BYTES);
    /* Control bytes are escaped in JSON: the reply grows further. */
    for (size_t i = 0; i < LOG_BYTES; i++)
        chunk[i] = i % 2 ? '\x01' : 'x';
    ck_assert_int_eq(write(fd, chunk, LOG_BYTES), LOG_BYTES);
    close(fd);
    free(chunk);
    free(log);
    free(dir);
}

/* A connection that asked for the big reply and reads none of it. */
static int stalled_client(const char *name)
{
    int fd = e2e_connect(&t);
    ck_assert_int_ge(fd, 0);
    char line[160];
    snprintf(line, sizeof(line), "{\"v\":1,\"method\":\"vm.logs\",\"params\":{\"vm\":\"%s\",\"offset\":0}}\n",
             name);
    send_line(fd, line);
    return fd;
}

/* Everything the daemon sends until EOF (or 10 s of silence). */
static size_t drain(int fd, bool *complete)
{
    size_t total = 0;
    char buf[65536];
    char last = 0;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        total += (size_t)n;
        last = buf[n - 1];
    }
    *complete = last == '\n';
    return total;
}

/* ---- send deadline ------------------------------------------------------ */

static void setup_deadline(void)
{
    e2e_setup(&t, "rpc = { send_timeout_ms = 500; };\n", NULL);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
}

START_TEST(client_that_stops_reading_is_dropped)
{
    make_vm_with_big_log("big");
    int fd = stalled_client("big");
    /* Other clients are served meanwhile. */
    cJSON_Delete(ok(e2e_rpc(&t, "daemon.status", NULL), "status beside the stalled client"));
    cJSON_Delete(ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"big\"}"), "show beside the stalled client"));
    /* Once the daemon gave up on it (no fixed sleep: a loaded machine may
     * take long to build the reply) the client starts to read: only what
     * fit in the socket buffers arrives, then EOF. */
    for (int i = 0; i < 6000 && e2e_log_count(&t, "client stopped reading") == 0; i++)
        usleep(10 * 1000);
    bool complete = true;
    size_t got = drain(fd, &complete);
    close(fd);
    printf("stalled client: %zu bytes arrived before the daemon dropped it\n", got);
    ck_assert_msg(!complete, "the daemon waited for the stalled client (%zu bytes, whole reply)", got);
    ck_assert_int_eq(e2e_log_count(&t, "client stopped reading"), 1);
    /* A client that reads gets the whole reply. */
    cJSON *r = ok(e2e_rpc(&t, "vm.logs", "{\"vm\":\"big\",\"offset\":0}"), "logs");
    cJSON_Delete(r);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"big\"}"), "delete"));
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
}
END_TEST

/* ---- SIGTERM ------------------------------------------------------------ */

static void setup_patient(void)
{
    /* A deadline that never fires in this test: only the shutdown can free
     * the daemon. */
    e2e_setup(&t, "rpc = { send_timeout_ms = 600000; };\n", NULL);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
}

static long long term_and_time(void)
{
    long long t0 = e2e_now_ms();
    ck_assert_int_eq(kill(t.daemon, SIGTERM), 0);
    int status = 0;
    bool gone = e2e_wait_exit(t.daemon, EXIT_BOUND_MS, &status);
    long long ms = e2e_now_ms() - t0;
    if (gone)
        t.daemon = 0;
    ck_assert_msg(gone, "bangerd still running %lld ms after SIGTERM", ms);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bangerd exit status %d", status);
    return ms;
}

START_TEST(sigterm_ends_daemon_with_stalled_and_idle_clients)
{
    make_vm_with_big_log("big");
    int stalled = stalled_client("big");
    /* And one that connected and never sent a request. */
    int idle = e2e_connect(&t);
    ck_assert_int_ge(idle, 0);
    cJSON_Delete(ok(e2e_rpc(&t, "daemon.status", NULL), "status"));
    long long ms = term_and_time();
    printf("SIGTERM with a stalled and an idle client: bangerd exited after %lld ms\n", ms);
    close(stalled);
    close(idle);
    struct stat st;
    ck_assert_int_eq(stat(t.socket, &st), -1);
}
END_TEST

static void setup_lingering(void)
{
    setenv("BANGER_FAULTS", "vmsvc.create-pause", 1);
    e2e_setup(&t, "rpc = { shutdown_grace_ms = 200; };\n", NULL);
    e2e_start_daemon(&t);
    unsetenv("BANGER_FAULTS");
    e2e_register_default_image(&t);
}

static void *create_thread(void *arg)
{
    (void)arg;
    return e2e_rpc(&t, "vm.create", "{\"name\":\"slow\"}");
}

START_TEST(sigterm_does_not_wait_for_a_lingering_call)
{
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, create_thread, NULL), 0);
    for (int i = 0; i < 500 && e2e_log_count(&t, "pausing at vmsvc.create-pause") == 0; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(e2e_log_count(&t, "pausing at vmsvc.create-pause"), 1);
    long long ms = term_and_time();
    printf("SIGTERM during a create held for 1.5 s: bangerd exited after %lld ms\n", ms);
    cJSON *reply = NULL;
    pthread_join(th, (void **)&reply);
    /* The client learns its call did not finish: no result. */
    ck_assert(reply == NULL || e2e_result(reply) == NULL);
    cJSON_Delete(reply);
    ck_assert_int_ge(e2e_log_count(&t, "call vm.create of uid 0 still running"), 1);
    ck_assert_int_ge(e2e_log_count(&t, "exiting with 1 call(s) still running"), 1);
    /* What the create left is consistent after a restart: a VM that never
     * started, no VMM, and a delete leaves nothing. */
    e2e_start_daemon(&t);
    cJSON *r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"slow\"}"), "show after restart");
    ck_assert_str_ne(str(e2e_result(r), "state"), "running");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"slow\"}"), "delete"));
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
}
END_TEST

/* ---- per-uid connection limit ------------------------------------------- */

static void setup_member(void)
{
    e2e_setup(&t, "socket_group = \"nogroup\";\n", NULL);
    e2e_start_daemon(&t);
    e2e_open_tree(&t);
}

/* In the member's process: hold `n` connections, then try one more with a
 * request and report its reply on `out`; wait for a byte on `go`, close
 * everything, and try once more. */
static void member_flood(int n, int out, int go)
{
    int *fds = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        fds[i] = e2e_connect(&t);
        if (fds[i] < 0)
            _exit(2);
    }
    cJSON *r = e2e_rpc(&t, "daemon.status", NULL);
    const char *code = r ? e2e_error_code(r) : "no reply";
    dprintf(out, "%s|%s\n", code ? code : "ok", r ? e2e_error_message(r) : "");
    cJSON_Delete(r);
    char c;
    if (read(go, &c, 1) != 1)
        _exit(3);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    /* The slots come back once the daemon sees the connections close. */
    bool served = false;
    for (int i = 0; i < 500 && !served; i++) {
        r = e2e_rpc(&t, "daemon.status", NULL);
        served = r && e2e_result(r);
        cJSON_Delete(r);
        if (!served)
            usleep(10 * 1000);
    }
    dprintf(out, "%s\n", served ? "served again" : "still refused");
    free(fds);
    _exit(0);
}

START_TEST(one_uid_cannot_take_every_connection)
{
    int out[2], go[2];
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t member = e2e_fork_as_member();
    if (member == 0) {
        close(out[0]);
        close(go[1]);
        member_flood(32, out[1], go[0]);
    }
    close(out[1]);
    close(go[0]);
    FILE *f = fdopen(out[0], "r");
    char line[512] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    line[strcspn(line, "\n")] = '\0';
    printf("member's 33rd connection: %s\n", line);
    ck_assert_msg(strncmp(line, "busy|", 5) == 0, "the 33rd connection of uid 65534 got: %s", line);
    ck_assert_str_eq(line + 5, "uid 65534 has 32 connections open (limit 32)");
    /* Root still gets in while the member holds its 32. */
    for (int i = 0; i < 3; i++)
        cJSON_Delete(ok(e2e_rpc(&t, "daemon.status", NULL), "root beside the member's 32"));
    ck_assert_int_eq(write(go[1], "x", 1), 1);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert_str_eq(line, "served again\n");
    fclose(f);
    close(go[1]);
    int status = 0;
    waitpid(member, &status, 0);
    ck_assert_int_eq(status, 0);
    ck_assert_int_ge(e2e_log_count(&t, "uid 65534 has 32 connections open"), 1);
}
END_TEST

/* Members of several uids together fill every slot they may have: 8 uids
 * with 30 connections each hold 240 of the 256. The next member is refused,
 * root is not. */
START_TEST(members_together_leave_roots_slots)
{
    enum { UIDS = 8, EACH = 30 };
    int ready[2], go[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    pid_t holders[UIDS];
    for (int u = 0; u < UIDS; u++) {
        holders[u] = e2e_fork_as_member_uid((uid_t)(60000 + u));
        if (holders[u] == 0) {
            close(ready[0]);
            close(go[1]);
            int fds[EACH];
            for (int i = 0; i < EACH; i++)
                if ((fds[i] = e2e_connect(&t)) < 0)
                    _exit(2);
            /* Counted by the daemon once it answers something on another. */
            ck_assert_int_eq(write(ready[1], "r", 1), 1);
            /* Hold them until the parent closes its end. */
            char c;
            ssize_t n = read(go[0], &c, 1);
            (void)n;
            _exit(0);
        }
    }
    close(ready[1]);
    close(go[0]);
    for (int u = 0; u < UIDS; u++) {
        char c;
        ck_assert_int_eq(read(ready[0], &c, 1), 1);
    }
    /* Every connection was accepted (answered in order by the accept
     * thread) once root's own request is. */
    cJSON_Delete(ok(e2e_rpc(&t, "daemon.status", NULL), "root beside 240 member connections"));
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t late = e2e_fork_as_member();
    if (late == 0) {
        close(out[0]);
        cJSON *r = e2e_rpc(&t, "daemon.status", NULL);
        const char *code = r ? e2e_error_code(r) : "no reply";
        dprintf(out[1], "%s|%s\n", code ? code : "ok", r ? e2e_error_message(r) : "");
        _exit(0);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[512] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    waitpid(late, NULL, 0);
    line[strcspn(line, "\n")] = '\0';
    printf("a member beside 240 member connections: %s\n", line);
    ck_assert_str_eq(line, "busy|bangerd has 240 connections open (the last 16 are kept for root); "
                           "try again");
    for (int i = 0; i < 3; i++)
        cJSON_Delete(ok(e2e_rpc(&t, "daemon.status", NULL), "root in a reserved slot"));
    close(go[1]);
    for (int u = 0; u < UIDS; u++) {
        int status = 0;
        waitpid(holders[u], &status, 0);
        ck_assert_int_eq(status, 0);
    }
}
END_TEST

/* ---- readers create and write nothing ----------------------------------- */

static void setup_view_pause(void)
{
    setenv("BANGER_FAULTS", "vmsvc.view-pause", 1);
    e2e_setup(&t, NULL, NULL);
    e2e_start_daemon(&t);
    unsetenv("BANGER_FAULTS");
    e2e_register_default_image(&t);
}

struct reader {
    const char *method, *params;
    cJSON *reply;
};

static void *reader_thread(void *arg)
{
    struct reader *rd = arg;
    rd->reply = e2e_rpc(&t, rd->method, rd->params);
    return NULL;
}

/* The reader read the record and waits (vmsvc.view-pause) before looking
 * for the VMM; the delete runs in that gap. */
static void reader_racing_delete(const char *method, const char *params)
{
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"gone\"}"), "create"));
    ck_assert_int_eq(e2e_vm_dirs(&t), 2);
    int before = e2e_log_count(&t, "pausing at vmsvc.view-pause");
    struct reader rd = { method, params, NULL };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reader_thread, &rd), 0);
    for (int i = 0; i < 500 && e2e_log_count(&t, "pausing at vmsvc.view-pause") == before; i++)
        usleep(10 * 1000);
    ck_assert_int_gt(e2e_log_count(&t, "pausing at vmsvc.view-pause"), before);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"gone\"}"), "delete"));
    pthread_join(th, NULL);
    ck_assert_ptr_nonnull(rd.reply);
    cJSON_Delete(rd.reply);
    ck_assert_msg(e2e_vm_dirs(&t) == 0, "%s left %d directories of the deleted VM", method,
                  e2e_vm_dirs(&t));
    /* And a reader that comes after the delete finds nothing. */
    cJSON *r = e2e_rpc(&t, method, params);
    ck_assert_ptr_nonnull(r);
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
}

START_TEST(show_racing_delete_creates_nothing)
{
    reader_racing_delete("vm.show", "{\"vm\":\"gone\"}");
}
END_TEST

START_TEST(list_racing_delete_creates_nothing)
{
    reader_racing_delete("vm.list", "{}");
}
END_TEST

START_TEST(agent_racing_delete_creates_nothing)
{
    reader_racing_delete("vm.agent", "{\"vm\":\"gone\",\"op\":\"ping\"}");
}
END_TEST

static void setup_plain(void)
{
    e2e_setup(&t, NULL, NULL);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
}

/* vm.ssh_info reads the record without looking for the VMM; in this
 * namespace its host-key scan finds no guest. Nothing may appear. */
START_TEST(ssh_info_creates_nothing)
{
    cJSON_Delete(ok(e2e_rpc(&t, "vm.create", "{\"name\":\"gone\"}"), "create"));
    cJSON_Delete(e2e_rpc(&t, "vm.ssh_info", "{\"vm\":\"gone\"}"));
    cJSON_Delete(ok(e2e_rpc(&t, "vm.delete", "{\"vm\":\"gone\"}"), "delete"));
    cJSON *r = e2e_rpc(&t, "vm.ssh_info", "{\"vm\":\"gone\"}");
    ck_assert_str_eq(e2e_error_code(r), "not_found");
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    ck_assert_ptr_nonnull(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* handles.json is written only under the VM's lock: a reader that finds the
 * VMM by its socket while the handles lack its pid records nothing. */
START_TEST(readers_never_write_handles)
{
    cJSON *r = ok(e2e_rpc(&t, "vm.create", "{\"name\":\"keep\"}"), "create");
    char *id = strdup(str(e2e_result(r), "id"));
    int pid = cJSON_GetObjectItem(e2e_result(r), "pid")->valueint;
    cJSON_Delete(r);
    char *dir = path_of(t.state_dir, "vms", id);
    char *handles = NULL;
    ck_assert_int_gt(asprintf(&handles, "%s/handles.json", dir), 0);
    char *text = slurp(handles);
    cJSON *h = cJSON_Parse(text);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(h, "fc.pid"));
    cJSON_DeleteItemFromObject(h, "fc.pid");
    char *without = cJSON_Print(h);
    cJSON_Delete(h);
    FILE *f = fopen(handles, "we");
    fputs(without, f);
    fclose(f);

    r = ok(e2e_rpc(&t, "vm.show", "{\"vm\":\"keep\"}"), "show");
    ck_assert_int_eq(cJSON_GetObjectItem(e2e_result(r), "pid")->valueint, pid);
    cJSON_Delete(r);
    cJSON_Delete(ok(e2e_rpc(&t, "vm.list", NULL), "list"));
    char *after = slurp(handles);
    ck_assert_msg(strcmp(after, without) == 0, "a reader rewrote handles.json:\n%s", after);
    /* A stop (under the lock) still finds and stops the VMM. */
    cJSON_Delete(ok(e2e_rpc(&t, "vm.stop", "{\"vm\":\"keep\"}"), "stop"));
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    free(after);
    free(without);
    free(text);
    free(handles);
    free(dir);
    free(id);
}
END_TEST

int main(void)
{
    e2e_enter_netns();
    Suite *s = suite_create("e2e-rpc");
    TCase *deadline = tcase_create("send-deadline");
    tcase_set_timeout(deadline, 120);
    tcase_add_checked_fixture(deadline, setup_deadline, teardown);
    tcase_add_test(deadline, client_that_stops_reading_is_dropped);
    suite_add_tcase(s, deadline);
    TCase *term = tcase_create("sigterm");
    tcase_set_timeout(term, 120);
    tcase_add_checked_fixture(term, setup_patient, teardown);
    tcase_add_test(term, sigterm_ends_daemon_with_stalled_and_idle_clients);
    suite_add_tcase(s, term);
    TCase *linger = tcase_create("sigterm-lingering");
    tcase_set_timeout(linger, 120);
    tcase_add_checked_fixture(linger, setup_lingering, teardown);
    tcase_add_test(linger, sigterm_does_not_wait_for_a_lingering_call);
    suite_add_tcase(s, linger);
    TCase *limit = tcase_create("per-uid-limit");
    tcase_set_timeout(limit, 120);
    tcase_add_checked_fixture(limit, setup_member, teardown);
    tcase_add_test(limit, one_uid_cannot_take_every_connection);
    tcase_add_test(limit, members_together_leave_roots_slots);
    suite_add_tcase(s, limit);
    TCase *race = tcase_create("readers-racing-delete");
    tcase_set_timeout(race, 120);
    tcase_add_checked_fixture(race, setup_view_pause, teardown);
    tcase_add_test(race, show_racing_delete_creates_nothing);
    tcase_add_test(race, list_racing_delete_creates_nothing);
    tcase_add_test(race, agent_racing_delete_creates_nothing);
    suite_add_tcase(s, race);
    TCase *ro = tcase_create("readers-write-nothing");
    tcase_set_timeout(ro, 120);
    tcase_add_checked_fixture(ro, setup_plain, teardown);
    tcase_add_test(ro, ssh_info_creates_nothing);
    tcase_add_test(ro, readers_never_write_handles);
    suite_add_tcase(s, ro);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
