/* banger capability ABI — the one header a capability module includes.
 *
 * A capability module is a shared object in bangerd's plugin_dir that exports
 *
 *     const struct banger_capability *banger_capability_v1(void);
 *
 * The descriptor it returns tells the daemon the module's name, when it runs
 * (before Firecracker launches, after the guest booted, or both) and its
 * callbacks. The daemon hands the module a table of host functions
 * (struct banger_host_api) at init.
 *
 * Compatibility rules (the contract with third-party modules):
 *  - BANGER_CAPABILITY_ABI_VERSION changes only when an existing field changes
 *    meaning or moves. Modules built for another major version are refused.
 *  - Structures that cross the boundary start with a size. New fields are only
 *    ever appended. A reader checks BANGER_HAS_FIELD() before touching a field
 *    newer than the smallest size it accepts; the daemon does this for the
 *    descriptor, a module should do it for the host table and the VM info.
 *  - Every callback except start is optional (NULL = nothing to do).
 *
 * Conventions:
 *  - Callbacks return 0 or a negative errno. On failure they describe why
 *    through host->fail(err, ...) — that text reaches the user's terminal as
 *    "<module>: <reason>".
 *  - Strings handed to a module stay valid for the duration of the call only,
 *    unless documented otherwise. Copy what you keep.
 *  - Callbacks for different VMs may run concurrently on different threads;
 *    callbacks for one VM never do. Protect your shared state.
 *  - A module never execs a shell: use host->run with an argv.
 *
 * Build a module out of tree with:
 *     cc -shared -fPIC $(pkg-config --cflags banger-capability) foo.c -o foo.so
 */
#ifndef BANGER_CAPABILITY_H
#define BANGER_CAPABILITY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Major version of this ABI. */
#define BANGER_CAPABILITY_ABI_VERSION 1u

/* Name of the one symbol a module exports. */
#define BANGER_CAPABILITY_ENTRY "banger_capability_v1"

/* True when a structure of byte size `size` (its struct_size field)
 * contains `field` of type `type`. */
#define BANGER_HAS_FIELD(type, ptr, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

#if defined(__GNUC__)
#define BANGER_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define BANGER_EXPORT __attribute__((visibility("default")))
#else
#define BANGER_PRINTF(fmt, args)
#define BANGER_EXPORT
#endif

/* ---- opaque host objects ------------------------------------------------ */

/* One VM, as seen by a module during a callback. Owned by the daemon. */
struct banger_vm;

/* Where a failing callback writes its reason. Owned by the daemon. */
struct banger_error;

/* A module's configuration group (`tap = { ... };`), or an empty group when
 * the operator wrote none. Read it with the host's cfg_* functions. */
struct banger_cfg;

/* Rows for `banger doctor`. */
struct banger_doctor;

/* ---- values ------------------------------------------------------------- */

/* When a module's start runs. A module may ask for both. */
enum banger_phase {
    /* Before Firecracker is launched: host set-up and config contributions. */
    BANGER_PHASE_BEFORE_LAUNCH = 1u << 0,
    /* After InstanceStart succeeded: readiness checks, guest-facing work. */
    BANGER_PHASE_AFTER_BOOT = 1u << 1,
};

enum banger_log_level {
    BANGER_LOG_ERROR = 3,
    BANGER_LOG_WARNING = 4,
    BANGER_LOG_INFO = 6,
    BANGER_LOG_DEBUG = 7,
};

enum banger_doctor_status {
    BANGER_DOCTOR_PASS = 0,
    BANGER_DOCTOR_WARN = 1,
    BANGER_DOCTOR_FAIL = 2,
};

/* What the daemon knows about a VM. Returned by host->vm_info(); valid
 * during the callback. Fields are appended in later versions: check
 * struct_size (BANGER_HAS_FIELD) before reading a field newer than v1. */
