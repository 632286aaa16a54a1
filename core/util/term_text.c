/* Terminal-safe text and base64 (term_text.h). */
#include "config.h"

#include "util/term_text.h"
#include "util/xalloc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid, -1 when
 * it is a valid start cut off by the end of the buffer. */
static int term_utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    int n;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f; /* beyond U+10FFFF */
    } else
        return 0;
    for (int i = 1; i < n; i++) {
        if ((size_t)i >= left)
            return -1;
        unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xbf;
        if (s[i] < min || s[i] > max)
            return 0;
    }
    return n;
}

char *bg_term_escape(const char *buf, size_t len, bool hold_tail, size_t *consumed)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)buf;
    char *out = xmalloc(len * 4 + 1);
    size_t o = 0, i = 0;

    while (i < len) {
        unsigned char c = s[i];
        int n = term_utf8_len(s + i, len - i);
        bool at_tail = n < 0 || (c == '\r' && i + 1 == len);
        if (at_tail && hold_tail && i > 0)
            break; /* the rest comes with the next read */
        if (c == '\r' && i + 1 < len && s[i + 1] == '\n') {
            i++; /* "\r\n" is a serial console's line end */
            continue;
        }
        bool c1 = n == 2 && c == 0xc2 && s[i + 1] < 0xa0;
        if (n == 1 && (c >= 0x20 || c == '\n' || c == '\t') && c != 0x7f) {
            out[o++] = (char)c;
            i++;
        } else if (n > 1 && !c1) {
            memcpy(out + o, s + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        } else {
            /* A control, or a byte that is no part of valid UTF-8: shown, not obeyed. */
            size_t k = c1 ? 2 : 1;
            for (size_t j = 0; j < k; j++) {
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[s[i + j] >> 4];
                out[o++] = hex[s[i + j] & 15];
            }
            i += k;
        }
    }
    out[o] = '\0';
    if (consumed)
        *consumed = i;
    return out;
}

char *bg_base64_encode(const void *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    int n = len ? EVP_EncodeBlock((unsigned char *)out, data, (int)len) : 0;
    out[n > 0 ? n : 0] = '\0';
    return out;
}

int bg_base64_decode(const char *text, char **out, size_t *len)
{
    size_t n = strlen(text);
    if (n % 4 != 0 || n > INT32_MAX)
        return -EINVAL;
    char *buf = xmalloc(n / 4 * 3 + 1);
    int got = n ? EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)text, (int)n) : 0;
    if (got < 0) {
        free(buf);
        return -EINVAL;
    }
    /* EVP_DecodeBlock counts the padding as bytes. */
    for (size_t k = n; k > 0 && text[k - 1] == '='; k--)
        got--;
    buf[got] = '\0';
    *out = buf;
    *len = (size_t)got;
    return 0;
}
