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
/* e2e_cli as a client with uid `uid`, gid `gid` and that group alone (a
 * socket_group member when gid is the group), dropped in the child. */
int e2e_cli_as(struct e2e *t, uid_t uid, gid_t gid, char **out, char **err,
               const char *const *argv);
/* e2e_rpc from such a client (a forked child). */
cJSON *e2e_rpc_as(struct e2e *t, uid_t uid, gid_t gid, const char *method,
                  const char *params_json);
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

/* The calling process moves to a network namespace of its own with only
 * lo up, so nothing the daemon or a test sends can leave the machine. */
void e2e_enter_netns(void);
/* Fork; the child runs as uid/gid 65534 with supplementary group 65534
 * only (like `setpriv --reuid=65534 --regid=65534 --groups=65534`): a
 * socket_group member when the config says socket_group = "nogroup". Returns
 * 0 in the child, the pid in the parent. */
pid_t e2e_fork_as_member(void);
/* The same with another uid (still gid and group 65534): a second member. */
pid_t e2e_fork_as_member_uid(uid_t uid);
/* Make the tree reachable (searchable) for uid 65534. */
void e2e_open_tree(struct e2e *t);
/* A connected socket to the daemon, or -1. */
int e2e_connect(struct e2e *t);
/* Wait up to timeout_ms for `pid` to exit; false when it is still running. */
bool e2e_wait_exit(pid_t pid, int timeout_ms, int *status);
/* Lines of the daemon log containing `needle`. */
int e2e_log_count(struct e2e *t, const char *needle);
long long e2e_now_ms(void);

#endif
