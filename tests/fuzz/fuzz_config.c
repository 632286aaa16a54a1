/* libFuzzer target: the daemon's config file (core/config/config.c) read
 * through libconfig's string reader, then every group a plugin could ask
 * for read back with the typed getters plugins use. */
#include "config.h"

#include <errno.h>

#include "config/config.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every member of a group through each getter: a wrong type is an error
 * with file, line and key, never a crash. */
static void fuzz_read_group(const struct banger_cfg *g)
{
    static const char *const allowed[] = { "bridge", "cidr", "vcpu", "upstream", NULL };
    struct banger_error err = { 0 };
    int n;

    FUZZ_CHECK(g != NULL);
    if (!g->setting)
        return;
    if (bg_cfg_check_keys(g, allowed, &err) < 0)
        fuzz_check_message(bg_error_text(&err), sizeof(err.msg), 0);
    n = config_setting_is_group(g->setting) ? config_setting_length(g->setting) : 0;
    for (int i = 0; i < n && i < 32; i++) {
        const config_setting_t *s = config_setting_get_elem(g->setting, (unsigned)i);
        const char *key = config_setting_name(s);
        long long iv;
        bool bv;
        const char *sv;
        uint64_t size;
        int r;

        FUZZ_CHECK(key != NULL);
        r = bg_cfg_get_int(g, key, &iv, &err);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        r = bg_cfg_get_bool(g, key, &bv, &err);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        r = bg_cfg_get_string(g, key, &sv, &err);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r == 0)
            FUZZ_CHECK(sv != NULL);
        r = bg_cfg_get_size(g, key, &size, &err);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct banger_error err = { 0 };
    struct bg_config *cfg = NULL;
    char *text;
    int r;

    /* @include reads other files; the file is root's own, so following it
     * is right for the daemon but would make the fuzzer read the host. */
    if (memmem(data, size, "@include", 8) || memmem(data, size, "@INCLUDE", 8))
        return 0;
    text = fuzz_strndup(data, size);
    if (!text)
        return 0;
    r = config_load_string(text, "/etc/banger/banger.conf", &cfg, &err);
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL);
        FUZZ_CHECK(cfg == NULL);
        fuzz_check_message(bg_error_text(&err), sizeof(err.msg), 0);
        /* Errors name the file. */
        FUZZ_CHECK(strstr(bg_error_text(&err), "/etc/banger/banger.conf") != NULL);
    } else {
        /* What the daemon relies on after a successful load. */
        FUZZ_CHECK(cfg->state_dir[0] == '/' && cfg->runtime_dir[0] == '/' &&
                   cfg->plugin_dir[0] == '/');
        FUZZ_CHECK(strlen(cfg->runtime_dir) <= 60);
        FUZZ_CHECK(cfg->vm_defaults.vcpu >= 1 && cfg->vm_defaults.vcpu <= 32);
        FUZZ_CHECK(cfg->vm_defaults.memory_mib >= 128);
        FUZZ_CHECK(cfg->network.prefix_len >= 8 && cfg->network.prefix_len <= 30);
        FUZZ_CHECK(cfg->stop_grace_ms >= 0 && cfg->stop_grace_ms <= 600000);
        for (size_t i = 0; i < cfg->n_plugins; i++)
            fuzz_read_group(config_group(cfg, cfg->plugins[i]));
        fuzz_read_group(config_group(cfg, "network"));
        fuzz_read_group(config_group(cfg, "vm_defaults"));
        /* Asking twice gives the same group. */
        FUZZ_CHECK(config_group(cfg, "network") == config_group(cfg, "network"));
    }
    config_free(cfg);
    free(text);
    return 0;
}