struct banger_vm_info {
    uint32_t struct_size;
    uint32_t vcpu;              /* vCPU count */
    const char *id;             /* stable id, [0-9a-f]{12}; names host objects */
    const char *name;           /* DNS label, [a-z0-9-]{1,63} */
    const char *ip;             /* guest IPv4, dotted quad */
    const char *mac;            /* guest MAC, aa:bb:cc:dd:ee:ff */
    const char *gateway;        /* bridge address, dotted quad */
    uint32_t prefix_len;        /* network prefix length of network.cidr */
    uint32_t cid;               /* vsock context id (>= 3) */
    uint64_t memory_mib;        /* guest memory */
    uint64_t disk_size;         /* work disk size in bytes */
    uint64_t overlay_size;      /* copy-on-write overlay size in bytes */
    bool nat;                   /* the VM asked for outbound NAT */
    const char *state_dir;      /* persistent per-VM dir (state_dir/vms/<id>) */
    const char *runtime_dir;    /* per-VM runtime dir (runtime_dir/vms/<id>) */
    const char *rootfs_path;    /* image's read-only ext4 root filesystem */
    const char *kernel_path;    /* image's kernel (ELF vmlinux) */
    const char *initrd_path;    /* image's initrd, or NULL */
    const char *bridge;         /* network.bridge */
};

/* Drive ids that more than one party relies on. The root drive comes from
 * whichever root module the operator chose (snapshot, reflink, ...); the
 * work disk is the guest's /root, made by the core; the key injection and
 * the guest image look for it by these names. */
#define BANGER_DRIVE_ROOT "root"
#define BANGER_DRIVE_WORK "work"

/* Firecracker's cache_type for a drive. */
enum banger_drive_cache {
    /* Firecracker's default: the guest's flushes are not passed to the host. */
    BANGER_DRIVE_CACHE_UNSAFE = 0,
    /* Guest flushes become fsync on the host file: data the guest synced
     * survives a host crash. */
    BANGER_DRIVE_CACHE_WRITEBACK = 1,
};

/* A block device for Firecracker's PUT /drives/{drive_id}. */
struct banger_drive {
    uint32_t struct_size;
    bool is_root_device;        /* at most one per VM */
    bool is_read_only;
    const char *drive_id;       /* [A-Za-z0-9_]+, unique per VM */
    const char *path_on_host;
    /* Appended after ABI 1.0; read it only when BANGER_HAS_FIELD says so. */
    enum banger_drive_cache cache;
};

/* A network interface for Firecracker's PUT /network-interfaces/{iface_id}. */
struct banger_net_iface {
    uint32_t struct_size;
    const char *iface_id;       /* e.g. "eth0" */
    const char *host_dev_name;  /* the TAP device */
    const char *guest_mac;      /* NULL lets Firecracker choose */
};

/* Options for host->run. Zeroed fields mean the default. */
struct banger_run_opts {
    uint32_t struct_size;
    int timeout_ms;             /* 0 = 60 s; the child is SIGKILLed after it */
    const char *const *envp;    /* NULL = a minimal PATH/LANG environment */
    const void *stdin_data;     /* written to the child's stdin, or NULL */
    size_t stdin_len;
};

/* Result of host->run. Clear with host->run_result_clear. */
struct banger_run_result {
    uint32_t struct_size;
    int exit_status;            /* exit code, or -1 when killed by a signal */
    int term_signal;            /* signal that ended the child, or 0 */
    char *out;                  /* captured stdout, NUL-terminated */
    size_t out_len;
    char *err;                  /* captured stderr, NUL-terminated */
    size_t err_len;
};

/* ---- the host function table -------------------------------------------- */

struct banger_host_api {
    uint32_t struct_size;
    uint32_t abi_version;       /* BANGER_CAPABILITY_ABI_VERSION of the daemon */

    /* Logging to the daemon log. vm may be NULL; when given, the line carries
     * the VM's id and the current operation id. */
    void (*log)(int level, struct banger_vm *vm, const char *fmt, ...) BANGER_PRINTF(3, 4);

    /* Record why a callback failed; returns `negative_errno` so that a
     * callback can `return host->fail(err, -ENOENT, "image %s missing", p);`.
     * A later call replaces the message. */
    int (*fail)(struct banger_error *err, int negative_errno, const char *fmt, ...)
        BANGER_PRINTF(3, 4);

