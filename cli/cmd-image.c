#include "config.h"

#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"
#include "store/names.h"

static const char image_usage[] =
    "Usage: banger image COMMAND [ARGS...]\n"
    "\n"
    "  register --name N --rootfs FILE --kernel FILE [--initrd FILE]\n"
    "  import --name N --from-tar FILE --kernel FILE [--initrd FILE]\n"
    "  pull SOURCE [--name N] [--sha256 HEX]\n"
    "  build-default [--name N] [--mirror URL]\n"
    "  list (ls)\n"
    "  show NAME\n"
    "  delete NAME...\n";

static const char image_register_usage[] =
    "Usage: banger image register --name N --rootfs FILE --kernel FILE [--initrd FILE]\n"
    "\n"
    "Register an image: a read-only ext4 root filesystem and a kernel.\n"
    "\n"
    "  --name N         image name: letters, digits, '.', '_', ':', '-'\n"
    "  --rootfs FILE    ext4 root filesystem image\n"
    "  --kernel FILE    uncompressed kernel (vmlinux)\n"
    "  --initrd FILE    initrd (optional)\n";

static const char image_list_usage[] = "Usage: banger image list   (also: image ls)\n";
static const char image_show_usage[] = "Usage: banger image show NAME\n";
static const char image_delete_usage[] =
    "Usage: banger image delete NAME...\n\nDelete images no VM uses.\n";

static void image_print_details(const cJSON *image)
{
    static const char *const keys[] = { "name", "id", "rootfs", "kernel", "initrd", "vms" };
    char buf[PATH_MAX + 64];

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        out_kv(stdout, 9, keys[i], out_json_text(image, keys[i], buf, sizeof(buf)));
    out_format_time(cJSON_GetObjectItemCaseSensitive(image, "created_at"), buf, sizeof(buf));
    out_kv(stdout, 9, "created", buf);
}

static int image_register(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "rootfs", required_argument, NULL, 'r' },
        { "kernel", required_argument, NULL, 'k' },
        { "initrd", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "image register";
    const char *name = NULL;
    const char *files[3] = { NULL, NULL, NULL }; /* rootfs, kernel, initrd */
    static const char *const file_keys[3] = { "rootfs", "kernel", "initrd" };
    struct rpc_reply reply;
    cJSON *params = NULL;
    char reason[256];
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            return cli_help(image_register_usage);
        case 'n':
            name = optarg;
            break;
        case 'r':
            files[0] = optarg;
            break;
        case 'k':
            files[1] = optarg;
            break;
        case 'i':
            files[2] = optarg;
            break;
        default:
            return cli_getopt_error(cmd, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!name || !files[0] || !files[1])
        return cli_usage_error(cmd, "--name, --rootfs and --kernel are required");
    if (image_name_check(name, reason, sizeof(reason)) < 0)
        return cli_usage_error(cmd, "%s", reason);
    for (int i = 0; i < 3; i++)
        if (files[i] && files[i][0] == '\0')
            return cli_usage_error(cmd, "--%s needs a file", file_keys[i]);

    params = cli_params_str("name", name);
    for (int i = 0; i < 3; i++) {
        if (files[i] && cli_add_path(params, file_keys[i], files[i]) < 0) {
            cJSON_Delete(params);
            return CLI_EXIT_FAIL;
        }
    }
    if (cli_call(ctx, "image.register", params, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json)
        out_print_json(reply.result);
    else
        image_print_details(reply.result);
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

static void image_table_row(struct out_table *t, const cJSON *image, time_t now)
{
    char vms[32], age[32];
    double created;
    const char *cells[5];

    out_json_text(image, "vms", vms, sizeof(vms));
    if (out_json_num(image, "created_at", &created))
        out_format_age((long long)now - (long long)created, age, sizeof(age));
    else
        snprintf(age, sizeof(age), "-");
    cells[0] = out_json_str(image, "name");
    cells[1] = out_json_str(image, "id");
    cells[2] = vms;
    cells[3] = age;
    cells[4] = out_json_str(image, "rootfs");
    out_table_add(t, cells);
}

static int image_list(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char *const headers[] = { "NAME", "ID", "VMS", "AGE", "ROOTFS" };
    static const struct cli_list list = {
        .cmd = "image list", .usage = image_list_usage, .method = "image.list",
        .array_key = "images", .headers = headers, .ncols = 5, .add_row = image_table_row,
    };

    return cli_list(ctx, &list, argc, argv);
}

static int image_show(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct cli_show show = {
        .cmd = "image show", .usage = image_show_usage, .method = "image.show",
        .kind = CLI_NAME_IMAGE, .print = image_print_details,
    };

    return cli_show(ctx, &show, argc, argv);
}

static void image_delete_result(const char *name, const cJSON *result, double elapsed_ms,
                                void *userdata)
{
    const char *shown = out_json_str(result, "name");

    (void)elapsed_ms;
    (void)userdata;
    printf("image %s deleted\n", shown ? shown : name);
}

static int image_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct cli_each each = {
        .method = "image.delete",
        .key = "image",
        .on_result = image_delete_result,
    };
    int status;
    bool help;

    status = cli_parse_help_only("image delete", image_delete_usage, argc, argv, &help);
    if (status != CLI_EXIT_OK || help)
        return status;
    status = cli_check_names("image delete", CLI_NAME_IMAGE, argc - optind, argv + optind);
    if (status != CLI_EXIT_OK)
        return status;
    return cli_for_each_name(ctx, &each, argc - optind, argv + optind);
}

int cmd_image(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *sub;
    int r;

    r = cli_take_subcommand(image_usage, &argc, &argv, &sub);
    if (r >= 0)
        return r;
    if (strcmp(sub, "register") == 0)
        return image_register(ctx, argc, argv);
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
        return image_list(ctx, argc, argv);
    if (strcmp(sub, "show") == 0)
        return image_show(ctx, argc, argv);
    if (strcmp(sub, "delete") == 0 || strcmp(sub, "rm") == 0)
        return image_delete(ctx, argc, argv);
    r = cmd_image_ext(ctx, sub, argc, argv);
    if (r != CLI_NOT_MINE)
        return r;
    return cli_usage_error("image", "unknown image command '%s'", sub);
}
