/* banger image pull|import|build-default: images from elsewhere. */
#include "config.h"

#include "cli.h"

int cmd_image_ext(struct cli_ctx *ctx, const char *sub, int argc, char **argv)
{
    (void)ctx; (void)sub; (void)argc; (void)argv;
    return CLI_NOT_MINE;
}
