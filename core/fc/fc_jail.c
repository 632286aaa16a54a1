/* Firecracker under its jailer: a chroot per VM, a uid/gid per VM, cgroup v2.
 *
 * The jailer (fc:docs/jailer.md) copies the Firecracker binary into
 * <chroot_base>/<exec name>/<id>/root, makes /dev/kvm and /dev/net/tun there,
 * pivots into it in a new mount namespace, drops to --uid/--gid and execs
 * Firecracker. Everything else is ours to provide and to clean up:
 *
 *   <jail>/run       the VMM's own directory (its uid, 0700): it binds the API
 *                    socket there, host path <jail>/run/api.sock (recorded as
 *                    fc.api_sock), and the vsock socket, which a symlink at the
 *                    contributed host path points to; paths under the VM's
 *                    runtime dir appear below /run to the VMM
 *   <jail>/vmlinux, /initrd, /drive-<id>
 *                    hard links of the files (a bind mount across file
 *                    systems), or a node made with the device's dev_t for a
 *                    block device (a dm snapshot); writable ones belong to
 *                    the VM uid
 *
 *   the TAP          owned by the VM uid (TUNSETOWNER/TUNSETGROUP): without
 *                    CAP_NET_ADMIN, Firecracker may attach only to a TAP it
 *                    owns; it is given back to root at removal
 *
 * <chroot_base>/<exec name> and <jail>/.. are root-only 0700, so no other
 * user can reach anything inside. Handles: "fc.jail_dir" and "fc.jail_uid",
 * recorded before anything is made. */
#include "config.h"

#include "fc/fc.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#define FC_JAIL_RUN "/run"
#define FC_JAIL_UMOUNT_ROUNDS 16

bool fc_jail_enabled(const struct fc_driver *drv)
{
    return drv && drv->jailer_bin && drv->jailer_bin[0];
}

static const char *fc_jail_base(const struct fc_driver *drv)
{
    return drv->jail_base && drv->jail_base[0] ? drv->jail_base : FC_DEFAULT_JAIL_BASE;
}

uid_t fc_jail_uid(const struct fc_driver *drv, const struct banger_vm *vm)
{
    uid_t base = drv->jail_uid_base ? drv->jail_uid_base : FC_DEFAULT_JAIL_UID_BASE;
    return base + vm->info.cid;
}

/* <base>/<exec name>/<id>; malloc'd. */
static char *fc_jail_top(const struct fc_driver *drv, const struct banger_vm *vm,
                         const char *fc_bin)
{
    char *copy = xstrdup(fc_bin);
    char *top = xasprintf("%s/%s/%s", fc_jail_base(drv), basename(copy), vm->info.id);
    free(copy);
    return top;
}

static char *fc_jail_root(const char *top)
{
    return fs_join(top, "root");
}

/* Where the VMM sees `host_path`: a path inside its chroot. Paths under the
 * runtime dir appear under /run; the kernel, initrd and drives at the names
 * fc_jail_prepare gave them. Without a jail: the host path. */
char *fc_jail_vmm_path(struct banger_vm *vm, const char *host_path)
{
    const char *top = bg_vm_get_handle(vm, FC_HANDLE_JAIL_DIR);
    const char *run = vm->info.runtime_dir;
    if (!top || !top[0] || !host_path)
        return host_path ? xstrdup(host_path) : NULL;
    size_t n = run ? strlen(run) : 0;
    if (n && strncmp(host_path, run, n) == 0 && (host_path[n] == '/' || !host_path[n]))
        return xasprintf(FC_JAIL_RUN "%s", host_path + n);
    if (vm->info.kernel_path && strcmp(host_path, vm->info.kernel_path) == 0)
        return xstrdup("/vmlinux");
    if (vm->info.initrd_path && strcmp(host_path, vm->info.initrd_path) == 0)
        return xstrdup("/initrd");
    for (size_t i = 0; i < vm->contrib.n_drives; i++) {
        const struct banger_drive *d = &vm->contrib.drives[i];
        if (d->path_on_host && strcmp(host_path, d->path_on_host) == 0)
            return xasprintf("/drive-%s", d->drive_id);
    }
    return xstrdup(host_path);
}

/* Give the persistent TAP `dev` to uid:gid (0:0 gives it back to root: a TAP
 * without an owner may be attached by any user). A TAP that no longer
 * exists is left alone at removal: TUNSETIFF would make a new one. */
