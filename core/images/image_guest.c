#include "config.h"

#include "images/image_guest.h"
#include "images/image_stage.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/local/libexec"
#endif
#ifndef PKGDATADIR
#define PKGDATADIR "/usr/local/share/banger"
#endif

#define GUEST_TEXT_MAX (1u << 20)

/* Until banger-net writes it at boot: never the builder's own. */
static const char guest_resolv_placeholder[] =
    "# Written at boot by /usr/local/sbin/banger-net from the kernel's ip= argument.\n";

/* Runs in the guest (busybox or dash): the kernel's ip= argument is
 * ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>. */
static const char guest_net_script[] =
    "#!/bin/sh\n"
    "# Network from the kernel's ip= argument (written by banger).\n"
    "spec=\n"
    "for arg in $(cat /proc/cmdline); do\n"
    "    case \"$arg\" in ip=*) spec=\"${arg#ip=}\" ;; esac\n"
    "done\n"
    "[ -n \"$spec\" ] || exit 0\n"
    "IFS=: read -r client server gw mask host dev autoconf dns0 dns1 <<EOF\n"
    "$spec\n"
    "EOF\n"
    "prefix=0\n"
    "IFS=. ; set -- $mask ; unset IFS\n"
    "for o in \"$@\"; do\n"
    "    case \"$o\" in\n"
    "    255) prefix=$((prefix + 8)) ;; 254) prefix=$((prefix + 7)) ;;\n"
    "    252) prefix=$((prefix + 6)) ;; 248) prefix=$((prefix + 5)) ;;\n"
    "    240) prefix=$((prefix + 4)) ;; 224) prefix=$((prefix + 3)) ;;\n"
    "    192) prefix=$((prefix + 2)) ;; 128) prefix=$((prefix + 1)) ;;\n"
    "    esac\n"
    "done\n"
    "dev=${dev:-eth0}\n"
    "ip link set lo up\n"
    "ip link set \"$dev\" up\n"
    "# A kernel built with IP_PNP may have configured it already.\n"
    "ip addr replace \"$client/$prefix\" dev \"$dev\"\n"
    "[ -z \"$gw\" ] || ip route replace default via \"$gw\" dev \"$dev\"\n"
    "if [ -n \"$host\" ]; then\n"
    "    hostname \"$host\" 2>/dev/null\n"
    "    echo \"$host\" > /etc/hostname\n"
    "    grep -q \"[[:space:]]$host\\$\" /etc/hosts 2>/dev/null ||\n"
    "        echo \"127.0.1.1 $host\" >> /etc/hosts\n"
    "fi\n"
    "# banger's DNS server on the bridge; a regular file, never a symlink\n"
    "# into some resolver's runtime directory.\n"
    "if [ -n \"$dns0\" ]; then\n"
    "    rm -f /etc/resolv.conf\n"
    "    echo \"nameserver $dns0\" > /etc/resolv.conf\n"
    "    [ -z \"$dns1\" ] || echo \"nameserver $dns1\" >> /etc/resolv.conf\n"
    "fi\n"
    "exit 0\n";

static const char guest_net_unit[] =
    "[Unit]\n"
    "Description=banger guest network from the kernel ip= argument\n"
    "Before=network.target ssh.service\n"
    "Wants=network.target\n"
    "\n"
    "[Service]\n"
    "Type=oneshot\n"
    "RemainAfterExit=yes\n"
    "ExecStart=/usr/local/sbin/banger-net\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

/* The work disk is root's home. systemd mounts it from fstab; busybox init
 * runs this with --mount. On first use (nothing on it but what the daemon
 * put there) it gets the image's own /root, seen under the mount through a
 * bind mount of /, and /etc/skel. sshd's StrictModes wants /root, .ssh and
 * authorized_keys owned by root and not writable by others. */
