/* `banger doctor`: what the host, the daemon and every plugin need. */
#include "config.h"

#include "daemon/daemon.h"
#include "host/host.h"
#include "runner/runner.h"
#include "util/xalloc.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static void doctor_kvm(struct banger_doctor *r)
{
    if (access("/dev/kvm", F_OK) < 0)
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, "kvm",
                      "/dev/kvm is missing: enable virtualisation in the firmware and load kvm_intel or kvm_amd");
    else if (access("/dev/kvm", R_OK | W_OK) < 0)
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, "kvm", "/dev/kvm is not readable and writable by bangerd");
    else
        bg_doctor_add(r, BANGER_DOCTOR_PASS, "kvm", "/dev/kvm is usable");
}

static void doctor_firecracker(struct bangerd *d, struct banger_doctor *r)
{
    char *path = runner_find_program(d->cfg->firecracker_bin, getenv("PATH"));
    if (!path) {
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, "firecracker",
                      "'%s' not found on PATH; install Firecracker " FC_MIN_VERSION
                      " or later or set firecracker_bin", d->cfg->firecracker_bin);
        return;
    }
    char *version = NULL;
    struct banger_error e = { 0 };
    if (fc_version_cached(path, &version, &e) < 0)
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, "firecracker", "%s: %s", path, bg_error_text(&e));
    else if (!fc_version_supported(version) && fc_version_too_old(version, &e) < 0)
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, "firecracker", "%s: %s; install " FC_MIN_VERSION
                      " or later", path, bg_error_text(&e));
    else
        bg_doctor_add(r, BANGER_DOCTOR_PASS, "firecracker", "%s v%s", path, version);
    free(version);
    free(path);
}

/* Every VM's console goes through this program; without it no VM starts. */
static void doctor_console_log(struct bangerd *d, struct banger_doctor *r)
{
    const char *bin = fc_console_log_program();
    if (access(bin, X_OK) < 0)
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, "console log",
                      "%s: %s; VMs cannot start without it (BANGER_CONSOLE_LOG overrides the "
                      "path)", bin, strerror(errno));
    else
        bg_doctor_add(r, BANGER_DOCTOR_PASS, "console log", "%s, %llu bytes per VM", bin,
                      (unsigned long long)d->cfg->console_log_max_bytes);
}

void bangerd_doctor_arch(struct banger_doctor *r, const char *machine)
{
    if (machine && strcmp(machine, "x86_64") == 0)
        bg_doctor_add(r, BANGER_DOCTOR_PASS, "architecture", "x86_64");
    else
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, "architecture",
                      "%s host: banger runs x86_64 guests only: ELF vmlinux kernels and "
                      "SendCtrlAltDel are x86-only in Firecracker", machine ? machine : "unknown");
}

static void doctor_arch(struct banger_doctor *r)
{
    struct utsname u;
    bangerd_doctor_arch(r, uname(&u) == 0 ? u.machine : NULL);
}

static void doctor_dir(struct banger_doctor *r, const char *check, const char *path, mode_t want)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, check, "%s: %s", path, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, check, "%s is not a directory", path);
    else if (st.st_uid != geteuid())
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, check, "%s is owned by uid %u, not the daemon's",
                      path, (unsigned)st.st_uid);
    else if ((st.st_mode & 0777) != want)
        bg_doctor_add(r, BANGER_DOCTOR_WARN, check, "%s has mode %03o, expected %03o", path,
                      st.st_mode & 0777, want);
    else
        bg_doctor_add(r, BANGER_DOCTOR_PASS, check, "%s (mode %03o)", path, want);
}

void bangerd_doctor(struct bangerd *d, struct banger_doctor *r)
{
    doctor_arch(r);
    doctor_kvm(r);
    doctor_firecracker(d, r);
    doctor_console_log(d, r);

    char list[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < d->plugins->n && len < sizeof(list); i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s %s", i ? ", " : "",
                                d->plugins->v[i].cap->name,
                                d->plugins->v[i].cap->version ? d->plugins->v[i].cap->version : "");
    bg_doctor_add(r, BANGER_DOCTOR_PASS, "plugins", "%zu loaded: %s", d->plugins->n, list);

    doctor_dir(r, "state dir", d->cfg->state_dir, 0700);

    struct stat st;
    if (stat(d->socket_path, &st) < 0) {
        bg_doctor_add(r, BANGER_DOCTOR_FAIL, "socket", "%s: %s", d->socket_path, strerror(errno));
    } else {
        struct group *g = getgrgid(st.st_gid);
        bg_doctor_add(r, BANGER_DOCTOR_PASS, "socket", "%s (mode %03o, group %s)", d->socket_path,
                      st.st_mode & 0777, g ? g->gr_name : "?");
    }

    struct image_record *img = NULL;
    char eb[256] = "";
    if (store_image_get_by_name(d->store, "default", &img, eb, sizeof(eb)) == 0)
        bg_doctor_add(r, BANGER_DOCTOR_PASS, "default image", "registered (%s)", img->rootfs_path);
    else
        bg_doctor_add(r, BANGER_DOCTOR_WARN, "default image",
                      "none registered: `banger image register --name default --rootfs … --kernel …`");
    image_record_free(img);

    for (size_t i = 0; i < d->plugins->n; i++) {
        const struct bg_plugin *p = &d->plugins->v[i];
        if (!p->cap->doctor)
            continue;
        r->source = p->name;
        p->cap->doctor(p->state, r);
        r->source = NULL;
    }
}
