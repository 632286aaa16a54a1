/* File-level work of the reflink capability, without the host table, so
 * tests and the benchmark can drive it directly. The copy is the shared
 * bg_copy_file (core/util/file_copy.c). */
#ifndef BANGER_REFLINK_COPY_H
#define BANGER_REFLINK_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/file_copy.h" /* bg_copy_file: the copy itself */

/* Can the filesystem holding directory `dir` clone files? 1 yes, 0 no,
 * negative errno when the probe itself failed (why says). Makes and removes
 * two small temporary files in `dir`. */
int reflink_probe_dir(const char *dir, char *why, size_t why_len);

/* 0 when `path` is a regular file holding an ext2/3/4 superblock; its size
 * in *size_out. */
int reflink_check_ext4(const char *path, uint64_t *size_out, char *why, size_t why_len);

#endif
