#include "config.h"

#include "tap-addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tap_parse_cidr(const char *text, uint32_t *net, uint32_t *prefix_len)
{
    char addr_text[INET_ADDRSTRLEN];
    const char *slash;
    struct in_addr a;
    char *end;
    unsigned long len;
    uint32_t host, mask;

    if (!text)
        return -EINVAL;
    slash = strchr(text, '/');
    if (!slash || slash == text || (size_t)(slash - text) >= sizeof(addr_text))
        return -EINVAL;
    memcpy(addr_text, text, (size_t)(slash - text));
    addr_text[slash - text] = '\0';
    if (inet_pton(AF_INET, addr_text, &a) != 1)
        return -EINVAL;
    if (slash[1] < '0' || slash[1] > '9')
        return -EINVAL;
    errno = 0;
    len = strtoul(slash + 1, &end, 10);
    if (errno || *end || len > 32)
        return -EINVAL;
    host = ntohl(a.s_addr);
    mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
    if (host & ~mask)
        return -EINVAL;
    *net = host;
    *prefix_len = (uint32_t)len;
    return 0;
}

int tap_cidr_gateway(uint32_t net, uint32_t prefix_len, uint32_t *gateway)
{
    if (prefix_len > 30)
        return -ERANGE;
    *gateway = net + 1;
    return 0;
}

void tap_format_ipv4(uint32_t addr, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", (addr >> 24) & 0xff, (addr >> 16) & 0xff,
             (addr >> 8) & 0xff, addr & 0xff);
}

void tap_format_netmask(uint32_t prefix_len, char out[16])
{
    uint32_t mask = prefix_len == 0 ? 0 : 0xffffffffu << (32 - (prefix_len > 32 ? 32 : prefix_len));
    tap_format_ipv4(mask, out);
}

bool tap_prefix_valid(const char *prefix)
{
    size_t len = prefix ? strlen(prefix) : 0;

    if (len < 1 || len > TAP_PREFIX_MAX)
        return false;
    return strspn(prefix, "abcdefghijklmnopqrstuvwxyz0123456789") == len;
}

bool tap_name_has_prefix(const char *name, const char *prefix)
{
    size_t plen = strlen(prefix);
    const char *rest;

    if (strncmp(name, prefix, plen) != 0)
        return false;
    rest = name + plen;
    return rest[0] && strspn(rest, "0123456789") == strlen(rest);
}

int tap_kernel_ip_arg(char *out, size_t out_len, const char *guest_ip, const char *gateway,
                      uint32_t prefix_len, const char *hostname, const char *dns)
{
    char mask[16];
    int n;

    tap_format_netmask(prefix_len, mask);
    n = snprintf(out, out_len, "ip=%s::%s:%s:%s:eth0:off:%s", guest_ip, gateway, mask,
                 hostname, dns);
    if (n < 0 || (size_t)n >= out_len)
        return -ENAMETOOLONG;
    return 0;
}