static int fc_jail_tap_owner(const char *dev, uid_t uid, gid_t gid, struct banger_error *err)
{
    struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
    int r = 0;
    if (strlen(dev) >= IFNAMSIZ)
        return bg_fail(err, -EINVAL, "jail: TAP name '%s' is too long", dev);
    if (if_nametoindex(dev) == 0)
        return uid == 0 ? 0 : bg_fail_errno(err, -errno, "jail: TAP %s", dev);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return bg_fail_errno(err, -errno, "jail: open /dev/net/tun");
    memcpy(ifr.ifr_name, dev, strlen(dev) + 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0 ||
        ioctl(fd, TUNSETGROUP, (unsigned long)gid) < 0)
        r = bg_fail_errno(err, -errno, "jail: TAP %s owner %d", dev, (int)uid);
    close(fd);
    return r;
}

/* A missing directory is made with `mode`, root's; an existing one is made
 * root's and `mode`. */
static int fc_jail_mkdir(const char *path, mode_t mode, struct banger_error *err)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return bg_fail_errno(err, -errno, "jail: mkdir %s", path);
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return bg_fail(err, -ENOTDIR, "jail: %s is not a directory", path);
    if (st.st_uid != 0 && chown(path, 0, 0) < 0)
        return bg_fail_errno(err, -errno, "jail: chown %s", path);
    if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
        return bg_fail_errno(err, -errno, "jail: chmod %s", path);
    return 0;
}

/* Drive ids name files in the jail: Firecracker's id rules, [A-Za-z0-9_]+. */
static bool fc_jail_name_ok(const char *id)
{
    if (!id || !id[0] || strlen(id) > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

/* The operator's base dir is made when missing, never taken over: anyone who
 * may write to it could swap the jails below. */
static int fc_jail_check_base(const char *base, struct banger_error *err)
{
    struct stat st;
    if (mkdir(base, 0755) < 0 && errno != EEXIST)
        return bg_fail_errno(err, -errno, "jail: mkdir %s", base);
    if (lstat(base, &st) < 0)
        return bg_fail_errno(err, -errno, "jail: %s", base);
    if (!S_ISDIR(st.st_mode))
        return bg_fail(err, -ENOTDIR, "jail: %s is not a directory", base);
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return bg_fail(err, -EPERM, "jail: %s must be root's and writable by root alone "
                       "(owner %u, mode %04o)", base, (unsigned)st.st_uid,
                       (unsigned)(st.st_mode & 07777));
    return 0;
}

/* One file into the jail as `name`: a block device as a node of its own,
 * a regular file as a hard link, or across file systems a bind mount. */
static int fc_jail_place(const char *root, const char *name, const char *src, bool writable,
                         uid_t uid, struct banger_error *err)
{
    char *dst = fs_join(root, name);
    struct stat st;
    int r = 0;

    if (stat(src, &st) < 0) {
        r = bg_fail_errno(err, -errno, "jail: %s", src);
        goto cleanup;
    }
    if (S_ISBLK(st.st_mode)) {
        if (mknod(dst, S_IFBLK | 0600, st.st_rdev) < 0) {
            r = bg_fail_errno(err, -errno, "jail: mknod %s (%u:%u)", dst, major(st.st_rdev),
                              minor(st.st_rdev));
            goto cleanup;
        }
        /* The node is the jail's own: the VMM may open it, nothing else changes. */
        if (chown(dst, uid, uid) < 0 || chmod(dst, writable ? 0600 : 0400) < 0) {
            r = bg_fail_errno(err, -errno, "jail: chown %s", dst);
            goto cleanup;
        }
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        r = bg_fail(err, -EINVAL, "jail: %s is neither a file nor a block device", src);
        goto cleanup;
    }
    if (link(src, dst) < 0) {
        if (errno != EXDEV) {
            r = bg_fail_errno(err, -errno, "jail: link %s to %s", src, dst);
            goto cleanup;
        }
        int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            r = bg_fail_errno(err, -errno, "jail: create %s", dst);
            goto cleanup;
        }
        close(fd);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0) {
            r = bg_fail_errno(err, -errno, "jail: bind %s to %s", src, dst);
            goto cleanup;
        }
    }
    /* A hard link is the file itself: a writable disk becomes the VM uid's.
     * Read-only files keep their owner and must be world-readable. */
    if (writable && chown(dst, uid, uid) < 0)
        r = bg_fail_errno(err, -errno, "jail: chown %s to %u", dst, (unsigned)uid);
cleanup:
    free(dst);
    return r;
}

