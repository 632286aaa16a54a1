/* Upstream resolver discovery. See dns-upstream.h. */
#include "config.h"

#include "dns-upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dns_addr_numeric(const char *host, uint16_t port, struct dns_addr *out)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_DGRAM };
    struct addrinfo *res = NULL;
    char port_text[8];
    struct in_addr v4;
    /* getaddrinfo takes inet_aton forms like "1.2.3"; only dotted quads here. */
    if (!strchr(host, ':') && inet_pton(AF_INET, host, &v4) != 1)
        return -EINVAL;
    snprintf(port_text, sizeof port_text, "%u", port);
    if (getaddrinfo(host, port_text, &hints, &res) != 0 || !res)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int dns_port_parse(const char *text, uint16_t *port)
{
    char *end = NULL;
    if (!text[0])
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v == 0 || v > 65535 || text[0] == '-' || text[0] == '+')
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int dns_addr_parse(const char *text, uint16_t default_port, struct dns_addr *out)
{
    char host[INET6_ADDRSTRLEN + 16];
    uint16_t port = default_port;
    if (!text || !text[0] || strlen(text) >= sizeof host)
        return -EINVAL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close == text + 1)
            return -EINVAL;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        if (close[1] == ':') {
            if (dns_port_parse(close + 2, &port) < 0)
                return -EINVAL;
        } else if (close[1]) {
            return -EINVAL;
        }
    } else {
        const char *colon = strchr(text, ':');
        if (colon && strchr(colon + 1, ':')) {
            strcpy(host, text); /* bare IPv6 */
        } else if (colon) {
            memcpy(host, text, (size_t)(colon - text));
            host[colon - text] = '\0';
            if (dns_port_parse(colon + 1, &port) < 0)
                return -EINVAL;
        } else {
            strcpy(host, text);
        }
    }
    return dns_addr_numeric(host, port, out);
}

void dns_addr_format(const struct dns_addr *a, char *buf, size_t size)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo((const struct sockaddr *)&a->sa, a->len, host, sizeof host, serv,
                    sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(buf, size, "?");
        return;
    }
    if (a->sa.ss_family == AF_INET6)
        snprintf(buf, size, "[%s]:%s", host, serv);
    else
        snprintf(buf, size, "%s:%s", host, serv);
}

bool dns_addr_equal(const struct dns_addr *a, const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family != a->sa.ss_family)
        return false;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *x = (const void *)&a->sa, *y = (const void *)sa;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *x = (const void *)&a->sa, *y = (const void *)sa;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return false;
}

bool dns_addr_is_loopback(const struct dns_addr *a)
{
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->sa;
        return (ntohl(x->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->sa;
        return IN6_IS_ADDR_LOOPBACK(&x->sin6_addr);
    }
    return false;
}

int dns_upstream_from_resolv(const char *path, bool allow_loopback, struct dns_addr *out)
{
    FILE *f = fopen(path, "re");
    char line[512];
    int r = -ENOENT;
    if (!f)
        return -errno;
    while (fgets(line, sizeof line, f)) {
        char *save = NULL;
        char *key = strtok_r(line, " \t\r\n", &save);
        if (!key || strcmp(key, "nameserver") != 0)
            continue;
        char *value = strtok_r(NULL, " \t\r\n", &save);
        struct dns_addr a;
        if (!value || dns_addr_numeric(value, 53, &a) < 0)
            continue;
        if (!allow_loopback && dns_addr_is_loopback(&a))
            continue;
        *out = a;
        r = 0;
        break;
    }
    fclose(f);
    return r;
}

int dns_upstream_auto(const char *resolv_conf, const char *resolved_conf, struct dns_addr *out,
                      char *how, size_t how_size)
{
    char buf[64];
    if (!how) {
        how = buf;
        how_size = sizeof buf;
    }
    if (dns_upstream_from_resolv(resolv_conf, false, out) == 0) {
        snprintf(how, how_size, "from %s", resolv_conf);
        return 0;
    }
    if (resolved_conf && dns_upstream_from_resolv(resolved_conf, false, out) == 0) {
        snprintf(how, how_size, "from %s", resolved_conf);
        return 0;
    }
    if (dns_upstream_from_resolv(resolv_conf, true, out) == 0) {
        snprintf(how, how_size, "local stub from %s", resolv_conf);
        return 0;
    }
    snprintf(how, how_size, "no nameserver in %s", resolv_conf);
    return -ENOENT;
}
