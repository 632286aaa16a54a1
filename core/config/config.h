/* The daemon's configuration: one libconfig file, every key optional.
 * Core keys are validated here; each plugin's group is handed to that plugin
 * (struct banger_cfg) which validates it through the host API. */
#ifndef BANGER_CONFIG_H
#define BANGER_CONFIG_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <banger/capability.h>

#include "util/error.h"

#define BANGER_DEFAULT_CONFIG SYSCONFDIR "/banger/banger.conf"
/* helper_user = "": this user when it exists, else a uid per VM. */
#define CONFIG_HELPER_USER_PREFERRED "banger-helper"

/* console_log_max_bytes: default and bounds. */
#define BG_CONSOLE_LOG_MAX_DEFAULT (4ull << 20)
#define BG_CONSOLE_LOG_MAX_MIN (64ull << 10)
#define BG_CONSOLE_LOG_MAX_MAX (1ull << 30)

/* A group of the config file as plugins see it. setting is NULL for a group
 * the operator did not write (all getters then report -ENOENT). */
struct banger_cfg {
    const config_setting_t *setting;
    const char *name;   /* group name, e.g. "tap" */
    const char *file;   /* config file path, for messages */
};

struct bg_config {
    config_t lc;             /* owns every string below that points into it */
    bool from_file;          /* false: built-in defaults only */
    char *path;

    const char *state_dir;
    const char *runtime_dir;
    const char *firecracker_bin;
    const char *socket_group;
    const char *plugin_dir;
    int log_level;
    int stop_grace_ms;       /* SendCtrlAltDel -> SIGKILL window */
    const char *helper_user; /* runs debugfs on guest disks; "" = auto */
    bool helper_per_vm;      /* auto without banger-helper: jailer_uid_base + CID */
    uid_t helper_uid;        /* otherwise: resolved at load, never 0 */
    gid_t helper_gid;
    const char *jailer_bin;  /* "": Firecracker runs without its jailer */
    const char *jailer_chroot_base;
    uint32_t jailer_uid_base; /* jailed VMM of CID n runs as uid = gid = base + n */
    uint64_t console_log_max_bytes; /* per-VM console ring (two files of half each) */

    char **plugins;          /* operator's selection, in start order */
    size_t n_plugins;

    struct {
        uint32_t vcpu;
        uint64_t memory_mib;
        uint64_t disk_size;
        uint64_t overlay_size;
    } vm_defaults;

    /* The RPC server's bounds (group `rpc`). */
    struct {
        int send_timeout_ms;          /* one reply line to a client that stops reading */
        int max_connections_per_uid;  /* open connections of one non-root uid (1..240:
                                       * 16 of the 256 slots stay for root) */
        int shutdown_grace_ms;        /* SIGTERM: wait this long for running calls */
    } rpc;

    /* images { ... }: what pulls may bring in, and where build-default may
     * fetch from (config_images.c). */
    struct {
        uint64_t max_bundle_bytes;
        uint64_t max_rootfs_bytes;
        uint64_t max_kernel_bytes;
        uint64_t max_initrd_bytes;
        char **mirrors;          /* http(s) mirrors a client may name; the host's apt
                                    mirror is always allowed */
        size_t n_mirrors;
        const char *keyring;     /* debootstrap --keyring (signatures always checked) */
    } images;

    struct {
        const char *bridge;
        const char *cidr;
        uint32_t net;        /* network address, host byte order */
        uint32_t prefix_len;
    } network;
};

/* Load `path`. When `must_exist` is false and the file is missing, the
 * built-in defaults are used. Errors name file, line and key. */
int config_load(const char *path, bool must_exist, struct bg_config **out,
                struct banger_error *err);
/* Parse config text (tests); `name` is used in messages. */
int config_load_string(const char *text, const char *name, struct bg_config **out,
                       struct banger_error *err);
void config_free(struct bg_config *cfg);

/* The images group: defaults into cfg, then the file's values checked
 * (config_images.c). */
void config_images_defaults(struct bg_config *cfg);
int config_images_load(struct bg_config *cfg, struct banger_error *err);
void config_images_free(struct bg_config *cfg);

/* The group named `name` (never NULL; an empty group when absent). The
 * pointer stays valid as long as cfg. */
const struct banger_cfg *config_group(const struct bg_config *cfg, const char *name);

/* Parse "8G", "512M", "1T", "4096" (bytes) -> bytes. */
int config_parse_size(const char *text, uint64_t *out);
/* Parse "a.b.c.d/n" (a network address) -> host-order address and prefix. */
int config_parse_cidr(const char *text, uint32_t *net, uint32_t *prefix_len);

/* The host API's cfg_* functions, also used by the core itself. */
int bg_cfg_get_int(const struct banger_cfg *g, const char *key, long long *out,
                   struct banger_error *err);
int bg_cfg_get_bool(const struct banger_cfg *g, const char *key, bool *out,
                    struct banger_error *err);
int bg_cfg_get_string(const struct banger_cfg *g, const char *key, const char **out,
                      struct banger_error *err);
int bg_cfg_get_size(const struct banger_cfg *g, const char *key, uint64_t *out,
                    struct banger_error *err);
int bg_cfg_check_keys(const struct banger_cfg *g, const char *const *allowed,
                      struct banger_error *err);
int bg_cfg_fail(const struct banger_cfg *g, const char *key, struct banger_error *err,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int bg_cfg_failv(const struct banger_cfg *g, const char *key, struct banger_error *err,
                 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
/* The current process-wide config (set by the daemon; tests may set it). */
void config_set_current(const struct bg_config *cfg);
const struct banger_cfg *bg_cfg_group_current(const char *name);

#endif