int fc_jail_prepare(const struct fc_driver *drv, struct banger_vm *vm, const char *fc_bin,
                    struct banger_error *err)
{
    uid_t uid = fc_jail_uid(drv, vm);
    char *top = fc_jail_top(drv, vm, fc_bin);
    char *root = fc_jail_root(top);
    char *exec_dir = xstrdup(top);
    char *run = NULL;
    char uid_text[24];
    int r;

    if (!vm->info.runtime_dir || !vm->info.runtime_dir[0]) {
        r = bg_fail(err, -EINVAL, "jail: the VM has no runtime dir");
        goto cleanup;
    }
    /* Recorded first: a crash from here on leaves enough for stop to clean up. */
    snprintf(uid_text, sizeof(uid_text), "%u", (unsigned)uid);
    r = bg_vm_set_handle(vm, FC_HANDLE_JAIL_DIR, top, err);
    if (r == 0)
        r = bg_vm_set_handle(vm, FC_HANDLE_JAIL_UID, uid_text, err);
    if (r < 0)
        goto cleanup;
    r = fc_jail_remove(vm, err); /* a previous run's leftovers */
    if (r < 0)
        goto cleanup;
    r = bg_vm_set_handle(vm, FC_HANDLE_JAIL_DIR, top, err);
    if (r == 0)
        r = bg_vm_set_handle(vm, FC_HANDLE_JAIL_UID, uid_text, err);
    if (r < 0)
        goto cleanup;

    r = fc_jail_check_base(fc_jail_base(drv), err);
    if (r < 0)
        goto cleanup;
    r = fc_jail_mkdir(dirname(exec_dir), 0700, err);
    if (r == 0)
        r = fc_jail_mkdir(top, 0700, err);
    if (r == 0)
        r = fc_jail_mkdir(root, 0755, err);
    if (r < 0)
        goto cleanup;

    run = xasprintf("%s" FC_JAIL_RUN, root);
    r = fc_jail_mkdir(run, 0700, err);
    if (r < 0)
        goto cleanup;
    /* The VMM binds its sockets there as the VM uid; only root could have
     * given it the directory (fc_proc.c relies on that). */
    if (chown(run, uid, uid) < 0) {
        r = bg_fail_errno(err, -errno, "jail: chown %s to %u", run, (unsigned)uid);
        goto cleanup;
    }
    if (vm->contrib.vsock_uds) {
        char *inside = fc_jail_vmm_path(vm, vm->contrib.vsock_uds);
        char *target = xasprintf("%s%s", root, inside);
        free(inside);
        if (symlink(target, vm->contrib.vsock_uds) < 0)
            r = bg_fail_errno(err, -errno, "jail: symlink %s to %s", vm->contrib.vsock_uds,
                              target);
        free(target);
        if (r < 0)
            goto cleanup;
    }

    if (vm->info.kernel_path) {
        r = fc_jail_place(root, "vmlinux", vm->info.kernel_path, false, uid, err);
        if (r < 0)
            goto cleanup;
    }
    if (vm->info.initrd_path) {
        r = fc_jail_place(root, "initrd", vm->info.initrd_path, false, uid, err);
        if (r < 0)
            goto cleanup;
    }
    if (vm->contrib.has_net && vm->contrib.net.host_dev_name) {
        r = bg_vm_set_handle(vm, FC_HANDLE_JAIL_TAP, vm->contrib.net.host_dev_name, err);
        if (r == 0)
            r = fc_jail_tap_owner(vm->contrib.net.host_dev_name, uid, uid, err);
        if (r < 0)
            goto cleanup;
    }
    for (size_t i = 0; i < vm->contrib.n_drives; i++) {
        const struct banger_drive *d = &vm->contrib.drives[i];
        if (!d->path_on_host)
            continue;
        if (!fc_jail_name_ok(d->drive_id)) {
            r = bg_fail(err, -EINVAL, "jail: drive id '%s' cannot name a file",
                        d->drive_id ? d->drive_id : "");
            goto cleanup;
        }
        char *name = xasprintf("drive-%s", d->drive_id);
        r = fc_jail_place(root, name, d->path_on_host, !d->is_read_only, uid, err);
        free(name);
        if (r < 0)
            goto cleanup;
    }
    bg_log(BANGER_LOG_DEBUG, vm->info.id, "jail %s ready for uid %u", root, (unsigned)uid);
cleanup:
    free(run);
    free(exec_dir);
    free(root);
    free(top);
    return r;
}

