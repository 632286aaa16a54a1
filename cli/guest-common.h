/* What banger vm ssh|exec|run and banger ssh-config share: banger's ssh
 * identity for a VM (kept in the user's private cache dir), running ssh
 * with it, and small process and file helpers. */
#ifndef BANGER_CLI_GUEST_COMMON_H
#define BANGER_CLI_GUEST_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cli.h"

#define GUEST_WAIT_DEFAULT_S 120
#define GUEST_REPO_DIR "/root/repo"

/* ---- guest-ssh.c: identity and ssh ---------------------------------------- */

struct guest_ssh {
    char *name;        /* the VM's name */
    char *ip;
    char *user;
    char *key_path;    /* the private key in the cache dir */
    char *hosts_path;  /* known_hosts in the cache dir */
};

void guest_ssh_clear(struct guest_ssh *g);

enum guest_fetch {
    GUEST_FETCH_OK,
    GUEST_FETCH_NOT_YET,   /* ssh does not answer yet */
    GUEST_FETCH_FAILED,    /* printed */
};

/* vm.ssh_info for `vm` (NULL: identity only), then the key and the pinned
 * host keys written to the user's cache dir. With `quiet_not_yet`, "not
 * answering yet" is returned instead of printed. */
enum guest_fetch guest_fetch(const struct cli_ctx *ctx, const char *vm, bool quiet_not_yet,
                             struct guest_ssh *g);

/* ssh with banger's identity and pinned host keys: the options, "user@ip",
 * then the `extra` words (more ssh options, or a command), then `remote`
 * (NULL: none). The array and
 * the strings it owns are freed with guest_argv_free. */
struct guest_argv {
    const char *v[64];
    char *owned[8];
    size_t n, n_owned;
};

void guest_ssh_argv(struct guest_argv *a, const struct guest_ssh *g, const char *tty,
                    const char *const *extra, const char *remote);
void guest_argv_free(struct guest_argv *a);

/* Runs ssh in the foreground and returns its exit status. While it runs,
 * Ctrl-C belongs to ssh (and the guest); the CLI only remembers it. */
int guest_run_ssh(const struct guest_ssh *g, const char *tty, const char *const *extra,
                  const char *remote);

/* Polls vm.ssh_info until the guest's sshd answers (bounded). */
int guest_wait_ssh(struct cli_ctx *ctx, const char *name, long long wait_s, struct guest_ssh *g);

/* ---- guest-common.c: helpers ---------------------------------------------- */

/* $<xdg_var>/banger, or $HOME/<fallback>/banger; NULL without HOME. */
char *guest_home_dir(const char *xdg_var, const char *fallback);

/* mkdir -p with `mode` for what is created; the last component must end up
 * a real directory of ours that nobody else can write. */
int guest_private_dir(const char *path, mode_t mode);

/* Replace `path` with `data` (temp file beside it, rename). */
int guest_write_file(const char *path, const char *data, mode_t mode);

/* The words quoted for the guest's POSIX shell, after "cd <cd> && " if cd. */
char *guest_remote_command(char **words, int n, const char *cd);

/* Exit status of a finished child the way a shell reports it. */
int guest_wait_status(pid_t pid);

/* fork + exec argv with stdin/stdout replaced when >= 0. */
pid_t guest_spawn(const char *const *argv, int in_fd, int out_fd, const char *dir);

/* SIGINT, SIGTERM and SIGHUP are remembered instead of ending the CLI. */
void guest_install_signals(void);
/* While `pid` (> 0) runs, pass SIGINT/SIGTERM/SIGHUP on to it; 0 stops. */
void guest_forward_signals_to(pid_t pid);
/* The signal remembered, or 0. */
int guest_interrupt_signal(void);

/* argv[0] is the subcommand. Splits at "--": *rest / *n_rest after it. */
int guest_split_dashdash(int argc, char **argv, char ***rest, int *n_rest);

void guest_print_still_running(const char *name);

/* ---- cmd-run.c -------------------------------------------------------------- */

/* banger vm run */
int guest_vm_run(struct cli_ctx *ctx, int argc, char **argv);

#endif