    /* Run argv[0] (resolved on PATH when it has no '/') with argv, no shell.
     * Returns 0 when the program exited 0; otherwise a negative errno and a
     * reason in err (exit status and the last line of stderr). res, when
     * given, receives exit status and captured output in every case in which
     * the program ran. opts and res may be NULL. */
    int (*run)(const char *const *argv, const struct banger_run_opts *opts,
               struct banger_run_result *res, struct banger_error *err);
    void (*run_result_clear)(struct banger_run_result *res);

    /* The VM's identity and resources. */
    const struct banger_vm_info *(*vm_info)(struct banger_vm *vm);

    /* Persisted per-VM handles: small strings that name the host objects a
     * module created (a TAP name, a loop device, a dm name, a rule handle).
     * set_handle returns only once state_dir/vms/<id>/handles.json is on
     * disk, so record a handle BEFORE creating the object it names: then a
     * crash at any point leaves enough for stop to clean up. Keys are
     * namespaced by the caller: use "<module>.<what>", e.g. "tap.dev".
     * value NULL deletes the key. get_handle returns NULL when unset; the
     * string is valid until the next set_handle for that VM. */
    int (*set_handle)(struct banger_vm *vm, const char *key, const char *value,
                      struct banger_error *err);
    const char *(*get_handle)(struct banger_vm *vm, const char *key);

    /* Contributions to this start's Firecracker configuration. Valid only
     * from a BANGER_PHASE_BEFORE_LAUNCH start; the daemon copies the values. */
    int (*add_drive)(struct banger_vm *vm, const struct banger_drive *drive,
                     struct banger_error *err);
    int (*set_net_iface)(struct banger_vm *vm, const struct banger_net_iface *iface,
                         struct banger_error *err);
    int (*set_vsock)(struct banger_vm *vm, uint32_t guest_cid, const char *uds_path,
                     struct banger_error *err);
    int (*add_kernel_arg)(struct banger_vm *vm, const char *arg, struct banger_error *err);

    /* The pid of the VM's Firecracker process, or 0 when none runs. Useful
     * from after-boot callbacks (has the VMM died while we waited?). */
    int (*vmm_pid)(struct banger_vm *vm);

    /* Fault injection for tests: returns 0, or — when the operator set
     * BANGER_FAULTS to a comma-separated list containing `point` — fills err
     * with "injected fault at <point>" and returns -EIO. Modules call it
     * between their sub-steps with points named "<module>.<sub-step>". */
    int (*fault_point)(struct banger_vm *vm, const char *point, struct banger_error *err);

    /* Configuration. `group` is the module's own group as given to init, or
     * one obtained from cfg_group. Getters return 0 and set *out when the key
     * is present with the right type, -ENOENT (out untouched) when absent,
     * -EINVAL with an error "FILE:LINE: group.key: expected ..." when the
     * type is wrong. Returned strings live as long as the daemon's config. */
    int (*cfg_get_int)(const struct banger_cfg *group, const char *key, long long *out,
                       struct banger_error *err);
    int (*cfg_get_bool)(const struct banger_cfg *group, const char *key, bool *out,
                        struct banger_error *err);
    int (*cfg_get_string)(const struct banger_cfg *group, const char *key,
                          const char **out, struct banger_error *err);
    /* Sizes like "8G", "512M", 1048576; in bytes. */
    int (*cfg_get_size)(const struct banger_cfg *group, const char *key, uint64_t *out,
                        struct banger_error *err);
    /* Refuse any key of `group` not in the NULL-terminated `allowed` list,
     * naming file, line and key. */
    int (*cfg_check_keys)(const struct banger_cfg *group, const char *const *allowed,
                          struct banger_error *err);
    /* Fail with "FILE:LINE: group.key: <message>" for a bad value. Returns -EINVAL. */
    int (*cfg_fail)(const struct banger_cfg *group, const char *key, struct banger_error *err,
                    const char *fmt, ...) BANGER_PRINTF(4, 5);
    /* Another top-level group, read-only, e.g. "network". Never NULL. */
    const struct banger_cfg *(*cfg_group)(const char *name);

