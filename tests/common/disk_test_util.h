/* File checks the root-disk suites share (tests/reflink on the host,
 * tests/kernel on the host and in the qemu guest). */
#ifndef BANGER_DISK_TEST_UTIL_H
#define BANGER_DISK_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* FNV-1a 64 of a whole file; the test fails when it cannot be read. */
uint64_t dtu_file_hash(const char *path);
/* Does `path` exist (a dangling link counts)? */
bool dtu_exists(const char *path);

#endif
