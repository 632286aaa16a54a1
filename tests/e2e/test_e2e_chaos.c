/* A bounded chaos run: random create / start / stop / delete through the
 * real CLI with the tap, nat and dns plugins, and random kill -9 of the
 * daemon (during commands and between them) followed by a restart. Then a
 * residue audit: what is left must match the store exactly, and after
 * deleting every VM nothing may be left at all: no VMM, socket, directory,
 * TAP, nft rule or DNS name.
 *
 * BANGER_CHAOS_ITERATIONS (default 40) and BANGER_CHAOS_SEED (default 1, so
 * make check is repeatable; always printed, so any run can be replayed). Runs in a network
 * namespace of its own; DNS is asked on its loopback only. */
#include "config.h"

#include "e2e.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHAOS_NAMES 4
#define CHAOS_DNS_PORT "5353"
#define CHAOS_TAP_PREFIX "chtap"

static struct e2e t;
static unsigned chaos_seed;
static int n_commands, n_succeeded, n_kills, n_kills_during;
/* What the last audit saw. */
static int audit_running, audit_nat, audit_audits;

static const char *const chaos_names[CHAOS_NAMES] = { "ca", "cb", "cc", "cd" };

static void chaos_setup(void)
{
    static const char *const plugins[] = { "tap", "nat", "dns", NULL };
    /* No warm TAPs (every TAP belongs to a running VM), uplink lo and an
     * upstream on loopback: nothing leaves the namespace, resolved is not
     * touched. */
    e2e_setup_plugins(&t, plugins,
                      "tap = { pool_size = 0; prefix = \"" CHAOS_TAP_PREFIX "\"; };\n"
                      "nat = { uplink = \"lo\"; };\n"
                      "dns = { listen_host = \"127.0.0.1:" CHAOS_DNS_PORT "\"; upstream = \"127.0.0.1:9\";"
                      " listen_bridge = false; resolved = false; };\n",
                      NULL);
    e2e_start_daemon(&t);
    e2e_register_default_image(&t);
}

static void chaos_teardown(void) { e2e_teardown(&t); }

/* ---- running the CLI while the daemon may die --------------------------- */

static pid_t chaos_cli_spawn(const char *const *argv)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        const char *args[16];
        size_t n = 0;
        args[n++] = "banger";
        args[n++] = "--socket";
        args[n++] = t.socket;
        for (size_t i = 0; argv[i] && n < 15; i++)
            args[n++] = argv[i];
        args[n] = NULL;
        execv(BANGER_CLI, (char *const *)args);
        _exit(127);
    }
    return pid;
}

static void chaos_kill_and_restart(void)
{
    e2e_stop_daemon(&t, SIGKILL);
    n_kills++;
    e2e_start_daemon(&t);
}

static void chaos_step(void)
{
    const char *name = chaos_names[rand() % CHAOS_NAMES];
    const char *argv[8] = { "vm", NULL };
    size_t n = 1;
    /* Weighted so that VMs pile up: create 4, start 3, stop 3, delete 2. */
    int pick = rand() % 12;
    switch (pick < 4 ? 0 : pick < 7 ? 2 : pick < 10 ? 3 : 4) {
    case 0:
        argv[n++] = "create";
        argv[n++] = "--name";
        argv[n++] = name;
        if (rand() % 2)
            argv[n++] = "--nat";
        if (rand() % 4 == 0)
            argv[n++] = "--no-start";
        break;
    case 2: argv[n++] = "start"; argv[n++] = name; break;
    case 3: argv[n++] = "stop"; argv[n++] = name; break;
    default: argv[n++] = "delete"; argv[n++] = name; break;
    }
    argv[n] = NULL;
    pid_t cli = chaos_cli_spawn(argv);
    n_commands++;
    /* One command in six loses its daemon half-way, at a random moment. */
    if (rand() % 6 == 0) {
        usleep((useconds_t)(rand() % 60) * 1000);
        n_kills_during++;
        chaos_kill_and_restart();
    }
    int status;
    waitpid(cli, &status, 0);
    n_succeeded += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (rand() % 12 == 0)
        chaos_kill_and_restart();
}

/* ---- the audit ---------------------------------------------------------- */

static int chaos_taps(void)
{
    struct if_nameindex *ifs = if_nameindex();
    int n = 0;
    for (struct if_nameindex *i = ifs; i && i->if_index; i++)
        n += strncmp(i->if_name, CHAOS_TAP_PREFIX, strlen(CHAOS_TAP_PREFIX)) == 0;
    if (ifs)
        if_freenameindex(ifs);
    return n;
}

