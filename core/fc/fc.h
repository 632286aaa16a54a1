/* The Firecracker driver: the launch step of a VM start.
 *
 * Spawns firecracker detached from the daemon (double fork, own session), so
 * a daemon restart or crash never takes a VM down, configures it over its API
 * socket from vm->contrib, boots it, and stops or kills it again. Every pid
 * is re-identified before it is signalled, by what a user cannot fake: the
 * root process the kernel names as the API socket's listener, else the
 * recorded pid if it runs as root and names the socket (a recorded pid may
 * have been recycled; a command line alone may be anyone's).
 *
 * Handles: "fc.api_sock" (recorded before spawning) and "fc.pid" (right
 * after); "fc.console_pid" (the console log writer, right after it starts);
 * under the jailer also "fc.jail_dir", "fc.jail_uid", "fc.jail_tap".
 * Files: <runtime_dir>/api.sock; in <state_dir>, the console ring
 * firecracker.log, firecracker.log.1 and firecracker.log.start. */
#ifndef BANGER_FC_H
#define BANGER_FC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "host/vm.h"
#include "util/error.h"

/* Firecracker describes virtio-mmio devices in ACPI only from v1.8.0, and
 * Debian's guest kernel finds them only that way: older ones boot a guest
 * without disks. */
#define FC_MIN_VERSION "1.8.0"
#define FC_DEFAULT_BIN "firecracker"
#define FC_DEFAULT_STOP_GRACE_MS 10000
#define FC_DEFAULT_API_WAIT_MS 5000
#define FC_DEFAULT_API_TIMEOUT_MS 10000
#define FC_BASE_BOOT_ARGS "console=ttyS0 reboot=k panic=1 pci=off"

#define FC_HANDLE_API_SOCK "fc.api_sock"
#define FC_HANDLE_PID "fc.pid"
#define FC_HANDLE_JAIL_DIR "fc.jail_dir"   /* <chroot_base>/<exec name>/<id> */
#define FC_HANDLE_JAIL_UID "fc.jail_uid"
#define FC_HANDLE_JAIL_TAP "fc.jail_tap"   /* the TAP lent to the VM uid */

#define FC_API_SOCK_NAME "api.sock"
#define FC_DEFAULT_JAIL_BASE "/srv/jailer"
/* Jailed VMMs run as base + CID: a block no login user or subuid range uses. */
#define FC_DEFAULT_JAIL_UID_BASE 1500000000u

#define FC_HANDLE_CONSOLE_PID "fc.console_pid"

/* The console ring in the VM's state dir (fc_console_ring.c). */
#define FC_CONSOLE_LOG_NAME "firecracker.log"
#define FC_DEFAULT_CONSOLE_LOG_MAX (4ull << 20)

struct fc_driver {
    const char *firecracker_bin;    /* name on PATH or a path; NULL = "firecracker" */
    int stop_grace_ms;              /* SendCtrlAltDel -> SIGKILL; 0 = default */
    int api_wait_ms;                /* spawn -> API socket ready; 0 = default */
    int api_timeout_ms;             /* one API request; 0 = default */
    const char *const *extra_args;  /* appended to argv (tests); NULL-terminated or NULL */
    const char *jailer_bin;         /* NULL or "": Firecracker runs without its jailer */
    const char *jail_base;          /* --chroot-base-dir; NULL = FC_DEFAULT_JAIL_BASE */
    uid_t jail_uid_base;            /* VM uid = gid = base + CID; 0 = the default */
    uint64_t console_log_max_bytes; /* console ring cap; 0 = FC_DEFAULT_CONSOLE_LOG_MAX */
};

/* ---- process (fc_proc.c) ------------------------------------------------ */

/* The live Firecracker serving `api_sock`, 0 when none runs. When something
 * listens on api_sock: that listener (SO_PEERCRED of a connection), if it
 * runs as the VMM's uid: root, or for a jailed VMM the uid root lent the
 * socket's directory to (fc_jail.c). Otherwise (socket gone, not bound yet,
 * backlog full): `recorded`, if it runs as that uid (real and effective) and
 * its cmdline names api_sock after --api-sock. Zombies do not count. */
pid_t fc_find_pid(const char *api_sock, pid_t recorded);

/* Has pid exited (gone, or a zombie)? */
bool fc_pid_exited(pid_t pid);

/* Send `sig` to the Firecracker of api_sock (re-identified through a pidfd,
 * so a recycled pid is never hit) and wait up to wait_ms for it to exit.
 * Returns 0 when it is gone (or never ran), -ETIMEDOUT when it still runs.
 * sig 0 only waits. */
int fc_signal_and_wait(const char *api_sock, pid_t recorded, int sig, int wait_ms,
                       struct banger_error *err);

/* ---- spawn and API socket (fc_spawn.c) ---------------------------------- */

/* malloc'd <runtime_dir>/api.sock, or NULL without runtime dir or when the
 * path does not fit sun_path. */
char *fc_api_sock_path(const struct banger_vm *vm);
/* The API socket path to stop: the recorded handle, else derived. */
char *fc_api_sock_for_stop(struct banger_vm *vm);

