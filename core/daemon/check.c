#include "config.h"

#include "daemon/check.h"
#include "loader/loader.h"


int bangerd_check(const struct bg_config *cfg, FILE *out, struct banger_error *err)
{
    struct bg_plugins *ps = NULL;
    int r = plugins_load(cfg, &ps, err);
    if (r < 0)
        return r;

    fprintf(out, "config: %s%s\n", cfg->path, cfg->from_file ? "" : " (not found; built-in defaults)");
    fprintf(out, "plugin_dir: %s\n", cfg->plugin_dir);
    fprintf(out, "start chain:\n");
    unsigned step = 1;
    const char *fmt = "  %2u. %-12s %-10s %-26s %s\n";
    fprintf(out, "  %3s %-12s %-10s %-26s %s\n", "#", "NAME", "VERSION", "PHASE", "DESCRIPTION");
    for (size_t i = 0; i < ps->n; i++) {
        const struct banger_capability *c = ps->v[i].cap;
        if (c->phases & BANGER_PHASE_BEFORE_LAUNCH)
            fprintf(out, fmt, step++, c->name, c->version ? c->version : "-",
                    (c->phases & BANGER_PHASE_AFTER_BOOT) ? "before-launch (+after-boot)" : "before-launch",
                    c->description ? c->description : "");
    }
    fprintf(out, fmt, step++, "firecracker", "-", "launch", "launch the VMM and boot");
    for (size_t i = 0; i < ps->n; i++) {
        const struct banger_capability *c = ps->v[i].cap;
        if (c->phases & BANGER_PHASE_AFTER_BOOT)
            fprintf(out, fmt, step++, c->name, c->version ? c->version : "-", "after-boot",
                    c->description ? c->description : "");
    }
    fprintf(out, "ok: %zu plugin(s) loaded\n", ps->n);
    plugins_unload(ps);
    return 0;
}
