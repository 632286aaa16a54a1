/* The dns module as bangerd runs it: dns.so loaded, init/start/stop/
 * reconcile/doctor/fini called, queries sent by dig and by hand. Every test
 * runs in its own network namespace (Check forks each test) and talks only
 * to loopback addresses inside it. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "dns-testutil.h"
#include "host/host.h"
#include "host/vm.h"
#include "loader/loader.h"
#include "util/error.h"

#define PLUGIN_DIR BUILDDIR "/plugins/dns/.libs"
#define HOST_IP "127.0.0.1"
#define HOST_PORT 5354
#define UPSTREAM_IP "127.0.0.2"
#define UPSTREAM_PORT 5300
#define BOUND_MS 10000 /* generous bound on waiting for a reply; never a timing assertion */

struct fixture {
    struct bg_config *cfg;
    struct bg_plugin p;
    bool loaded;
    char tmp[64];
    struct banger_vm *vms[4];
};

static struct fixture fx;

static const char *dns_group_default =
    "listen_bridge = false; resolved = false; listen_host = \"127.0.0.1:5354\"; "
    "upstream = \"127.0.0.2:5300\"; forward_timeout_ms = 1500;";

/* Load config + dns.so and run init, then activate (what the daemon does
 * when it serves). Returns the first failure; err filled. */
static int plugin_init(const char *network, const char *dns_group, struct banger_error *err)
{
    char text[2048];
    snprintf(text, sizeof text, "plugins = (\"tap\", \"dns\");\n%s\ndns = { %s };\n",
             network ? network : "", dns_group ? dns_group : dns_group_default);
    memset(err, 0, sizeof *err);
    ck_assert_msg(config_load_string(text, "test.conf", &fx.cfg, err) == 0, "config: %s",
                  bg_error_text(err));
    config_set_current(fx.cfg);
    ck_assert_msg(loader_open(PLUGIN_DIR, "dns", false, &fx.p, err) == 0,
                  "loading dns.so from %s: %s (build plugins/dns first)", PLUGIN_DIR,
                  bg_error_text(err));
    fx.loaded = true;
    int r = fx.p.cap->init(bg_host_api(), config_group(fx.cfg, "dns"), &fx.p.state, err);
    fx.p.inited = r == 0;
    if (r == 0)
        r = fx.p.cap->activate(fx.p.state, err);
    return r;
}

static void plugin_init_ok(const char *network, const char *dns_group)
{
    struct banger_error e;
    int r = plugin_init(network, dns_group, &e);
    ck_assert_msg(r == 0, "init: %s", bg_error_text(&e));
}

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    snprintf(fx.tmp, sizeof fx.tmp, "/tmp/dns-plugin-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fx.tmp));
    dnst_enter_netns();
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR)
            rm_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void teardown(void)
{
    for (size_t i = 0; i < 4; i++)
        bg_vm_free(fx.vms[i]);
    if (fx.p.inited)
        fx.p.cap->fini(fx.p.state);
    if (fx.loaded)
        loader_close(&fx.p);
    config_set_current(NULL);
    config_free(fx.cfg);
    rm_tree(fx.tmp);
}

static struct banger_vm *make_vm(size_t slot, const char *id, const char *name, const char *ip)
{
    char state[128], run[128];
    snprintf(state, sizeof state, "%s/%s", fx.tmp, id);
    snprintf(run, sizeof run, "%s/%s-run", fx.tmp, id);
    mkdir(state, 0700);
    mkdir(run, 0700);
    struct banger_vm_info info = {
        .struct_size = sizeof info, .id = id, .name = name, .ip = ip,
        .mac = "06:00:ac:1d:00:02", .gateway = "172.29.0.1", .prefix_len = 24, .cid = 3,
        .state_dir = state, .runtime_dir = run, .bridge = "br-banger",
    };
    struct banger_error e = { 0 };
    struct banger_vm *vm = NULL;
    ck_assert_msg(bg_vm_new(&info, &vm, &e) == 0, "%s", bg_error_text(&e));
    bg_vm_free(fx.vms[slot]);
    fx.vms[slot] = vm;
    return vm;
}