/* Remove api.sock, vsock.sock and vsock.sock_* in the runtime dir (and the
 * contributed vsock path). Missing files are fine. */
int fc_remove_sockets(struct banger_vm *vm, struct banger_error *err);

/* Unlink stale sockets, record fc.api_sock, spawn firecracker detached, record
 * fc.pid and vm->vmm_pid. */
int fc_spawn(const struct fc_driver *drv, struct banger_vm *vm, struct banger_error *err);

/* A program double-forked into a session of its own, so it is re-parented
 * away from the daemon and outlives it (the VMM, its console writer):
 * fds[i] becomes descriptor i (-1: i stays what it is in the daemon), every
 * descriptor above is closed, signals are reset. */
#define FC_DETACHED_MAX_FDS 8
struct fc_detached {
    const char *what;     /* error prefix: "firecracker", "console log" */
    const char *bin;
    char *const *argv;
    char *const *envp;
    const int *fds;
    int n_fds;            /* 1..FC_DETACHED_MAX_FDS */
};
int fc_spawn_detached(const struct fc_detached *d, pid_t *pid_out, struct banger_error *err);

/* Wait until the API socket accepts connections; fails early with
 * "firecracker exited: <console summary>" when the process dies. */
int fc_wait_api(struct banger_vm *vm, int timeout_ms, struct banger_error *err);

/* 0 when the VM's Firecracker runs; -ESRCH with "firecracker exited:
 * <console summary>" when it does not. Updates vm->vmm_pid. */
int fc_check_alive(struct banger_vm *vm, struct banger_error *err);

/* ---- jailer (fc_jail.c) ------------------------------------------------- */

bool fc_jail_enabled(const struct fc_driver *drv);
/* The uid and gid the VM's jailed VMM runs as. */
uid_t fc_jail_uid(const struct fc_driver *drv, const struct banger_vm *vm);
/* The API socket's host path for a jailed VMM (<jail>/run/api.sock), or
 * NULL when it does not fit sun_path. */
char *fc_jail_api_sock(const struct fc_driver *drv, const struct banger_vm *vm,
                       const char *fc_bin);
/* Record fc.jail_dir / fc.jail_uid, then build the jail for fc_bin: /run
 * owned by the VM uid (a symlink to its vsock socket at the contributed
 * path), the kernel, initrd and drives linked (or bound, or a device node
 * made) into it. */
int fc_jail_prepare(const struct fc_driver *drv, struct banger_vm *vm, const char *fc_bin,
                    struct banger_error *err);
/* The jailer's argv (every string malloc'd; fc_jail_argv_free). */
char **fc_jail_argv(const struct fc_driver *drv, const struct banger_vm *vm, const char *jailer,
                    const char *fc_bin);
void fc_jail_argv_free(char **argv);
/* `host_path` as the VMM sees it (malloc'd): inside the jail when the VM has
 * one, else unchanged. */
char *fc_jail_vmm_path(struct banger_vm *vm, const char *host_path);
/* Unmount what is mounted in the jail, remove its tree, give the runtime
 * dir back to root, drop the handles. No jail recorded: nothing to do. */
int fc_jail_remove(struct banger_vm *vm, struct banger_error *err);

/* ---- console (fc_console.c) -------------------------------------------- */

/* Guest lines quoted before the meaningful one. */
#define FC_CONSOLE_CONTEXT_LINES 5

/* One line for an error message from a console text (guest serial output
 * mixed with Firecracker's own log lines): the line that says why the guest
 * did not come up -- a kernel panic, the initrd's "banger-initrd: ..."
 * message, Firecracker's error -- else the last guest line (or "no output
 * from the guest; firecracker: <its last line>"); then
 * " (console before it: a | b | ...)" with the up to FC_CONSOLE_CONTEXT_LINES
 * guest lines that precede it. Kernel timestamps and control characters are dropped, long
 * lines cut. "" for a text without lines. */
void fc_console_summarize(const char *text, size_t len, char *buf, size_t buf_len);

/* The same for the end of the VM's console ring, from where this VMM's
 * output began (vm->vmm_log_start) when it was spawned here. */
void fc_console_summary(const struct banger_vm *vm, char *buf, size_t buf_len);

/* ---- console ring (fc_console_ring.c) and its writer (fc_console_log.c) --- */

/* The three files of a VM's console ring; -1 for one that is missing. */
struct fc_console_ring {
    int cur;   /* firecracker.log: the newest part */
    int old;   /* firecracker.log.1: the part before it */
    int start; /* firecracker.log.start: stream offset of firecracker.log's first byte */
};

/* Open the ring in state_dir: read-only (missing files are fine), or
 * read-write and created (0600) for the writer. No symlinks, regular files
 * only. */
int fc_console_ring_open(const char *state_dir, bool create, struct fc_console_ring *ring,
                         struct banger_error *err);
void fc_console_ring_close(struct fc_console_ring *ring);
/* Stream offsets: where the ring's oldest byte, firecracker.log's first byte
 * and the end are. */
void fc_console_ring_geometry(const struct fc_console_ring *ring, long long *ring_start,
                              long long *cur_start, long long *end);

