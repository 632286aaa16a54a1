/* banger ssh-config: banger's ssh client config for plain `ssh NAME.vm`,
 * and a marked Include block in ~/.ssh/config (--install, --uninstall). */
#include "config.h"

#include "guest-common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "util/xalloc.h"

#define GUEST_BLOCK_BEGIN "# >>> banger ssh-config (managed block; banger ssh-config --uninstall removes it)"
#define GUEST_BLOCK_END "# <<< banger ssh-config"

static const char ssh_config_usage[] =
    "Usage: banger ssh-config [--install | --uninstall]\n"
    "\n"
    "Write banger's ssh client config (Host *.vm: root, banger's key and pinned host\n"
    "keys, each VM's address) to $XDG_CONFIG_HOME/banger/ssh_config and print it.\n"
    "  --install     also add a marked Include block at the top of ~/.ssh/config,\n"
    "                so that plain `ssh NAME.vm` works (idempotent)\n"
    "  --uninstall   remove that block and banger's ssh_config; nothing else\n";

static char *guest_read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0;

    if (!f)
        return NULL;
    if (getdelim(&buf, &len, '\0', f) < 0) {
        free(buf);
        buf = xstrdup("");
    }
    fclose(f);
    return buf;
}

/* The text of `config` without our marked block (and the blank line after it). */
static char *guest_strip_block(const char *config, bool *found)
{
    const char *begin = strstr(config, GUEST_BLOCK_BEGIN);
    const char *end = begin ? strstr(begin, GUEST_BLOCK_END) : NULL;

    *found = begin && end;
    if (!*found)
        return xstrdup(config);
    end += strlen(GUEST_BLOCK_END);
    if (*end == '\n')
        end++;
    if (*end == '\n')
        end++;
    return xasprintf("%.*s%s", (int)(begin - config), config, end);
}

static char *guest_managed_config(const struct cli_ctx *ctx, const struct guest_ssh *id)
{
    struct rpc_reply reply;
    char *text = xasprintf("# Managed by banger: `banger ssh-config` rewrites this file.\n");
    const cJSON *vm;

    if (cli_call(ctx, "vm.list", NULL, NULL, NULL, &reply) == CLI_EXIT_OK) {
        cJSON_ArrayForEach(vm, cJSON_GetObjectItemCaseSensitive(reply.result, "vms")) {
            const char *name = out_json_str(vm, "name");
            const char *ip = out_json_str(vm, "ip");
            char *more;

            if (!name || !ip || !ip[0])
                continue;
            more = xasprintf("%sHost %s.vm\n    HostName %s\n", text, name, ip);
            free(text);
            text = more;
        }
        rpc_reply_done(&reply);
    }
    char *all = xasprintf("%s"
                          "# VMs created later resolve through banger's DNS for .vm names.\n"
                          "Host *.vm\n"
                          "    User root\n"
                          "    IdentityFile %s\n"
                          "    IdentitiesOnly yes\n"
                          "    UserKnownHostsFile %s\n"
                          "    StrictHostKeyChecking yes\n"
                          "    HostKeyAlgorithms ssh-ed25519\n"
                          "    PasswordAuthentication no\n"
                          "    LogLevel ERROR\n",
                          text, id->key_path, id->hosts_path);
    free(text);
    return all;
}

int cmd_ssh_config(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "install", no_argument, NULL, 'i' },
        { "uninstall", no_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool install = false, uninstall = false, found = false;
    const char *home = getenv("HOME");
    char *conf_dir = guest_home_dir("XDG_CONFIG_HOME", ".config");
    char *managed = NULL, *ssh_dir = NULL, *user_config = NULL, *old = NULL, *stripped = NULL;
    char *text = NULL, *updated = NULL;
    struct guest_ssh id = { 0 };
    int status = CLI_EXIT_FAIL;
    int c, r;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            free(conf_dir);
            return cli_help(ssh_config_usage);
        }
        if (c == 'i')
            install = true;
        else if (c == 'u')
            uninstall = true;
        else {
            free(conf_dir);
            return cli_getopt_error("ssh-config", c, argv);
        }
    }
    if (optind < argc || (install && uninstall)) {
        free(conf_dir);
        return cli_usage_error("ssh-config", optind < argc ? "unexpected argument" :
                               "--install and --uninstall do not go together");
    }
    if (!conf_dir || !home || home[0] != '/') {
        free(conf_dir);
        fprintf(stderr, "banger: HOME is not set\n");
        return CLI_EXIT_FAIL;
    }
    managed = xasprintf("%s/ssh_config", conf_dir);
    ssh_dir = xasprintf("%s/.ssh", home);
    user_config = xasprintf("%s/config", ssh_dir);
    old = guest_read_file(user_config);
    stripped = guest_strip_block(old ? old : "", &found);

    if (uninstall) {
        /* Only our block and our own file go; nothing else of the user's. */
        if (found && (r = guest_write_file(user_config, stripped, 0600)) < 0) {
            fprintf(stderr, "banger: cannot write %s: %s\n", user_config, strerror(-r));
            goto cleanup;
        }
        if (unlink(managed) < 0 && errno != ENOENT) {
            fprintf(stderr, "banger: cannot remove %s: %s\n", managed, strerror(errno));
            goto cleanup;
        }
        printf("%s\n", found ? "removed banger's block from ~/.ssh/config" :
                               "no banger block in ~/.ssh/config");
        status = CLI_EXIT_OK;
        goto cleanup;
    }

    if (guest_fetch(ctx, NULL, false, &id) != GUEST_FETCH_OK)
        goto cleanup;
    if ((r = guest_private_dir(conf_dir, 0700)) < 0) {
        fprintf(stderr, "banger: cannot use %s: %s\n", conf_dir, strerror(-r));
        goto cleanup;
    }
    text = guest_managed_config(ctx, &id);
    if ((r = guest_write_file(managed, text, 0600)) < 0) {
        fprintf(stderr, "banger: cannot write %s: %s\n", managed, strerror(-r));
        goto cleanup;
    }
    if (install) {
        struct stat st;
        mode_t mode = old && stat(user_config, &st) == 0 ? (st.st_mode & 07777) : 0600;

        if ((r = guest_private_dir(ssh_dir, 0700)) < 0) {
            fprintf(stderr, "banger: cannot use %s: %s\n", ssh_dir, strerror(-r));
            goto cleanup;
        }
        /* At the top: an Include after a Host line would only apply to that host. */
        updated = xasprintf(GUEST_BLOCK_BEGIN "\nInclude %s\n" GUEST_BLOCK_END "\n\n%s", managed,
                            stripped);
        if ((r = guest_write_file(user_config, updated, mode)) < 0) {
            fprintf(stderr, "banger: cannot write %s: %s\n", user_config, strerror(-r));
            goto cleanup;
        }
        printf("%s banger's Include block in %s; try: ssh NAME.vm\n",
               found ? "refreshed" : "added", user_config);
    } else {
        fputs(text, stdout);
        printf("# written to %s; banger ssh-config --install adds it to ~/.ssh/config\n", managed);
    }
    status = CLI_EXIT_OK;
cleanup:
    guest_ssh_clear(&id);
    free(conf_dir);
    free(managed);
    free(ssh_dir);
    free(user_config);
    free(old);
    free(stripped);
    free(text);
    free(updated);
    return status;
}
