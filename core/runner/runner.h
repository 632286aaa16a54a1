/* Running external programs: argv only (never a shell), close-on-exec and
 * every other fd closed in the child, explicit environment, captured output,
 * exit status or signal, timeout. Tests install a hook to record or fake. */
#ifndef BANGER_RUNNER_H
#define BANGER_RUNNER_H

#include <banger/capability.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/error.h"

/* The environment children get when opts->envp is NULL. */
extern const char *const runner_default_env[];

int runner_run(const char *const *argv, const struct banger_run_opts *opts,
               struct banger_run_result *res, struct banger_error *err);
void runner_result_clear(struct banger_run_result *res);

/* Descriptors handed to the child appear as fd 4, 5, ... in the order given,
 * so a program that takes paths is pointed at "/proc/self/fd/4". */
#define RUNNER_FIRST_PASSED_FD 4
#define RUNNER_MAX_PASSED_FDS 8

/* Core only (not in the plugin ABI): what the child becomes before exec. */
struct runner_child {
    bool drop_privileges;    /* no groups, then gid, then uid; no_new_privs */
    uid_t uid;
    gid_t gid;
    const int *pass_fds;
    size_t n_pass_fds;
};
/* runner_run with a child that runs as child->uid:gid and inherits
 * child->pass_fds (child NULL: as runner_run). */
int runner_run_child(const char *const *argv, const struct banger_run_opts *opts,
                     const struct runner_child *child, struct banger_run_result *res,
                     struct banger_error *err);

/* Resolve a program name on PATH ("/usr/local/sbin:..." when path is NULL).
 * Returns a malloc'd absolute path or NULL. Names with '/' are returned as is
 * when executable. */
char *runner_find_program(const char *name, const char *path);

/* Test hook: called before every run. Return 0 to run the program for real,
 * 1 when the hook filled `res` itself (the program is not run), or a negative
 * errno to fail the run. */
typedef int (*runner_hook_fn)(void *ctx, const char *const *argv,
                              struct banger_run_result *res);
void runner_set_hook(runner_hook_fn hook, void *ctx);

/* "a b 'c d'" for logs. */
char *runner_argv_to_string(const char *const *argv);

#endif
