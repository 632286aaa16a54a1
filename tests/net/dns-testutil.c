/* Helpers for the dns tests. See dns-testutil.h. */
#include "config.h"

#include "dns-testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

size_t dnst_query(uint8_t *buf, size_t size, uint16_t id, const char *name, ldns_rr_type type,
                  ldns_rr_class klass)
{
    ldns_pkt *pkt = NULL;
    uint8_t *wire = NULL;
    size_t len = 0;
    if (ldns_pkt_query_new_frm_str(&pkt, name, type, klass, LDNS_RD) != LDNS_STATUS_OK)
        return 0;
    ldns_pkt_set_id(pkt, id);
    if (ldns_pkt2wire(&wire, pkt, &len) != LDNS_STATUS_OK || len > size)
        len = 0;
    else
        memcpy(buf, wire, len);
    free(wire);
    ldns_pkt_free(pkt);
    return len;
}

ldns_pkt *dnst_parse(const uint8_t *buf, size_t len)
{
    ldns_pkt *pkt = NULL;
    if (ldns_wire2pkt(&pkt, buf, len) != LDNS_STATUS_OK)
        return NULL;
    return pkt;
}

void dnst_first_a(const ldns_pkt *pkt, char *out, size_t size)
{
    out[0] = '\0';
    const ldns_rr_list *an = ldns_pkt_answer(pkt);
    for (size_t i = 0; an && i < ldns_rr_list_rr_count(an); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(an, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_A || ldns_rr_rd_count(rr) != 1)
            continue;
        const ldns_rdf *rd = ldns_rr_rdf(rr, 0);
        if (ldns_rdf_size(rd) == 4)
            inet_ntop(AF_INET, ldns_rdf_data(rd), out, (socklen_t)size);
        return;
    }
}

static void dnst_if_up(int fd, const char *name)
{
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    ck_assert_int_eq(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    ck_assert_int_eq(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
}

void dnst_enter_netns(void)
{
    ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s (tests need root)",
                  strerror(errno));
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    dnst_if_up(fd, "lo");
    close(fd);
}

void dnst_add_lo_address(const char *label, const char *ip)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", label);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    ck_assert_int_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    ck_assert_msg(ioctl(fd, SIOCSIFADDR, &ifr) == 0, "SIOCSIFADDR %s: %s", ip, strerror(errno));
    inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
    ck_assert_int_eq(ioctl(fd, SIOCSIFNETMASK, &ifr), 0);
    dnst_if_up(fd, label);
    close(fd);
}

static int dnst_socket_to(const char *ip, uint16_t port, struct sockaddr_in *to)
{
    *to = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port) };
    ck_assert_int_eq(inet_pton(AF_INET, ip, &to->sin_addr), 1);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static int64_t dnst_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ssize_t dnst_exchange(const char *ip, uint16_t port, const uint8_t *q, size_t qlen,
                      uint8_t *reply, size_t size, int bound_ms)
{
    struct sockaddr_in to;
    int fd = dnst_socket_to(ip, port, &to);
    ssize_t got = -1;
    int64_t end = dnst_now_ms() + bound_ms, resend = 0;
    for (;;) {
        int64_t now = dnst_now_ms(), left = end - now;
        if (left <= 0)
            break;
        /* Resend each second like a real stub: UDP may drop under a flood. */
        if (now >= resend) {
            if (sendto(fd, q, qlen, 0, (struct sockaddr *)&to, sizeof to) != (ssize_t)qlen)
                goto cleanup;
            resend = now + 1000;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int64_t wait = resend - now < left ? resend - now : left;
        if (poll(&p, 1, (int)wait) <= 0)
            continue;
        ssize_t n = recv(fd, reply, size, 0);
        if (n >= 12 && qlen >= 2 && reply[0] == q[0] && reply[1] == q[1]) {
            got = n;
            break;
        }
    }
cleanup:
    close(fd);
    return got;
}

void dnst_send(const char *ip, uint16_t port, const uint8_t *q, size_t qlen)
{
    struct sockaddr_in to;
    int fd = dnst_socket_to(ip, port, &to);
    (void)sendto(fd, q, qlen, 0, (struct sockaddr *)&to, sizeof to);
    close(fd);
}

int dnst_dig(const char *server, uint16_t port, const char *name, const char *type, char *out,
             size_t size)
{
    char at[64], port_text[16];
    snprintf(at, sizeof at, "@%s", server);
    snprintf(port_text, sizeof port_text, "%u", port);
    int pipefd[2];
    out[0] = '\0';
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pipefd[1], 1);
        const char *argv[] = { "dig", at, "-p", port_text, name, type, "+short", "+tries=1",
                               "+time=2", NULL };
        execvp("dig", (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t n;
    while (len < size - 1 && (n = read(pipefd[0], out + len, size - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(pipefd[0]);
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void *dnst_upstream_loop(void *arg)
{
    struct dnst_upstream *u = arg;
    uint8_t buf[4096];
    for (;;) {
        struct pollfd p[2] = { { .fd = u->fd, .events = POLLIN }, { .fd = u->stop[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents)
            break;
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(u->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
        if (n < 12)
            continue;
        __atomic_add_fetch(&u->received, 1, __ATOMIC_SEQ_CST);
        if (!u->answer_ip)
            continue;
        ldns_pkt *q = dnst_parse(buf, (size_t)n);
        if (!q)
            continue;
        ldns_pkt *a = ldns_pkt_new();
        ldns_pkt_set_id(a, ldns_pkt_id(q));
        ldns_pkt_set_qr(a, true);
        ldns_pkt_set_rd(a, ldns_pkt_rd(q));
        ldns_pkt_set_ra(a, true);
        const ldns_rr *question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
        ldns_pkt_push_rr(a, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
        char text[512];
        char *owner = ldns_rdf2str(ldns_rr_owner(question));
        snprintf(text, sizeof text, "%s 60 IN A %s", owner, u->answer_ip);
        free(owner);
        ldns_rr *rr = NULL;
        if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) == LDNS_STATUS_OK)
            ldns_pkt_push_rr(a, LDNS_SECTION_ANSWER, rr);
        uint8_t *wire = NULL;
        size_t len = 0;
        if (ldns_pkt2wire(&wire, a, &len) == LDNS_STATUS_OK)
            (void)sendto(u->fd, wire, len, 0, (struct sockaddr *)&from, from_len);
        free(wire);
        ldns_pkt_free(a);
        ldns_pkt_free(q);
    }
    return NULL;
}

void dnst_upstream_start(struct dnst_upstream *u, const char *ip, uint16_t port,
                         const char *answer_ip)
{
    struct sockaddr_in sin;
    memset(u, 0, sizeof *u);
    u->answer_ip = answer_ip;
    u->fd = dnst_socket_to(ip, port, &sin);
    ck_assert_msg(bind(u->fd, (struct sockaddr *)&sin, sizeof sin) == 0, "bind %s:%u: %s", ip,
                  port, strerror(errno));
    ck_assert_int_eq(pipe2(u->stop, O_CLOEXEC), 0);
    ck_assert_int_eq(pthread_create(&u->thread, NULL, dnst_upstream_loop, u), 0);
}

void dnst_upstream_stop(struct dnst_upstream *u)
{
    (void)!write(u->stop[1], "x", 1);
    pthread_join(u->thread, NULL);
    close(u->stop[0]);
    close(u->stop[1]);
    close(u->fd);
}
