#include "config.h"

#include "host/host.h"
#include "loader/loader.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The smallest descriptor this daemon understands (ABI 1 as first shipped). */
#define LOADER_MIN_CAP_SIZE (offsetof(struct banger_capability, reconcile) + \
                             sizeof(((struct banger_capability *)0)->reconcile))

const char *loader_phase_names(uint32_t phases)
{
    switch (phases & (BANGER_PHASE_BEFORE_LAUNCH | BANGER_PHASE_AFTER_BOOT)) {
    case BANGER_PHASE_BEFORE_LAUNCH: return "before-launch";
    case BANGER_PHASE_AFTER_BOOT: return "after-boot";
    case BANGER_PHASE_BEFORE_LAUNCH | BANGER_PHASE_AFTER_BOOT: return "before-launch+after-boot";
    default: return "none";
    }
}

static int loader_check_one(const char *path, bool is_leaf_or_plugin_dir, struct banger_error *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return bg_fail_errno(err, -errno, "%s", path);
    if (S_ISLNK(st.st_mode)) {
        /* Judge the target too; realpath() already resolved the chain. */
        if (stat(path, &st) < 0)
            return bg_fail_errno(err, -errno, "%s", path);
    }
    if (st.st_uid != 0)
        return bg_fail(err, -EPERM, "%s is owned by uid %u, not root; refusing to load code from it",
                       path, (unsigned)st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
        if (is_leaf_or_plugin_dir || !sticky_dir)
            return bg_fail(err, -EPERM,
                           "%s is writable by %s; refusing to load code from it (chmod go-w %s)",
                           path, (st.st_mode & S_IWOTH) ? "everyone" : "its group", path);
    }
    return 0;
}

int loader_check_path_safe(const char *path, struct banger_error *err)
{
    if (geteuid() != 0)
        return 0;
    char *real = realpath(path, NULL);
    if (!real)
        return bg_fail_errno(err, -errno, "%s", path);
    int r = loader_check_one(real, true, err);
    /* Walk up: the directory holding a module is strict, the ones above it
     * may be sticky. For a directory path, only the path itself is strict. */
    struct stat st;
    char *slash;
    bool first_dir = stat(real, &st) == 0 && !S_ISDIR(st.st_mode);
    while (r == 0 && (slash = strrchr(real, '/')) != NULL) {
        if (slash == real) {
            r = loader_check_one("/", false, err);
            break;
        }
        *slash = '\0';
        r = loader_check_one(real, first_dir, err);
        first_dir = false;
    }
    free(real);
    return r;
}

static char *loader_available(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return xasprintf("none: cannot read %s: %s", dir, strerror(errno));
    char *list = xstrdup("");
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        char *next = xasprintf("%s%s%.*s", list, list[0] ? ", " : "", (int)(len - 3), de->d_name);
        free(list);
        list = next;
    }
    closedir(d);
    if (!list[0]) {
        free(list);
        return xasprintf("none in %s", dir);
    }
    return list;
}

int loader_open(const char *dir, const char *name, bool check_owner, struct bg_plugin *out,
                struct banger_error *err)
{
    char *path = xasprintf("%s/%s.so", dir, name);
    void *dl = NULL;
    int r;

    if (access(path, F_OK) < 0) {
        char *avail = loader_available(dir);
        r = bg_fail(err, -ENOENT, "no module named '%s' in %s (available: %s)", name, dir, avail);
        free(avail);
        goto fail;
    }
    if (check_owner) {
        r = loader_check_path_safe(path, err);
        if (r < 0)
            goto fail;
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        r = bg_fail(err, -ENOEXEC, "cannot load %s: %s (a missing library? try ldd)", path, dlerror());
        goto fail;
    }
    banger_capability_entry_fn entry;
    *(void **)&entry = dlsym(dl, BANGER_CAPABILITY_ENTRY);
    if (!entry) {
        r = bg_fail(err, -ENOEXEC, "%s does not export %s(); is it a banger capability module?",
                    path, BANGER_CAPABILITY_ENTRY);
        goto fail;
    }
    const struct banger_capability *cap = entry();
    if (!cap) {
        r = bg_fail(err, -ENOEXEC, "%s: %s() returned no descriptor", path, BANGER_CAPABILITY_ENTRY);
        goto fail;
    }
    /* Only the first two fields may be read before these checks pass. */
    if (cap->abi_version != BANGER_CAPABILITY_ABI_VERSION) {
        r = bg_fail(err, -EPROTO, "%s was built for capability ABI %u, this daemon speaks ABI %u; "
                    "rebuild it against this banger's capability.h",
                    path, cap->abi_version, BANGER_CAPABILITY_ABI_VERSION);
        goto fail;
    }
    if (cap->struct_size < LOADER_MIN_CAP_SIZE) {
        r = bg_fail(err, -EPROTO, "%s: descriptor is %u bytes, smaller than the %zu bytes of ABI %u; "
                    "rebuild it against this banger's capability.h",
                    path, cap->struct_size, (size_t)LOADER_MIN_CAP_SIZE, BANGER_CAPABILITY_ABI_VERSION);
        goto fail;
    }
    if (!cap->name || strcmp(cap->name, name) != 0) {
        r = bg_fail(err, -EINVAL, "%s calls itself '%s'; the file name says '%s'", path,
                    cap->name ? cap->name : "(null)", name);
        goto fail;
    }
    if (!cap->start) {
        r = bg_fail(err, -EINVAL, "%s has no start callback", path);
        goto fail;
    }
    if (!(cap->phases & (BANGER_PHASE_BEFORE_LAUNCH | BANGER_PHASE_AFTER_BOOT)) ||
        (cap->phases & ~(uint32_t)(BANGER_PHASE_BEFORE_LAUNCH | BANGER_PHASE_AFTER_BOOT))) {
        r = bg_fail(err, -EINVAL, "%s: phases 0x%x is not a combination of before-launch and after-boot",
                    path, cap->phases);
        goto fail;
    }
    *out = (struct bg_plugin){ .name = xstrdup(name), .path = path, .dl = dl, .cap = cap };
    return 0;

fail:
    if (dl)
        dlclose(dl);
    free(path);
    return r;
}

