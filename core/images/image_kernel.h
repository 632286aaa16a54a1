/* A guest kernel from a distribution's bzImage (/boot/vmlinuz-<ver>):
 * Firecracker wants the ELF vmlinux, which is the compressed payload inside
 * the bzImage. */
#ifndef BANGER_IMAGE_KERNEL_H
#define BANGER_IMAGE_KERNEL_H

#include <stddef.h>

#include "util/error.h"

/* Find the payload (xz, zstd or gzip) in `bzimage` through the setup
 * header's payload_offset/payload_length, else by scanning for the
 * compressors' magic bytes, and decompress it to `out` (a new file; xz and
 * gzip run as programs on a temporary `out`.xz/.gz). The result must be ELF. */
int images_bzimage_extract(const char *bzimage, const char *out, struct banger_error *err);

/* The newest kernel in boot_dir (vmlinuz-<ver>) that has
 * modules_root/<ver>/modules.dep; its version into ver. -ENOENT when none. */
int images_host_kernel(const char *boot_dir, const char *modules_root, char *ver, size_t len,
                       struct banger_error *err);

#endif
