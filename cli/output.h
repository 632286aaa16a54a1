/* Formatting for people: aligned tables, sizes, ages, durations. */
#ifndef BANGER_CLI_OUTPUT_H
#define BANGER_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

struct out_table {
    size_t ncols;
    size_t nrows;   /* including the header row */
    char **cells;   /* nrows * ncols, row-major */
};

void out_table_init(struct out_table *t, size_t ncols, const char *const *headers);
/* Appends a row of t->ncols cells (copied; NULL prints as "-"). */
void out_table_add(struct out_table *t, const char *const *cells);
/* Columns left-aligned, two spaces apart, no trailing blanks. */
void out_table_print(const struct out_table *t, FILE *f);
void out_table_free(struct out_table *t);

/* 5s, 3m, 2h, 4d */
void out_format_age(long long seconds, char *buf, size_t len);
/* 512M, 1536M, 1024M, 2G: whole GiB from 2G up, MiB below or otherwise. */
void out_format_mib(long long mib, char *buf, size_t len);
/* 8G, 512M, 4K, 1.5G, 123B */
void out_format_bytes(unsigned long long bytes, char *buf, size_t len);
/* 12ms, 1.4s, 2m05s */
void out_format_duration_ms(double ms, char *buf, size_t len);
/* "2025-11-26 10:00:00 (5m ago)" or "-" */
void out_format_time(const cJSON *when, char *buf, size_t len);

/* "8G", "512M", "4k", "1T", "8GiB", "123" (bytes). Returns 0 or -EINVAL. */
int out_parse_size(const char *text, unsigned long long *ret_bytes);
/* A memory size: a plain number is MiB; with a suffix it must be whole MiB. */
int out_parse_mib(const char *text, long long *ret_mib);
/* A decimal integer in [min, max]. */
int out_parse_int(const char *text, long long min, long long max, long long *ret);

/* A member as text: strings as they are, integers, yes/no, "-" for
 * null or missing. */
const char *out_json_text(const cJSON *obj, const char *key, char *buf, size_t len);
const char *out_json_str(const cJSON *obj, const char *key);
bool out_json_num(const cJSON *obj, const char *key, double *ret);

/* Pretty JSON on stdout, for --json. */
void out_print_json(const cJSON *value);

/* "key:   value" lines with the values aligned at `width`. */
void out_kv(FILE *f, int width, const char *key, const char *value);

#endif