static void start_vm(struct banger_vm *vm)
{
    struct banger_error e = { 0 };
    int r = fx.p.cap->start(fx.p.state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e);
    ck_assert_msg(r == 0, "start: %s", bg_error_text(&e));
}

/* Ask ip:port by hand; returns the parsed reply (never NULL). */
static ldns_pkt *query(const char *ip, uint16_t port, uint16_t id, const char *name,
                       ldns_rr_type type)
{
    uint8_t q[512], r[4096];
    size_t n = dnst_query(q, sizeof q, id, name, type, LDNS_RR_CLASS_IN);
    ssize_t got = dnst_exchange(ip, port, q, n, r, sizeof r, BOUND_MS);
    ck_assert_msg(got > 0, "no reply from %s:%u for %s", ip, port, name);
    ldns_pkt *p = dnst_parse(r, (size_t)got);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(ldns_pkt_id(p), id);
    return p;
}

static void expect_a(const char *ip, uint16_t port, const char *name, const char *want)
{
    char got[32];
    ldns_pkt *p = query(ip, port, 0x5151, name, LDNS_RR_TYPE_A);
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    dnst_first_a(p, got, sizeof got);
    ck_assert_str_eq(got, want);
    ldns_pkt_free(p);
}

static void expect_rcode(const char *ip, uint16_t port, const char *name, ldns_rr_type type,
                         ldns_pkt_rcode want)
{
    ldns_pkt *p = query(ip, port, 0x6262, name, type);
    ck_assert_msg(ldns_pkt_get_rcode(p) == want, "%s: rcode %d, want %d", name,
                  ldns_pkt_get_rcode(p), want);
    ldns_pkt_free(p);
}

static void expect_dig(const char *server, uint16_t port, const char *name, const char *want)
{
    char out[512];
    int st = dnst_dig(server, port, name, "A", out, sizeof out);
    ck_assert_msg(st >= 0 && st != 127, "could not run dig (install dnsutils)");
    ck_assert_msg(st == 0, "dig %s exited %d: %s", name, st, out);
    ck_assert_str_eq(out, want);
}

