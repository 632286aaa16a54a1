/* Allocation helpers: small allocations abort on out-of-memory, as a daemon
 * that cannot allocate a few bytes cannot do anything useful either. */
#ifndef BANGER_UTIL_XALLOC_H
#define BANGER_UTIL_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* xstrdup that keeps NULL. */
char *xstrdup_or_null(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Free *p and set it to NULL; for __attribute__((cleanup)). */
void freep(void *p);
#define _cleanup_free_ __attribute__((cleanup(freep)))

#endif
