#include "config.h"

#include "config/config.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_GROUPS 64

struct bg_config_priv {
    struct bg_config pub;
    pthread_mutex_t lock;
    struct banger_cfg groups[CONFIG_MAX_GROUPS];
    char *group_names[CONFIG_MAX_GROUPS];
    size_t n_groups;
};

static const char *const config_default_plugins[] = { "tap", "snapshot", "nat", "dns", "vsock" };

static const struct bg_config *config_current;

void config_set_current(const struct bg_config *cfg) { config_current = cfg; }

/* ---- messages that name file, line and key ------------------------------ */

int bg_cfg_failv(const struct banger_cfg *g, const char *key, struct banger_error *err,
                 const char *fmt, va_list ap)
{
    char what[768];
    vsnprintf(what, sizeof(what), fmt, ap);
    const config_setting_t *s = g && g->setting && key
                                    ? config_setting_get_member(g->setting, key)
                                    : (g ? g->setting : NULL);
    unsigned line = s ? (unsigned)config_setting_source_line(s) : 0;
    const char *file = g && g->file ? g->file : "<config>";
    char fullkey[160];
    if (g && g->name && g->name[0] && key)
        snprintf(fullkey, sizeof(fullkey), "%s.%s", g->name, key);
    else
        snprintf(fullkey, sizeof(fullkey), "%s", key ? key : (g && g->name ? g->name : ""));
    if (line)
        return bg_fail(err, -EINVAL, "%s:%u: %s: %s", file, line, fullkey, what);
    return bg_fail(err, -EINVAL, "%s: %s: %s", file, fullkey, what);
}

int bg_cfg_fail(const struct banger_cfg *g, const char *key, struct banger_error *err,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = bg_cfg_failv(g, key, err, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- typed getters ------------------------------------------------------ */

static const config_setting_t *cfg_member(const struct banger_cfg *g, const char *key)
{
    if (!g || !g->setting)
        return NULL;
    return config_setting_get_member(g->setting, key);
}

int bg_cfg_get_int(const struct banger_cfg *g, const char *key, long long *out,
                   struct banger_error *err)
{
    const config_setting_t *s = cfg_member(g, key);
    if (!s)
        return -ENOENT;
    int type = config_setting_type(s);
    if (type == CONFIG_TYPE_INT)
        *out = config_setting_get_int(s);
    else if (type == CONFIG_TYPE_INT64)
        *out = config_setting_get_int64(s);
    else
        return bg_cfg_fail(g, key, err, "expected an integer");
    return 0;
}

int bg_cfg_get_bool(const struct banger_cfg *g, const char *key, bool *out,
                    struct banger_error *err)
{
    const config_setting_t *s = cfg_member(g, key);
    if (!s)
        return -ENOENT;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return bg_cfg_fail(g, key, err, "expected true or false");
    *out = config_setting_get_bool(s);
    return 0;
}

int bg_cfg_get_string(const struct banger_cfg *g, const char *key, const char **out,
                      struct banger_error *err)
{
    const config_setting_t *s = cfg_member(g, key);
    if (!s)
        return -ENOENT;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return bg_cfg_fail(g, key, err, "expected a string");
    *out = config_setting_get_string(s);
    return 0;
}

int config_parse_size(const char *text, uint64_t *out)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno)
        return -EINVAL;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: return -EINVAL;
    }
    if (shift && (strcmp(end, "") == 0 || strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    if (*end != '\0')
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = (uint64_t)v << shift;
    return 0;
}

int bg_cfg_get_size(const struct banger_cfg *g, const char *key, uint64_t *out,
                    struct banger_error *err)
{
    const config_setting_t *s = cfg_member(g, key);
    if (!s)
        return -ENOENT;
    int type = config_setting_type(s);
    if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
        long long v = config_setting_get_int64(s);
        if (type == CONFIG_TYPE_INT)
            v = config_setting_get_int(s);
        if (v < 0)
            return bg_cfg_fail(g, key, err, "size must not be negative");
        *out = (uint64_t)v;
        return 0;
    }
    if (type != CONFIG_TYPE_STRING)
        return bg_cfg_fail(g, key, err, "expected a size such as \"8G\" or \"512M\"");
    const char *text = config_setting_get_string(s);
    if (config_parse_size(text, out) < 0)
        return bg_cfg_fail(g, key, err,
                           "'%s' is not a size (use a number with K, M, G or T, e.g. \"8G\")",
                           text);
    return 0;
}

