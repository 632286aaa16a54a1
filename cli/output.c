#include "config.h"

#include "output.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/term_text.h"
#include "util/xalloc.h"

void out_table_init(struct out_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    out_table_add(t, headers);
}

/* Cells may hold what a guest said (vm health's hostname, vm ports' process
 * names): a terminal is shown them as text, never as escape sequences. */
void out_table_add(struct out_table *t, const char *const *cells)
{
    t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
    for (size_t c = 0; c < t->ncols; c++) {
        const char *text = cells[c] ? cells[c] : "-";
        char *safe = bg_term_escape(text, strlen(text), false, NULL);
        t->cells[t->nrows * t->ncols + c] = safe ? safe : xstrdup("?");
    }
    t->nrows++;
}

void out_table_print(const struct out_table *t, FILE *f)
{
    size_t *width = xcalloc(t->ncols, sizeof(size_t));

    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t len = strlen(t->cells[r * t->ncols + c]);

            if (len > width[c])
                width[c] = len;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];

            if (c + 1 == t->ncols)
                fprintf(f, "%s\n", cell);
            else
                fprintf(f, "%-*s  ", (int)width[c], cell);
        }
    }
    free(width);
}

void out_table_free(struct out_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

void out_format_age(long long seconds, char *buf, size_t len)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 60)
        snprintf(buf, len, "%llds", seconds);
    else if (seconds < 3600)
        snprintf(buf, len, "%lldm", seconds / 60);
    else if (seconds < 86400)
        snprintf(buf, len, "%lldh", seconds / 3600);
    else
        snprintf(buf, len, "%lldd", seconds / 86400);
}

void out_format_mib(long long mib, char *buf, size_t len)
{
    if (mib >= 2048 && mib % 1024 == 0)
        snprintf(buf, len, "%lldG", mib / 1024);
    else
        snprintf(buf, len, "%lldM", mib);
}

void out_format_bytes(unsigned long long bytes, char *buf, size_t len)
{
    static const char units[] = "KMGT";
    unsigned long long scale = 1ULL << 40;

    for (int i = 3; i >= 0; i--, scale >>= 10) {
        if (bytes < scale)
            continue;
        if (bytes % scale == 0)
            snprintf(buf, len, "%llu%c", bytes / scale, units[i]);
        else
            snprintf(buf, len, "%.1f%c", (double)bytes / (double)scale, units[i]);
        return;
    }
    snprintf(buf, len, "%lluB", bytes);
}

void out_format_duration_ms(double ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(buf, len, "%.0fms", ms);
    else if (ms < 60000)
        snprintf(buf, len, "%.1fs", ms / 1000);
    else {
        long long s = (long long)(ms / 1000);

        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    }
}

void out_format_time(const cJSON *when, char *buf, size_t len)
{
    char stamp[64];
    char age[32];
    struct tm tm;
    time_t t;

    if (!cJSON_IsNumber(when) || when->valuedouble <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    t = (time_t)when->valuedouble;
    if (!localtime_r(&t, &tm) || strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
        snprintf(buf, len, "%lld", (long long)t);
        return;
    }
    out_format_age((long long)(time(NULL) - t), age, sizeof(age));
    snprintf(buf, len, "%s (%s ago)", stamp, age);
}

int out_parse_size(const char *text, unsigned long long *ret_bytes)
{
    unsigned long long value;
    unsigned long long mult = 1;
    char *end;

    if (!text || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    errno = 0;
    value = strtoull(text, &end, 10);
    if (errno)
        return -EINVAL;
    switch (toupper((unsigned char)*end)) {
    case '\0':
        break;
    case 'K':
        mult = 1ULL << 10;
        break;
    case 'M':
        mult = 1ULL << 20;
        break;
    case 'G':
        mult = 1ULL << 30;
        break;
    case 'T':
        mult = 1ULL << 40;
        break;
    case 'B':
        end--; /* a bare "B" suffix: bytes */
        break;
    default:
        return -EINVAL;
    }
    if (*end) {
        end++;
        /* Optional "B" or "iB" after the unit. */
        if (*end == 'i')
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return -EINVAL;
    }
    if (value > ULLONG_MAX / mult)
        return -ERANGE;
    *ret_bytes = value * mult;
    return 0;
}

int out_parse_mib(const char *text, long long *ret_mib)
{
    unsigned long long bytes;
    bool plain = text && *text;
    int r;

    for (const char *p = text; plain && *p; p++)
        plain = isdigit((unsigned char)*p);
    if (plain)
        return out_parse_int(text, 1, INT_MAX, ret_mib);
    r = out_parse_size(text, &bytes);
    if (r < 0)
        return r;
    if (bytes == 0 || bytes % (1ULL << 20) != 0 || bytes / (1ULL << 20) > INT_MAX)
        return -EINVAL;
    *ret_mib = (long long)(bytes >> 20);
    return 0;
}

int out_parse_int(const char *text, long long min, long long max, long long *ret)
{
    long long value;
    char *end;

    if (!text || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    errno = 0;
    value = strtoll(text, &end, 10);
    if (errno || *end || value < min || value > max)
        return -EINVAL;
    *ret = value;
    return 0;
}

const char *out_json_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

bool out_json_num(const cJSON *obj, const char *key, double *ret)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!cJSON_IsNumber(item))
        return false;
    *ret = item->valuedouble;
    return true;
}

const char *out_json_text(const cJSON *obj, const char *key, char *buf, size_t len)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (cJSON_IsString(item))
        snprintf(buf, len, "%s", item->valuestring);
    else if (cJSON_IsNumber(item) && item->valuedouble == floor(item->valuedouble))
        snprintf(buf, len, "%.0f", item->valuedouble);
    else if (cJSON_IsNumber(item))
        snprintf(buf, len, "%g", item->valuedouble);
    else if (cJSON_IsBool(item))
        snprintf(buf, len, "%s", cJSON_IsTrue(item) ? "yes" : "no");
    else
        snprintf(buf, len, "-");
    return buf;
}

void out_print_json(const cJSON *value)
{
    char *text = cJSON_Print(value);

    if (text) {
        fputs(text, stdout);
        fputc('\n', stdout);
    } else {
        fputs("null\n", stdout);
    }
    free(text);
}

void out_kv(FILE *f, int width, const char *key, const char *value)
{
    fprintf(f, "%s:%*s%s\n", key, width - (int)strlen(key), "", value);
}
