/* Guest access: banger's ssh identities, one key pair per VM owner
 * (root's state_dir/ssh/id_ed25519, uid N's state_dir/ssh/uid-N/id_ed25519),
 * the host keys of guests pinned on first contact (state_dir/ssh/known_hosts),
 * and the public keys written into each VM's work disk before it boots: the
 * owner's and root's, so one member's key opens only that member's VMs. */
#ifndef BANGER_GUEST_H
#define BANGER_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "host/vm.h"
#include "store/store.h"
#include "util/error.h"

#define GUEST_SSH_USER "root"
/* The drive mounted at /root in the guest (core/workdisk). */
#define GUEST_WORK_DRIVE_ID BANGER_DRIVE_WORK

/* Create state_dir/ssh (0700; for uid N also ssh/uid-N, 0700) and generate
 * uid's ed25519 key pair there when it is missing (ssh-keygen through the
 * runner). The files are root's, the private key 0600: the daemon hands a
 * key only to its own uid (vm.ssh_info). Safe to call from many threads. */
int guest_ssh_setup(const char *state_dir, uid_t uid, struct banger_error *err);

/* malloc'd paths below state_dir/ssh: uid's private key (".pub" appended:
 * the public one) and the pinned host keys. */
char *guest_ssh_key_path(const char *state_dir, uid_t uid);
char *guest_known_hosts_path(const char *state_dir);

/* Who runs debugfs on a guest-writable disk. */
struct guest_inject_as {
    bool drop_privileges;    /* false: as the caller (tools run by root) */
    uid_t uid;
    gid_t gid;
    uid_t per_vm_uid_base;   /* guest_launch: non-zero = uid = gid = base + the VM's CID */
    const char *debugfs;     /* NULL = "debugfs" on the runner's PATH */
};

/* Write `pubkeys` (one or more "ssh-..." lines) as /.ssh/authorized_keys
 * (0600, dir 0700, owner root) in the ext4 image `disk` without mounting it
 * (debugfs -w), then read it back.
 * The work disk's root is the guest's /root. debugfs gets the disk and the
 * key as descriptors and runs as `as` (guest_inject.c says why). */
int guest_inject_key(const char *disk, const char *pubkeys, const struct guest_inject_as *as,
                     struct banger_error *err);

/* Wraps a launch step: before the original launch, the public keys of the
 * VM's owner (read from `store`; NULL: root's alone) and of root go into the
 * VM's "work" drive (when the VM has one). */
struct guest_launch {
    struct engine_launch_ops inner;
    char *state_dir;
    struct store *store;
    struct guest_inject_as inject_as;
};
void guest_launch_wrap(struct guest_launch *gl, const char *state_dir, struct store *store,
                       const struct guest_inject_as *inject_as, struct engine_launch_ops *ops);
void guest_launch_done(struct guest_launch *gl);

/* ---- known_hosts (guest_hosts.c) ---------------------------------------- */

/* Ask the guest at `ip` for its ed25519 host key (ssh-keyscan, bounded).
 * -EAGAIN when nothing answers yet. *key is "ssh-ed25519 AAAA...". */
int guest_host_scan(const char *ip, char **key, struct banger_error *err);

/* Trust on first use: when no key is pinned for `ip` / `<name>.vm`, pin
 * `key` (*pinned_now = true); when a different key is pinned, fail with
 * -EKEYREJECTED ("host key changed"). */
int guest_host_pin(const char *state_dir, const char *name, const char *ip, const char *key,
                   bool *pinned_now, struct banger_error *err);

/* Drop every entry naming `ip` or `<name>.vm` (VM deleted). Missing file is fine. */
int guest_host_forget(const char *state_dir, const char *name, const char *ip,
                      struct banger_error *err);

/* Does the known_hosts line's host field (comma-separated) name `host`? */
bool guest_hosts_line_names(const char *line, const char *host);

#endif
