#include "config.h"

#include "images/image_guest.h"
#include "images/image_stage.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
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
    "[ -z \"$host\" ] || hostname \"$host\" 2>/dev/null\n"
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

static const char guest_boot_ok_unit[] =
    "[Unit]\n"
    "Description=banger boot marker on the console\n"
    "# Only once the agent was started (Requires: its failure cancels this)\n"
    "# and the network set up: the marker means the guest is usable.\n"
    "Requires=banger-vsock-agent.service\n"
    "After=banger-vsock-agent.service banger-net.service local-fs.target\n"
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

int images_guest_inject(const char *root, uint64_t *bytes, struct banger_error *err)
{
    char *unit_src = fs_join(images_guest_dir(), "banger-vsock-agent.service");
    int r = guest_mkdirs(root, "usr/local/sbin", err);
    if (r == 0)
        r = guest_mkdirs(root, "etc/systemd/system", err);
    if (r == 0)
        r = guest_copy(root, IMAGES_GUEST_AGENT + 1, images_agent_path(), 0755, bytes, err);
    if (r == 0)
        r = guest_copy(root, "etc/systemd/system/banger-vsock-agent.service", unit_src, 0644,
                       bytes, err);
    /* Where `systemctl enable` puts it: the unit's [Install] says sysinit.target. */
    if (r == 0)
        r = guest_enable(root, "sysinit.target", "banger-vsock-agent.service", err);
    if (r == 0)
        r = guest_write(root, "usr/local/sbin/banger-net", guest_net_script, 0755, bytes, err);
    if (r == 0)
        r = guest_write(root, "etc/systemd/system/banger-net.service", guest_net_unit, 0644,
                        bytes, err);
    if (r == 0)
        r = guest_enable(root, "multi-user.target", "banger-net.service", err);
    if (r == 0)
        r = guest_write(root, "etc/systemd/system/banger-boot-ok.service", guest_boot_ok_unit,
                        0644, bytes, err);
    if (r == 0)
        r = guest_enable(root, "multi-user.target", "banger-boot-ok.service", err);
    free(unit_src);
    return r;
}