static const char guest_work_script[] =
    "#!/bin/sh\n"
    "# banger: the work disk (LABEL=" IMAGES_WORK_LABEL ") is root's home.\n"
    "if [ \"${1:-}\" = --mount ] && ! mountpoint -q /root; then\n"
    "    mount -t ext4 LABEL=" IMAGES_WORK_LABEL " /root ||\n"
    "        echo \"banger-work: no work disk (LABEL=" IMAGES_WORK_LABEL ")\" >&2\n"
    "fi\n"
    "mountpoint -q /root || exit 0\n"
    "chown root:root /root\n"
    "chmod 0700 /root\n"
    "fresh=yes\n"
    "for f in /root/* /root/.[!.]* /root/..?*; do\n"
    "    [ -e \"$f\" ] || [ -L \"$f\" ] || continue\n"
    "    case \"${f##*/}\" in .ssh|lost+found) ;; *) fresh=no ;; esac\n"
    "done\n"
    "if [ \"$fresh\" = yes ]; then\n"
    "    under=/run/banger-image-root\n"
    "    mkdir -p \"$under\"\n"
    "    if mount -o bind / \"$under\"; then\n"
    "        [ ! -d \"$under/root\" ] || cp -a -n \"$under/root/.\" /root/\n"
    "        umount \"$under\"\n"
    "    fi\n"
    "    rmdir \"$under\"\n"
    "    [ ! -d /etc/skel ] || cp -a -n /etc/skel/. /root/\n"
    "    chmod 0700 /root\n"
    "fi\n"
    "if [ -d /root/.ssh ]; then\n"
    "    chown root:root /root/.ssh\n"
    "    chmod 0700 /root/.ssh\n"
    "    if [ -f /root/.ssh/authorized_keys ]; then\n"
    "        chown root:root /root/.ssh/authorized_keys\n"
    "        chmod 0600 /root/.ssh/authorized_keys\n"
    "    fi\n"
    "fi\n"
    "exit 0\n";

/* nofail: a VM without a work disk still boots, with the image's /root. The
 * wait is long because a slow (emulated, loaded) guest's udev can take more
 * than ten seconds to name the disk, and without it root has no key. */
static const char guest_fstab_line[] =
    "# banger: the VM's work disk is root's home\n"
    "LABEL=" IMAGES_WORK_LABEL " /root ext4 defaults,nofail,x-systemd.device-timeout=60s 0 2\n";

static const char guest_work_unit[] =
    "[Unit]\n"
    "Description=banger work disk at /root, seeded on first use\n"
    "After=root.mount\n"
    "Before=ssh.service banger-boot-ok.service\n"
    "ConditionPathIsMountPoint=/root\n"
    "\n"
    "[Service]\n"
    "Type=oneshot\n"
    "RemainAfterExit=yes\n"
    "ExecStart=/usr/local/sbin/banger-work\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

/* Debian's ssh.service does not make missing host keys; each VM must have
 * its own (the daemon pins them), so none are in the image. Only the
 * ed25519 key, the one banger pins: an RSA key takes seconds to make under
 * emulation, on every first boot, for nothing. Made once: it stays on the
 * VM's root disk. */
#define GUEST_HOSTKEY "/etc/ssh/ssh_host_ed25519_key"
#define GUEST_HOSTKEY_MAKE "/usr/bin/ssh-keygen -q -t ed25519 -N \"\" -f " GUEST_HOSTKEY
static const char guest_hostkeys_unit[] =
    "[Unit]\n"
    "Description=banger: this VM's own ssh host key, made on first boot\n"
    "Before=ssh.service sshd.service\n"
    "ConditionPathExists=/usr/bin/ssh-keygen\n"
    "ConditionPathExists=!" GUEST_HOSTKEY "\n"
    "\n"
    "[Service]\n"
    "Type=oneshot\n"
    "RemainAfterExit=yes\n"
    "ExecStart=" GUEST_HOSTKEY_MAKE "\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target ssh.service\n";

/* At the top of sshd_config: sshd takes the first value it reads, so this
 * wins over the image's own settings and its sshd_config.d drop-ins.
 * prohibit-password also rules out keyboard-interactive for root; no
 * KbdInteractiveAuthentication line, which sshd before 8.7 refuses. */
static const char guest_sshd_block[] =
    "# banger: root logs in with banger's key only (added by banger)\n"
    "PermitRootLogin prohibit-password\n"
    "PasswordAuthentication no\n"
    "HostKey " GUEST_HOSTKEY "\n"
    "# end of banger's block\n\n";

/* busybox init: the same start-up without systemd. */
static const char guest_inittab_lines[] =
    "# banger (added by banger)\n"
    "::sysinit:/usr/local/sbin/banger-net\n"
    "::sysinit:/usr/local/sbin/banger-work --mount\n"
    "::respawn:" IMAGES_GUEST_AGENT " --listen vsock:10789\n";
/* Only when the image has no inittab: busybox's built-in default plus
 * a serial console. */
static const char guest_inittab_default[] =
    "::sysinit:/etc/init.d/rcS\n"
    "ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n"
    "::shutdown:/bin/umount -a -r\n";

