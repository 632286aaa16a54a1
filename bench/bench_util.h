/* Timing and command helpers the benchmarks share. */
#ifndef BANGER_BENCH_UTIL_H
#define BANGER_BENCH_UTIL_H

#include "config/config.h"
#include "host/vm.h"
#include "loader/loader.h"
#include "util/error.h"

#include <stddef.h>

/* CLOCK_MONOTONIC in milliseconds. */
double bench_now_ms(void);
/* Median of v[0..n) (sorts v in place). */
double bench_median(double *v, size_t n);
/* Run argv through the runner; returns 0 or -1 (and says why on stderr).
 * The first line of stdout in *out (malloc'd) when out is not NULL. */
int bench_run(const char *const *argv, char **out);

/* A capability module loaded from the build tree, and a VM to drive it. */
struct bench_module {
    struct bg_config *cfg;
    struct bg_plugin plugin;
    struct banger_vm *vm;
};

/* Load module `name` from BUILDDIR/plugins/<name>/.libs under the
 * configuration text `conf` (made current), init it, and make the VM
 * `vm_id` with state dir `state` and root image `image`. `m` starts zeroed;
 * whatever was set up before a failure is left for bench_module_close. */
int bench_module_open(struct bench_module *m, const char *name, const char *conf,
                      const char *vm_id, const char *state, const char *image,
                      struct banger_error *e);
/* Free the VM, fini and unload the module, drop the configuration. */
void bench_module_close(struct bench_module *m);

#endif
