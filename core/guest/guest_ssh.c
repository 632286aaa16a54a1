/* banger's ssh identities, one per VM owner, and the launch wrapper that
 * hands the owner's (and root's) public key to each guest through the work
 * disk. */
#include "config.h"

#include "guest/guest.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUEST_KEY_MAX (64 * 1024)

/* Two requests of one uid must not both run ssh-keygen on one path. */
static pthread_mutex_t guest_keygen_mutex = PTHREAD_MUTEX_INITIALIZER;

/* Root keeps the path banger always used, so VMs from before owners
 * existed (all root's now) still accept root's key. */
char *guest_ssh_key_path(const char *state_dir, uid_t uid)
{
    if (uid == 0)
        return xasprintf("%s/ssh/id_ed25519", state_dir);
    return xasprintf("%s/ssh/uid-%u/id_ed25519", state_dir, (unsigned)uid);
}

char *guest_known_hosts_path(const char *state_dir)
{
    return xasprintf("%s/ssh/known_hosts", state_dir);
}

int guest_ssh_setup(const char *state_dir, uid_t uid, struct banger_error *err)
{
    char *dir = fs_join(state_dir, "ssh");
    char *uid_dir = uid == 0 ? NULL : xasprintf("%s/uid-%u", dir, (unsigned)uid);
    char *key = guest_ssh_key_path(state_dir, uid);
    char *pub = xasprintf("%s.pub", key);
    char *comment = uid == 0 ? xstrdup("banger") : xasprintf("banger-uid-%u", (unsigned)uid);
    struct stat st;
    pthread_mutex_lock(&guest_keygen_mutex);
    int r = fs_ensure_private_dir(dir, 0700, err);
    if (r == 0 && uid_dir)
        r = fs_ensure_private_dir(uid_dir, 0700, err);
    if (r < 0)
        goto cleanup;
    if (stat(key, &st) == 0 && stat(pub, &st) == 0)
        goto cleanup;
    /* Half a pair (a crash between the two files) is regenerated whole. */
    unlink(key);
    unlink(pub);
    const char *const argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                                 "-f", key, NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .timeout_ms = 30000 };
    r = runner_run(argv, &opts, NULL, err);
    if (r < 0) {
        bg_error_prefix(err, "generating banger's ssh key %s", key);
        goto cleanup;
    }
    bg_log(BANGER_LOG_INFO, NULL, "generated banger's ssh key %s for uid %u", key,
           (unsigned)uid);
cleanup:
    pthread_mutex_unlock(&guest_keygen_mutex);
    free(dir);
    free(uid_dir);
    free(key);
    free(pub);
    free(comment);
    return r;
}

/* uid's public key text, one line; made on first use. */
static int guest_read_pubkey(const char *state_dir, uid_t uid, char **out,
                             struct banger_error *err)
{
    int r = guest_ssh_setup(state_dir, uid, err);
    if (r < 0)
        return r;
    char *key = guest_ssh_key_path(state_dir, uid);
    char *pub = xasprintf("%s.pub", key);
    size_t len = 0;
    r = fs_read_all(pub, GUEST_KEY_MAX, out, &len, err);
    if (r == 0 && (len == 0 || strncmp(*out, "ssh-", 4) != 0)) {
        free(*out);
        *out = NULL;
        r = bg_fail(err, -EINVAL, "%s is not an ssh public key", pub);
    }
    free(key);
    free(pub);
    return r;
}

static const struct banger_drive *guest_work_drive(const struct banger_vm *vm)
{
    for (size_t i = 0; i < vm->contrib.n_drives; i++) {
        const struct banger_drive *d = &vm->contrib.drives[i];
        if (d->drive_id && strcmp(d->drive_id, GUEST_WORK_DRIVE_ID) == 0)
            return d;
    }
    return NULL;
}

/* The authorized_keys text for the VM: its owner's key, and root's too so
 * that root reaches every VM with one identity. */
static int guest_authorized_keys(struct guest_launch *gl, const struct banger_vm *vm,
                                 char **out, struct banger_error *err)
{
    struct vm_record *rec = NULL;
    char *owner_key = NULL, *root_key = NULL;
    char eb[512] = "";
    uid_t owner = 0;
    int r = 0;
    /* Without a store (tools that make a disk for root), root's key alone. */
    if (gl->store) {
        r = store_vm_get_by_id(gl->store, vm->info.id, &rec, eb, sizeof(eb));
        if (r < 0)
            return bg_fail(err, r, "the owner of VM '%s': %s", vm->info.name, eb);
        owner = (uid_t)rec->owner_uid;
    }
    r = guest_read_pubkey(gl->state_dir, 0, &root_key, err);
    if (r == 0 && owner != 0)
        r = guest_read_pubkey(gl->state_dir, owner, &owner_key, err);
    if (r == 0) {
        if (owner_key)
            *out = xasprintf("%.*s\n%.*s\n", (int)strcspn(owner_key, "\n"), owner_key,
                             (int)strcspn(root_key, "\n"), root_key);
        else
            *out = xasprintf("%.*s\n", (int)strcspn(root_key, "\n"), root_key);
    }
    free(owner_key);
    free(root_key);
    vm_record_free(rec);
    return r;
}

static int guest_launch_launch(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct guest_launch *gl = ctx;
    const struct banger_drive *work = guest_work_drive(vm);
    if (!work || !work->path_on_host || work->is_read_only) {
        bg_log(BANGER_LOG_DEBUG, vm->info.id,
               "no writable work disk: banger's ssh key is not given to this guest");
    } else {
        char *pubkey = NULL;
        int r = guest_authorized_keys(gl, vm, &pubkey, err);
        if (r == 0) {
            /* A uid of the VM's own: no other process can reach debugfs's fds. */
            struct guest_inject_as as = gl->inject_as;
            if (as.per_vm_uid_base)
                as.uid = as.gid = as.per_vm_uid_base + vm->info.cid;
            r = guest_inject_key(work->path_on_host, pubkey, &as, err);
        }
        free(pubkey);
        if (r < 0) {
            bg_error_prefix(err, "ssh key into the work disk");
            return r;
        }
    }
    return gl->inner.launch(gl->inner.ctx, vm, err);
}

static int guest_launch_undo(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct guest_launch *gl = ctx;
    return gl->inner.undo ? gl->inner.undo(gl->inner.ctx, vm, err) : 0;
}

static int guest_launch_stop(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct guest_launch *gl = ctx;
    return gl->inner.stop ? gl->inner.stop(gl->inner.ctx, vm, err) : 0;
}

static int guest_launch_destroy(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    struct guest_launch *gl = ctx;
    return gl->inner.destroy ? gl->inner.destroy(gl->inner.ctx, vm, err) : 0;
}

void guest_launch_wrap(struct guest_launch *gl, const char *state_dir, struct store *store,
                       const struct guest_inject_as *inject_as, struct engine_launch_ops *ops)
{
    gl->inner = *ops;
    gl->state_dir = xstrdup(state_dir);
    gl->store = store;
    gl->inject_as = *inject_as;
    *ops = (struct engine_launch_ops){
        .ctx = gl,
        .launch = guest_launch_launch,
        .undo = guest_launch_undo,
        .stop = guest_launch_stop,
        .destroy = guest_launch_destroy,
    };
}

void guest_launch_done(struct guest_launch *gl)
{
    if (!gl)
        return;
    free(gl->state_dir);
    gl->state_dir = NULL;
}