int bg_cfg_check_keys(const struct banger_cfg *g, const char *const *allowed,
                      struct banger_error *err)
{
    if (!g || !g->setting)
        return 0;
    if (!config_setting_is_group(g->setting))
        return bg_cfg_fail(g, NULL, err, "expected a group { ... }");
    int n = config_setting_length(g->setting);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g->setting, (unsigned)i);
        const char *name = config_setting_name(s);
        bool ok = false;
        for (size_t k = 0; allowed && allowed[k]; k++)
            if (strcmp(allowed[k], name) == 0)
                ok = true;
        if (!ok) {
            char list[512] = "";
            size_t len = 0;
            for (size_t k = 0; allowed && allowed[k] && len < sizeof(list); k++)
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                        k ? ", " : "", allowed[k]);
            return bg_cfg_fail(g, name, err, "unknown key (known keys: %s)",
                               list[0] ? list : "none");
        }
    }
    return 0;
}

/* ---- groups ------------------------------------------------------------- */

const struct banger_cfg *config_group(const struct bg_config *cfg, const char *name)
{
    struct bg_config_priv *p = (struct bg_config_priv *)cfg;
    const struct banger_cfg *found = NULL;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_groups; i++)
        if (strcmp(p->group_names[i], name) == 0)
            found = &p->groups[i];
    if (!found && p->n_groups < CONFIG_MAX_GROUPS) {
        size_t i = p->n_groups++;
        p->group_names[i] = xstrdup(name);
        const config_setting_t *s = config_lookup(&p->pub.lc, name);
        p->groups[i] = (struct banger_cfg){
            .setting = s && config_setting_is_group(s) ? s : NULL,
            .name = p->group_names[i],
            .file = p->pub.path,
        };
        found = &p->groups[i];
    }
    pthread_mutex_unlock(&p->lock);
    if (!found) {
        static const struct banger_cfg empty = { NULL, "", "<config>" };
        return &empty;
    }
    return found;
}

const struct banger_cfg *bg_cfg_group_current(const char *name)
{
    static const struct banger_cfg empty = { NULL, "", "<config>" };
    return config_current ? config_group(config_current, name) : &empty;
}

/* ---- core keys ---------------------------------------------------------- */

int config_parse_cidr(const char *text, uint32_t *net, uint32_t *prefix_len)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    if (!slash || (size_t)(slash - text) >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, text, (size_t)(slash - text));
    buf[slash - text] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long p = strtol(slash + 1, &end, 10);
    if (errno || end == slash + 1 || *end || p < 0 || p > 32)
        return -EINVAL;
    uint32_t addr = ntohl(a.s_addr);
    uint32_t mask = p == 0 ? 0 : ~0u << (32 - p);
    if (addr & ~mask)
        return -EDOM; /* host bits set */
    *net = addr;
    *prefix_len = (uint32_t)p;
    return 0;
}

