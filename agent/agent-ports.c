/* Listening sockets from /proc/net/{tcp,tcp6,udp,udp6}, with the owning
 * process found by matching socket inodes against /proc/<pid>/fd links. */
#include "config.h"

#include "agent-info.h"
#include "agent-proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bound the work one request can cause. */
#define AGENT_PORTS_MAX 4096

#define AGENT_TCP_LISTEN 0x0A
#define AGENT_UDP_UNCONNECTED 0x07

struct agent_port {
    const char *proto;
    char addr[INET6_ADDRSTRLEN];
    unsigned port;
    unsigned uid;
    unsigned long inode;
    int pid;                    /* 0 when no visible process holds it */
    char comm[32];
};

struct agent_port_list {
    struct agent_port *items;
    size_t n;
    size_t cap;
};

/* The kernel prints each 32-bit word of the address in host byte order. */
static int agent_ports_format_addr(const char *hex, int v6, char *out, size_t out_len)
{
    size_t words = v6 ? 4 : 1;
    uint32_t raw[4];

    if (strlen(hex) != words * 8)
        return -EINVAL;
    for (size_t i = 0; i < words; i++) {
        char word[9];
        char *end;

        memcpy(word, hex + i * 8, 8);
        word[8] = '\0';
        raw[i] = (uint32_t)strtoul(word, &end, 16);
        if (*end != '\0')
            return -EINVAL;
    }
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, raw, out, (socklen_t)out_len))
        return -errno;
    return 0;
}

static int agent_ports_add(struct agent_port_list *list, const struct agent_port *p)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 32;
        struct agent_port *items;

        if (list->n >= AGENT_PORTS_MAX)
            return -E2BIG;
        items = realloc(list->items, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        list->items = items;
        list->cap = cap;
    }
    list->items[list->n++] = *p;
    return 0;
}

static int agent_ports_read_table(struct agent_port_list *list, const char *proc_root,
                                  const char *proto, int v6, int udp)
{
    char path[PATH_MAX];
    char *line = NULL;
    size_t line_cap = 0;
    FILE *f;
    int r = 0, first = 1;

    snprintf(path, sizeof(path), "%s/net/%s", proc_root, proto);
    f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno; /* no IPv6 in this kernel */
    while (getline(&line, &line_cap, f) > 0) {
        char local[40], remote[40];
        unsigned lport, rport, state, uid;
        unsigned long inode;
        struct agent_port p;

        if (first) { /* header */
            first = 0;
            continue;
        }
        if (sscanf(line, " %*s %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %*s %*s %*s %u %*s %lu",
                   local, &lport, remote, &rport, &state, &uid, &inode) != 7)
            continue;
        if (udp ? (state != AGENT_UDP_UNCONNECTED || rport != 0) : state != AGENT_TCP_LISTEN)
            continue;
        memset(&p, 0, sizeof(p));
        p.proto = proto;
        if (agent_ports_format_addr(local, v6, p.addr, sizeof(p.addr)) < 0)
            continue;
        p.port = lport;
        p.uid = uid;
        p.inode = inode;
        r = agent_ports_add(list, &p);
        if (r < 0)
            goto cleanup;
    }
cleanup:
    free(line);
    fclose(f);
    return r;
}

static int agent_ports_all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Give the sockets of one process its pid and comm. */
static void agent_ports_scan_pid(struct agent_port_list *list, const char *proc_root,
                                 const char *pid_name)
{
    char path[PATH_MAX], link[64];
    struct dirent *de;
    DIR *d;
    int pid = atoi(pid_name), matched = 0;

    snprintf(path, sizeof(path), "%s/%s/fd", proc_root, pid_name);
    d = opendir(path);
    if (!d)
        return; /* gone, or not ours to see */
    while ((de = readdir(d))) {
        unsigned long inode;
        ssize_t n;

        if (de->d_name[0] == '.')
            continue;
        n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (sscanf(link, "socket:[%lu]", &inode) != 1)
            continue;
        for (size_t i = 0; i < list->n; i++) {
            if (list->items[i].inode == inode && list->items[i].pid == 0) {
                list->items[i].pid = pid;
                matched = 1;
            }
        }
    }
    closedir(d);
    if (matched) {
        char comm[32] = "";
        int fd;

        snprintf(path, sizeof(path), "%s/%s/comm", proc_root, pid_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, comm, sizeof(comm) - 1);
            comm[n > 0 ? n : 0] = '\0';
            comm[strcspn(comm, "\n")] = '\0';
            close(fd);
        }
        for (size_t i = 0; i < list->n; i++)
            if (list->items[i].pid == pid)
                memcpy(list->items[i].comm, comm, sizeof(comm));
    }
}

static void agent_ports_find_owners(struct agent_port_list *list, const char *proc_root)
{
    struct dirent *de;
    DIR *d;

    if (list->n == 0)
        return;
    d = opendir(proc_root);
    if (!d)
        return;
    while ((de = readdir(d)))
        if (agent_ports_all_digits(de->d_name))
            agent_ports_scan_pid(list, proc_root, de->d_name);
    closedir(d);
}

int agent_ports_reply(struct agent_buf *out, const char *proc_root)
{
    static const struct {
        const char *proto;
        int v6;
        int udp;
    } tables[] = {
        {"tcp", 0, 0}, {"tcp6", 1, 0}, {"udp", 0, 1}, {"udp6", 1, 1},
    };
    struct agent_port_list list = {0};
    int r = 0;

    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        r = agent_ports_read_table(&list, proc_root, tables[t].proto, tables[t].v6, tables[t].udp);
        if (r < 0) {
            r = agent_error_reply(out, AGENT_OP_PORTS, r == -E2BIG ? "too many sockets"
                                                                  : "cannot read /proc/net");
            goto cleanup;
        }
    }
    agent_ports_find_owners(&list, proc_root);

    agent_buf_printf(out, "{\"v\":%d,\"ok\":true,\"op\":\"ports\",\"ports\":[",
                     AGENT_PROTO_VERSION);
    for (size_t i = 0; i < list.n; i++) {
        const struct agent_port *p = &list.items[i];

        agent_buf_printf(out, "%s{\"proto\":\"%s\",\"addr\":\"%s\",\"port\":%u,\"uid\":%u,"
                         "\"inode\":%lu", i ? "," : "", p->proto, p->addr, p->port, p->uid,
                         p->inode);
        if (p->pid > 0) {
            agent_buf_printf(out, ",\"pid\":%d,\"comm\":", p->pid);
            agent_buf_json_cstr(out, p->comm);
        }
        agent_buf_puts(out, "}");
    }
    r = agent_buf_puts(out, "]}");
cleanup:
    free(list.items);
    return r;
}
