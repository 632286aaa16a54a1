#include "config.h"

#include "images/image_build.h"
#include "images/image_import.h"
#include "images/image_initrd.h"
#include "images/image_kernel.h"
#include "runner/runner.h"
#include "store/names.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUILD_DEBOOTSTRAP_TIMEOUT_MS (45 * 60 * 1000)
#define BUILD_SOURCES_MAX (1u << 20)

/* ---- apt sources --------------------------------------------------------- */

struct build_pick {
    char *exact;   /* first source for the suite */
    char *any;     /* first source at all */
};

static bool build_is_security(const char *uri, const char *suite)
{
    return strstr(uri, "security") != NULL || strstr(suite, "-security") != NULL ||
           strstr(suite, "/updates") != NULL;
}

/* One "deb" source with its suites (space-separated). */
static void build_consider(struct build_pick *pk, const char *uri, const char *suites,
                           const char *want)
{
    if (strncmp(uri, "http://", 7) != 0 && strncmp(uri, "https://", 8) != 0 &&
        strncmp(uri, "file:/", 6) != 0)
        return;
    char *copy = xstrdup(suites);
    char *save = NULL;
    for (char *s = strtok_r(copy, " \t", &save); s; s = strtok_r(NULL, " \t", &save)) {
        if (build_is_security(uri, s))
            continue;
        if (!pk->any)
            pk->any = xstrdup(uri);
        if (!pk->exact && strcmp(s, want) == 0)
            pk->exact = xstrdup(uri);
    }
    free(copy);
}

/* "deb [arch=amd64 signed-by=...] http://deb.debian.org/debian bookworm main" */
static void build_parse_oneline(struct build_pick *pk, char *text, const char *want)
{
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *p = line + strspn(line, " \t");
        if (strncmp(p, "deb", 3) != 0 || (p[3] != ' ' && p[3] != '\t'))
            continue;
        p += 3 + strspn(p + 3, " \t");
        if (*p == '[') {
            char *close = strchr(p, ']');
            if (!close)
                continue;
            p = close + 1 + strspn(close + 1, " \t");
        }
        char *uri = p;
        p += strcspn(p, " \t");
        if (!*p)
            continue;
        *p++ = '\0';
        p += strspn(p, " \t");
        char *suite = p;
        suite[strcspn(suite, " \t")] = '\0';
        if (*suite)
            build_consider(pk, uri, suite, want);
    }
}

static void build_stanza_done(struct build_pick *pk, char **types, char **uris, char **suites,
                              bool *enabled, const char *want)
{
    if (*enabled && *types && *uris && *suites) {
        bool deb = false;
        char *t = xstrdup(*types), *save = NULL;
        for (char *s = strtok_r(t, " \t", &save); s; s = strtok_r(NULL, " \t", &save))
            deb = deb || strcmp(s, "deb") == 0;
        free(t);
        char *u = xstrdup(*uris);
        save = NULL;
        for (char *s = strtok_r(u, " \t", &save); deb && s; s = strtok_r(NULL, " \t", &save))
            build_consider(pk, s, *suites, want);
        free(u);
    }
    free(*types);
    free(*uris);
    free(*suites);
    *types = *uris = *suites = NULL;
    *enabled = true;
}

/* deb822: "Types: deb\nURIs: http://...\nSuites: bookworm bookworm-updates\n\n..." */
static void build_parse_deb822(struct build_pick *pk, char *text, const char *want)
{
    char *types = NULL, *uris = NULL, *suites = NULL, **last = NULL;
    bool enabled = true;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '#')
            continue;
        if (line[strspn(line, " \t")] == '\0') {
            build_stanza_done(pk, &types, &uris, &suites, &enabled, want);
            last = NULL;
            continue;
        }
        if ((line[0] == ' ' || line[0] == '\t') && last && *last) {
            /* A continuation line of the previous field. */
            char *joined = xasprintf("%s %s", *last, line + strspn(line, " \t"));
            free(*last);
            *last = joined;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *value = colon + 1 + strspn(colon + 1, " \t");
        last = NULL;
        if (strcasecmp(line, "Types") == 0)
            last = &types;
        else if (strcasecmp(line, "URIs") == 0)
            last = &uris;
        else if (strcasecmp(line, "Suites") == 0)
            last = &suites;
        else if (strcasecmp(line, "Enabled") == 0)
            enabled = strcasecmp(value, "no") != 0 && strcasecmp(value, "false") != 0;
        if (last) {
            free(*last);
            *last = xstrdup(value);
        }
    }
    build_stanza_done(pk, &types, &uris, &suites, &enabled, want);
}

