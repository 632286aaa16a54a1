/* banger vm ssh|exec|run and banger ssh-config: working inside a guest. */
#include "config.h"

#include "cli.h"

int cmd_vm_guest(struct cli_ctx *ctx, const char *sub, int argc, char **argv)
{
    (void)ctx; (void)sub; (void)argc; (void)argv;
    return CLI_NOT_MINE;
}

int cmd_ssh_config(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx; (void)argc; (void)argv;
    return cli_usage_error("ssh-config", "not available in this build");
}
