/* banger's ssh identity for a VM and running ssh with it.
 *
 * ssh runs as the calling user. The daemon hands out banger's key and its
 * pinned known_hosts (vm.ssh_info); they are kept in the user's private
 * cache dir ($XDG_CACHE_HOME/banger/ssh, 0700, files 0600) so that plain
 * `ssh <name>.vm` can use them too (banger ssh-config). */
#include "config.h"

#include "guest-common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"
#include "util/xalloc.h"

void guest_ssh_clear(struct guest_ssh *g)
{
    free(g->name);
    free(g->ip);
    free(g->user);
    free(g->key_path);
    free(g->hosts_path);
    memset(g, 0, sizeof(*g));
}

enum guest_fetch guest_fetch(const struct cli_ctx *ctx, const char *vm, bool quiet_not_yet,
                             struct guest_ssh *g)
{
    struct banger_error err = { 0 };
    struct rpc_reply reply;
    cJSON *params = cJSON_CreateObject();
    char *dir = NULL;
    enum guest_fetch ret = GUEST_FETCH_FAILED;

    memset(g, 0, sizeof(*g));
    if (vm)
        cJSON_AddStringToObject(params, "vm", vm);
    if (rpc_call(ctx->socket_path, "vm.ssh_info", params, NULL, NULL, &reply, &err) < 0) {
        fprintf(stderr, "banger: %s\n", bg_error_text(&err));
        return GUEST_FETCH_FAILED;
    }
    if (reply.failed) {
        if (quiet_not_yet && reply.code && strcmp(reply.code, "busy") == 0) {
            ret = GUEST_FETCH_NOT_YET;
        } else if (reply.op_id) {
            fprintf(stderr, "banger: %s (%s, %s)\n", reply.message, reply.code, reply.op_id);
        } else {
            fprintf(stderr, "banger: %s (%s)\n", reply.message, reply.code);
        }
        goto cleanup;
    }
    const char *key = out_json_str(reply.result, "private_key");
    const char *hosts = out_json_str(reply.result, "known_hosts");
    if (!key || !hosts) {
        fprintf(stderr, "banger: the daemon sent no ssh key\n");
        goto cleanup;
    }
    dir = guest_home_dir("XDG_CACHE_HOME", ".cache");
    if (dir) {
        char *ssh_dir = xasprintf("%s/ssh", dir);

        free(dir);
        dir = ssh_dir;
    }
    int r = dir ? guest_private_dir(dir, 0700) : -ENOENT;
    if (r < 0) {
        fprintf(stderr, "banger: cannot use %s for banger's ssh key: %s\n", dir ? dir : "~/.cache",
                dir ? strerror(-r) : "HOME is not set");
        goto cleanup;
    }
    g->key_path = xasprintf("%s/id_ed25519", dir);
    g->hosts_path = xasprintf("%s/known_hosts", dir);
    if ((r = guest_write_file(g->key_path, key, 0600)) < 0 ||
        (r = guest_write_file(g->hosts_path, hosts, 0600)) < 0) {
        fprintf(stderr, "banger: cannot write into %s: %s\n", dir, strerror(-r));
        goto cleanup;
    }
    if (vm) {
        const char *name = out_json_str(reply.result, "name");
        const char *ip = out_json_str(reply.result, "ip");
        const char *user = out_json_str(reply.result, "user");

        if (!name || !ip) {
            fprintf(stderr, "banger: the daemon sent no address for %s\n", vm);
            goto cleanup;
        }
        g->name = xstrdup(name);
        g->ip = xstrdup(ip);
        g->user = xstrdup(user ? user : "root");
    }
    ret = GUEST_FETCH_OK;
cleanup:
    if (ret != GUEST_FETCH_OK)
        guest_ssh_clear(g);
    free(dir);
    rpc_reply_done(&reply);
    return ret;
}

static const char *guest_own(struct guest_argv *a, char *s)
{
    if (a->n_owned < sizeof(a->owned) / sizeof(a->owned[0]))
        a->owned[a->n_owned++] = s;
    return s;
}

void guest_ssh_argv(struct guest_argv *a, const struct guest_ssh *g, const char *tty,
                    const char *const *extra, const char *remote)
{
    memset(a, 0, sizeof(*a));
    static const char *const base[] = {
        "ssh", "-F", "/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "HostKeyAlgorithms=ssh-ed25519", "-o", "PasswordAuthentication=no",
        "-o", "ConnectTimeout=15", "-o", "LogLevel=ERROR", NULL,
    };
    for (size_t i = 0; base[i]; i++)
        a->v[a->n++] = base[i];
    a->v[a->n++] = "-i";
    a->v[a->n++] = g->key_path;
    a->v[a->n++] = "-o";
    a->v[a->n++] = guest_own(a, xasprintf("UserKnownHostsFile=%s", g->hosts_path));
    if (tty)
        a->v[a->n++] = tty;
    a->v[a->n++] = guest_own(a, xasprintf("%s@%s", g->user, g->ip));
    /* After the destination, as a user types them: OpenSSH reads options
     * there too, and the first word that is not one starts the command. */
    for (size_t i = 0; extra && extra[i] && a->n < 56; i++)
        a->v[a->n++] = extra[i];
    if (remote) {
        a->v[a->n++] = "--";
        a->v[a->n++] = remote;
    }
    a->v[a->n] = NULL;
}

void guest_argv_free(struct guest_argv *a)
{
    for (size_t i = 0; i < a->n_owned; i++)
        free(a->owned[i]);
    a->n_owned = 0;
}

int guest_run_ssh(const struct guest_ssh *g, const char *tty, const char *const *extra,
                  const char *remote)
{
    struct guest_argv a;

    guest_ssh_argv(&a, g, tty, extra, remote);
    fflush(stdout);
    pid_t pid = guest_spawn(a.v, -1, -1, NULL);
    guest_forward_signals_to(pid);
    int status = pid < 0 ? CLI_EXIT_FAIL : guest_wait_status(pid);
    guest_forward_signals_to(0);
    guest_argv_free(&a);
    return status;
}

int guest_wait_ssh(struct cli_ctx *ctx, const char *name, long long wait_s, struct guest_ssh *g)
{
    const struct timespec pause = { .tv_sec = 0, .tv_nsec = 250 * 1000 * 1000 };
    double start = cli_now_ms();
    char dur[32];

    fprintf(stderr, "waiting for ssh on %s ...\n", name);
    for (;;) {
        enum guest_fetch f = guest_fetch(ctx, name, true, g);

        if (f == GUEST_FETCH_OK)
            break;
        if (f == GUEST_FETCH_FAILED)
            return CLI_EXIT_FAIL;
        if (guest_interrupt_signal())
            return CLI_EXIT_FAIL;
        if (cli_now_ms() - start > (double)wait_s * 1000.0) {
            fprintf(stderr, "banger: ssh on %s did not answer within %llds (see banger vm logs "
                            "%s)\n", name, wait_s, name);
            return CLI_EXIT_FAIL;
        }
        nanosleep(&pause, NULL);
    }
    out_format_duration_ms(cli_now_ms() - start, dur, sizeof(dur));
    fprintf(stderr, "%s ready at %s (ssh answered after %s)\n", g->name, g->ip, dur);
    return CLI_EXIT_OK;
}
