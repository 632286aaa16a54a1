/* images { max_bundle_bytes; max_rootfs_bytes; max_kernel_bytes;
 * max_initrd_bytes; mirrors = ( ... ); keyring; }: caps on pulled bundles
 * and the mirrors `image build-default --mirror` may name. */
#include "config.h"

#include "config/config.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_IMAGES_MAX_MIRRORS 64

void config_images_defaults(struct bg_config *c)
{
    /* The same as images_default_limits (core/images/image_bundle.c). */
    c->images.max_bundle_bytes = 64ull << 30;
    c->images.max_rootfs_bytes = 64ull << 30;
    c->images.max_kernel_bytes = 256ull << 20;
    c->images.max_initrd_bytes = 1ull << 30;
    c->images.mirrors = NULL;
    c->images.n_mirrors = 0;
    c->images.keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
}

static int config_images_size(const struct banger_cfg *g, const char *key, uint64_t *slot,
                              struct banger_error *err)
{
    uint64_t v;
    int r = bg_cfg_get_size(g, key, &v, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (v == 0)
        return bg_cfg_fail(g, key, err, "must be more than 0");
    *slot = v;
    return 0;
}

static int config_images_mirrors(struct bg_config *c, const struct banger_cfg *g,
                                 struct banger_error *err)
{
    const config_setting_t *s = config_setting_get_member(g->setting, "mirrors");
    if (!s)
        return 0;
    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return bg_cfg_fail(g, "mirrors", err,
                           "expected a list of URLs, e.g. [ \"http://deb.debian.org/debian\" ]");
    int n = config_setting_length(s);
    if (n > CONFIG_IMAGES_MAX_MIRRORS)
        return bg_cfg_fail(g, "mirrors", err, "at most %d mirrors", CONFIG_IMAGES_MAX_MIRRORS);
    c->images.mirrors = xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return bg_cfg_fail(g, "mirrors", err, "element %d is not a string", i + 1);
        const char *url = config_setting_get_string(e);
        /* A file: mirror means root running whatever maintainer scripts sit
         * in that directory; only http(s) archives, checked by signature. */
        if ((strncmp(url, "http://", 7) != 0 || !url[7]) &&
            (strncmp(url, "https://", 8) != 0 || !url[8]))
            return bg_cfg_fail(g, "mirrors", err, "'%s' is not an http:// or https:// URL", url);
        if (strpbrk(url, " \t\n"))
            return bg_cfg_fail(g, "mirrors", err, "'%s' contains white space", url);
        char *copy = xstrdup(url);
        size_t len = strlen(copy);
        while (len > 1 && copy[len - 1] == '/')
            copy[--len] = '\0';
        c->images.mirrors[c->images.n_mirrors++] = copy;
    }
    return 0;
}

int config_images_load(struct bg_config *c, struct banger_error *err)
{
    static const char *const keys[] = { "max_bundle_bytes", "max_rootfs_bytes",
                                        "max_kernel_bytes", "max_initrd_bytes", "mirrors",
                                        "keyring", NULL };
    const struct banger_cfg *g = config_group(c, "images");
    if (config_lookup(&c->lc, "images") && !g->setting) {
        const struct banger_cfg root = { config_root_setting(&c->lc), "", c->path };
        return bg_cfg_fail(&root, "images", err, "expected a group { ... }");
    }
    int r = bg_cfg_check_keys(g, keys, err);
    if (r == 0)
        r = config_images_size(g, "max_bundle_bytes", &c->images.max_bundle_bytes, err);
    if (r == 0)
        r = config_images_size(g, "max_rootfs_bytes", &c->images.max_rootfs_bytes, err);
    if (r == 0)
        r = config_images_size(g, "max_kernel_bytes", &c->images.max_kernel_bytes, err);
    if (r == 0)
        r = config_images_size(g, "max_initrd_bytes", &c->images.max_initrd_bytes, err);
    if (r == 0 && g->setting)
        r = config_images_mirrors(c, g, err);
    if (r < 0)
        return r;
    const char *keyring = NULL;
    r = bg_cfg_get_string(g, "keyring", &keyring, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (keyring[0] != '/')
        return bg_cfg_fail(g, "keyring", err, "'%s' must be an absolute path", keyring);
    c->images.keyring = keyring;
    return 0;
}

void config_images_free(struct bg_config *c)
{
    for (size_t i = 0; i < c->images.n_mirrors; i++)
        free(c->images.mirrors[i]);
    free(c->images.mirrors);
    c->images.mirrors = NULL;
    c->images.n_mirrors = 0;
}
