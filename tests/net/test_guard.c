/* The nat module as a hostile guest meets it: frames with a forged source
 * MAC or IP, forged ARP, IPv6 and VLAN frames from a VM's TAP never reach
 * the host; a VM without --nat that forges a --nat VM's address is not
 * masqueraded and nothing of it reaches the uplink, while the genuine --nat
 * VM still does, and honest guests still reach each other; forwarding is
 * turned on per interface and put back after the last --nat VM, also by
 * reconcile after a crash. Guests are network
 * namespaces behind veth ports of the bridge standing in for TAPs; every
 * frame stays inside the test's namespaces. */
#include "config.h"

#include "test_nat_util.h"
#include "test_tap_util.h"

#include "engine/engine.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ether.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONF_NAT "plugins = (\"tap\", \"nat\"); tap = { pool_size = 2; }; " \
                 "nat = { uplink = \"auto\"; };"
#define VM_A "0000000000aa"
#define VM_B "0000000000bb"
#define MAC_A "06:00:ac:1d:00:02"   /* what net_vm gives host 2 */
#define MAC_B "06:00:ac:1d:00:03"
#define MAC_FORGED "06:00:ac:1d:00:99"
#define MARK "BGT-"

static const char *const tap_nat[] = {"tap", "nat", NULL};

/* ---- frames ------------------------------------------------------------- */

struct frame {
    uint8_t b[256];
    size_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void frame_eth(struct frame *f, const char *dst, const char *src, uint16_t type)
{
    memcpy(f->b, ether_aton(dst)->ether_addr_octet, 6);
    memcpy(f->b + 6, ether_aton(src)->ether_addr_octet, 6);
    put16(f->b + 12, type);
    f->len = 14;
}

static void frame_mark(struct frame *f, const char *name)
{
    f->len += (size_t)snprintf((char *)f->b + f->len, sizeof(f->b) - f->len, MARK "%s", name);
}

static uint16_t ip_checksum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;

    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* IPv4/UDP (checksum 0: none) to dst_ip:9999, the marker as payload. */
static void frame_udp4(struct frame *f, const char *eth_dst, const char *eth_src,
                       const char *src_ip, const char *dst_ip, const char *name)
{
    uint8_t *ip, *udp;
    size_t payload;

    frame_eth(f, eth_dst, eth_src, ETHERTYPE_IP);
    ip = f->b + f->len;
    memset(ip, 0, 28);
    ip[0] = 0x45;
    ip[8] = 64;
    ip[9] = IPPROTO_UDP;
    inet_pton(AF_INET, src_ip, ip + 12);
    inet_pton(AF_INET, dst_ip, ip + 16);
    udp = ip + 20;
    put16(udp, 40000);
    put16(udp + 2, 9999);
    f->len += 28;
    frame_mark(f, name);
    payload = f->len - 14 - 28;
    put16(udp + 4, (uint16_t)(8 + payload));
    put16(ip + 2, (uint16_t)(28 + payload));
    put16(ip + 10, ip_checksum(ip, 20));
}

/* An ARP request "who has tpa, tell spa (sha)", broadcast, marker after it. */
static void frame_arp(struct frame *f, const char *eth_src, const char *sha, const char *spa,
                      const char *tpa, const char *name)
{
    uint8_t *a;

    frame_eth(f, "ff:ff:ff:ff:ff:ff", eth_src, ETHERTYPE_ARP);
    a = f->b + f->len;
    memset(a, 0, 28);
    put16(a, 1);
    put16(a + 2, ETHERTYPE_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, 1);
    memcpy(a + 8, ether_aton(sha)->ether_addr_octet, 6);
    inet_pton(AF_INET, spa, a + 14);
    inet_pton(AF_INET, tpa, a + 24);
    f->len += 28;
    frame_mark(f, name);
}

/* IPv6/UDP from a link-local address to all nodes. */
static void frame_udp6(struct frame *f, const char *eth_src, const char *name)
{
    uint8_t *ip6;
    size_t payload;

    frame_eth(f, "33:33:00:00:00:01", eth_src, ETHERTYPE_IPV6);
    ip6 = f->b + f->len;
    memset(ip6, 0, 48);
    ip6[0] = 0x60;
    ip6[6] = IPPROTO_UDP;
    ip6[7] = 255;
    inet_pton(AF_INET6, "fe80::400:acff:fe1d:2", ip6 + 8);
    inet_pton(AF_INET6, "ff02::1", ip6 + 24);
    put16(ip6 + 40, 40000);
    put16(ip6 + 42, 9999);
    f->len += 48;
    frame_mark(f, name);
    payload = f->len - 14 - 48;
    put16(ip6 + 4, (uint16_t)(8 + payload));
    put16(ip6 + 44, (uint16_t)(8 + payload));
}

/* The same IPv4/UDP frame inside an 802.1Q tag (VLAN 5). */
static void frame_vlan(struct frame *f, const char *eth_dst, const char *eth_src,
                       const char *src_ip, const char *dst_ip, const char *name)
{
    struct frame inner;

    frame_udp4(&inner, eth_dst, eth_src, src_ip, dst_ip, name);
    memcpy(f->b, inner.b, 12);
    put16(f->b + 12, ETHERTYPE_VLAN);
    put16(f->b + 14, 5);
    memcpy(f->b + 16, inner.b + 12, inner.len - 12);
    f->len = inner.len + 4;
}

/* A raw socket on link `dev` of namespace ns, and its index there. */
static int raw_socket_in(int ns, int home, const char *dev, int *ifindex)
{
    int fd;

    ck_assert_int_eq(setns(ns, CLONE_NEWNET), 0);
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    ck_assert_int_ge(fd, 0);
    *ifindex = (int)if_nametoindex(dev);
    ck_assert_int_gt(*ifindex, 0);
    ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
    return fd;
}

static void frame_send(int fd, int ifindex, const struct frame *f)
{
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};

