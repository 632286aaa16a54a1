#include "config.h"

#include "agent-info.h"
#include "agent-proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Read a short text file and strip the trailing newline. */
static int agent_health_read_line(const char *path, char *buf, size_t cap)
{
    ssize_t n;
    int fd, r = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, cap - 1);
    if (n < 0) {
        r = -errno;
        goto cleanup;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
cleanup:
    close(fd);
    return r;
}

int agent_error_reply(struct agent_buf *out, const char *op, const char *msg)
{
    agent_buf_printf(out, "{\"v\":%d,\"ok\":false", AGENT_PROTO_VERSION);
    if (op) {
        agent_buf_puts(out, ",\"op\":");
        agent_buf_json_cstr(out, op);
    }
    agent_buf_puts(out, ",\"error\":");
    agent_buf_json_cstr(out, msg);
    return agent_buf_puts(out, "}");
}

int agent_health_reply(struct agent_buf *out, const char *proc_root)
{
    char path[PATH_MAX], boot_id[64], host[HOST_NAME_MAX + 1];
    struct timespec ts;
    long long uptime_ms = -1;
    int r;

    snprintf(path, sizeof(path), "%s/sys/kernel/random/boot_id", proc_root);
    r = agent_health_read_line(path, boot_id, sizeof(boot_id));
    if (r < 0)
        return agent_error_reply(out, AGENT_OP_HEALTH, "cannot read boot_id");
    if (gethostname(host, sizeof(host)) < 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    /* CLOCK_BOOTTIME counts suspended time too, like /proc/uptime. */
    if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
        uptime_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    agent_buf_printf(out, "{\"v\":%d,\"ok\":true,\"op\":\"health\",\"agent\":\"%s\",\"version\":",
                     AGENT_PROTO_VERSION, AGENT_NAME);
    agent_buf_json_cstr(out, PACKAGE_VERSION);
    agent_buf_puts(out, ",\"boot_id\":");
    agent_buf_json_cstr(out, boot_id);
    agent_buf_printf(out, ",\"uptime_ms\":%lld,\"hostname\":", uptime_ms);
    agent_buf_json_cstr(out, host);
    return agent_buf_puts(out, "}");
}
