#include "config.h"

#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int bg_failv(struct banger_error *err, int negative_errno, const char *fmt, va_list ap)
{
    /* A caller that passes 0 or a positive value still fails. */
    if (negative_errno >= 0)
        negative_errno = negative_errno > 0 ? -negative_errno : -EIO;
    if (!err)
        return negative_errno;
    err->code = negative_errno;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return negative_errno;
}

int bg_fail(struct banger_error *err, int negative_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = bg_failv(err, negative_errno, fmt, ap);
    va_end(ap);
    return r;
}

int bg_fail_errno(struct banger_error *err, int negative_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = bg_failv(err, negative_errno, fmt, ap);
    va_end(ap);
    if (err) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(-r));
    }
    return r;
}

void bg_error_prefix(struct banger_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    char joined[BANGER_ERROR_MSG_MAX];
    snprintf(joined, sizeof(joined), "%s: %s", prefix, bg_error_text(err));
    memcpy(err->msg, joined, sizeof(err->msg));
}

void bg_error_join(struct banger_error *err, const struct banger_error *other)
{
    if (!err || !other || other->code == 0)
        return;
    if (err->code == 0) {
        *err = *other;
        return;
    }
    size_t len = strlen(err->msg);
    snprintf(err->msg + len, sizeof(err->msg) - len, "; %s", bg_error_text(other));
}

void bg_error_clear(struct banger_error *err)
{
    if (!err)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

const char *bg_error_text(const struct banger_error *err)
{
    if (!err)
        return "";
    if (err->msg[0] == '\0' && err->code < 0)
        return strerror(-err->code);
    return err->msg;
}