static const char guest_boot_ok_unit[] =
    "[Unit]\n"
    "Description=banger boot marker on the console\n"
    "# Only once the agent was started (Requires: its failure cancels this)\n"
    "# and the network set up: the marker means the guest is usable.\n"
    "Requires=banger-vsock-agent.service\n"
    "After=banger-vsock-agent.service banger-net.service local-fs.target\n"
    "After=banger-work.service banger-hostkeys.service ssh.service\n"
    "\n"
    "[Service]\n"
    "Type=oneshot\n"
    "ExecStart=/bin/sh -c 'echo " IMAGES_BOOT_MARKER " > /dev/console'\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

const char *images_agent_path(void)
{
    const char *env = getenv("BANGER_AGENT_PATH");
    return env && env[0] ? env : LIBEXECDIR "/banger/banger-vsock-agent";
}

const char *images_guest_dir(void)
{
    const char *env = getenv("BANGER_GUEST_DIR");
    return env && env[0] ? env : PKGDATADIR "/guest";
}

/* mkdir -p of root/rel, each new level 0755. */
static int guest_mkdirs(const char *root, const char *rel, struct banger_error *err)
{
    char *path = fs_join(root, rel);
    int r = 0;
    for (char *p = path + strlen(root) + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        struct stat sb;
        if (lstat(path, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode)) {
                r = bg_fail(err, -ENOTDIR, "%s in the root filesystem is not a directory", path);
                goto cleanup;
            }
        } else if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            r = bg_fail_errno(err, -errno, "create %s", path);
            goto cleanup;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
cleanup:
    free(path);
    return r;
}

static int guest_write(const char *root, const char *rel, const char *text, mode_t mode,
                       uint64_t *bytes, struct banger_error *err)
{
    char *path = fs_join(root, rel);
    unlink(path); /* never write through whatever the tarball put there */
    int r = fs_write_atomic(path, text, strlen(text), mode, err);
    if (r == 0 && chmod(path, mode) < 0)
        r = bg_fail_errno(err, -errno, "chmod %s", path);
    *bytes += strlen(text) + 4096;
    free(path);
    return r;
}

static int guest_copy(const char *root, const char *rel, const char *from, mode_t mode,
                      uint64_t *bytes, struct banger_error *err)
{
    char *path = fs_join(root, rel);
    struct stat sb;
    int r = 0;
    if (stat(from, &sb) < 0) {
        r = bg_fail_errno(err, -errno, "%s (set BANGER_AGENT_PATH / BANGER_GUEST_DIR for an "
                          "uninstalled tree)", from);
        goto cleanup;
    }
    unlink(path);
    r = images_copy_file(from, path, err);
    if (r == 0 && chmod(path, mode) < 0)
        r = bg_fail_errno(err, -errno, "chmod %s", path);
    *bytes += (uint64_t)sb.st_size + 4096;
cleanup:
    free(path);
    return r;
}

static int guest_enable(const char *root, const char *target, const char *unit,
                        struct banger_error *err)
{
    char *dir = xasprintf("etc/systemd/system/%s.wants", target);
    char *rel = xasprintf("%s/%s", dir, unit);
    char *link = fs_join(root, rel);
    char *dest = xasprintf("/etc/systemd/system/%s", unit);
    int r = guest_mkdirs(root, dir, err);
    if (r == 0) {
        unlink(link);
        if (symlink(dest, link) < 0)
            r = bg_fail_errno(err, -errno, "symlink %s", link);
    }
    free(dir);
    free(rel);
    free(link);
    free(dest);
    return r;
}

/* Is root/rel there (any type), reached through real directories only?
 * A symlinked component could point anywhere on the host. */
static bool guest_has(const char *root, const char *rel)
{
    char *path = fs_join(root, rel);
    bool found = true;
    for (char *p = path + strlen(root) + 1; found; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        struct stat sb;
        found = lstat(path, &sb) == 0 && (saved == '\0' || S_ISDIR(sb.st_mode));
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(path);
    return found;
}

/* A regular file's text, or NULL when it is missing or not a regular file. */
static char *guest_read_text(const char *root, const char *rel)
{
    struct banger_error e2 = { 0 };
    char *path = fs_join(root, rel);
    char *text = NULL;
    struct stat sb;
    if (guest_has(root, rel) && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
        fs_read_all(path, GUEST_TEXT_MAX, &text, NULL, &e2) < 0)
        text = NULL;
    free(path);
    return text;
}

static void guest_warn(cJSON *warnings, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void guest_warn(cJSON *warnings, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!msg)
        return;
    bg_log(BANGER_LOG_WARNING, NULL, "image: %s", msg);
    if (warnings)
        cJSON_AddItemToArray(warnings, cJSON_CreateString(msg));
    free(msg);
}

static int guest_symlink(const char *root, const char *rel, const char *dest,
                         struct banger_error *err)
{
    char *link = fs_join(root, rel);
    int r = 0;
    unlink(link);
    if (symlink(dest, link) < 0)
        r = bg_fail_errno(err, -errno, "symlink %s", link);
    free(link);
    return r;
}

/* Host keys made where the tree was built would be shared by every VM. */
static int guest_remove_host_keys(const char *root, struct banger_error *err)
{
    if (!guest_has(root, "etc/ssh"))
        return 0;
    char *dir = fs_join(root, "etc/ssh");
    DIR *d = opendir(dir);
    int r = 0;
    if (!d) {
        r = errno == ENOTDIR ? 0 : bg_fail_errno(err, -errno, "open %s", dir);
        goto cleanup;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "ssh_host_", 9) != 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT) {
            r = bg_fail_errno(err, -errno, "remove %s/%s", dir, e->d_name);
            break;
        }
    }
    closedir(d);
