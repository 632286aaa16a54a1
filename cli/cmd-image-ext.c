/* banger image pull|import|build-default: images from elsewhere, or built
 * on this host. */
#include "config.h"

#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "output.h"
#include "store/names.h"

static const char image_import_usage[] =
    "Usage: banger image import --name N --from-tar FILE --kernel FILE [--initrd FILE]\n"
    "\n"
    "Turn a root filesystem tarball (debootstrap output, `docker export`; plain,\n"
    ".gz, .xz or .zst) into an image: an ext4 root filesystem with the banger\n"
    "guest agent and network set-up added, plus the given kernel.\n"
    "\n"
    "  --name N          image name\n"
    "  --from-tar FILE   root filesystem tarball\n"
    "  --kernel FILE     uncompressed kernel (vmlinux)\n"
    "  --initrd FILE     initrd (optional)\n";

static const char image_pull_usage[] =
    "Usage: banger image pull SOURCE [--name N] [--sha256 HEX]\n"
    "\n"
    "Fetch an image bundle (a tar, usually .tar.zst: manifest.json first, then\n"
    "rootfs.ext4, vmlinux and optionally initrd.img) from an http(s) URL or a\n"
    "local file. Members are checked against the manifest's sizes and sha256\n"
    "sums and the daemon's caps (images.max_*_bytes).\n"
    "\n"
    "  --name N        image name (default: the bundle manifest's name)\n"
    "  --sha256 HEX    expected sha256 of the whole bundle (required for http://)\n";

static const char image_build_usage[] =
    "Usage: banger image build-default [--name N] [--mirror URL]\n"
    "\n"
    "Build a Debian bookworm image on the daemon's host: debootstrap (minbase\n"
    "with systemd, openssh-server and iproute2) from the host's apt mirror, the\n"
    "banger guest agent and network set-up added, the host's Debian kernel\n"
    "(linux-image-amd64) unpacked to vmlinux, and an initrd with its virtio and\n"
    "vsock modules. Takes a few minutes; needs debootstrap and busybox-static.\n"
    "\n"
    "  --name N       image name (default: default)\n"
    "  --mirror URL   Debian mirror: the host's apt mirror (the default) or one\n"
    "                 listed in the daemon's images.mirrors\n";

static int image_ext_call(struct cli_ctx *ctx, const char *method, cJSON *params)
{
    /* Download percentages overwrite one line; other stages get their own. */
    struct cli_progress progress = { .ctx = ctx, .stage_width = 16,
                                     .overwrite_downloads = true };
    struct rpc_reply reply;
    char buf[PATH_MAX + 64];
    int r = cli_call(ctx, method, params, cli_on_progress, &progress, &reply);
    cli_progress_end(&progress);
    if (r != CLI_EXIT_OK)
        return CLI_EXIT_FAIL;
    if (ctx->json) {
        out_print_json(reply.result);
    } else {
        static const char *const keys[] = { "name", "id", "rootfs", "kernel", "initrd" };
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            out_kv(stdout, 9, keys[i], out_json_text(reply.result, keys[i], buf, sizeof(buf)));
        const cJSON *warnings = cJSON_GetObjectItemCaseSensitive(reply.result, "warnings");
        const cJSON *w;
        cJSON_ArrayForEach(w, warnings)
            if (cJSON_IsString(w))
                fprintf(stderr, "warning: %s\n", w->valuestring);
    }
    rpc_reply_done(&reply);
    return CLI_EXIT_OK;
}

static int image_import(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "from-tar", required_argument, NULL, 't' },
        { "kernel", required_argument, NULL, 'k' },
        { "initrd", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "image import";
    const char *name = NULL, *tar = NULL, *kernel = NULL, *initrd = NULL;
    char reason[256];
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': return cli_help(image_import_usage);
        case 'n': name = optarg; break;
        case 't': tar = optarg; break;
        case 'k': kernel = optarg; break;
        case 'i': initrd = optarg; break;
        default: return cli_getopt_error(cmd, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!name || !tar || !kernel || !tar[0] || !kernel[0])
        return cli_usage_error(cmd, "--name, --from-tar and --kernel are required");
    if (image_name_check(name, reason, sizeof(reason)) < 0)
        return cli_usage_error(cmd, "%s", reason);
    cJSON *params = cli_params_str("name", name);
    if (cli_add_path(params, "tar", tar) < 0 ||
        cli_add_path(params, "kernel", kernel) < 0 ||
        (initrd && cli_add_path(params, "initrd", initrd) < 0)) {
        cJSON_Delete(params);
        return CLI_EXIT_FAIL;
    }
    return image_ext_call(ctx, "image.import", params);
}

static int image_pull(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "sha256", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "image pull";
    const char *name = NULL, *sha = NULL;
    char reason[256];
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': return cli_help(image_pull_usage);
        case 'n': name = optarg; break;
        case 's': sha = optarg; break;
        default: return cli_getopt_error(cmd, c, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(cmd, "give exactly one SOURCE (a URL or a bundle file)");
    if (name && image_name_check(name, reason, sizeof(reason)) < 0)
        return cli_usage_error(cmd, "%s", reason);
    const char *source = argv[optind];
    cJSON *params = cJSON_CreateObject();
    if (strncmp(source, "http://", 7) == 0 || strncmp(source, "https://", 8) == 0) {
        cJSON_AddStringToObject(params, "source", source);
    } else if (cli_add_path(params, "source", source) < 0) {
        cJSON_Delete(params);
        return CLI_EXIT_FAIL;
    }
    if (name)
        cJSON_AddStringToObject(params, "name", name);
    if (sha)
        cJSON_AddStringToObject(params, "sha256", sha);
    return image_ext_call(ctx, "image.pull", params);
}

static int image_build_default(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "mirror", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "image build-default";
    const char *name = NULL, *mirror = NULL;
    char reason[256];
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': return cli_help(image_build_usage);
        case 'n': name = optarg; break;
        case 'm': mirror = optarg; break;
        default: return cli_getopt_error(cmd, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (name && image_name_check(name, reason, sizeof(reason)) < 0)
        return cli_usage_error(cmd, "%s", reason);
    if (mirror && strncmp(mirror, "http://", 7) != 0 && strncmp(mirror, "https://", 8) != 0 &&
        strncmp(mirror, "file:/", 6) != 0)
        return cli_usage_error(cmd, "--mirror must be an http(s):// or file:/ URL");
    cJSON *params = cJSON_CreateObject();
    if (name)
        cJSON_AddStringToObject(params, "name", name);
    if (mirror)
        cJSON_AddStringToObject(params, "mirror", mirror);
    return image_ext_call(ctx, "image.build_default", params);
}

int cmd_image_ext(struct cli_ctx *ctx, const char *sub, int argc, char **argv)
{
    if (strcmp(sub, "import") == 0)
        return image_import(ctx, argc, argv);
    if (strcmp(sub, "pull") == 0)
        return image_pull(ctx, argc, argv);
    if (strcmp(sub, "build-default") == 0)
        return image_build_default(ctx, argc, argv);
    return CLI_NOT_MINE;
}
