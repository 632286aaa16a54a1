/* image.import, image.pull and image.build_default: images from a tarball,
 * a bundle, or built on this host. */
#include "config.h"

#include "daemon/daemon.h"
#include "daemon/methods.h"
#include "images/image_build.h"
#include "images/image_import.h"
#include "images/image_pull.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

/* Long image work stops when its client goes away. */
static bool method_client_gone(void *call) { return rpc_call_cancelled(call); }

static int method_image_import(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "name", "tar", "kernel", "initrd", NULL };
    const struct images_cancel cancel = { method_client_gone, call };
    struct images_import_params p = { .progress = bangerd_progress, .progress_ctx = call,
                                       .caller = &call->caller, .cancel = &cancel,
                                       .max_bytes = d->cfg->images.max_rootfs_bytes };
    const struct bangerd_string_param strings[] = {
        { "name", true, &p.name }, { "tar", true, &p.tar }, { "kernel", true, &p.kernel },
        { "initrd", false, &p.initrd }, { NULL, false, NULL }
    };
    int r = bangerd_params(call, keys, strings);
    if (r < 0)
        return r;
    struct image_record *img = NULL;
    cJSON *warnings = cJSON_CreateArray();
    p.warnings = warnings;
    r = images_import(d->store, d->images_dir, &p, &img, &call->err);
    r = bangerd_image_result(call, img, r);
    /* What makes the image hard to use, for the CLI to show. */
    if (r == 0)
        cJSON_AddItemToObject(call->result, "warnings", warnings);
    else
        cJSON_Delete(warnings);
    return r;
}

static int method_image_pull(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "source", "name", "sha256", NULL };
    const struct images_cancel cancel = { method_client_gone, call };
    const struct images_limits limits = {
        .max_bundle_bytes = d->cfg->images.max_bundle_bytes,
        .max_rootfs_bytes = d->cfg->images.max_rootfs_bytes,
        .max_kernel_bytes = d->cfg->images.max_kernel_bytes,
        .max_initrd_bytes = d->cfg->images.max_initrd_bytes,
    };
    struct images_pull_params p = { .progress = bangerd_progress, .progress_ctx = call,
                                     .caller = &call->caller, .limits = &limits,
                                     .cancel = &cancel };
    const struct bangerd_string_param strings[] = {
        { "source", true, &p.source }, { "name", false, &p.name }, { "sha256", false, &p.sha256 },
        { NULL, false, NULL }
    };
    int r = bangerd_params(call, keys, strings);
    if (r < 0)
        return r;
    if (p.sha256) {
        size_t n = strlen(p.sha256);
        bool hex = n == 64;
        for (size_t i = 0; hex && i < n; i++)
            hex = isxdigit((unsigned char)p.sha256[i]);
        if (!hex) {
            call->error_code = "bad_request";
            return bg_fail(&call->err, -EINVAL, "sha256: '%s' is not 64 hex digits", p.sha256);
        }
    }
    struct image_record *img = NULL;
    r = images_pull(d->store, d->images_dir, &p, &img, &call->err);
    return bangerd_image_result(call, img, r);
}

static int method_image_build_default(struct bangerd *d, struct rpc_call *call)
{
    static const char *const keys[] = { "name", "mirror", NULL };
    const struct images_cancel cancel = { method_client_gone, call };
    struct images_build_params p = { .progress = bangerd_progress, .progress_ctx = call,
                                      .mirrors = (const char *const *)d->cfg->images.mirrors,
                                      .n_mirrors = d->cfg->images.n_mirrors,
                                      .keyring = d->cfg->images.keyring, .cancel = &cancel };
    const struct bangerd_string_param strings[] = {
        { "name", false, &p.name }, { "mirror", false, &p.mirror }, { NULL, false, NULL }
    };
    int r = bangerd_params(call, keys, strings);
    if (r < 0)
        return r;
    struct image_record *img = NULL;
    r = images_build_default(d->store, d->images_dir, &p, &img, &call->err);
    return bangerd_image_result(call, img, r);
}

int bangerd_handle_image_ext(struct bangerd *d, struct rpc_call *call)
{
    if (strcmp(call->method, "image.import") == 0)
        return method_image_import(d, call);
    if (strcmp(call->method, "image.pull") == 0)
        return method_image_pull(d, call);
    if (strcmp(call->method, "image.build_default") == 0)
        return method_image_build_default(d, call);
    return BANGERD_NOT_MINE;
}