    /* Add a row to `banger doctor`'s report. */
    void (*doctor_row)(struct banger_doctor *report, enum banger_doctor_status status,
                       const char *check, const char *fmt, ...) BANGER_PRINTF(4, 5);

    /* Appended after ABI 1.0; check BANGER_HAS_FIELD before calling.
     * Why the guest did not come up, from the VM's console (the VMM's
     * output, guest serial and VMM log mixed), as one line for an error
     * message: the meaningful line (a kernel panic, the initrd's
     * "banger-initrd: ..." message, the VMM's own error), then
     * " (console before it: a | b | ...)". Always NUL-terminates buf; ""
     * when the VMM printed nothing. */
    void (*vmm_console_summary)(struct banger_vm *vm, char *buf, size_t len);
};

/* ---- the module descriptor ---------------------------------------------- */

struct banger_capability {
    /* Must be BANGER_CAPABILITY_ABI_VERSION and sizeof(struct banger_capability)
     * of the header the module was built with. Checked before anything else. */
    uint32_t abi_version;
    uint32_t struct_size;

    const char *name;           /* [a-z0-9_-]+, equal to the file name without .so */
    const char *version;        /* the module's own version, free-form */
    const char *description;    /* one line for `bangerd --check`, or NULL */
    uint32_t phases;            /* bitwise OR of enum banger_phase, not 0 */
    /* NULL-terminated names of modules that must come earlier in the
     * operator's `plugins` list, or NULL. */
    const char *const *requires;

    /* Once per daemon, in configured order. Validate `cfg` (refuse unknown
     * keys), allocate state and store it in *state — but change nothing on
     * the host: `bangerd --check` runs init too. A failure stops the daemon
     * from starting; the module is unloaded without fini. */
    int (*init)(const struct banger_host_api *host, const struct banger_cfg *cfg,
                void **state, struct banger_error *err);
    /* Once per daemon after every module's init succeeded, in configured
     * order, when the daemon really serves (not for --check): make the host
     * changes the module needs for all VMs (a bridge, a listener, a thread).
     * A failure stops the daemon; fini is still called. */
    int (*activate)(void *state, struct banger_error *err);
    /* Once at daemon exit, in reverse order: undo activate, free state. */
    void (*fini)(void *state);

    /* Start this VM's part, once for each phase in `phases`. Either succeeds
     * or reports an error; after an error the daemon calls rollback for this
     * module and every module that started before it, in reverse. */
    int (*start)(void *state, struct banger_vm *vm, enum banger_phase phase,
                 struct banger_error *err);
    /* Undo what start did for `phase` (also when start failed half-way).
     * NULL means the daemon calls stop instead. */
    int (*rollback)(void *state, struct banger_vm *vm, enum banger_phase phase,
                    struct banger_error *err);
    /* Tear the VM's part down. Must work from persisted handles alone (after
     * a daemon restart), be idempotent (gone counts as done), and keep going
     * past errors, reporting the first. */
    int (*stop)(void *state, struct banger_vm *vm, struct banger_error *err);
    /* The VM is being deleted (after stop): remove persistent per-VM files. */
    int (*destroy)(void *state, struct banger_vm *vm, struct banger_error *err);

    /* Rows for `banger doctor`. */
    int (*doctor)(void *state, struct banger_doctor *report);

    /* At daemon start-up after live VMs were adopted: remove host objects that
     * carry this module's prefix but belong to none of `live` (n entries).
     * Also rebuild in-memory state for the live VMs. */
    int (*reconcile)(void *state, struct banger_vm *const *live, size_t n,
                     struct banger_error *err);
};

/* The entry point every module defines. */
typedef const struct banger_capability *(*banger_capability_entry_fn)(void);

/* Convenience for module authors:
 *     BANGER_CAPABILITY_DEFINE(my_descriptor)
 * defines the exported entry point returning &my_descriptor. */
#define BANGER_CAPABILITY_DEFINE(desc) \
    BANGER_EXPORT const struct banger_capability *banger_capability_v1(void); \
    BANGER_EXPORT const struct banger_capability *banger_capability_v1(void) { return &(desc); }

#ifdef __cplusplus
}
#endif

#endif /* BANGER_CAPABILITY_H */
