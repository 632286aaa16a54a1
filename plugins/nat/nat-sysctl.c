#include "config.h"

#include "nat-sysctl.h"
#include "nat-rules.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NAT_IP_FORWARD "/proc/sys/net/ipv4/ip_forward"

static int nat_read_flag(const char *path)
{
    char c = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got;

    if (fd < 0)
        return -errno;
    got = read(fd, &c, 1);
    close(fd);
    if (got != 1)
        return -EIO;
    return c == '1';
}

static int nat_forwarding_path(const char *iface, char *path, size_t len)
{
    /* The name is a path component: no "/", no "." or "..". */
    if (!nat_ifname_valid(iface) || strcmp(iface, ".") == 0 || strcmp(iface, "..") == 0)
        return -EINVAL;
    snprintf(path, len, "/proc/sys/net/ipv4/conf/%s/forwarding", iface);
    return 0;
}

int nat_ip_forward_state(void)
{
    return nat_read_flag(NAT_IP_FORWARD);
}

int nat_forwarding_get(const char *iface)
{
    char path[96];
    int r = nat_forwarding_path(iface, path, sizeof(path));

    return r < 0 ? r : nat_read_flag(path);
}

int nat_forwarding_set(const char *iface, int value, char *why, size_t why_len)
{
    char path[96];
    const char *text = value ? "1\n" : "0\n";
    int fd, r = nat_forwarding_path(iface, path, sizeof(path));

    if (r < 0) {
        snprintf(why, why_len, "not an interface name: \"%s\"", iface);
        return r;
    }
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        snprintf(why, why_len, "open %s: %s", path, strerror(-r));
        return r;
    }
    if (write(fd, text, 2) != 2) {
        r = -errno;
        snprintf(why, why_len, "write %s: %s", path, strerror(-r));
    }
    close(fd);
    return r;
}
