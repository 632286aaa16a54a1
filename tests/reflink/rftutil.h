/* Helpers of the root-disk tests: programs, scratch filesystems on loop
 * devices, the reflink module loaded through the real loader. */
#ifndef BANGER_RFTUTIL_H
#define BANGER_RFTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "disk_test_util.h" /* dtu_file_hash, dtu_exists */
#include "host/vm.h"
#include "loader/loader.h"

/* Run argv; exit status (or -1), stdout in *out when out is given. */
int rft_run(const char *const *argv, char **out);
/* Bytes allocated on disk for `path`. */
uint64_t rft_allocated(const char *path);

/* A scratch filesystem: `fstype` ("xfs", "btrfs", "ext4") made on a sparse
 * file and mounted (loop, autoclear) at <dir>/mnt inside this process's own
 * mount namespace. */
struct rft_fs {
    char dir[256];
    char mnt[300];
    char backing[300];
};
void rft_fs_make(struct rft_fs *fs, const char *fstype);
void rft_fs_free(struct rft_fs *fs); /* unmount (the loop detaches), remove */

/* An ext4 image of `bytes` at `path` holding `data_mib` MiB of files. */
void rft_make_image(const char *path, uint64_t bytes, unsigned data_mib);

/* The reflink module loaded from the build tree and initialised with `conf`
 * (after a first line `plugins = ( "reflink" );`). */
struct rft_module {
    struct bg_config *cfg;
    struct bg_plugin plugin;
};
int rft_module_load(struct rft_module *m, const char *conf, struct banger_error *e);
void rft_module_free(struct rft_module *m);

/* A VM with id `id`, state dir <parent>/<id>, image `image`. */
struct banger_vm *rft_vm(const char *parent, const char *id, const char *image);

/* Capture this process's stderr (the daemon log) into a file; the text so far. */
void rft_capture_stderr(const char *file);
char *rft_captured(void);

#endif
