#include "config.h"

#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = BANGER_LOG_INFO;
static _Thread_local char log_op_id[32];

void bg_log_set_level(int level) { log_level = level; }
int bg_log_get_level(void) { return log_level; }

int bg_log_level_parse(const char *name)
{
    static const struct { const char *name; int level; } levels[] = {
        { "error", BANGER_LOG_ERROR }, { "warning", BANGER_LOG_WARNING },
        { "info", BANGER_LOG_INFO }, { "debug", BANGER_LOG_DEBUG },
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(levels[i].name, name) == 0)
            return levels[i].level;
    return -1;
}

void bg_log_set_op(const char *op_id)
{
    snprintf(log_op_id, sizeof(log_op_id), "%s", op_id ? op_id : "");
}

const char *bg_log_op(void) { return log_op_id; }

void bg_log_new_op(char *buf, size_t len)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    snprintf(buf, len, "op-%08x", r);
}

static const char *log_level_name(int level)
{
    switch (level) {
    case BANGER_LOG_ERROR: return "error";
    case BANGER_LOG_WARNING: return "warning";
    case BANGER_LOG_INFO: return "info";
    default: return "debug";
    }
}

void bg_logv(int level, const char *vm_id, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_level_name(level));
    if (log_op_id[0] && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - n, " %s", log_op_id);
    if (vm_id && vm_id[0] && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - n, " vm=%s", vm_id);
    if (n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - n, ": ");
    if (n < (int)sizeof(line))
        n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (n >= (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line keeps concurrent threads' lines whole. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void bg_log(int level, const char *vm_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bg_logv(level, vm_id, fmt, ap);
    va_end(ap);
}
