/* File helpers: atomic replacement and safe state directories. */
#ifndef BANGER_UTIL_FS_H
#define BANGER_UTIL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

/* Replace `path` with `data`: write a temp file beside it, fsync, rename over
 * `path`, fsync the directory. Readers see the old or the new content, never
 * a mix, and after return the new content survives a crash. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                    struct banger_error *err);

/* Read a whole file (NUL-terminated). -ENOENT when missing. */
int fs_read_all(const char *path, size_t max, char **out, size_t *out_len,
                struct banger_error *err);

/* Create `path` (and missing parents) with `mode`; an existing path must be
 * a real directory (not a symlink) owned by the current user and not
 * writable by group or others beyond `mode`. */
int fs_ensure_private_dir(const char *path, mode_t mode, struct banger_error *err);

/* Remove a directory tree below and including `path`; missing is fine.
 * Does not follow symlinks. */
int fs_remove_tree(const char *path, struct banger_error *err);

/* malloc'd "a/b"; aborts on out-of-memory like every small allocation here. */
char *fs_join(const char *a, const char *b);

#endif