static int config_string_key(struct bg_config *c, const struct banger_cfg *root, const char *key,
                             const char **slot, struct banger_error *err)
{
    int r = bg_cfg_get_string(root, key, slot, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if ((*slot)[0] == '\0')
        return bg_cfg_fail(root, key, err, "must not be empty");
    (void)c;
    return 0;
}

static int config_int_key(const struct banger_cfg *g, const char *key, long long min,
                          long long max, long long *slot, struct banger_error *err)
{
    long long v;
    int r = bg_cfg_get_int(g, key, &v, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (v < min || v > max)
        return bg_cfg_fail(g, key, err, "%lld is out of range (%lld..%lld)", v, min, max);
    *slot = v;
    return 0;
}

static bool config_plugin_name_valid(const char *name)
{
    if (!name[0] || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '-'))
            return false;
    return true;
}

static int config_plugins(struct bg_config *c, const struct banger_cfg *root,
                          struct banger_error *err)
{
    const config_setting_t *s = config_lookup(&c->lc, "plugins");
    if (!s) {
        size_t n = sizeof(config_default_plugins) / sizeof(config_default_plugins[0]);
        c->plugins = xcalloc(n, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            c->plugins[i] = xstrdup(config_default_plugins[i]);
        c->n_plugins = n;
        return 0;
    }
    if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
        return bg_cfg_fail(root, "plugins", err, "expected a list of names, e.g. ( \"tap\", \"dns\" )");
    int n = config_setting_length(s);
    c->plugins = xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return bg_cfg_fail(root, "plugins", err, "element %d is not a string", i + 1);
        const char *name = config_setting_get_string(e);
        if (!config_plugin_name_valid(name))
            return bg_cfg_fail(root, "plugins", err,
                               "'%s' is not a plugin name ([a-z0-9_-], at most 64)", name);
        for (size_t k = 0; k < c->n_plugins; k++)
            if (strcmp(c->plugins[k], name) == 0)
                return bg_cfg_fail(root, "plugins", err, "'%s' is listed twice", name);
        c->plugins[c->n_plugins++] = xstrdup(name);
    }
    return 0;
}

static bool config_is_plugin(const struct bg_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_plugins; i++)
        if (strcmp(c->plugins[i], name) == 0)
            return true;
    return false;
}

/* The RPC server's bounds; see docs/configuration.md. */
static int config_rpc(struct bg_config *c, const struct banger_cfg *root, struct banger_error *err)
{
    const struct banger_cfg *g = config_group(c, "rpc");
    static const char *const keys[] = { "send_timeout_ms", "max_connections_per_uid",
                                         "shutdown_grace_ms", NULL };
    if (config_lookup(&c->lc, "rpc") && !g->setting)
        return bg_cfg_fail(root, "rpc", err, "expected a group { ... }");
    int r = bg_cfg_check_keys(g, keys, err);
    if (r < 0)
        return r;
    const struct { const char *key; long long min, max; int *slot; } ints[] = {
        { "send_timeout_ms", 100, 600000, &c->rpc.send_timeout_ms },
        { "max_connections_per_uid", 1, 240, &c->rpc.max_connections_per_uid },
        { "shutdown_grace_ms", 0, 60000, &c->rpc.shutdown_grace_ms },
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        long long v = *ints[i].slot;
        r = config_int_key(g, ints[i].key, ints[i].min, ints[i].max, &v, err);
        if (r < 0)
            return r;
        *ints[i].slot = (int)v;
    }
    return 0;
}

/* "" picks banger-helper when that user exists, else a uid of the VM's own
 * (jailer_uid_base + CID: no other process has it, unlike nobody). Looked
 * up once, at load: a user removed later does not silently become root. */
static int config_helper_user(struct bg_config *c, const struct banger_cfg *root,
                              struct banger_error *err)
{
    const char *name = c->helper_user;
    char buf[4096];
    struct passwd pw, *found = NULL;
    if (!name[0]) {
        if (getpwnam_r(CONFIG_HELPER_USER_PREFERRED, &pw, buf, sizeof(buf), &found) != 0 ||
            !found) {
            c->helper_per_vm = true;
            return 0;
        }
        name = CONFIG_HELPER_USER_PREFERRED;
    }
    if (!found && (getpwnam_r(name, &pw, buf, sizeof(buf), &found) != 0 || !found))
        return bg_cfg_fail(root, "helper_user", err, "user '%s' does not exist", name);
    if (pw.pw_uid == 0 || pw.pw_gid == 0)
        return bg_cfg_fail(root, "helper_user", err,
                           "'%s' has uid or gid 0; the helper must be an unprivileged user", name);
    c->helper_uid = pw.pw_uid;
    c->helper_gid = pw.pw_gid;
    return 0;
}

