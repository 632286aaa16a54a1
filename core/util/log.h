/* Daemon logging to stderr: level, operation id and VM id on every line. */
#ifndef BANGER_UTIL_LOG_H
#define BANGER_UTIL_LOG_H

#include <stdarg.h>

#include <banger/capability.h>

/* Threshold: lines above it are dropped. Default BANGER_LOG_INFO. */
void bg_log_set_level(int level);
int bg_log_get_level(void);
/* "error", "warning", "info", "debug" -> level; -1 when unknown. */
int bg_log_level_parse(const char *name);

/* The current thread's operation id ("op-…"), or "" outside an operation. */
void bg_log_set_op(const char *op_id);
const char *bg_log_op(void);
/* A fresh operation id written to buf (at least 16 bytes). */
void bg_log_new_op(char *buf, size_t len);

void bg_log(int level, const char *vm_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void bg_logv(int level, const char *vm_id, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

#define log_error(...) bg_log(BANGER_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warning(...) bg_log(BANGER_LOG_WARNING, NULL, __VA_ARGS__)
#define log_info(...) bg_log(BANGER_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) bg_log(BANGER_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