/* Bytes of the ring, in order. */
struct fc_console_chunk {
    char *data;     /* malloc'd, NUL-terminated (the bytes may hold NULs too) */
    size_t len;
    long long from; /* stream offset of data[0] */
    long long end;  /* stream offset of the ring's end */
};

/* Up to `max` bytes from stream offset `from` (negative: the last -from
 * bytes). An offset before the ring's oldest byte reads from that byte; one
 * past the end (a reset log) reads from the end. A VM without a log reads as
 * empty. */
int fc_console_read(const char *state_dir, long long from, size_t max,
                    struct fc_console_chunk *out, struct banger_error *err);

/* The writer program: $BANGER_CONSOLE_LOG, else the installed one. */
const char *fc_console_log_program(void);

/* Open (create) the ring, set vm->vmm_log_start to its end, start the
 * writer detached (it drops to "nobody" and keeps only its descriptors),
 * record "fc.console_pid", and hand back in *vmm_fd the write end of the pipe
 * the VMM's stdout and stderr go to. */
int fc_console_log_start(const struct fc_driver *drv, struct banger_vm *vm, int *vmm_fd,
                         struct banger_error *err);

/* The recorded writer, if it still runs and holds this VM's firecracker.log
 * open for writing; else 0. */
pid_t fc_console_log_pid(struct banger_vm *vm);

/* Once the VMM is gone: give the writer a moment to drain the pipe and exit,
 * then SIGKILL it (re-identified through a pidfd); drop "fc.console_pid". */
int fc_console_log_stop(struct banger_vm *vm, struct banger_error *err);

/* ---- API (fc_api.c) ------------------------------------------------------ */

/* One request; 2xx is success, otherwise err is "firecracker: PUT /path:
 * <fault_message>". body may be NULL (GET). *reply (may be NULL) receives the
 * malloc'd response body. */
int fc_api_request(const char *api_sock, const char *method, const char *path,
                   const char *body, int timeout_ms, char **reply, struct banger_error *err);

/* FC_BASE_BOOT_ARGS plus every contributed kernel argument; malloc'd. */
char *fc_boot_args(const struct banger_vm *vm);

/* machine-config, boot-source, drives, network interface, vsock. */
int fc_configure(struct banger_vm *vm, const char *api_sock, int timeout_ms,
                 struct banger_error *err);

/* PUT /actions {"action_type": action}. */
int fc_action(const char *api_sock, const char *action, int timeout_ms,
              struct banger_error *err);

/* ---- driver (fc_driver.c) ----------------------------------------------- */

/* Spawn, wait for the API, configure, InstanceStart. On failure the process
 * may still run: the caller undoes with fc_kill (the engine does). Fault
 * points (BANGER_FAULTS): "fc.configure" after the API is up, "fc.start"
 * before InstanceStart. */
int fc_launch(const struct fc_driver *drv, struct banger_vm *vm, struct banger_error *err);

/* SendCtrlAltDel, wait up to grace_ms, then SIGKILL and wait; then remove
 * the sockets and the fc.* handles. Nothing running counts as done. */
int fc_stop(const struct fc_driver *drv, struct banger_vm *vm, int grace_ms,
            struct banger_error *err);

/* Send `sig` (SIGKILL when 0), wait for the exit, remove sockets and handles. */
int fc_kill(struct banger_vm *vm, int sig, struct banger_error *err);

/* After a daemon restart: set vm->vmm_pid from the handles and /proc, and
 * record the pid in the handles when it changed. Writes handles.json, so
 * the caller holds the VM's lock. Returns the pid, 0 when none runs. */
pid_t fc_adopt(struct banger_vm *vm);
/* The same lookup, writing nothing: for readers without the lock. */
pid_t fc_find(struct banger_vm *vm);

/* Fill ops with launch / undo / stop bound to drv (which must outlive ops). */
void fc_driver_launch_ops(struct fc_driver *drv, struct engine_launch_ops *ops);

/* `<bin> --version` -> malloc'd "X.Y.Z". */
int fc_version(const char *bin, char **version, struct banger_error *err);
/* Compare "X.Y.Z" strings: <0, 0, >0. Unparsable sorts lowest. */
int fc_version_compare(const char *a, const char *b);
/* Is `version` at least FC_MIN_VERSION? */
bool fc_version_supported(const char *version);

/* fc_version, remembered per resolved binary path, inode, size and mtime,
 * so a launch does not run `--version` each time; a replaced binary is
 * asked again. The binary sees the daemon's environment, as the VMM does. */
int fc_version_cached(const char *bin, char **version, struct banger_error *err);

/* The version of `bin` is at least FC_MIN_VERSION and at least what the
 * VM's image asks for (manifest.json beside its rootfs: "boot":
 * {"min_firecracker": "X.Y.Z"}); otherwise -ENOTSUP and why. */
int fc_check_version(const char *bin, const struct banger_vm *vm, struct banger_error *err);

/* The refusal text for a binary older than FC_MIN_VERSION (doctor, start). */
int fc_version_too_old(const char *version, struct banger_error *err);

#endif