static int config_validate(struct bg_config *c, struct banger_error *err)
{
    static const char *const core_scalars[] = {
        "state_dir", "runtime_dir", "firecracker_bin", "log_level", "socket_group",
        "plugin_dir", "plugins", "stop_grace_ms", "console_log_max_bytes", "vm_defaults",
        "network", "rpc", "images", "helper_user", "jailer_bin", "jailer_chroot_base",
        "jailer_uid_base", NULL,
    };
    const struct banger_cfg *root = &(struct banger_cfg){
        .setting = config_root_setting(&c->lc), .name = "", .file = c->path };
    int r;

    /* Plugin list first: it decides which other top-level groups are allowed. */
    r = config_plugins(c, root, err);
    if (r < 0)
        return r;

    int n = config_setting_length(root->setting);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root->setting, (unsigned)i);
        const char *name = config_setting_name(s);
        bool known = false;
        for (size_t k = 0; core_scalars[k]; k++)
            if (strcmp(core_scalars[k], name) == 0)
                known = true;
        if (known)
            continue;
        if (config_is_plugin(c, name)) {
            if (!config_setting_is_group(s))
                return bg_cfg_fail(root, name, err, "a plugin's settings must be a group { ... }");
            continue;
        }
        return bg_cfg_fail(root, name, err,
                           "unknown key (not a core setting, and no plugin of that name is in 'plugins')");
    }

    const char *level = NULL;
    r = bg_cfg_get_string(root, "log_level", &level, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (level) {
        c->log_level = bg_log_level_parse(level);
        if (c->log_level < 0)
            return bg_cfg_fail(root, "log_level", err,
                               "'%s' is not a level (error, warning, info, debug)", level);
    }

    const struct { const char *key; const char **slot; } strings[] = {
        { "state_dir", &c->state_dir }, { "runtime_dir", &c->runtime_dir },
        { "firecracker_bin", &c->firecracker_bin }, { "socket_group", &c->socket_group },
        { "plugin_dir", &c->plugin_dir }, { "helper_user", &c->helper_user },
        { "jailer_bin", &c->jailer_bin }, { "jailer_chroot_base", &c->jailer_chroot_base },
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        r = config_string_key(c, root, strings[i].key, strings[i].slot, err);
        if (r < 0)
            return r;
    }
    const char *dirs[] = { "state_dir", "runtime_dir", "plugin_dir" };
    const char *vals[] = { c->state_dir, c->runtime_dir, c->plugin_dir };
    for (size_t i = 0; i < 3; i++)
        if (vals[i][0] != '/')
            return bg_cfg_fail(root, dirs[i], err, "'%s' must be an absolute path", vals[i]);
    /* sun_path is 108 bytes: runtime_dir/vms/<12 hex>/vsock.sock_<port> must fit. */
    if (strlen(c->runtime_dir) > 60)
        return bg_cfg_fail(root, "runtime_dir", err,
                           "'%s' is too long (at most 60 characters, so socket paths fit in 108 bytes)",
                           c->runtime_dir);

    r = config_helper_user(c, root, err);
    if (r < 0)
        return r;
    if (c->jailer_chroot_base[0] != '/' || strstr(c->jailer_chroot_base, "/../") ||
        strcmp(c->jailer_chroot_base, "/") == 0)
        return bg_cfg_fail(root, "jailer_chroot_base", err,
                           "'%s' must be an absolute path below /", c->jailer_chroot_base);
    /* base + CID must stay a valid uid, clear of (uid_t)-1. */
    long long uid_base = c->jailer_uid_base;
    r = config_int_key(root, "jailer_uid_base", 65536, 4294901759LL, &uid_base, err);
    if (r < 0)
        return r;
    c->jailer_uid_base = (uint32_t)uid_base;

    long long grace = c->stop_grace_ms;
    r = config_int_key(root, "stop_grace_ms", 0, 600000, &grace, err);
    if (r < 0)
        return r;
    c->stop_grace_ms = (int)grace;

    /* A guest writes its console as fast as it likes: the cap keeps it off the disk. */
    r = bg_cfg_get_size(root, "console_log_max_bytes", &c->console_log_max_bytes, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (c->console_log_max_bytes < BG_CONSOLE_LOG_MAX_MIN ||
        c->console_log_max_bytes > BG_CONSOLE_LOG_MAX_MAX)
        return bg_cfg_fail(root, "console_log_max_bytes", err,
                           "must be between 64K and 1G (got %llu bytes)",
                           (unsigned long long)c->console_log_max_bytes);

    /* vm_defaults */
    const struct banger_cfg *vd = config_group(c, "vm_defaults");
    static const char *const vd_keys[] = { "vcpu", "memory_mib", "disk_size", "overlay_size", NULL };
    if (config_lookup(&c->lc, "vm_defaults") && !vd->setting)
        return bg_cfg_fail(root, "vm_defaults", err, "expected a group { ... }");
    r = bg_cfg_check_keys(vd, vd_keys, err);
    if (r < 0)
        return r;
    long long v = c->vm_defaults.vcpu;
    r = config_int_key(vd, "vcpu", 1, 32, &v, err);
    if (r < 0)
        return r;
    c->vm_defaults.vcpu = (uint32_t)v;
    v = (long long)c->vm_defaults.memory_mib;
    r = config_int_key(vd, "memory_mib", 128, 1 << 20, &v, err);
    if (r < 0)
        return r;
    c->vm_defaults.memory_mib = (uint64_t)v;
    r = bg_cfg_get_size(vd, "disk_size", &c->vm_defaults.disk_size, err);
    if (r < 0 && r != -ENOENT)
        return r;
    r = bg_cfg_get_size(vd, "overlay_size", &c->vm_defaults.overlay_size, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (c->vm_defaults.disk_size < (64ull << 20))
        return bg_cfg_fail(vd, "disk_size", err, "must be at least 64M");
    if (c->vm_defaults.overlay_size < (64ull << 20))
        return bg_cfg_fail(vd, "overlay_size", err, "must be at least 64M");

    r = config_rpc(c, root, err);
    if (r < 0)
        return r;

    /* network */
    const struct banger_cfg *net = config_group(c, "network");
    static const char *const net_keys[] = { "bridge", "cidr", NULL };
    if (config_lookup(&c->lc, "network") && !net->setting)
        return bg_cfg_fail(root, "network", err, "expected a group { ... }");
    r = bg_cfg_check_keys(net, net_keys, err);
    if (r < 0)
        return r;
    r = config_string_key(c, net, "bridge", &c->network.bridge, err);
    if (r < 0)
        return r;
    if (strlen(c->network.bridge) >= IFNAMSIZ || strchr(c->network.bridge, '/') ||
        strchr(c->network.bridge, ' '))
        return bg_cfg_fail(net, "bridge", err, "'%s' is not a valid interface name (at most %d characters, no '/' or spaces)",
                           c->network.bridge, IFNAMSIZ - 1);
    r = config_string_key(c, net, "cidr", &c->network.cidr, err);
    if (r < 0)
        return r;
    r = config_parse_cidr(c->network.cidr, &c->network.net, &c->network.prefix_len);
    if (r == -EDOM)
        return bg_cfg_fail(net, "cidr", err, "'%s' has host bits set; give the network address",
                           c->network.cidr);
    if (r < 0)
        return bg_cfg_fail(net, "cidr", err, "'%s' is not an IPv4 CIDR such as \"172.29.0.0/24\"",
                           c->network.cidr);
    if (c->network.prefix_len > 30 || c->network.prefix_len < 8)
        return bg_cfg_fail(net, "cidr", err,
                           "'%s' must be between /8 and /30 (room for the gateway and at least one VM)",
                           c->network.cidr);
    return config_images_load(c, err);
}

static struct bg_config_priv *config_new(const char *path)
{
    struct bg_config_priv *p = xcalloc(1, sizeof(*p));
    struct bg_config *c = &p->pub;
    pthread_mutex_init(&p->lock, NULL);
    config_init(&c->lc);
    c->path = xstrdup(path);
    c->state_dir = LOCALSTATEDIR "/lib/banger";
    c->runtime_dir = RUNSTATEDIR "/banger";
    c->firecracker_bin = "firecracker";
    c->socket_group = "banger";
    c->helper_user = "";
    c->jailer_bin = "";
    c->jailer_chroot_base = "/srv/jailer";
    c->jailer_uid_base = 1500000000u;
    c->plugin_dir = PKGLIBDIR "/plugins";
    c->log_level = BANGER_LOG_INFO;
    c->stop_grace_ms = 10000;
    c->rpc.send_timeout_ms = 5000;
    c->rpc.max_connections_per_uid = 32;
    c->rpc.shutdown_grace_ms = 3000;
    c->console_log_max_bytes = BG_CONSOLE_LOG_MAX_DEFAULT;
    c->vm_defaults.vcpu = 2;
    c->vm_defaults.memory_mib = 1024;
    c->vm_defaults.disk_size = 8ull << 30;
    c->vm_defaults.overlay_size = 8ull << 30;
    c->network.bridge = "br-banger";
    c->network.cidr = "172.29.0.0/24";
    config_images_defaults(c);
    return p;
}

static int config_finish(struct bg_config_priv *p, struct bg_config **out, struct banger_error *err)
{
    int r = config_validate(&p->pub, err);
    if (r < 0) {
        config_free(&p->pub);
        return r;
    }
    *out = &p->pub;
    return 0;
}

static int config_parse_failed(struct bg_config_priv *p, struct banger_error *err)
{
    int r = bg_fail(err, -EINVAL, "%s:%d: %s", p->pub.path, config_error_line(&p->pub.lc),
                    config_error_text(&p->pub.lc));
    config_free(&p->pub);
    return r;
}

int config_load(const char *path, bool must_exist, struct bg_config **out,
                struct banger_error *err)
{
    struct bg_config_priv *p = config_new(path);
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        if (e == ENOENT && !must_exist)
            return config_finish(p, out, err);
        config_free(&p->pub);
        return bg_fail(err, -e, "%s: %s", path, strerror(e));
    }
    p->pub.from_file = true;
    int ok = config_read(&p->pub.lc, f);
    fclose(f);
    if (ok != CONFIG_TRUE)
        return config_parse_failed(p, err);
    return config_finish(p, out, err);
}

int config_load_string(const char *text, const char *name, struct bg_config **out,
                       struct banger_error *err)
{
    struct bg_config_priv *p = config_new(name);
    p->pub.from_file = true;
    if (config_read_string(&p->pub.lc, text) != CONFIG_TRUE)
        return config_parse_failed(p, err);
    return config_finish(p, out, err);
}

void config_free(struct bg_config *cfg)
{
    if (!cfg)
        return;
    struct bg_config_priv *p = (struct bg_config_priv *)cfg;
    if (config_current == cfg)
        config_current = NULL;
    for (size_t i = 0; i < cfg->n_plugins; i++)
        free(cfg->plugins[i]);
    free(cfg->plugins);
    config_images_free(cfg);
    for (size_t i = 0; i < p->n_groups; i++)
        free(p->group_names[i]);
    config_destroy(&cfg->lc);
    pthread_mutex_destroy(&p->lock);
    free(cfg->path);
    free(p);
}