    memcpy(to.sll_addr, f->b, 6);
    ck_assert_int_eq(sendto(fd, f->b, f->len, 0, (struct sockaddr *)&to, sizeof(to)),
                     (ssize_t)f->len);
}

/* What the host stack receives through the bridge: a packet socket on
 * br-banger sees exactly the frames the bridge passes up. */
static int bridge_capture(void)
{
    struct sockaddr_ll at = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));

    ck_assert_int_ge(fd, 0);
    at.sll_ifindex = (int)if_nametoindex("br-banger");
    ck_assert_int_gt(at.sll_ifindex, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&at, sizeof(at)), 0);
    return fd;
}

/* The markers seen so far, "|name|name|...". */
struct seen {
    char names[1024];
};

static void seen_add(struct seen *s, const uint8_t *buf, size_t len)
{
    const uint8_t *m = memmem(buf, len, MARK, strlen(MARK));
    char name[64];
    size_t n = 0;

    if (!m)
        return;
    m += strlen(MARK);
    while (m + n < buf + len && n < sizeof(name) - 1 &&
           strchr("abcdefghijklmnopqrstuvwxyz-0123456789", m[n]) && m[n])
        n++;
    snprintf(name, sizeof(name), "|%.*s|", (int)n, (const char *)m);
    if (!strstr(s->names, name))
        snprintf(s->names + strlen(s->names), sizeof(s->names) - strlen(s->names), "%s",
                 name + (s->names[0] ? 1 : 0));
}

static bool seen_has(const struct seen *s, const char *name)
{
    char key[64];

    snprintf(key, sizeof(key), "|%s|", name);
    return strstr(s->names, key) != NULL;
}

/* Drain frames coming in on the capture socket (never the host's own). */
static void capture_drain(int fd, struct seen *s, int wait_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint8_t buf[2048];

    while (poll(&p, 1, wait_ms) == 1) {
        struct sockaddr_ll from;
        socklen_t from_len = sizeof(from);
        ssize_t got = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);

        if (got > 0 && from.sll_pkttype != PACKET_OUTGOING)
            seen_add(s, buf, (size_t)got);
        wait_ms = 0;
    }
}

static void bridge_mac(char out[18])
{
    struct ifreq ifr = {0};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "br-banger");
    ck_assert_int_eq(ioctl(fd, SIOCGIFHWADDR, &ifr), 0);
    close(fd);
    snprintf(out, 18, "%s", ether_ntoa((struct ether_addr *)ifr.ifr_hwaddr.sa_data));
    /* ether_ntoa drops leading zeros; ether_aton reads both forms. */
}

/* A guest namespace behind veth port `port` of the bridge; its end is eth0
 * with mac and ip/24, default route via the bridge. */