char *fc_jail_api_sock(const struct fc_driver *drv, const struct banger_vm *vm,
                       const char *fc_bin)
{
    char *top = fc_jail_top(drv, vm, fc_bin);
    char *sock = xasprintf("%s/root" FC_JAIL_RUN "/" FC_API_SOCK_NAME, top);
    free(top);
    if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        free(sock);
        return NULL;
    }
    return sock;
}

char **fc_jail_argv(const struct fc_driver *drv, const struct banger_vm *vm, const char *jailer,
                    const char *fc_bin)
{
    size_t n_extra = 0;
    while (drv->extra_args && drv->extra_args[n_extra])
        n_extra++;
    char **argv = xcalloc(18 + n_extra, sizeof(char *));
    uid_t uid = fc_jail_uid(drv, vm);
    size_t k = 0;
    argv[k++] = xstrdup(jailer);
    argv[k++] = xstrdup("--id");
    argv[k++] = xstrdup(vm->info.id);
    argv[k++] = xstrdup("--exec-file");
    argv[k++] = xstrdup(fc_bin);
    argv[k++] = xstrdup("--uid");
    argv[k++] = xasprintf("%u", (unsigned)uid);
    argv[k++] = xstrdup("--gid");
    argv[k++] = xasprintf("%u", (unsigned)uid);
    argv[k++] = xstrdup("--chroot-base-dir");
    argv[k++] = xstrdup(fc_jail_base(drv));
    argv[k++] = xstrdup("--cgroup-version");
    argv[k++] = xstrdup("2");
    argv[k++] = xstrdup("--");
    argv[k++] = xstrdup("--api-sock");
    argv[k++] = xstrdup(FC_JAIL_RUN "/" FC_API_SOCK_NAME);
    for (size_t i = 0; i < n_extra; i++)
        argv[k++] = xstrdup(drv->extra_args[i]);
    argv[k] = NULL;
    return argv;
}

void fc_jail_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* mountinfo escapes blanks and backslashes as \ooo. */
static void fc_jail_unescape(char *s)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

/* Detach every mount at or below `top`; the number still there after. */
static int fc_jail_umount_below(const char *top)
{
    size_t n = strlen(top);
    int left = 0;
    for (int round = 0; round < FC_JAIL_UMOUNT_ROUNDS; round++) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
            return -1;
        char *line = NULL;
        size_t cap = 0;
        left = 0;
        while (getline(&line, &cap, f) > 0) {
            char point[4096];
            /* id parent major:minor root mount-point ... */
            if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
                continue;
            fc_jail_unescape(point);
            if (strncmp(point, top, n) != 0 || (point[n] != '/' && point[n] != '\0'))
                continue;
            left++;
            umount2(point, MNT_DETACH);
        }
        free(line);
        fclose(f);
        if (left == 0)
            return 0;
    }
    return left;
}

int fc_jail_remove(struct banger_vm *vm, struct banger_error *err)
{
    const char *h = bg_vm_get_handle(vm, FC_HANDLE_JAIL_DIR);
    char *top = h && h[0] ? xstrdup(h) : NULL;
    char *real = NULL;
    int r = 0;

    if (!top)
        return 0;
    /* The binds first: removing the tree through one would delete the
     * runtime dir's sockets or a disk. mountinfo names canonical paths. */
    real = realpath(top, NULL);
    int left = real ? fc_jail_umount_below(real) : 0;
    if (left != 0) {
        r = bg_fail(err, -EBUSY, "jail: %s: cannot unmount what is mounted below it", top);
        goto cleanup;
    }
    r = fs_remove_tree(top, err);
    if (r < 0)
        goto cleanup;
    /* <base>/<exec> goes with its last jail (another VM's keeps it). */
    char *exec_dir = xstrdup(top);
    rmdir(dirname(exec_dir));
    free(exec_dir);
    /* A pooled TAP goes to another VM next: the old uid must not keep it. */
    const char *tap = bg_vm_get_handle(vm, FC_HANDLE_JAIL_TAP);
    if (tap) {
        r = fc_jail_tap_owner(tap, 0, 0, err);
        if (r == 0)
            r = bg_vm_set_handle(vm, FC_HANDLE_JAIL_TAP, NULL, err);
        if (r < 0)
            goto cleanup;
    }
    r = bg_vm_set_handle(vm, FC_HANDLE_JAIL_DIR, NULL, err);
    if (r == 0)
        r = bg_vm_set_handle(vm, FC_HANDLE_JAIL_UID, NULL, err);
cleanup:
    free(real);
    free(top);
    return r;
}