/* stdout of argv (fork/exec, no shell). */
static char *chaos_run(const char *const *argv)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = read(p[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(p[0]);
    waitpid(pid, NULL, 0);
    return buf;
}

static char *chaos_ruleset(void)
{
    static const char *const argv[] = { "nft", "list", "ruleset", NULL };
    return chaos_run(argv);
}

/* Rules of banger's table that name a guest address. */
static int chaos_rules_for(const char *ruleset, const char *ip)
{
    int n = 0;
    char needle[32];
    snprintf(needle, sizeof(needle), "%s ", ip);
    for (const char *p = ruleset; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static int chaos_all_guest_rules(const char *ruleset)
{
    int n = 0;
    for (const char *p = ruleset; (p = strstr(p, "172.29.0.")) != NULL; p++)
        n++;
    return n;
}

/* The A record of <name>.vm on the daemon's loopback listener ("" none). */
static char *chaos_dns(const char *name)
{
    char fqdn[64];
    snprintf(fqdn, sizeof(fqdn), "%s.vm", name);
    const char *const argv[] = { "dig", "@127.0.0.1", "-p", CHAOS_DNS_PORT, "+short", "+time=2",
                                 "+tries=2", fqdn, "A", NULL };
    char *out = chaos_run(argv);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static bool chaos_dir_in(const char *dir, const char *id)
{
    char *path = NULL;
    ck_assert_int_gt(asprintf(&path, "%s/vms/%s", dir, id), 0);
    bool there = access(path, F_OK) == 0;
    free(path);
    return there;
}

/* Every entry of <base>/vms is the id of a VM in the store. */
static void chaos_dirs_belong(const char *base, const cJSON *vms)
{
    char *path = NULL;
    ck_assert_int_gt(asprintf(&path, "%s/vms", base), 0);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        bool known = false;
        const cJSON *vm;
        cJSON_ArrayForEach(vm, vms) {
            const cJSON *id = cJSON_GetObjectItem(vm, "id");
            known |= cJSON_IsString(id) && strcmp(id->valuestring, de->d_name) == 0;
        }
        ck_assert_msg(known, "seed %u: %s/%s belongs to no VM in the store", chaos_seed, path,
                      de->d_name);
    }
    if (d)
        closedir(d);
    free(path);
}

/* What is on the host matches what the store says, VM by VM. Returns the
 * number of VMs in the store. */
static int chaos_audit(void)
{
    cJSON *r = e2e_rpc(&t, "vm.list", NULL);
    ck_assert_msg(r && e2e_result(r), "vm.list: %s", r ? e2e_error_message(r) : "no reply");
    const cJSON *vms = cJSON_GetObjectItem(e2e_result(r), "vms");
    char *ruleset = chaos_ruleset();
    int running = 0, nat_rules = 0, n = 0;
    const cJSON *vm;
    cJSON_ArrayForEach(vm, vms) {
        n++;
        const char *name = cJSON_GetObjectItem(vm, "name")->valuestring;
        const char *id = cJSON_GetObjectItem(vm, "id")->valuestring;
        const char *ip = cJSON_GetObjectItem(vm, "ip")->valuestring;
        const char *state = cJSON_GetObjectItem(vm, "state")->valuestring;
        bool nat = cJSON_IsTrue(cJSON_GetObjectItem(vm, "nat"));
        const cJSON *pid = cJSON_GetObjectItem(vm, "pid");
        bool is_running = strcmp(state, "running") == 0;
        /* A start cut short by a kill is recorded as error, and must say why. */
        const cJSON *why = cJSON_GetObjectItem(vm, "last_error");
        ck_assert_msg(strcmp(state, "error") != 0 || (cJSON_IsString(why) && why->valuestring[0]),
                      "seed %u: VM %s is in state error without a reason", chaos_seed, name);
        ck_assert_msg(is_running == (cJSON_IsNumber(pid) && pid->valueint > 0),
                      "seed %u: VM %s is %s with pid %d", chaos_seed, name, state,
                      cJSON_IsNumber(pid) ? pid->valueint : 0);
        running += is_running;
        int rules = chaos_rules_for(ruleset, ip);
        /* Every running VM has its bridge guard; NAT VMs also their masquerade. */
        ck_assert_msg((rules > 0) == is_running, "seed %u: VM %s (%s, %s, nat %d) has %d nft rule(s)",
                      chaos_seed, name, ip, state, nat, rules);
        nat_rules += rules;
        char *a = chaos_dns(name);
        ck_assert_msg(is_running ? strcmp(a, ip) == 0 : a[0] == '\0',
                      "seed %u: VM %s (%s, %s) resolves to '%s'", chaos_seed, name, ip, state, a);
        free(a);
        char *sock = NULL;
        ck_assert_int_gt(asprintf(&sock, "%s/vms/%s/api.sock", t.runtime_dir, id), 0);
        ck_assert_msg((access(sock, F_OK) == 0) == is_running, "seed %u: VM %s is %s, api.sock %s",
                      chaos_seed, name, state, is_running ? "missing" : "left behind");
        free(sock);
        if (is_running)
            ck_assert(chaos_dir_in(t.state_dir, id) && chaos_dir_in(t.runtime_dir, id));
    }
    audit_running = running;
    audit_nat = 0;
    cJSON_ArrayForEach(vm, vms)
        audit_nat += strcmp(cJSON_GetObjectItem(vm, "state")->valuestring, "running") == 0 &&
                     cJSON_IsTrue(cJSON_GetObjectItem(vm, "nat"));
    audit_audits++;
    ck_assert_msg(e2e_live_vmms(&t) == running, "seed %u: %d VMM process(es) for %d running VM(s)",
                  chaos_seed, e2e_live_vmms(&t), running);
    ck_assert_msg(chaos_taps() == running, "seed %u: %d TAP(s) for %d running VM(s)", chaos_seed,
                  chaos_taps(), running);
    ck_assert_msg(chaos_all_guest_rules(ruleset) == nat_rules,
                  "seed %u: nft rules name guest addresses of no running VM:\n%s", chaos_seed,
                  ruleset);
    chaos_dirs_belong(t.state_dir, vms);
    chaos_dirs_belong(t.runtime_dir, vms);
    /* Names of the pool that are not in the store resolve to nothing. */
    for (int i = 0; i < CHAOS_NAMES; i++) {
        bool in_store = false;
        cJSON_ArrayForEach(vm, vms)
            in_store |= strcmp(cJSON_GetObjectItem(vm, "name")->valuestring, chaos_names[i]) == 0;
        if (in_store)
            continue;
        char *a = chaos_dns(chaos_names[i]);
        ck_assert_msg(a[0] == '\0', "seed %u: deleted VM %s still resolves to %s", chaos_seed,
                      chaos_names[i], a);
        free(a);
    }
    free(ruleset);
    cJSON_Delete(r);
    return n;
}

START_TEST(chaos_leaves_nothing)
{
    const char *it = getenv("BANGER_CHAOS_ITERATIONS");
    int iterations = it ? atoi(it) : 40;
    long long t0 = e2e_now_ms();
    printf("chaos: seed %u (BANGER_CHAOS_SEED=%u to replay), %d iterations\n", chaos_seed,
           chaos_seed, iterations);
    fflush(stdout);
    srand(chaos_seed);
    int left = 0;
    for (int i = 0; i < iterations; i++) {
        chaos_step();
        /* Audited along the way too, not only at the end. */
        if ((i + 1) % 10 == 0 || i + 1 == iterations)
            left = chaos_audit();
    }
    printf("chaos: after %d iterations (%d commands succeeded, %d kill -9): %d VM(s) in the store, "
           "%d running (%d with NAT), matched against VMMs, sockets, directories, TAPs, nft rules "
           "and DNS\n",
           iterations, n_succeeded, n_kills, left, audit_running, audit_nat);
    fflush(stdout);

    /* Delete what is left (a delete interrupted by a kill is retried). */
    for (int i = 0; i < CHAOS_NAMES; i++) {
        const char *const argv[] = { "vm", "delete", chaos_names[i], NULL };
        for (int tries = 0; tries < 3; tries++) {
            int status;
            waitpid(chaos_cli_spawn(argv), &status, 0);
            n_commands++;
            char params[64];
            snprintf(params, sizeof(params), "{\"vm\":\"%s\"}", chaos_names[i]);
            cJSON *r = e2e_rpc(&t, "vm.show", params);
            bool gone = r && e2e_error_code(r) && strcmp(e2e_error_code(r), "not_found") == 0;
            cJSON_Delete(r);
            if (gone)
                break;
        }
    }
    ck_assert_int_eq(chaos_audit(), 0);
    /* And once more after a crash and a restart: still nothing. */
    chaos_kill_and_restart();
    ck_assert_int_eq(chaos_audit(), 0);
    ck_assert_int_eq(e2e_live_vmms(&t), 0);
    ck_assert_int_eq(e2e_vm_dirs(&t), 0);
    ck_assert_int_eq(chaos_taps(), 0);
    char *ruleset = chaos_ruleset();
    ck_assert_msg(chaos_all_guest_rules(ruleset) == 0, "rules left:\n%s", ruleset);
    free(ruleset);
    printf("chaos: %d commands, %d kill -9 (%d during a command), %d VM(s) left before the "
           "final deletes, nothing left after them, %d audits, %lld ms\n",
           n_commands, n_kills, n_kills_during, left, audit_audits, e2e_now_ms() - t0);
}
END_TEST

int main(void)
{
    e2e_enter_netns();
    const char *seed = getenv("BANGER_CHAOS_SEED");
    chaos_seed = seed ? (unsigned)strtoul(seed, NULL, 10) : 1;
    Suite *s = suite_create("e2e-chaos");
    TCase *tc = tcase_create("chaos");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, chaos_setup, chaos_teardown);
    tcase_add_test(tc, chaos_leaves_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