START_TEST(t_dig_gets_vm_address)
{
    plugin_init_ok(NULL, NULL);
    start_vm(make_vm(0, "0123456789ab", "web", "172.29.0.2"));
    start_vm(make_vm(1, "0123456789ac", "db", "172.29.0.3"));
    expect_dig(HOST_IP, HOST_PORT, "web.vm", "172.29.0.2\n");
    expect_dig(HOST_IP, HOST_PORT, "DB.vm.", "172.29.0.3\n");
    expect_a(HOST_IP, HOST_PORT, "web.vm.", "172.29.0.2");
    /* Known name, other type: NOERROR, nothing. Unknown: NXDOMAIN. */
    ldns_pkt *p = query(HOST_IP, HOST_PORT, 9, "web.vm.", LDNS_RR_TYPE_AAAA);
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    ck_assert_uint_eq(ldns_pkt_ancount(p), 0);
    ldns_pkt_free(p);
    expect_rcode(HOST_IP, HOST_PORT, "nope.vm.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN);
    expect_dig(HOST_IP, HOST_PORT, "nope.vm", ""); /* +short prints nothing for NXDOMAIN */
}
END_TEST

START_TEST(t_zone_from_config)
{
    plugin_init_ok(NULL, "listen_bridge = false; resolved = false; zone = \"banger.test\"; "
                         "listen_host = \"127.0.0.1:5355\"; upstream = \"127.0.0.2:5300\";");
    start_vm(make_vm(0, "0123456789ab", "web", "172.29.0.2"));
    expect_a(HOST_IP, 5355, "web.banger.test.", "172.29.0.2");
    expect_rcode(HOST_IP, 5355, "other.banger.test.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN);
}
END_TEST

START_TEST(t_forwards_to_upstream)
{
    struct dnst_upstream up;
    dnst_upstream_start(&up, UPSTREAM_IP, UPSTREAM_PORT, "192.0.2.7");
    plugin_init_ok(NULL, NULL);
    expect_a(HOST_IP, HOST_PORT, "www.example.com.", "192.0.2.7");
    expect_dig(HOST_IP, HOST_PORT, "example.org", "192.0.2.7\n");
    /* Many at once: each answer goes back to its own client with its own id. */
    for (uint16_t i = 0; i < 20; i++) {
        ldns_pkt *p = query(HOST_IP, HOST_PORT, (uint16_t)(1000 + i), "x.example.net.",
                            LDNS_RR_TYPE_A);
        ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
        ldns_pkt_free(p);
    }
    dnst_upstream_stop(&up);
    ck_assert_int_ge(up.received, 22);
}
END_TEST

START_TEST(t_silent_upstream_servfail)
{
    struct dnst_upstream up;
    dnst_upstream_start(&up, UPSTREAM_IP, UPSTREAM_PORT, NULL);
    plugin_init_ok(NULL, NULL);
    start_vm(make_vm(0, "0123456789ab", "web", "172.29.0.2"));

    /* Ask for an outside name, and while that waits on upstream, a zone name:
     * the zone answer must not queue behind the forward. */
    uint8_t q[512], r[512];
    size_t n = dnst_query(q, sizeof q, 0x0a0a, "slow.example.com.", LDNS_RR_TYPE_A,
                          LDNS_RR_CLASS_IN);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(HOST_PORT) };
    inet_pton(AF_INET, HOST_IP, &to.sin_addr);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(sendto(fd, q, n, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)n);
    expect_a(HOST_IP, HOST_PORT, "web.vm.", "172.29.0.2");

    /* The bound is forward_timeout_ms (1.5 s); we wait up to 10 s for it. */
    struct timeval tv = { .tv_sec = BOUND_MS / 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t got = recv(fd, r, sizeof r, 0);
    ck_assert_msg(got > 0, "no SERVFAIL within %d ms", BOUND_MS);
    ldns_pkt *p = dnst_parse(r, (size_t)got);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(ldns_pkt_id(p), 0x0a0a);
    ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
    ck_assert_uint_eq(ldns_pkt_qdcount(p), 1);
    ldns_pkt_free(p);
    close(fd);
    dnst_upstream_stop(&up);
    ck_assert_int_ge(up.received, 1);
}
END_TEST

START_TEST(t_no_upstream_servfail)
{
    /* Nothing listens on the upstream port: the ICMP error or the bound ends it. */
    plugin_init_ok(NULL, NULL);
    expect_rcode(HOST_IP, HOST_PORT, "example.com.", LDNS_RR_TYPE_A, LDNS_RCODE_SERVFAIL);
}
END_TEST

static void send_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    dnst_send(HOST_IP, HOST_PORT, buf, n);
}

START_TEST(t_malformed_packets)
{
    plugin_init_ok(NULL, NULL);
    start_vm(make_vm(0, "0123456789ab", "web", "172.29.0.2"));

    uint8_t q[512];
    size_t n = dnst_query(q, sizeof q, 0x3333, "web.vm.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN);
    uint8_t *big = malloc(65507); /* the largest UDP/IPv4 payload */
    memcpy(big, q, n);
    memset(big + n, 0xc0, 65507 - n);
    dnst_send(HOST_IP, HOST_PORT, big, 65507);
    unsigned seed = 99;
    for (int i = 0; i < 200; i++) {
        size_t len = (size_t)(rand_r(&seed) % 600);
        for (size_t k = 0; k < len; k++)
            big[k] = (uint8_t)rand_r(&seed);
        dnst_send(HOST_IP, HOST_PORT, big, len);
    }
    free(big);
    dnst_send(HOST_IP, HOST_PORT, q, 5); /* truncated header */
    dnst_send(HOST_IP, HOST_PORT, q, 0); /* empty datagram */

    /* The seed corpus: qdcount 0 and 5, class CH, QR set, loops, ... */
    DIR *d = opendir(DNS_CORPUS_DIR);
    ck_assert_msg(d != NULL, "%s: %s", DNS_CORPUS_DIR, strerror(errno));
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", DNS_CORPUS_DIR, de->d_name);
        send_file(path);
        files++;
    }
    closedir(d);
    ck_assert_int_ge(files, 10);

    /* FORMERR comes back where a header can be read. */
    uint8_t m[512], r[512];
    memcpy(m, q, n);
    m[5] = 5;
    ssize_t got = dnst_exchange(HOST_IP, HOST_PORT, m, n, r, sizeof r, BOUND_MS);
    ck_assert_int_ge(got, 12);
    ck_assert_uint_eq(r[3] & 0x0f, LDNS_RCODE_FORMERR);
    size_t nch = dnst_query(m, sizeof m, 0x4444, "web.vm.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_CH);
    got = dnst_exchange(HOST_IP, HOST_PORT, m, nch, r, sizeof r, BOUND_MS);
    ck_assert_int_ge(got, 12);
    ck_assert_uint_eq(r[3] & 0x0f, LDNS_RCODE_FORMERR);

    /* Still alive and answering. */
    expect_a(HOST_IP, HOST_PORT, "web.vm.", "172.29.0.2");
    expect_dig(HOST_IP, HOST_PORT, "web.vm", "172.29.0.2\n");
}
END_TEST

START_TEST(t_stop_withdraws_after_restart)
{
    plugin_init_ok(NULL, NULL);
    start_vm(make_vm(0, "0123456789ab", "web", "172.29.0.2"));
    start_vm(make_vm(1, "0123456789ac", "db", "172.29.0.3"));
    expect_a(HOST_IP, HOST_PORT, "web.vm.", "172.29.0.2");

    /* A fresh VM object, as after a daemon restart, is enough to stop. */
    struct banger_vm *again = make_vm(0, "0123456789ab", "web", "172.29.0.2");
    struct banger_error e = { 0 };
    ck_assert_int_eq(fx.p.cap->stop(fx.p.state, again, &e), 0);
    expect_rcode(HOST_IP, HOST_PORT, "web.vm.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN);
    expect_a(HOST_IP, HOST_PORT, "db.vm.", "172.29.0.3");
    /* Idempotent. */
    ck_assert_int_eq(fx.p.cap->stop(fx.p.state, again, &e), 0);

    /* Reconcile rebuilds the table from the live VMs only. */
    struct banger_vm *live[] = { again };
    ck_assert_int_eq(fx.p.cap->reconcile(fx.p.state, live, 1, &e), 0);
    expect_a(HOST_IP, HOST_PORT, "web.vm.", "172.29.0.2");
    expect_rcode(HOST_IP, HOST_PORT, "db.vm.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN);
}
END_TEST

START_TEST(t_fault_then_stop)
{
    plugin_init_ok(NULL, NULL);
    struct banger_vm *vm = make_vm(0, "0123456789ab", "web", "172.29.0.2");
    setenv("BANGER_FAULTS", "dns.add", 1);
    struct banger_error e = { 0 };
    int r = fx.p.cap->start(fx.p.state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e);
    unsetenv("BANGER_FAULTS");
    ck_assert_int_lt(r, 0);
    ck_assert_ptr_nonnull(strstr(bg_error_text(&e), "dns.add"));
    /* No rollback callback: the engine calls stop, which withdraws the name. */
    ck_assert_ptr_null(fx.p.cap->rollback);
    ck_assert_int_eq(fx.p.cap->stop(fx.p.state, vm, &e), 0);
    expect_rcode(HOST_IP, HOST_PORT, "web.vm.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN);
}
END_TEST

static bool doctor_has(struct banger_doctor *d, const char *check, enum banger_doctor_status st)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->rows[i].check, check) && d->rows[i].status == st)
            return true;
    return false;
}

START_TEST(t_bridge_listener_binds_lazily)
{
    /* The bridge address does not exist at init: EADDRNOTAVAIL is not fatal. */
    plugin_init_ok("network = { bridge = \"br-test\"; cidr = \"10.99.0.0/24\"; };",
                   "listen_bridge = true; resolved = false; listen_host = \"\"; "
                   "upstream = \"127.0.0.2:5300\";");
    struct banger_doctor d;
    bg_doctor_init(&d);
    ck_assert_int_eq(fx.p.cap->doctor(fx.p.state, &d), 0);
    ck_assert(doctor_has(&d, "bridge listener", BANGER_DOCTOR_WARN));
    ck_assert(doctor_has(&d, "upstream", BANGER_DOCTOR_PASS));
    bg_doctor_done(&d);

    /* What tap does: the gateway address appears; the next VM start binds it. */
    dnst_add_lo_address("lo:1", "10.99.0.1");
    start_vm(make_vm(0, "0123456789ab", "web", "10.99.0.2"));
    expect_a("10.99.0.1", 53, "web.vm.", "10.99.0.2");
    expect_dig("10.99.0.1", 53, "web.vm", "10.99.0.2\n");

    bg_doctor_init(&d);
    ck_assert_int_eq(fx.p.cap->doctor(fx.p.state, &d), 0);
    ck_assert(doctor_has(&d, "bridge listener", BANGER_DOCTOR_PASS));
    bg_doctor_done(&d);
}
END_TEST

START_TEST(t_bridge_listener_at_init)
{
    dnst_add_lo_address("lo:1", "10.98.0.1");
    plugin_init_ok("network = { cidr = \"10.98.0.0/24\"; };",
                   "resolved = false; listen_host = \"127.0.0.1:5356\"; "
                   "upstream = \"127.0.0.2:5300\";");
    start_vm(make_vm(0, "0123456789ab", "web", "10.98.0.2"));
    expect_a("10.98.0.1", 53, "web.vm.", "10.98.0.2");
    expect_a(HOST_IP, 5356, "web.vm.", "10.98.0.2");
}
END_TEST

START_TEST(t_config_rejected)
{
    static const struct { const char *group, *expect; } bad[] = {
        { "zone = \"VM.\";", "zone" },
        { "zone = 5;", "zone" },
        { "upstream = \"resolver.example\";", "upstream" },
        { "listen_host = \"127.0.0.1:99999\";", "listen_host" },
        { "listen_bridge = \"yes\";", "listen_bridge" },
        { "forward_timeout_ms = 5;", "forward_timeout_ms" },
        { "colour = \"blue\";", "colour" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct banger_error e;
        char group[256];
        snprintf(group, sizeof group, "listen_bridge = false; %s", bad[i].group);
        if (strncmp(bad[i].group, "listen_bridge", 13) == 0)
            snprintf(group, sizeof group, "%s", bad[i].group);
        int r = plugin_init(NULL, group, &e);
        ck_assert_msg(r < 0, "accepted: %s", bad[i].group);
        ck_assert_msg(strstr(bg_error_text(&e), bad[i].expect), "'%s' -> '%s'", bad[i].group,
                      bg_error_text(&e));
        loader_close(&fx.p);
        fx.loaded = false;
        config_set_current(NULL);
        config_free(fx.cfg);
        fx.cfg = NULL;
    }
    /* A port in use is reported when the daemon activates the module. */
    struct dnst_upstream squatter;
    dnst_upstream_start(&squatter, HOST_IP, HOST_PORT, NULL);
    struct banger_error e;
    ck_assert_int_lt(plugin_init(NULL, NULL, &e), 0);
    ck_assert_ptr_nonnull(strstr(bg_error_text(&e), "listen_host"));
    dnst_upstream_stop(&squatter);
}
END_TEST

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_dns_plugin: needs root (network namespaces); skipped\n");
        return 77;
    }
    Suite *s = suite_create("dns-plugin");
    TCase *tc = tcase_create("netns");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_dig_gets_vm_address);
    tcase_add_test(tc, t_zone_from_config);
    tcase_add_test(tc, t_forwards_to_upstream);
    tcase_add_test(tc, t_silent_upstream_servfail);
    tcase_add_test(tc, t_no_upstream_servfail);
    tcase_add_test(tc, t_malformed_packets);
    tcase_add_test(tc, t_stop_withdraws_after_restart);
    tcase_add_test(tc, t_fault_then_stop);
    tcase_add_test(tc, t_bridge_listener_binds_lazily);
    tcase_add_test(tc, t_bridge_listener_at_init);
    tcase_add_test(tc, t_config_rejected);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
