/* A growable byte buffer with a hard size limit, and JSON string escaping.
 * The agent is linked statically and glibc systems ship no static cJSON, so
 * replies are written by hand with these helpers. */
#ifndef BANGER_AGENT_JSON_H
#define BANGER_AGENT_JSON_H

#include <stddef.h>

struct agent_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;       /* the buffer never grows past this many bytes */
    int error;          /* first failure (negative errno), sticky until reset */
};

void agent_buf_init(struct agent_buf *b, size_t limit);
void agent_buf_free(struct agent_buf *b);
/* Forget the contents and any error; keeps the memory. */
void agent_buf_reset(struct agent_buf *b);
/* Drop the first n bytes. */
void agent_buf_consume(struct agent_buf *b, size_t n);

/* Appenders return 0 or the buffer's (sticky) negative errno: -ENOMEM, or
 * -E2BIG when the limit would be passed. data is always NUL-terminated
 * after a successful append. */
int agent_buf_append(struct agent_buf *b, const void *p, size_t n);
int agent_buf_puts(struct agent_buf *b, const char *s);
int agent_buf_printf(struct agent_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append `n` bytes of `s` as a quoted JSON string: '"' '\\' and control
 * characters escaped, valid UTF-8 copied, each byte of invalid UTF-8
 * replaced by U+FFFD, so that the output is always valid JSON. */
int agent_buf_json_string(struct agent_buf *b, const char *s, size_t n);
/* Same for a NUL-terminated string; NULL gives `null`. */
int agent_buf_json_cstr(struct agent_buf *b, const char *s);

#endif /* BANGER_AGENT_JSON_H */
