/* Request parser: the plain form ("health") or a flat JSON object
 * ({"v":1,"op":"health"}). A small recursive-descent JSON reader that works
 * on a length-bounded buffer; it decodes only what the agent needs (op and
 * v) and validates and skips everything else. */
#include "agent-request.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define AGENT_REQ_MAX_DEPTH 32

struct req_cursor {
    const unsigned char *p;
    const unsigned char *end;
};

static void agent_req_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void agent_req_why(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    if (!why || why_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static void req_skip_ws(struct req_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static int req_hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Read a JSON string at c->p (which points at the opening quote). When out
 * is given, the decoded value is stored NUL-terminated; *fits tells whether
 * it fit and contained only printable ASCII (anything else can never name
 * an operation or key we know). */
static int req_parse_string(struct req_cursor *c, char *out, size_t out_cap, int *fits)
{
    size_t n = 0;
    int ok = 1;

    if (c->p >= c->end || *c->p != '"')
        return -EINVAL;
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = *c->p++;
        unsigned char decoded;

        if (ch == '"') {
            if (out && out_cap > 0)
                out[n < out_cap ? n : out_cap - 1] = '\0';
            if (fits)
                *fits = ok && n < out_cap;
            return 0;
        }
        if (ch < 0x20)
            return -EINVAL;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -EINVAL;
            ch = *c->p++;
            switch (ch) {
            case '"': decoded = '"'; break;
            case '\\': decoded = '\\'; break;
            case '/': decoded = '/'; break;
            case 'b': decoded = '\b'; break;
            case 'f': decoded = '\f'; break;
            case 'n': decoded = '\n'; break;
            case 'r': decoded = '\r'; break;
            case 't': decoded = '\t'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    int h;
                    if (c->p >= c->end || (h = req_hexval(*c->p)) < 0)
                        return -EINVAL;
                    v = (v << 4) | (unsigned)h;
                    c->p++;
                }
                decoded = v < 0x80 ? (unsigned char)v : 0;
                break;
            }
            default:
                return -EINVAL;
            }
            ch = decoded;
        }
        if (ch < 0x20 || ch >= 0x7f)
            ok = 0;
        if (out && n + 1 < out_cap)
            out[n] = (char)ch;
        else
            ok = 0;
        n++;
    }
    return -EINVAL;
}

/* JSON number. *is_int and *value describe a plain integer that fits. */
static int req_parse_number(struct req_cursor *c, int *is_int, long *value)
{
    int neg = 0, integral = 1, overflow = 0;
    long v = 0;

    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    if (c->p >= c->end)
        return -EINVAL;
    if (*c->p == '0') {
        c->p++;
    } else if (*c->p >= '1' && *c->p <= '9') {
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (1L << 40))
                overflow = 1;
            else
                v = v * 10 + (*c->p - '0');
            c->p++;
        }
    } else {
        return -EINVAL;
    }
    if (c->p < c->end && *c->p == '.') {
        integral = 0;
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return -EINVAL;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        integral = 0;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return -EINVAL;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    *is_int = integral && !overflow;
    *value = neg ? -v : v;
    return 0;
}

static int req_match_literal(struct req_cursor *c, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return -EINVAL;
    c->p += n;
    return 0;
}

static int req_skip_value(struct req_cursor *c, int depth);

static int req_skip_container(struct req_cursor *c, int depth, unsigned char close, int is_object)
{
    int r;

    if (depth >= AGENT_REQ_MAX_DEPTH)
        return -EINVAL;
    c->p++;
    req_skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        req_skip_ws(c);
        if (is_object) {
            r = req_parse_string(c, NULL, 0, NULL);
            if (r < 0)
                return r;
            req_skip_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return -EINVAL;
            c->p++;
            req_skip_ws(c);
        }
        r = req_skip_value(c, depth + 1);
        if (r < 0)
            return r;
        req_skip_ws(c);
        if (c->p >= c->end)
            return -EINVAL;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == close) {
            c->p++;
            return 0;
        }
        return -EINVAL;
    }
}

static int req_skip_value(struct req_cursor *c, int depth)
{
    int is_int;
    long v;

    if (c->p >= c->end)
        return -EINVAL;
    switch (*c->p) {
    case '"':
        return req_parse_string(c, NULL, 0, NULL);
    case '{':
        return req_skip_container(c, depth, '}', 1);
    case '[':
        return req_skip_container(c, depth, ']', 0);
    case 't':
        return req_match_literal(c, "true");
    case 'f':
        return req_match_literal(c, "false");
    case 'n':
        return req_match_literal(c, "null");
    default:
        return req_parse_number(c, &is_int, &v);
    }
}