static int guest_ns(int home, const char *port, const char *mac, const char *ip)
{
    char cidr[32];
    const char *add[] = {"ip", "link", "add", port, "type", "veth", "peer", "name", "gtmp0",
                         NULL};
    const char *master[] = {"ip", "link", "set", port, "master", "br-banger", "up", NULL};
    const char *rename[] = {"ip", "link", "set", "gtmp0", "name", "eth0", NULL};
    const char *set_mac[] = {"ip", "link", "set", "eth0", "address", mac, NULL};
    const char *addr[] = {"ip", "addr", "add", cidr, "dev", "eth0", NULL};
    const char *up[] = {"ip", "link", "set", "eth0", "up", NULL};
    const char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
    const char *def[] = {"ip", "route", "add", "default", "via", "172.29.0.1", NULL};
    int ns = net_ns_new(home);

    snprintf(cidr, sizeof(cidr), "%s/24", ip);
    net_run_ok(add);
    net_link_to_ns("gtmp0", ns);
    net_run_ok(master);
    net_run_in(ns, home, rename);
    net_run_in(ns, home, set_mac);
    net_run_in(ns, home, addr);
    net_run_in(ns, home, up);
    net_run_in(ns, home, lo_up);
    net_run_in(ns, home, def);
    return ns;
}

/* nat alone on a VM whose "TAP" is the veth port. */
static struct banger_vm *guarded_vm(struct net_fixture *f, const char *id, int host, bool nat,
                                    const char *port)
{
    struct banger_error e = {0};
    struct banger_vm *vm = net_vm(f, id, id, host, nat);

    ck_assert_int_eq(bg_vm_set_handle(vm, "tap.dev", port, &e), 0);
    ck_assert_msg(f->mods[1].cap->start(f->mods[1].state, vm, BANGER_PHASE_BEFORE_LAUNCH, &e) ==
                      0, "%s", bg_error_text(&e));
    return vm;
}

static void guarded_vm_stop(struct net_fixture *f, struct banger_vm *vm)
{
    struct banger_error e = {0};

    ck_assert_msg(f->mods[1].cap->stop(f->mods[1].state, vm, &e) == 0, "%s",
                  bg_error_text(&e));
    bg_vm_free(vm);
}

/* ---- a hostile guest on the bridge --------------------------------------- */

START_TEST(test_forged_frames_dropped)
{
    static const char *const forged[] = {"mac", "ip", "other-vm-ip", "arp-ip", "arp-mac",
                                         "arp-eth", "ipv6", "vlan"};
    struct net_fixture f;
    struct seen seen = {{0}};
    struct banger_vm *vm;
    struct frame frames[8], good_udp, good_arp;
    char br[18];
    int home, ns, tx, ifindex, cap, genuine_rounds = 0;

    net_private();
    home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    net_fixture_up(&f, CONF_NAT, tap_nat);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    ns = guest_ns(home, "vguest", MAC_A, "172.29.0.2");
    /* Without --nat: the guard is for every VM. */
    vm = guarded_vm(&f, VM_A, 2, false, "vguest");
    bridge_mac(br);
    tx = raw_socket_in(ns, home, "eth0", &ifindex);
    cap = bridge_capture();

    frame_udp4(&frames[0], br, MAC_FORGED, "172.29.0.2", "172.29.0.1", forged[0]);
    frame_udp4(&frames[1], br, MAC_A, "172.29.0.9", "172.29.0.1", forged[1]);
    frame_udp4(&frames[2], br, MAC_A, "172.29.0.3", "172.29.0.1", forged[2]);
    frame_arp(&frames[3], MAC_A, MAC_A, "172.29.0.7", "172.29.0.1", forged[3]);
    frame_arp(&frames[4], MAC_A, MAC_FORGED, "172.29.0.2", "172.29.0.1", forged[4]);
    frame_arp(&frames[5], MAC_FORGED, MAC_A, "172.29.0.2", "172.29.0.1", forged[5]);
    frame_udp6(&frames[6], MAC_A, forged[6]);
    frame_vlan(&frames[7], br, MAC_A, "172.29.0.2", "172.29.0.1", forged[7]);
    frame_udp4(&good_udp, br, MAC_A, "172.29.0.2", "172.29.0.1", "genuine-ip");
    frame_arp(&good_arp, MAC_A, MAC_A, "172.29.0.2", "172.29.0.1", "genuine-arp");

    /* Forged frames go first in every round; once the genuine ones have
     * come through several rounds, the forged ones had every chance. */
    for (int round = 0; round < 100 && genuine_rounds < 3; round++) {
        for (size_t i = 0; i < 8; i++)
            frame_send(tx, ifindex, &frames[i]);
        frame_send(tx, ifindex, &good_udp);
        frame_send(tx, ifindex, &good_arp);
        capture_drain(cap, &seen, 100);
        if (seen_has(&seen, "genuine-ip") && seen_has(&seen, "genuine-arp"))
            genuine_rounds++;
    }
    for (size_t i = 0; i < 8; i++)
        ck_assert_msg(!seen_has(&seen, forged[i]), "forged frame \"%s\" reached the host (%s)",
                      forged[i], seen.names);
    ck_assert_msg(genuine_rounds == 3, "the genuine frames never reached the host: %s",
                  seen.names);

    close(cap);
    close(tx);
    guarded_vm_stop(&f, vm);
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));
    net_fixture_down(&f);
    close(ns);
    close(home);
}
END_TEST

