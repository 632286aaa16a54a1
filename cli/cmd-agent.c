/* banger vm ping|health|ports: questions for the guest agent. */
#include "config.h"

#include "cli.h"

int cmd_vm_agent(struct cli_ctx *ctx, const char *sub, int argc, char **argv)
{
    (void)ctx; (void)sub; (void)argc; (void)argv;
    return CLI_NOT_MINE;
}
