/* Checks the fuzz targets share. Each failed check aborts, which libFuzzer
 * reports as a crash with the input that caused it. */
#ifndef BANGER_FUZZ_UTIL_H
#define BANGER_FUZZ_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* A message a user will read: NUL-terminated within cap, not empty, and
 * (when `printable`) free of control bytes a terminal would act on. */
static inline void fuzz_check_message(const char *s, size_t cap, int printable)
{
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(memchr(s, '\0', cap) != NULL);
    FUZZ_CHECK(s[0] != '\0');
    for (const unsigned char *p = (const unsigned char *)s; printable && *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
}

/* A NUL-terminated heap copy of the input, exactly as long, so ASan sees any
 * read past its end. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
