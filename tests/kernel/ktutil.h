/* Helpers shared by the storage tests (host and guest). */
#ifndef BANGER_KTUTIL_H
#define BANGER_KTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "disk_test_util.h" /* dtu_file_hash, dtu_exists */
#include "host/vm.h"
#include "loader/loader.h"

struct kt_env {
    char *dir;               /* scratch dir, removed by kt_env_free */
    char image[512];         /* ext4 image with known files */
    struct bg_config *cfg;
    struct bg_plugin plugin; /* snapshot.so, initialised */
};

/* Scratch dir, a 32 MiB ext4 image made with mkfs.ext4 -d holding known
 * files, the config text `conf` and snapshot.so loaded and initialised. */
void kt_env_init(struct kt_env *env, const char *conf);
void kt_env_free(struct kt_env *env);
/* A VM with id `id` and state dir <dir>/<id>. */
struct banger_vm *kt_vm(struct kt_env *env, const char *id);
/* Run argv; returns exit status (or -1) and captured stdout in *out (may be NULL). */
int kt_run(const char *const *argv, char **out);
/* Number of loop devices bound to any file (guest) or to a file under
 * `under` (host). */
size_t kt_bound_loops(const char *under);
void kt_rmtree(const char *path);

#endif