static void build_read_sources(struct build_pick *pk, const char *path, bool deb822,
                               const char *want)
{
    struct banger_error e2 = { 0 };
    char *text = NULL;
    if (fs_read_all(path, BUILD_SOURCES_MAX, &text, NULL, &e2) < 0)
        return;
    if (deb822)
        build_parse_deb822(pk, text, want);
    else
        build_parse_oneline(pk, text, want);
    free(text);
}

static bool build_has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

char *images_apt_mirror(const char *apt_dir, const char *suite)
{
    struct build_pick pk = { 0 };
    char *main_list = fs_join(apt_dir, "sources.list");
    char *dir = fs_join(apt_dir, "sources.list.d");
    build_read_sources(&pk, main_list, false, suite);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *f = names[i]->d_name;
        bool list = build_has_suffix(f, ".list"), deb822 = build_has_suffix(f, ".sources");
        if (f[0] != '.' && (list || deb822)) {
            char *path = fs_join(dir, f);
            build_read_sources(&pk, path, deb822, suite);
            free(path);
        }
        free(names[i]);
    }
    free(names);
    free(main_list);
    free(dir);
    char *pick = pk.exact ? pk.exact : pk.any;
    char *result = xstrdup(pick ? pick : IMAGES_BUILD_DEFAULT_MIRROR);
    free(pk.exact);
    free(pk.any);
    /* debootstrap is happy either way; keep logs tidy. */
    size_t len = strlen(result);
    while (len > 1 && result[len - 1] == '/')
        result[--len] = '\0';
    return result;
}

static char *build_strip_slashes(const char *url)
{
    char *s = xstrdup(url);
    size_t len = strlen(s);
    while (len > 1 && s[len - 1] == '/')
        s[--len] = '\0';
    return s;
}

int images_build_mirror_check(const char *mirror, const char *host_mirror,
                              const char *const *allowed, size_t n_allowed,
                              struct banger_error *err)
{
    /* debootstrap runs as root and a file: mirror's packages carry
     * maintainer scripts it executes: never a client's choice. */
    if (strncmp(mirror, "http://", 7) != 0 && strncmp(mirror, "https://", 8) != 0)
        return bg_fail(err, -EPERM, "mirror '%s' refused: a client may name only an http(s) "
                       "mirror that the daemon's images.mirrors lists", mirror);
    char *want = build_strip_slashes(mirror);
    bool ok = false;
    if (host_mirror) {
        char *host = build_strip_slashes(host_mirror);
        ok = strcmp(want, host) == 0;
        free(host);
    }
    for (size_t i = 0; !ok && i < n_allowed; i++) {
        char *a = build_strip_slashes(allowed[i]);
        ok = strcmp(want, a) == 0;
        free(a);
    }
    free(want);
    if (!ok)
        return bg_fail(err, -EPERM, "mirror '%s' refused: it is neither the host's apt mirror "
                       "(%s) nor listed in the daemon's images.mirrors", mirror,
                       host_mirror ? host_mirror : "none");
    return 0;
}

/* ---- the build ----------------------------------------------------------- */

static __thread uint64_t build_tree_bytes;

static int build_tree_visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)path;
    (void)type;
    (void)ftw;
    if (S_ISREG(sb->st_mode))
        build_tree_bytes += (uint64_t)sb->st_size;
    build_tree_bytes += 4096; /* an inode and a directory entry, roughly */
    return 0;
}

static int build_tree_size(const char *root, uint64_t *bytes, struct banger_error *err)
{
    build_tree_bytes = 0;
    if (nftw(root, build_tree_visit, 64, FTW_PHYS) != 0)
        return bg_fail_errno(err, -errno, "walk %s", root);
    *bytes = build_tree_bytes;
    return 0;
}

