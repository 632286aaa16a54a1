/* The image check the root-drive modules make before a VM starts. */
#ifndef BANGER_UTIL_EXT4_CHECK_H
#define BANGER_UTIL_EXT4_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* 0 when `path` is a regular file holding an ext2/3/4 superblock (magic
 * 0xEF53 at byte 1080); its size in *size_out (may be NULL). Otherwise a
 * negative errno and the reason in `why`. */
int bg_check_ext4_image(const char *path, uint64_t *size_out, char *why, size_t why_len);

#endif
