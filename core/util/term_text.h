/* Guest bytes made safe to print on a terminal (vm logs), and base64 for
 * carrying raw bytes, NULs included, in a JSON string. Shared by the daemon
 * and the CLI. */
#ifndef BANGER_UTIL_TERM_TEXT_H
#define BANGER_UTIL_TERM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* A copy of buf[0..len) that a terminal shows as text and never obeys:
 * "\n", "\t" and valid UTF-8 outside the control ranges are kept, "\r\n"
 * becomes "\n"; every other byte -- ESC and the rest of C0, DEL, the two
 * bytes of a C1 control (U+0080..U+009F), each byte of invalid UTF-8 --
 * becomes the four characters "\xNN". The result holds only printable text,
 * "\n" and "\t", so escaping it again changes nothing. malloc'd,
 * NUL-terminated.
 *
 * With hold_tail, a "\r" or a UTF-8 sequence cut off at the end is left out
 * (unless it is all there is), so a reader that continues from
 * *consumed sees it whole; *consumed (may be NULL) is the number of input
 * bytes the result stands for. */
char *bg_term_escape(const char *buf, size_t len, bool hold_tail, size_t *consumed);

/* Standard base64 (RFC 4648, with padding); malloc'd, NUL-terminated. */
char *bg_base64_encode(const void *data, size_t len);
/* Decode into a malloc'd buffer (NUL-terminated beyond *len); -EINVAL when
 * text is not base64. */
int bg_base64_decode(const char *text, char **out, size_t *len);

#endif