/* The "internet": namespace with ieth0 198.18.0.2 behind the uplink up0,
 * which carries the default route. */
static int internet_ns(int home)
{
    const char *up_add[] = {"ip", "link", "add", "up0", "type", "veth", "peer", "name", "ieth0",
                            NULL};
    const char *up_addr[] = {"ip", "addr", "add", "198.18.0.1/24", "dev", "up0", NULL};
    const char *up_up[] = {"ip", "link", "set", "up0", "up", NULL};
    const char *def[] = {"ip", "route", "add", "default", "via", "198.18.0.2", NULL};
    const char *i_addr[] = {"ip", "addr", "add", "198.18.0.2/24", "dev", "ieth0", NULL};
    const char *i_up[] = {"ip", "link", "set", "ieth0", "up", NULL};
    const char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
    int ns = net_ns_new(home);

    net_run_ok(up_add);
    net_link_to_ns("ieth0", ns);
    net_run_ok(up_addr);
    net_run_ok(up_up);
    net_run_ok(def);
    net_run_in(ns, home, i_addr);
    net_run_in(ns, home, i_up);
    net_run_in(ns, home, lo_up);
    return ns;
}

/* A UDP socket on port 9999 (or any) in namespace ns. */
static int udp_in(int ns, int home, bool bound)
{
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(9999)};
    int fd;

    ck_assert_int_eq(setns(ns, CLONE_NEWNET), 0);
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    if (bound)
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&any, sizeof(any)), 0);
    ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
    return fd;
}

/* Datagrams the "internet" received: payload names, and where the genuine
 * one appeared to come from. */
static void udp_drain(int fd, struct seen *s, char genuine_from[INET_ADDRSTRLEN], int wait_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint8_t buf[512];

    while (poll(&p, 1, wait_ms) == 1) {
        struct sockaddr_in from;
        socklen_t from_len = sizeof(from);
        ssize_t got = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);

        if (got > 0) {
            seen_add(s, buf, (size_t)got);
            if (memmem(buf, (size_t)got, MARK "genuine", strlen(MARK "genuine")))
                inet_ntop(AF_INET, &from.sin_addr, genuine_from, INET_ADDRSTRLEN);
        }
        wait_ms = 0;
    }
}

