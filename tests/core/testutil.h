/* Small helpers shared by the core's tests. */
#ifndef BANGER_TESTUTIL_H
#define BANGER_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "host/vm.h"

/* mkdtemp under TMPDIR or /tmp; returns a malloc'd path. */
char *tu_tempdir(const char *tag);
/* rm -r without a shell. */
void tu_rmtree(const char *path);
/* Copy a file (mode kept). */
void tu_copy(const char *from, const char *to);
bool tu_exists(const char *path);
/* Count entries of a directory (excluding . and ..). */
size_t tu_count_entries(const char *dir);
/* A VM object with fixed identity whose state dir is `state_dir`. */
struct banger_vm *tu_vm(const char *state_dir);
/* Write text to a file. */
void tu_write(const char *path, const char *text);

#endif
