/* Loading capability modules: the operator's `plugins` list, dlopen from
 * plugin_dir, ABI checks before anything else, ownership checks when root,
 * `requires` order, init with the module's own config group. */
#ifndef BANGER_LOADER_H
#define BANGER_LOADER_H

#include <stdbool.h>

#include <banger/capability.h>

#include "config/config.h"
#include "util/error.h"

struct bg_plugin {
    char *name;
    char *path;
    void *dl;
    const struct banger_capability *cap;
    void *state;           /* from init */
    bool inited;           /* init succeeded: fini is due */
};

struct bg_plugins {
    struct bg_plugin *v;
    size_t n;
};

/* Refuse `path` when, running as root, it or any directory above it could be
 * changed by someone other than root. A directory writable by others is
 * accepted only above the plugin directory and only with the sticky bit
 * (like /tmp): then nobody but root can replace the root-owned entry in it. */
int loader_check_path_safe(const char *path, struct banger_error *err);

/* dlopen and check one module (no init). */
int loader_open(const char *dir, const char *name, bool check_owner, struct bg_plugin *out,
                struct banger_error *err);
void loader_close(struct bg_plugin *p);

/* Load, check and init every plugin of cfg->plugins in order. On any failure
 * every module loaded so far is finalised and unloaded, and err names the
 * plugin and the reason. */
int plugins_load(const struct bg_config *cfg, struct bg_plugins **out, struct banger_error *err);
/* Every module's activate, in order; stops at the first failure. */
int plugins_activate(struct bg_plugins *plugins, struct banger_error *err);
/* fini in reverse order, then dlclose. Accepts NULL. */
void plugins_unload(struct bg_plugins *plugins);

const char *loader_phase_names(uint32_t phases);

#endif