START_TEST(test_forged_address_not_masqueraded)
{
    struct net_fixture f;
    struct seen seen = {{0}};
    struct banger_vm *nat_vm, *plain_vm;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9999)};
    struct frame as_nat_ip, as_nat_whole, own;
    char br[18], from[INET_ADDRSTRLEN] = "";
    int home, inet, nat_ns, plain_ns, rx, tx_nat, tx_plain, ifindex, genuine_rounds = 0;

    net_private();
    home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    inet = internet_ns(home);
    net_fixture_up(&f, CONF_NAT, tap_nat);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    nat_ns = guest_ns(home, "vnat", MAC_A, "172.29.0.2");
    plain_ns = guest_ns(home, "vplain", MAC_B, "172.29.0.3");
    nat_vm = guarded_vm(&f, VM_A, 2, true, "vnat");
    plain_vm = guarded_vm(&f, VM_B, 3, false, "vplain");
    bridge_mac(br);

    rx = udp_in(inet, home, true);
    tx_nat = udp_in(nat_ns, home, false);
    tx_plain = raw_socket_in(plain_ns, home, "eth0", &ifindex);
    inet_pton(AF_INET, "198.18.0.2", &to.sin_addr);
    /* The VM without --nat: with the --nat VM's address, then as the --nat
     * VM entirely (its MAC too), then honestly as itself. */
    frame_udp4(&as_nat_ip, br, MAC_B, "172.29.0.2", "198.18.0.2", "forged-ip");
    frame_udp4(&as_nat_whole, br, MAC_A, "172.29.0.2", "198.18.0.2", "forged-mac-ip");
    frame_udp4(&own, br, MAC_B, "172.29.0.3", "198.18.0.2", "plain-own");

    for (int round = 0; round < 100 && genuine_rounds < 3; round++) {
        frame_send(tx_plain, ifindex, &as_nat_ip);
        frame_send(tx_plain, ifindex, &as_nat_whole);
        frame_send(tx_plain, ifindex, &own);
        sendto(tx_nat, MARK "genuine", strlen(MARK "genuine"), 0, (struct sockaddr *)&to,
               sizeof(to));
        udp_drain(rx, &seen, from, 100);
        if (seen_has(&seen, "genuine"))
            genuine_rounds++;
    }
    ck_assert_msg(!seen_has(&seen, "forged-ip"), "forged address masqueraded (%s)", seen.names);
    ck_assert_msg(!seen_has(&seen, "forged-mac-ip"), "forged identity masqueraded (%s)",
                  seen.names);
    ck_assert_msg(!seen_has(&seen, "plain-own"), "a VM without --nat was forwarded (%s)",
                  seen.names);
    ck_assert_msg(genuine_rounds == 3, "the --nat VM never reached the uplink: %s", seen.names);
    ck_assert_str_eq(from, "198.18.0.1");

    close(rx);
    close(tx_nat);
    close(tx_plain);
    guarded_vm_stop(&f, plain_vm);
    guarded_vm_stop(&f, nat_vm);
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));
    net_fixture_down(&f);
    close(plain_ns);
    close(nat_ns);
    close(inet);
    close(home);
}
END_TEST

/* The guard lets honest guests talk: ARP and UDP between two VMs, one
 * with --nat and one without. */
START_TEST(test_guests_reach_each_other)
{
    struct net_fixture f;
    struct seen seen = {{0}};
    struct banger_vm *a, *b;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9999)};
    char from[INET_ADDRSTRLEN] = "";
    int home, inet, ns_a, ns_b, rx, tx;

    net_private();
    home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    inet = internet_ns(home);
    net_fixture_up(&f, CONF_NAT, tap_nat);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    ns_a = guest_ns(home, "vnat", MAC_A, "172.29.0.2");
    ns_b = guest_ns(home, "vplain", MAC_B, "172.29.0.3");
    a = guarded_vm(&f, VM_A, 2, true, "vnat");
    b = guarded_vm(&f, VM_B, 3, false, "vplain");
    rx = udp_in(ns_b, home, true);
    tx = udp_in(ns_a, home, false);
    inet_pton(AF_INET, "172.29.0.3", &to.sin_addr);
    /* Resend until it arrives (the first waits on ARP); bounded. */
    for (int i = 0; i < 50 && !seen_has(&seen, "genuine"); i++) {
        sendto(tx, MARK "genuine", strlen(MARK "genuine"), 0, (struct sockaddr *)&to,
               sizeof(to));
        udp_drain(rx, &seen, from, 100);
    }
    ck_assert_msg(seen_has(&seen, "genuine"), "guest to guest failed: %s", seen.names);
    ck_assert_str_eq(from, "172.29.0.2");

    close(rx);
    close(tx);
    guarded_vm_stop(&f, b);
    guarded_vm_stop(&f, a);
    net_fixture_down(&f);
    close(ns_b);
    close(ns_a);
    close(inet);
    close(home);
}
END_TEST

/* ---- forwarding flags ---------------------------------------------------- */