static int req_lookup_op(const char *name, enum agent_req_op *op)
{
    if (strcmp(name, "health") == 0)
        *op = AGENT_REQ_HEALTH;
    else if (strcmp(name, "ports") == 0)
        *op = AGENT_REQ_PORTS;
    else if (strcmp(name, "ping") == 0)
        *op = AGENT_REQ_PING;
    else
        return -ENOTSUP;
    return 0;
}

static int req_parse_json(struct req_cursor *c, struct agent_request *req, char *why, size_t why_len)
{
    int have_v = 0, have_op = 0, op_fits = 0, r;

    c->p++; /* '{' */
    req_skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        goto done;
    }
    for (;;) {
        char key[8];
        int key_fits = 0;

        req_skip_ws(c);
        if (req_parse_string(c, key, sizeof(key), &key_fits) < 0) {
            agent_req_why(why, why_len, "malformed JSON: expected a key");
            return -EINVAL;
        }
        req_skip_ws(c);
        if (c->p >= c->end || *c->p != ':') {
            agent_req_why(why, why_len, "malformed JSON: expected ':'");
            return -EINVAL;
        }
        c->p++;
        req_skip_ws(c);
        if (key_fits && strcmp(key, "v") == 0) {
            int is_int = 0;
            long v = 0;
            if (have_v || c->p >= c->end || *c->p == '"' || *c->p == '{' || *c->p == '[' ||
                *c->p == 't' || *c->p == 'f' || *c->p == 'n' ||
                req_parse_number(c, &is_int, &v) < 0 || !is_int) {
                agent_req_why(why, why_len, "\"v\" must be an integer, given once");
                return -EINVAL;
            }
            have_v = 1;
            req->version = v;
        } else if (key_fits && strcmp(key, "op") == 0) {
            if (have_op || req_parse_string(c, req->op_name, sizeof(req->op_name), &op_fits) < 0) {
                agent_req_why(why, why_len, "\"op\" must be a string, given once");
                return -EINVAL;
            }
            have_op = 1;
        } else {
            r = req_skip_value(c, 1);
            if (r < 0) {
                agent_req_why(why, why_len, "malformed JSON value");
                return r;
            }
        }
        req_skip_ws(c);
        if (c->p >= c->end) {
            agent_req_why(why, why_len, "malformed JSON: unterminated object");
            return -EINVAL;
        }
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == '}') {
            c->p++;
            break;
        }
        agent_req_why(why, why_len, "malformed JSON: expected ',' or '}'");
        return -EINVAL;
    }
done:
    req_skip_ws(c);
    if (c->p != c->end) {
        agent_req_why(why, why_len, "trailing bytes after the request object");
        return -EINVAL;
    }
    if (!have_op) {
        agent_req_why(why, why_len, "missing \"op\"");
        return -EINVAL;
    }
    if (req->version != 1) {
        agent_req_why(why, why_len, "unsupported protocol version %ld", req->version);
        return -ENOTSUP;
    }
    if (!op_fits || req_lookup_op(req->op_name, &req->op) < 0) {
        agent_req_why(why, why_len, "unknown op");
        return -ENOTSUP;
    }
    return 0;
}

static int req_is_name_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
           ch == '.';
}

int agent_request_parse(const char *buf, size_t len, struct agent_request *req, char *why,
                        size_t why_len)
{
    struct req_cursor c;
    const unsigned char *start;
    size_t n;

    memset(req, 0, sizeof(*req));
    req->version = 1;
    if (why && why_len > 0)
        why[0] = '\0';
    if (!buf && len > 0)
        return -EINVAL;
    c.p = (const unsigned char *)buf;
    c.end = c.p + len;
    if (c.end > c.p && c.end[-1] == '\r')
        c.end--;
    req_skip_ws(&c);
    if (c.p >= c.end) {
        agent_req_why(why, why_len, "empty request");
        return -EINVAL;
    }
    if (*c.p == '{') {
        req->json = 1;
        return req_parse_json(&c, req, why, why_len);
    }

    /* The plain form: one lower-case word, optional surrounding blanks. */
    start = c.p;
    while (c.p < c.end && req_is_name_char(*c.p))
        c.p++;
    n = (size_t)(c.p - start);
    req_skip_ws(&c);
    if (n == 0 || c.p != c.end) {
        agent_req_why(why, why_len, "not a request: expected a word or a JSON object");
        return -EINVAL;
    }
    if (n >= sizeof(req->op_name)) {
        agent_req_why(why, why_len, "unknown op");
        return -ENOTSUP;
    }
    memcpy(req->op_name, start, n);
    req->op_name[n] = '\0';
    if (req_lookup_op(req->op_name, &req->op) < 0) {
        agent_req_why(why, why_len, "unknown op");
        return -ENOTSUP;
    }
    return 0;
}
