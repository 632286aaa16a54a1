/* The guest console and Firecracker's own log lines share firecracker.log
 * (the VMM's stdout and stderr). When a guest does not come up, its last
 * line is usually Firecracker's "exiting successfully", which explains
 * nothing; this finds the line that does, and keeps the console lines that
 * led up to it. */
#include "config.h"

#include "fc/fc.h"
#include "util/fs.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FC_CONSOLE_READ_MAX (64 * 1024)
#define FC_CONSOLE_LINE_MAX 160

#define FC_CONSOLE_PANIC "Kernel panic - not syncing:"
#define FC_CONSOLE_INITRD "banger-initrd:"
#define FC_CONSOLE_FC_EXIT_ERROR "Firecracker exiting with error"

/* One line of the text, cleaned for a message. */
struct fc_console_line {
    char text[FC_CONSOLE_LINE_MAX];
    bool vmm;       /* Firecracker's own log line, not guest output */
    bool vmm_error; /* ... at ERROR level, or a Rust panic */
};

/* Copy [s, s+len) without control characters, whitespace-trimmed, and
 * without the kernel's "[    1.234567] " timestamp. */
static void fc_console_clean(const char *s, size_t len, char *out, size_t out_len)
{
    size_t o = 0;
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    if (len > 0 && *s == '[') {
        size_t i = 1;
        while (i < len && (s[i] == ' ' || isdigit((unsigned char)s[i]) || s[i] == '.'))
            i++;
        if (i > 1 && i < len && s[i] == ']') {
            s += i + 1;
            len -= i + 1;
            while (len > 0 && *s == ' ') {
                s++;
                len--;
            }
        }
    }
    for (size_t i = 0; i < len && o + 1 < out_len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t')
            c = ' ';
        if (c < 0x20 || c == 0x7f)
            continue;
        out[o++] = (char)c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* Firecracker's log lines look like
 *   2026-02-23T21:05:34.876998360 [anonymous-instance:main] message
 * with ":ERROR" (or WARN, INFO...) in the brackets when show_level is on.
 * Returns the message start, or NULL for any other line. */
static const char *fc_console_vmm_message(const char *line, bool *error_level)
{
    if (strlen(line) < 20 || !isdigit((unsigned char)line[0]) || line[4] != '-' ||
        line[7] != '-' || line[10] != 'T')
        return NULL;
    const char *open = strchr(line, ' ');
    if (!open || open[1] != '[')
        return NULL;
    const char *close = strstr(open, "] ");
    if (!close)
        return NULL;
    const char *err = strstr(open, ":ERROR");
    *error_level = err && err < close;
    return close + 2;
}

static void fc_console_classify(struct fc_console_line *l)
{
    bool error_level = false;
    const char *msg = fc_console_vmm_message(l->text, &error_level);
    /* Firecracker's main() also prints "Error: <debug form>" on stderr, and
     * a Rust panic says "thread '...' panicked at". */
    if (!msg && (strncmp(l->text, "Error: ", 7) == 0 || strstr(l->text, "' panicked at "))) {
        l->vmm = true;
        l->vmm_error = true;
        return;
    }
    l->vmm = msg != NULL;
    l->vmm_error = msg && error_level && strncmp(msg, FC_CONSOLE_FC_EXIT_ERROR,
                                                 strlen(FC_CONSOLE_FC_EXIT_ERROR)) != 0;
}

/* Split text into cleaned, classified, non-empty lines. */
static struct fc_console_line *fc_console_split(const char *text, size_t len, size_t *n_out)
{
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    struct fc_console_line *lines = calloc(cap, sizeof(*lines));
    size_t n = 0;
    if (!lines) {
        *n_out = 0;
        return NULL;
    }
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        fc_console_clean(text + start, end - start, lines[n].text, sizeof(lines[n].text));
        if (lines[n].text[0]) {
            fc_console_classify(&lines[n]);
            n++;
        }
        start = end + 1;
    }
    *n_out = n;
    return lines;
}

/* The index of the line that best says why the guest did not come up, or
 * -1. In order: the initrd's own message when the kernel's panic only says
 * that init died; a kernel panic; the initrd's message; Firecracker's error. */
static long fc_console_headline(const struct fc_console_line *lines, size_t n)
{
    long panic = -1, initrd = -1, vmm_error = -1, before_exit = -1;
    for (size_t i = 0; i < n; i++) {
        const char *t = lines[i].text;
        if (!lines[i].vmm && panic < 0 && strncmp(t, "---[ end ", 9) != 0 &&
            strstr(t, FC_CONSOLE_PANIC))
            panic = (long)i;
        else if (!lines[i].vmm && strncmp(t, FC_CONSOLE_INITRD, strlen(FC_CONSOLE_INITRD)) == 0)
            initrd = (long)i;
        else if (lines[i].vmm_error && vmm_error < 0)
            vmm_error = (long)i;
        bool ignored;
        const char *msg = fc_console_vmm_message(t, &ignored);
        if (msg && strncmp(msg, FC_CONSOLE_FC_EXIT_ERROR, strlen(FC_CONSOLE_FC_EXIT_ERROR)) == 0) {
            /* main() logs the error itself just before this line. */
            for (long j = (long)i - 1; j >= 0 && before_exit < 0; j--)
                if (lines[j].vmm && strncmp(lines[j].text, "Error: ", 7) != 0)
                    before_exit = j;
        }
    }
    if (initrd >= 0 && (panic < 0 || strstr(lines[panic].text, "Attempted to kill init")))
        return initrd;
    if (panic >= 0)
        return panic;
    if (before_exit >= 0)
        return before_exit;
    return vmm_error;
}

static void fc_console_append(char *buf, size_t buf_len, size_t *used, const char *s)
{
    if (*used >= buf_len)
        return;
    int w = snprintf(buf + *used, buf_len - *used, "%s", s);
    *used += w > 0 ? (size_t)w : 0;
    if (*used >= buf_len)
        *used = buf_len - 1;
}

void fc_console_summarize(const char *text, size_t len, char *buf, size_t buf_len)
{
    size_t n = 0, used = 0;
    if (buf_len == 0)
        return;
    buf[0] = '\0';
    struct fc_console_line *lines = fc_console_split(text ? text : "", text ? len : 0, &n);
    if (n == 0)
        goto cleanup;

    long head = fc_console_headline(lines, n);
    /* Without a known pattern: the last guest line, else the last line. */
    if (head < 0) {
        for (long i = (long)n - 1; i >= 0 && head < 0; i--)
            if (!lines[i].vmm)
                head = i;
        if (head < 0) {
            /* Only Firecracker spoke: the guest never reached its console. */
            fc_console_append(buf, buf_len, &used, "no output from the guest; firecracker: ");
            head = (long)n - 1;
        }
    }
    /* Firecracker's timestamp and thread tag say nothing to the user. */
    bool ignored;
    const char *head_msg = fc_console_vmm_message(lines[head].text, &ignored);
    fc_console_append(buf, buf_len, &used, head_msg ? head_msg : lines[head].text);

    /* The guest lines leading up to it, oldest first: what comes after a
     * panic is a stack trace and "Rebooting in 1 seconds..", and without a
     * known pattern the headline is the last guest line anyway. */
    long context[FC_CONSOLE_CONTEXT_LINES];
    size_t n_context = 0;
    for (long i = head - 1; i >= 0 && n_context < FC_CONSOLE_CONTEXT_LINES; i--)
        if (!lines[i].vmm)
            context[n_context++] = i;
    if (n_context == 0)
        goto cleanup;
    fc_console_append(buf, buf_len, &used, " (console before it: ");
    for (size_t k = n_context; k > 0; k--) {
        fc_console_append(buf, buf_len, &used, lines[context[k - 1]].text);
        fc_console_append(buf, buf_len, &used, k > 1 ? " | " : ")");
    }
cleanup:
    free(lines);
}

void fc_console_summary(const struct banger_vm *vm, char *buf, size_t buf_len)
{
    struct fc_console_chunk c = { 0 };
    struct banger_error ignored = { 0 };

    if (buf_len == 0)
        return;
    buf[0] = '\0';
    if (!vm || !vm->info.state_dir ||
        fc_console_read(vm->info.state_dir, -FC_CONSOLE_READ_MAX, FC_CONSOLE_READ_MAX, &c,
                        &ignored) < 0)
        return;
    /* Only this run's output; earlier boots may have panicked too. */
    long long start = vm->vmm_log_start > 0 && vm->vmm_log_start <= c.end ? vm->vmm_log_start : 0;
    size_t skip = start > c.from ? (size_t)(start - c.from) : 0;
    if (skip > c.len)
        skip = c.len;
    if (c.from > start) {
        /* Started inside a line: drop the partial one. */
        const char *nl = memchr(c.data, '\n', c.len);
        skip = nl ? (size_t)(nl - c.data) + 1 : 0;
    }
    fc_console_summarize(c.data + skip, c.len - skip, buf, buf_len);
    free(c.data);
}
