/* File-level work of the reflink capability, without the host table, so
 * tests and the benchmark can drive it directly. The copy is the shared
 * bg_copy_file (core/util/file_copy.c). */
#ifndef BANGER_REFLINK_COPY_H
#define BANGER_REFLINK_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/ext4_check.h" /* bg_check_ext4_image */
#include "util/file_copy.h"  /* bg_copy_file: the copy itself */

/* Can the filesystem holding directory `dir` clone files? 1 yes, 0 no,
 * negative errno when the probe itself failed (why says). Makes and removes
 * two small temporary files in `dir`. */
int reflink_probe_dir(const char *dir, char *why, size_t why_len);

#endif
