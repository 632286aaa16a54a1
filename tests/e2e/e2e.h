/* End-to-end harness: a real bangerd with the Firecracker double in a
 * temporary state and runtime dir, driven through the real banger CLI and
 * through raw RPC. */
#ifndef BANGER_E2E_H
#define BANGER_E2E_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <sys/types.h>

struct e2e {
    char *dir;           /* temp root */
    char *state_dir;
    char *runtime_dir;
    char *socket;
    char *config;
    char *log;           /* daemon log file */
    char *record;        /* the double's request record */
    char *rootfs, *kernel;
    pid_t daemon;
};

/* Around srunner_run_all in main(): every test's tree lives under one base
 * directory, so whatever a failed test left (its fixture teardown does not
 * run when an assertion fails) is killed and removed at the end. */
void e2e_run_begin(void);
void e2e_run_end(void);

/* Make the tree and the config. `extra_config` is appended (may be NULL);
 * `fc_bin` replaces the double (may be NULL). No plugins. */
void e2e_setup(struct e2e *t, const char *extra_config, const char *fc_bin);
/* Same, with the named in-tree plugins (NULL-terminated, in start order)
 * copied from the build tree into the plugin dir and listed in `plugins`. */
void e2e_setup_plugins(struct e2e *t, const char *const *plugins, const char *extra_config,
                       const char *fc_bin);
/* Start bangerd (environment: the caller's plus FC_DOUBLE_RECORD) and wait
 * for its socket. */
void e2e_start_daemon(struct e2e *t);
/* SIGTERM (or SIGKILL) the daemon and wait for it. */
void e2e_stop_daemon(struct e2e *t, int sig);
/* Stop the daemon, kill every double still serving this tree, remove it. */
void e2e_teardown(struct e2e *t);

/* Run the CLI with --socket; returns its exit status, output in out and err
 * (malloc'd, may be NULL); argv is NULL-terminated, without "banger". */
int e2e_cli(struct e2e *t, char **out, char **err, const char *const *argv);
/* One raw request line; returns the parsed final reply (caller frees) and
 * counts progress events in *events when given. */
cJSON *e2e_rpc_raw(struct e2e *t, const char *line, int *events);
cJSON *e2e_rpc(struct e2e *t, const char *method, const char *params_json);
/* "code" of an error reply, or NULL. */
const char *e2e_error_code(const cJSON *reply);
const char *e2e_error_message(const cJSON *reply);
const cJSON *e2e_result(const cJSON *reply);

/* Register the test image as "default". */
void e2e_register_default_image(struct e2e *t);
/* Number of live fc-double processes whose cmdline mentions this tree. */
int e2e_live_vmms(struct e2e *t);
/* Number of live console log writers (banger-console-log) whose ring lies
 * in this tree's state dir; *first (may be NULL) gets one of their pids. */
int e2e_live_console_writers(struct e2e *t, pid_t *first);
/* Entries in runtime_dir/vms and state_dir/vms. */
int e2e_vm_dirs(struct e2e *t);

#endif
