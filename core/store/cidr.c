#include "store/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int cidr_fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cidr_fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

uint32_t cidr_mask(unsigned prefix)
{
    if (prefix == 0)
        return 0;
    if (prefix >= 32)
        return UINT32_MAX;
    return UINT32_MAX << (32 - prefix);
}

uint32_t cidr_gateway(uint32_t net)
{
    return net + 1;
}

int ip4_parse(const char *text, uint32_t *addr)
{
    struct in_addr in;

    /* inet_pton accepts only the strict dotted-quad form (no octal, no
     * shorthand), which is what we want for config and stored values. */
    if (!text || inet_pton(AF_INET, text, &in) != 1)
        return -EINVAL;
    *addr = ntohl(in.s_addr);
    return 0;
}

void ip4_format(uint32_t addr, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u.%u", (addr >> 24) & 0xff, (addr >> 16) & 0xff,
             (addr >> 8) & 0xff, addr & 0xff);
}

void mac_from_ip4(uint32_t addr, char *buf, size_t len)
{
    snprintf(buf, len, "06:00:%02X:%02X:%02X:%02X", (addr >> 24) & 0xff, (addr >> 16) & 0xff,
             (addr >> 8) & 0xff, addr & 0xff);
}

int cidr_validate(uint32_t net, unsigned prefix, char *errbuf, size_t errlen)
{
    char ip[IP4_STR_MAX];

    ip4_format(net, ip, sizeof(ip));
    if (prefix > 32)
        return cidr_fail(errbuf, errlen, "invalid prefix length /%u (at most /32)", prefix);
    if (prefix > CIDR_PREFIX_MAX)
        return cidr_fail(errbuf, errlen,
                         "network %s/%u is too small: it needs room for a gateway and at least one VM (use /%d or shorter)",
                         ip, prefix, CIDR_PREFIX_MAX);
    if (prefix < CIDR_PREFIX_MIN)
        return cidr_fail(errbuf, errlen, "network %s/%u is too large (use /%d to /%d)", ip,
                         prefix, CIDR_PREFIX_MIN, CIDR_PREFIX_MAX);
    if ((net & ~cidr_mask(prefix)) != 0) {
        char want[IP4_STR_MAX];

        ip4_format(net & cidr_mask(prefix), want, sizeof(want));
        return cidr_fail(errbuf, errlen, "%s/%u has host bits set (did you mean %s/%u?)", ip,
                         prefix, want, prefix);
    }
    return 0;
}

int cidr_parse(const char *text, uint32_t *net, unsigned *prefix, char *errbuf, size_t errlen)
{
    char addr_part[INET_ADDRSTRLEN];
    const char *slash;
    const char *p;
    size_t addr_len;
    uint32_t addr;
    unsigned value = 0;
    int r;

    if (!text || text[0] == '\0')
        return cidr_fail(errbuf, errlen, "network CIDR is empty");
    slash = strchr(text, '/');
    if (!slash)
        return cidr_fail(errbuf, errlen, "invalid CIDR '%s': expected ADDRESS/PREFIX, e.g. 172.29.0.0/24",
                         text);
    addr_len = (size_t)(slash - text);
    if (addr_len == 0 || addr_len >= sizeof(addr_part))
        return cidr_fail(errbuf, errlen, "invalid CIDR '%s': bad IPv4 address", text);
    memcpy(addr_part, text, addr_len);
    addr_part[addr_len] = '\0';
    if (ip4_parse(addr_part, &addr) < 0)
        return cidr_fail(errbuf, errlen, "invalid CIDR '%s': '%s' is not an IPv4 address", text,
                         addr_part);

    /* Digits only: no sign, no spaces, at most two of them. */
    p = slash + 1;
    if (*p == '\0' || strlen(p) > 2)
        return cidr_fail(errbuf, errlen, "invalid CIDR '%s': bad prefix length", text);
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return cidr_fail(errbuf, errlen, "invalid CIDR '%s': bad prefix length", text);
        value = value * 10 + (unsigned)(*p - '0');
    }

    r = cidr_validate(addr, value, errbuf, errlen);
    if (r < 0)
        return r;
    *net = addr;
    *prefix = value;
    return 0;
}
