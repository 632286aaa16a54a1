#include "agent-json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agent_buf_init(struct agent_buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void agent_buf_free(struct agent_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->error = 0;
}

void agent_buf_reset(struct agent_buf *b)
{
    b->len = 0;
    b->error = 0;
    if (b->data)
        b->data[0] = '\0';
}

void agent_buf_consume(struct agent_buf *b, size_t n)
{
    if (n >= b->len) {
        agent_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

/* Make room for n more bytes plus the terminating NUL. */
static int agent_buf_reserve(struct agent_buf *b, size_t n)
{
    size_t want, cap;
    char *p;

    if (b->error)
        return b->error;
    if (n > b->limit || b->len > b->limit - n) {
        b->error = -E2BIG;
        return b->error;
    }
    want = b->len + n + 1;
    if (want <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p) {
        b->error = -ENOMEM;
        return b->error;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int agent_buf_append(struct agent_buf *b, const void *p, size_t n)
{
    int r = agent_buf_reserve(b, n);

    if (r < 0)
        return r;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int agent_buf_puts(struct agent_buf *b, const char *s)
{
    return agent_buf_append(b, s, strlen(s));
}

int agent_buf_printf(struct agent_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, r;

    if (b->error)
        return b->error;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->error = -EINVAL;
        return b->error;
    }
    r = agent_buf_reserve(b, (size_t)n);
    if (r < 0)
        return r;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t agent_json_utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* No overlong forms, no surrogates, nothing past U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int agent_buf_json_string(struct agent_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    agent_buf_append(b, "\"", 1);
    while (i < n) {
        unsigned char ch = p[i];
        size_t run = i;

        /* Copy the longest run that needs no escaping in one go. */
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            agent_buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        switch (ch) {
        case '"': agent_buf_append(b, "\\\"", 2); i++; continue;
        case '\\': agent_buf_append(b, "\\\\", 2); i++; continue;
        case '\n': agent_buf_append(b, "\\n", 2); i++; continue;
        case '\r': agent_buf_append(b, "\\r", 2); i++; continue;
        case '\t': agent_buf_append(b, "\\t", 2); i++; continue;
        default: break;
        }
        if (ch < 0x20) {
            agent_buf_printf(b, "\\u%04x", ch);
            i++;
            continue;
        }
        {
            size_t len = agent_json_utf8_len(p + i, n - i);
            if (len == 0) {
                agent_buf_append(b, "\\ufffd", 6);
                i++;
            } else {
                agent_buf_append(b, p + i, len);
                i += len;
            }
        }
    }
    return agent_buf_append(b, "\"", 1);
}

int agent_buf_json_cstr(struct agent_buf *b, const char *s)
{
    if (!s)
        return agent_buf_puts(b, "null");
    return agent_buf_json_string(b, s, strlen(s));
}