void loader_close(struct bg_plugin *p)
{
    if (!p)
        return;
    if (p->dl)
        dlclose(p->dl);
    free(p->name);
    free(p->path);
    memset(p, 0, sizeof(*p));
}

static int loader_check_requires(const struct bg_plugins *ps, size_t idx, struct banger_error *err)
{
    const struct bg_plugin *p = &ps->v[idx];
    for (size_t k = 0; p->cap->requires && p->cap->requires[k]; k++) {
        const char *need = p->cap->requires[k];
        bool earlier = false;
        for (size_t j = 0; j < idx; j++)
            if (strcmp(ps->v[j].name, need) == 0)
                earlier = true;
        if (!earlier)
            return bg_fail(err, -EINVAL,
                           "requires '%s' to come earlier in 'plugins'; put \"%s\" before \"%s\"",
                           need, need, p->name);
    }
    return 0;
}

int plugins_load(const struct bg_config *cfg, struct bg_plugins **out, struct banger_error *err)
{
    struct bg_plugins *ps = xcalloc(1, sizeof(*ps));
    ps->v = xcalloc(cfg->n_plugins + 1, sizeof(*ps->v));
    bool root = geteuid() == 0;
    int r = 0;

    if (root) {
        r = loader_check_path_safe(cfg->plugin_dir, err);
        if (r < 0) {
            bg_error_prefix(err, "plugin_dir");
            goto fail;
        }
    }
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        const char *name = cfg->plugins[i];
        r = loader_open(cfg->plugin_dir, name, root, &ps->v[ps->n], err);
        if (r < 0) {
            bg_error_prefix(err, "plugin %s", name);
            goto fail;
        }
        ps->n++;
        r = loader_check_requires(ps, ps->n - 1, err);
        if (r < 0) {
            bg_error_prefix(err, "plugin %s", name);
            goto fail;
        }
    }
    /* Init only after every module passed its checks, in configured order. */
    for (size_t i = 0; i < ps->n; i++) {
        struct bg_plugin *p = &ps->v[i];
        if (!p->cap->init)
            continue;
        struct banger_error e = { 0 };
        r = p->cap->init(bg_host_api(), config_group(cfg, p->name), &p->state, &e);
        if (r < 0) {
            *err = e;
            if (err->msg[0] == '\0')
                bg_fail(err, r, "init failed: %s", strerror(-r));
            bg_error_prefix(err, "plugin %s", p->name);
            /* This module failed: it is unloaded without fini, the earlier
             * ones are finalised. */
            goto fail;
        }
        p->inited = true;
    }
    *out = ps;
    return 0;

fail:
    plugins_unload(ps);
    return r;
}

int plugins_activate(struct bg_plugins *ps, struct banger_error *err)
{
    for (size_t i = 0; i < ps->n; i++) {
        struct bg_plugin *p = &ps->v[i];
        if (!p->cap->activate)
            continue;
        struct banger_error e = { 0 };
        int r = p->cap->activate(p->state, &e);
        if (r < 0) {
            *err = e;
            if (err->msg[0] == '\0')
                bg_fail(err, r, "activate failed: %s", strerror(-r));
            bg_error_prefix(err, "plugin %s", p->name);
            return r;
        }
    }
    return 0;
}

void plugins_unload(struct bg_plugins *ps)
{
    if (!ps)
        return;
    for (size_t i = ps->n; i-- > 0;) {
        struct bg_plugin *p = &ps->v[i];
        if (p->inited && p->cap->fini)
            p->cap->fini(p->state);
        loader_close(p);
    }
    free(ps->v);
    free(ps);
}