static int build_debootstrap(const char *root, const char *mirror, const char *keyring,
                             struct banger_error *err)
{
    /* Without a keyring debootstrap only warns; forced, a Release file that
     * is unsigned or signed by anyone else stops the build. */
    if (access(keyring, R_OK) < 0)
        return bg_fail_errno(err, -errno, "keyring %s (install debian-archive-keyring, or set "
                             "images.keyring)", keyring);
    char *keyring_arg = xasprintf("--keyring=%s", keyring);
    const char *argv[] = { "debootstrap", "--variant=minbase", "--force-check-gpg",
                           keyring_arg, "--include=" IMAGES_BUILD_PACKAGES, IMAGES_BUILD_SUITE,
                           root, mirror, NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts),
                                    .timeout_ms = BUILD_DEBOOTSTRAP_TIMEOUT_MS };
    struct banger_run_result res = { .struct_size = sizeof(res) };
    struct banger_error e2 = { 0 };
    char *cmd = runner_argv_to_string(argv);
    bg_log(BANGER_LOG_INFO, NULL, "build-default: %s", cmd);
    time_t t0 = time(NULL);
    int r = runner_run(argv, &opts, &res, &e2);
    if (r < 0) {
        /* debootstrap says why on stdout ("E: Failed getting release file ..."). */
        const char *why = res.out ? strstr(res.out, "E: ") : NULL;
        int why_len = why ? (int)strcspn(why, "\n") : 0;
        bg_fail(err, r, "debootstrap from %s failed: %s%s%.*s", mirror, bg_error_text(&e2),
                why ? ": " : "", why_len, why ? why : "");
    } else {
        bg_log(BANGER_LOG_INFO, NULL, "build-default: debootstrap took %lld s",
               (long long)(time(NULL) - t0));
    }
    runner_result_clear(&res);
    free(cmd);
    free(keyring_arg);
    return r;
}

/* The guest's own hostname rather than the builder's, and the kernel's
 * interface names (eth0, which banger-net and the ip= argument use) rather
 * than udev's predictable ones. */
static int build_tweak_tree(const char *root, struct banger_error *err)
{
    char *hostname = fs_join(root, "etc/hostname");
    char *netdir = fs_join(root, "etc/systemd/network");
    char *link = fs_join(root, "etc/systemd/network/99-default.link");
    int r = fs_write_atomic(hostname, "banger\n", 7, 0644, err);
    if (r == 0 && mkdir(netdir, 0755) < 0 && errno != EEXIST)
        r = bg_fail_errno(err, -errno, "create %s", netdir);
    if (r == 0) {
        unlink(link);
        if (symlink("/dev/null", link) < 0)
            r = bg_fail_errno(err, -errno, "symlink %s", link);
    }
    free(hostname);
    free(netdir);
    free(link);
    return r;
}

static void build_progress(const struct images_build_params *p, const char *stage)
{
    if (p->progress)
        p->progress(p->progress_ctx, stage);
}

int images_build_default(struct store *store, const char *images_dir,
                         const struct images_build_params *p, struct image_record **out,
                         struct banger_error *err)
{
    const char *name = p->name ? p->name : IMAGES_BUILD_DEFAULT_NAME;
    const char *boot_dir = p->boot_dir ? p->boot_dir : "/boot";
    const char *modules_root = p->modules_root ? p->modules_root : "/lib/modules";
    const char *busybox = p->busybox ? p->busybox : "/bin/busybox";
    char eb[512] = "", ver[128] = "";
    struct images_stage st = { 0 };
    char *mirror = NULL, *bzimage = NULL, *modules_dir = NULL;
    char *root = NULL, *rootfs = NULL, *kernel = NULL, *initrd = NULL;
    uint64_t bytes = 0;
    int r;

