/* Error object: a negative errno plus the human reason, filled where the
 * failure happens and carried up to the CLI unchanged. */
#ifndef BANGER_UTIL_ERROR_H
#define BANGER_UTIL_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define BANGER_ERROR_MSG_MAX 1024

struct banger_error {
    int code;                       /* 0 or a negative errno */
    char msg[BANGER_ERROR_MSG_MAX]; /* "" when code == 0 */
};

/* Set code and message; returns `negative_errno` for `return bg_fail(...)`. */
int bg_fail(struct banger_error *err, int negative_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int bg_failv(struct banger_error *err, int negative_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Like bg_fail, appending ": <strerror(-negative_errno)>". */
int bg_fail_errno(struct banger_error *err, int negative_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepend "<prefix>: " to the message (e.g. the plugin name). */
void bg_error_prefix(struct banger_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append "; <other message>" to err (joining errors of a stop that keeps going).
 * err keeps its first code. */
void bg_error_join(struct banger_error *err, const struct banger_error *other);
void bg_error_clear(struct banger_error *err);
/* The message, or strerror of the code when no message was set. */
const char *bg_error_text(const struct banger_error *err);

#endif