cleanup:
    free(dir);
    return r;
}

/* Text `block` added at the start (or end) of a file of the tree unless
 * `marker` is in it already. */
static int guest_add_text(const char *root, const char *rel, const char *marker,
                          const char *block, bool at_start, uint64_t *bytes,
                          struct banger_error *err)
{
    char *old = guest_read_text(root, rel);
    char *text = NULL;
    int r = 0;
    if (!old && guest_has(root, rel)) {
        /* A symlink or stranger: whatever it points at is not ours to edit. */
        bg_log(BANGER_LOG_WARNING, NULL, "image: /%s is not a regular file; left as it is "
               "(banger's lines for it are missing)", rel);
        goto cleanup;
    }
    if (old && strstr(old, marker))
        goto cleanup;
    const char *body = old ? old : "";
    const char *sep = body[0] && body[strlen(body) - 1] != '\n' ? "\n" : "";
    text = at_start ? xasprintf("%s%s", block, body) : xasprintf("%s%s%s", body, sep, block);
    r = guest_write(root, rel, text, 0644, bytes, err);
cleanup:
    free(old);
    free(text);
    return r;
}

static bool guest_busybox_init(const char *root)
{
    char *init = fs_join(root, "sbin/init");
    char target[PATH_MAX];
    ssize_t n = guest_has(root, "sbin/init") ? readlink(init, target, sizeof(target) - 1) : -1;
    free(init);
    if (n > 0) {
        target[n] = '\0';
        return strstr(target, "busybox") != NULL;
    }
    return guest_has(root, "etc/inittab") && guest_has(root, "bin/busybox");
}

/* "/usr/lib/systemd/system/<unit>" or "/lib/...", as the tree has it. */
static char *guest_unit_path(const char *root, const char *unit)
{
    static const char *const dirs[] = { "usr/lib/systemd/system", "lib/systemd/system", NULL };
    for (size_t i = 0; dirs[i]; i++) {
        char *rel = xasprintf("%s/%s", dirs[i], unit);
        if (guest_has(root, rel)) {
            char *abs = xasprintf("/%s", rel);
            free(rel);
            return abs;
        }
        free(rel);
    }
    return NULL;
}

static int guest_inject_systemd(const char *root, bool sshd, uint64_t *bytes,
                                struct banger_error *err)
{
    char *reboot = guest_unit_path(root, "reboot.target");
    char *resolved = guest_unit_path(root, "systemd-resolved.service");
    char *unit_src = fs_join(images_guest_dir(), "banger-vsock-agent.service");
    int r = guest_mkdirs(root, "etc/systemd/system", err);
    if (r == 0)
        r = guest_copy(root, "etc/systemd/system/banger-vsock-agent.service", unit_src, 0644,
                       bytes, err);
    /* Where `systemctl enable` puts it: the unit's [Install] says sysinit.target. */
    if (r == 0)
        r = guest_enable(root, "sysinit.target", "banger-vsock-agent.service", err);
    if (r == 0)
        r = guest_write(root, "etc/systemd/system/banger-net.service", guest_net_unit, 0644,
                        bytes, err);
    if (r == 0)
        r = guest_enable(root, "multi-user.target", "banger-net.service", err);
    if (r == 0)
        r = guest_mkdirs(root, "etc", err);
    if (r == 0)
        r = guest_add_text(root, "etc/fstab", "LABEL=" IMAGES_WORK_LABEL, guest_fstab_line,
                           false, bytes, err);
    if (r == 0)
        r = guest_write(root, "etc/systemd/system/banger-work.service", guest_work_unit, 0644,
                        bytes, err);
    if (r == 0)
        r = guest_enable(root, "multi-user.target", "banger-work.service", err);
    if (r == 0 && sshd) {
        r = guest_write(root, "etc/systemd/system/banger-hostkeys.service",
                        guest_hostkeys_unit, 0644, bytes, err);
        if (r == 0)
            r = guest_enable(root, "multi-user.target", "banger-hostkeys.service", err);
        if (r == 0)
            r = guest_enable(root, "ssh.service", "banger-hostkeys.service", err);
    }
    /* Firecracker ends only on a guest reset (reboot=k); it has no power-off
     * device. So Ctrl-Alt-Del and poweroff both shut down cleanly and end
     * in a reset: the VMM exits, under QEMU -no-reboot too. */
    if (r == 0 && reboot) {
        r = guest_symlink(root, "etc/systemd/system/ctrl-alt-del.target", reboot, err);
        if (r == 0)
            r = guest_symlink(root, "etc/systemd/system/poweroff.target", reboot, err);
    }
    /* resolv.conf is banger-net's: no stub resolver that knows nothing of
     * banger's DNS server. */
    if (r == 0 && resolved)
        r = guest_symlink(root, "etc/systemd/system/systemd-resolved.service", "/dev/null",
                          err);
    if (r == 0)
        r = guest_write(root, "etc/systemd/system/banger-boot-ok.service", guest_boot_ok_unit,
                        0644, bytes, err);
    if (r == 0)
        r = guest_enable(root, "multi-user.target", "banger-boot-ok.service", err);
    free(reboot);
    free(resolved);
    free(unit_src);
    return r;
}

