#include "config.h"

#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "store/names.h"
#include "util/xalloc.h"

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

/* The daemon runs elsewhere in the tree: relative paths are made absolute
 * here, without resolving symlinks (root may read what we cannot). */
static char *image_absolute(const char *path)
{
    char cwd[PATH_MAX];

    if (path[0] == '/')
        return xstrdup(path);
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    while (strncmp(path, "./", 2) == 0)
        path += 2;
    return xasprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
}

static int image_parse_help_only(const char *cmd, const char *usage, int argc, char **argv,
                                 bool *ret_help)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    *ret_help = false;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            *ret_help = true;
            return cli_help(usage);
        }
        return cli_getopt_error(cmd, c, argv);
    }
    return CLI_EXIT_OK;
}

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
    int status = CLI_EXIT_OK;
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
        char *abs;

        if (!files[i])
            continue;
        abs = image_absolute(files[i]);
        if (!abs) {
            fprintf(stderr, "banger: cannot make '%s' absolute: %s\n", files[i], strerror(errno));
            cJSON_Delete(params);
            return CLI_EXIT_FAIL;
        }
        cJSON_AddStringToObject(params, file_keys[i], abs);
        free(abs);
    }
    if (cli_call(ctx, "image.register", params, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json)
        out_print_json(reply.result);
    else
        image_print_details(reply.result);
    rpc_reply_done(&reply);
    return status;
}

static int image_list(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char *const headers[] = { "NAME", "ID", "VMS", "AGE", "ROOTFS" };
    struct rpc_reply reply;
    struct out_table table;
    const cJSON *image;
    bool help;
    int r;

    r = image_parse_help_only("image list", image_list_usage, argc, argv, &help);
    if (r != CLI_EXIT_OK || help)
        return r;
    if (optind < argc)
        return cli_usage_error("image list", "unexpected argument '%s'", argv[optind]);
    if (cli_call(ctx, "image.list", NULL, NULL, NULL, &reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json) {
        out_print_json(reply.result);
        rpc_reply_done(&reply);
        return CLI_EXIT_OK;
    }
    out_table_init(&table, 5, headers);
    cJSON_ArrayForEach(image, cJSON_GetObjectItemCaseSensitive(reply.result, "images")) {
        char vms[32], age[32];
        double created;
        const char *cells[5];

        out_json_text(image, "vms", vms, sizeof(vms));
        if (out_json_num(image, "created_at", &created))
            out_format_age((long long)time(NULL) - (long long)created, age, sizeof(age));
        else
            snprintf(age, sizeof(age), "-");
        cells[0] = out_json_str(image, "name");
        cells[1] = out_json_str(image, "id");
        cells[2] = vms;
        cells[3] = age;
        cells[4] = out_json_str(image, "rootfs");
        out_table_add(&table, cells);
    }
    out_table_print(&table, stdout);
    out_table_free(&table);
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

static int image_check_names(const char *cmd, int count, char **names)
{
    char reason[256];

    if (count == 0)
        return cli_usage_error(cmd, "no image named; give a name or id");
    for (int i = 0; i < count; i++)
        if (image_name_check(names[i], reason, sizeof(reason)) < 0)
            return cli_usage_error(cmd, "%s", reason);
    return CLI_EXIT_OK;
}

static int image_show(struct cli_ctx *ctx, int argc, char **argv)
{
    struct rpc_reply reply;
    bool help;
    int r;

    r = image_parse_help_only("image show", image_show_usage, argc, argv, &help);
    if (r != CLI_EXIT_OK || help)
        return r;
    if (argc - optind != 1)
        return cli_usage_error("image show", "give exactly one image name or id");
    r = image_check_names("image show", 1, argv + optind);
    if (r != CLI_EXIT_OK)
        return r;
    if (cli_call(ctx, "image.show", cli_params_str("image", argv[optind]), NULL, NULL, &reply) !=
        CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json)
        out_print_json(reply.result);
    else
        image_print_details(reply.result);
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

static int image_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    cJSON *collected = NULL;
    int status;
    bool help;
    int count;

    status = image_parse_help_only("image delete", image_delete_usage, argc, argv, &help);
    if (status != CLI_EXIT_OK || help)
        return status;
    count = argc - optind;
    status = image_check_names("image delete", count, argv + optind);
    if (status != CLI_EXIT_OK)
        return status;
    if (ctx->json && count > 1)
        collected = cJSON_CreateArray();
    for (int i = 0; i < count; i++) {
        const char *name = argv[optind + i];
        struct rpc_reply reply;

        if (cli_call(ctx, "image.delete", cli_params_str("image", name), NULL, NULL, &reply) !=
            CLI_EXIT_OK) {
            status = CLI_EXIT_FAIL;
            continue;
        }
        if (collected)
            cJSON_AddItemToArray(collected, cJSON_Duplicate(reply.result, true));
        else if (ctx->json)
            out_print_json(reply.result);
        else if (out_json_str(reply.result, "name"))
            printf("image %s deleted\n", out_json_str(reply.result, "name"));
        else
            printf("image %s deleted\n", name);
        fflush(stdout);
        rpc_reply_done(&reply);
    }
    if (collected) {
        out_print_json(collected);
        cJSON_Delete(collected);
    }
    return status;
}

int cmd_image(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *sub;

    if (argc < 2) {
        fputs(image_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    sub = argv[1];
    argc--;
    argv++;
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0)
        return cli_help(image_usage);
    if (strcmp(sub, "register") == 0)
        return image_register(ctx, argc, argv);
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0)
        return image_list(ctx, argc, argv);
    if (strcmp(sub, "show") == 0)
        return image_show(ctx, argc, argv);
    if (strcmp(sub, "delete") == 0 || strcmp(sub, "rm") == 0)
        return image_delete(ctx, argc, argv);
    int r = cmd_image_ext(ctx, sub, argc, argv);
    if (r != CLI_NOT_MINE)
        return r;
    return cli_usage_error("image", "unknown image command '%s'", sub);
}