    if (image_name_check(name, eb, sizeof(eb)) < 0)
        return bg_fail(err, -EINVAL, "%s", eb);
    /* The mirror first: a refused one runs nothing at all. */
    mirror = images_apt_mirror(p->apt_dir ? p->apt_dir : "/etc/apt", IMAGES_BUILD_SUITE);
    if (p->mirror) {
        r = images_build_mirror_check(p->mirror, mirror, p->mirrors, p->n_mirrors, err);
        free(mirror);
        mirror = NULL;
        if (r < 0)
            return r;
        mirror = xstrdup(p->mirror);
    }
    r = images_name_free(store, name, err);
    if (r == 0)
        r = images_host_kernel(boot_dir, modules_root, ver, sizeof(ver), err);
    if (r == 0 && access(busybox, X_OK) < 0)
        r = bg_fail_errno(err, -errno, "%s (install busybox-static)", busybox);
    if (r < 0) {
        free(mirror);
        return r;
    }
    bzimage = xasprintf("%s/vmlinuz-%s", boot_dir, ver);
    modules_dir = xasprintf("%s/%s", modules_root, ver);

    r = images_stage_open(images_dir, &st, err);
    if (r < 0)
        goto cleanup;
    root = images_stage_path(&st, "root");
    rootfs = images_stage_path(&st, "rootfs.ext4");
    kernel = images_stage_path(&st, "vmlinux");
    initrd = images_stage_path(&st, "initrd.img");
    /* The quick steps first: a host without a usable kernel fails at once. */
    build_progress(p, "kernel");
    r = images_bzimage_extract(bzimage, kernel, err);
    if (r == 0) {
        build_progress(p, "initrd");
        r = images_initrd_build(modules_dir, busybox, initrd, err);
    }
    if (r == 0 && mkdir(root, 0755) < 0)
        r = bg_fail_errno(err, -errno, "create %s", root);
    if (r == 0 && images_cancelled(p->cancel))
        r = bg_fail(err, -ECANCELED, "cancelled: the client went away");
    if (r == 0) {
        build_progress(p, "debootstrap");
        r = build_debootstrap(root, mirror, p->keyring ? p->keyring : IMAGES_BUILD_DEFAULT_KEYRING,
                              err);
    }
    if (r == 0)
        r = build_tweak_tree(root, err);
    if (r == 0)
        r = build_tree_size(root, &bytes, err);
    if (r == 0 && images_cancelled(p->cancel))
        r = bg_fail(err, -ECANCELED, "cancelled: the client went away");
    if (r == 0)
        r = images_tree_to_rootfs(root, bytes, rootfs, p->progress, p->progress_ctx, NULL,
                                  err);
    if (r < 0)
        goto cleanup;
    build_progress(p, "register");
    cJSON *extra = cJSON_CreateObject();
    cJSON *source = cJSON_AddObjectToObject(extra, "source");
    cJSON_AddStringToObject(source, "type", "build-default");
    cJSON_AddStringToObject(source, "suite", IMAGES_BUILD_SUITE);
    cJSON_AddStringToObject(source, "mirror", mirror);
    cJSON_AddStringToObject(source, "packages", IMAGES_BUILD_PACKAGES);
    cJSON_AddStringToObject(source, "kernel", bzimage);
    cJSON *mods = cJSON_AddArrayToObject(source, "initrd_modules");
    for (size_t i = 0; images_initrd_modules[i]; i++)
        cJSON_AddItemToArray(mods, cJSON_CreateString(images_initrd_modules[i]));
    /* Debian's kernel finds virtio-mmio devices only through ACPI, which
     * Firecracker provides from 1.8.0 on; the daemon refuses older ones. */
    cJSON *boot = cJSON_AddObjectToObject(extra, "boot");
    cJSON_AddStringToObject(boot, "device_discovery", "acpi");
    cJSON_AddStringToObject(boot, "min_firecracker", IMAGES_BUILD_MIN_FIRECRACKER);
    r = images_cancelled(p->cancel)
            ? bg_fail(err, -ECANCELED, "cancelled: the client went away")
            : images_stage_commit(&st, store, name, extra, out, err);
    cJSON_Delete(extra);

cleanup:
    images_stage_close(&st);
    free(mirror);
    free(bzimage);
    free(modules_dir);
    free(root);
    free(rootfs);
    free(kernel);
    free(initrd);
    return r;
}