static int guest_inject_busybox(const char *root, bool sshd, uint64_t *bytes,
                                struct banger_error *err)
{
    char *old = guest_read_text(root, "etc/inittab");
    char *block = xasprintf("%s%s%s", guest_inittab_lines,
                            sshd ? "::sysinit:/bin/sh -c 'test -s " GUEST_HOSTKEY " || "
                                   GUEST_HOSTKEY_MAKE "'\n" : "",
                            old && strstr(old, "ctrlaltdel") ? "" :
                            "::ctrlaltdel:/sbin/reboot\n");
    char *text = old ? NULL : xasprintf("%s%s", guest_inittab_default, block);
    int r = guest_mkdirs(root, "etc", err);
    if (r == 0 && old)
        r = guest_add_text(root, "etc/inittab", IMAGES_GUEST_AGENT, block, false, bytes, err);
    else if (r == 0)
        r = guest_write(root, "etc/inittab", text, 0644, bytes, err);
    free(old);
    free(block);
    free(text);
    return r;
}

int images_guest_inject(const char *root, uint64_t *bytes, cJSON *warnings,
                        struct banger_error *err)
{
    bool systemd = guest_has(root, "usr/lib/systemd/systemd") ||
                   guest_has(root, "lib/systemd/systemd");
    bool busybox = !systemd && guest_busybox_init(root);
    bool sshd = guest_has(root, "usr/sbin/sshd") || guest_has(root, "sbin/sshd");
    int r = guest_mkdirs(root, "usr/local/sbin", err);
    if (r == 0)
        r = guest_copy(root, IMAGES_GUEST_AGENT + 1, images_agent_path(), 0755, bytes, err);
    if (r == 0)
        r = guest_write(root, "usr/local/sbin/banger-net", guest_net_script, 0755, bytes, err);
    if (r == 0)
        r = guest_write(root, "usr/local/sbin/banger-work", guest_work_script, 0755, bytes, err);
    if (r == 0)
        r = guest_mkdirs(root, "etc", err);
    if (r == 0)
        r = guest_write(root, "etc/resolv.conf", guest_resolv_placeholder, 0644, bytes, err);
    if (r == 0)
        r = guest_remove_host_keys(root, err);
    if (r == 0 && guest_has(root, "etc/ssh/sshd_config"))
        r = guest_add_text(root, "etc/ssh/sshd_config", "# banger: root logs in",
                           guest_sshd_block, true, bytes, err);
    if (r == 0 && systemd)
        r = guest_inject_systemd(root, sshd, bytes, err);
    else if (r == 0 && busybox)
        r = guest_inject_busybox(root, sshd, bytes, err);
    if (r < 0)
        return r;
    if (!systemd && !busybox)
        guest_warn(warnings, "the image has neither systemd nor busybox init: nothing will "
                   "start the banger agent, the network set-up or the work disk mount");
    if (!sshd)
        guest_warn(warnings, "the image has no sshd (usr/sbin/sshd): `banger vm ssh` and "
                   "`vm exec` cannot reach its VMs; the agent (vm ping, health, ports) "
                   "still works");
    return 0;
}