START_TEST(test_forwarding_per_interface)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *a, *b;
    const char *other[] = {"ip", "link", "add", "other0", "type", "veth", "peer", "name",
                           "other0p", NULL};

    net_private();
    net_uplink_veth();
    net_run_ok(other);
    net_fixture_up(&f, CONF_NAT, tap_nat);
    ck_assert(net_wait_pool("bgtap", "br-banger", 2));
    /* The uplink forwarded already (someone else's choice); the bridge not. */
    net_set_forwarding("up0", 1);
    ck_assert_int_eq(net_forwarding("all"), 0);
    ck_assert_int_eq(net_forwarding("br-banger"), 0);

    a = net_vm(&f, VM_A, "alpha", 2, true);
    b = net_vm(&f, VM_B, "beta", 3, true);
    ck_assert_msg(engine_start(&f.set, NULL, a, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(net_forwarding("br-banger"), 1);
    ck_assert_int_eq(net_forwarding("up0"), 1);
    ck_assert_int_eq(net_forwarding("all"), 0);
    ck_assert_int_eq(net_forwarding("other0"), 0);
    ck_assert_int_eq(net_forwarding("lo"), 0);
    ck_assert_msg(engine_start(&f.set, NULL, b, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_int_eq(net_saved_records(), 2);

    /* Not the last --nat VM: flags stay. */
    ck_assert_int_eq(engine_stop(&f.set, NULL, a, &e), 0);
    ck_assert_int_eq(net_forwarding("br-banger"), 1);
    ck_assert_int_eq(net_forwarding("up0"), 1);
    /* The last: each flag as it was before. */
    ck_assert_int_eq(engine_stop(&f.set, NULL, b, &e), 0);
    ck_assert_int_eq(net_forwarding("br-banger"), 0);
    ck_assert_int_eq(net_forwarding("up0"), 1);
    ck_assert_int_eq(net_forwarding("all"), 0);
    ck_assert_int_eq(net_forwarding("other0"), 0);
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));

    /* Someone turned on ip_forward host-wide meanwhile: it stays so. */
    ck_assert_msg(engine_start(&f.set, NULL, a, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    net_set_forwarding("all", 1);
    ck_assert_int_eq(engine_stop(&f.set, NULL, a, &e), 0);
    ck_assert_int_eq(net_forwarding("all"), 1);
    ck_assert_int_eq(net_forwarding("br-banger"), 1);
    ck_assert(!net_table_exists("ip"));
    bg_vm_free(a);
    bg_vm_free(b);
    net_fixture_down(&f);
}
END_TEST

/* The daemon died with a --nat VM running; the VM is gone at restart. */
START_TEST(test_forwarding_restored_at_reconcile)
{
    struct net_fixture f;
    struct banger_error e = {0};
    struct banger_vm *a, *plain;

    net_private();
    net_uplink_veth();
    net_fixture_up(&f, CONF_NAT, tap_nat);
    a = net_vm(&f, VM_A, "alpha", 2, true);
    plain = net_vm(&f, VM_B, "beta", 3, false);
    ck_assert_msg(engine_start(&f.set, NULL, a, NULL, NULL, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_msg(engine_start(&f.set, NULL, plain, NULL, NULL, &e) == 0, "%s",
                  bg_error_text(&e));
    ck_assert_int_eq(net_forwarding("br-banger"), 1);

    /* Only the VM without --nat survived. */
    ck_assert_int_eq(f.mods[1].cap->reconcile(f.mods[1].state, &plain, 1, &e), 0);
    ck_assert_int_eq(net_forwarding("br-banger"), 0);
    ck_assert_int_eq(net_forwarding("up0"), 0);
    ck_assert_int_eq(net_forwarding("all"), 0);
    ck_assert_int_eq(net_saved_records(), 0);
    ck_assert_int_eq(net_rules_tagged(VM_A, NULL), 0);
    ck_assert_int_eq(net_rules_tagged(VM_B, NULL), 5);

    /* And none: nothing of banger's is left. */
    ck_assert_int_eq(f.mods[1].cap->reconcile(f.mods[1].state, NULL, 0, &e), 0);
    ck_assert(!net_table_exists("ip") && !net_table_exists("bridge"));
    ck_assert_int_eq(engine_stop(&f.set, NULL, a, &e), 0);
    ck_assert_int_eq(engine_stop(&f.set, NULL, plain, &e), 0);
    bg_vm_free(a);
    bg_vm_free(plain);
    net_fixture_down(&f);
}
END_TEST

static Suite *guard_suite(void)
{
    Suite *s = suite_create("guard");
    TCase *tc = tcase_create("guard");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_forged_frames_dropped);
    tcase_add_test(tc, test_forged_address_not_masqueraded);
    tcase_add_test(tc, test_guests_reach_each_other);
    tcase_add_test(tc, test_forwarding_per_interface);
    tcase_add_test(tc, test_forwarding_restored_at_reconcile);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(guard_suite());
    int failed;

    /* Each test owns a private network namespace in its forked child. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
