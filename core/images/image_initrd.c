#include "config.h"

#include "images/image_initrd.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <zstd.h>

#define INITRD_INDEX_MAX (64u << 20)
#define INITRD_MODULE_MAX (64u << 20)
#define INITRD_TOOL_TIMEOUT_MS (60 * 1000)

/* crc32c before ext4: ext4 asks the crypto API for it at mount time, and
 * there is no modprobe in the initrd to load it on demand. */
const char *const images_initrd_modules[] = {
    "virtio_mmio", "virtio_blk", "virtio_net", "vsock", "vmw_vsock_virtio_transport_common",
    "vmw_vsock_virtio_transport", "crc32c_generic", "ext4", NULL,
};

/* Runs as /init under busybox sh. @MODULES@ is replaced by the load order. */
static const char initrd_init_head[] =
    "#!/bin/busybox sh\n"
    "# banger initrd: load the drivers the kernel has as modules, mount the\n"
    "# root file system and hand over to its /sbin/init.\n"
    "export PATH=/bin\n"
    "b=/bin/busybox\n"
    "fail() { echo \"banger-initrd: $*\"; $b sleep 1; $b reboot -f; }\n"
    "$b mount -t proc proc /proc\n"
    "$b mount -t sysfs sysfs /sys\n"
    "$b mount -t devtmpfs devtmpfs /dev\n"
    "for m in";
static const char initrd_init_tail[] =
    "; do\n"
    "    $b insmod \"/lib/modules/$m.ko\" || echo \"banger-initrd: insmod $m failed\"\n"
    "done\n"
    "root=/dev/vda fstype=ext4 mode=rw init=/sbin/init\n"
    "for arg in $($b cat /proc/cmdline); do\n"
    "    case \"$arg\" in\n"
    "    root=*) root=\"${arg#root=}\" ;;\n"
    "    rootfstype=*) fstype=\"${arg#rootfstype=}\" ;;\n"
    "    init=*) init=\"${arg#init=}\" ;;\n"
    "    ro) mode=ro ;;\n"
    "    rw) mode=rw ;;\n"
    "    esac\n"
    "done\n"
    "# Devices appear once their driver probed; give them ten seconds.\n"
    "i=0\n"
    "while [ ! -b \"$root\" ] && [ $i -lt 100 ]; do $b sleep 0.1; i=$((i + 1)); done\n"
    "[ -b \"$root\" ] || fail \"no root device $root\"\n"
    "$b mount -t \"$fstype\" -o \"$mode\" \"$root\" /newroot || fail \"cannot mount $root\"\n"
    "[ -x \"/newroot$init\" ] || [ -L \"/newroot$init\" ] || fail \"no $init on $root\"\n"
    "$b mkdir -p /newroot/dev /newroot/proc /newroot/sys\n"
    "$b mount --move /dev /newroot/dev\n"
    "$b umount /proc /sys\n"
    "exec $b switch_root /newroot \"$init\"\n"
    "fail \"switch_root failed\"\n";

static char *initrd_strndup(const char *s, size_t n)
{
    return xasprintf("%.*s", (int)n, s);
}

struct initrd_mod {
    char *path;   /* relative to the modules dir */
    char *name;   /* "virtio_blk" */
    char *deps;   /* the rest of the modules.dep line */
    bool seen;
};

struct initrd_index {
    struct initrd_mod *mods;
    size_t n;
    char *builtin;  /* modules.builtin, or NULL */
};

/* "kernel/drivers/block/virtio-blk.ko.xz" -> "virtio_blk". */
static char *initrd_mod_name(const char *path, size_t len)
{
    const char *slash = memrchr(path, '/', len);
    const char *base = slash ? slash + 1 : path;
    size_t n = (size_t)(path + len - base);
    const char *ko = memmem(base, n, ".ko", 3);
    if (ko)
        n = (size_t)(ko - base);
    char *name = initrd_strndup(base, n);
    for (char *p = name; *p; p++)
        if (*p == '-')
            *p = '_';
    return name;
}

static void initrd_index_free(struct initrd_index *ix)
{
    for (size_t i = 0; i < ix->n; i++) {
        free(ix->mods[i].path);
        free(ix->mods[i].name);
        free(ix->mods[i].deps);
    }
    free(ix->mods);
    free(ix->builtin);
    memset(ix, 0, sizeof(*ix));
}

static int initrd_index_load(const char *modules_dir, struct initrd_index *ix,
                             struct banger_error *err)
{
    char *dep_path = fs_join(modules_dir, "modules.dep");
    char *builtin_path = fs_join(modules_dir, "modules.builtin");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int r = fs_read_all(dep_path, INITRD_INDEX_MAX, &text, &len, err);
    if (r < 0)
        goto cleanup;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        if (ix->n == cap) {
            cap = cap ? cap * 2 : 1024;
            ix->mods = xrealloc(ix->mods, cap * sizeof(*ix->mods));
        }
        struct initrd_mod *m = &ix->mods[ix->n++];
        m->path = initrd_strndup(line, (size_t)(colon - line));
        m->name = initrd_mod_name(line, (size_t)(colon - line));
        m->deps = xstrdup(colon + 1);
        m->seen = false;
    }
    struct banger_error e2 = { 0 };
    if (fs_read_all(builtin_path, INITRD_INDEX_MAX, &ix->builtin, NULL, &e2) < 0)
        ix->builtin = NULL;
cleanup:
    free(text);
    free(dep_path);
    free(builtin_path);
    return r;
}

static struct initrd_mod *initrd_find(struct initrd_index *ix, const char *name, bool by_path)
{
    for (size_t i = 0; i < ix->n; i++)
        if (strcmp(by_path ? ix->mods[i].path : ix->mods[i].name, name) == 0)
            return &ix->mods[i];
    return NULL;
}

static bool initrd_is_builtin(const struct initrd_index *ix, const char *name)
{
    if (!ix->builtin)
        return false;
    bool found = false;
    for (const char *line = ix->builtin; *line && !found;) {
        const char *end = strchrnul(line, '\n');
        char *n = initrd_mod_name(line, (size_t)(end - line));
        found = strcmp(n, name) == 0;
        free(n);
        line = *end ? end + 1 : end;
    }
    return found;
}

/* Dependencies first (modules.dep lists them; each is visited once). */
static void initrd_visit(struct initrd_index *ix, struct initrd_mod *m, char ***out, size_t *n)
{
    if (m->seen)
        return;
    m->seen = true;
    char *deps = xstrdup(m->deps);
    char *save = NULL;
    for (char *tok = strtok_r(deps, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        struct initrd_mod *d = initrd_find(ix, tok, true);
        if (d)
            initrd_visit(ix, d, out, n);
    }
    free(deps);
    *out = xrealloc(*out, (*n + 2) * sizeof(char *));
    (*out)[(*n)++] = xstrdup(m->path);
    (*out)[*n] = NULL;
}

void images_initrd_plan_free(char **paths)
{
    for (size_t i = 0; paths && paths[i]; i++)
        free(paths[i]);
    free(paths);
}

int images_initrd_plan(const char *modules_dir, char ***paths, struct banger_error *err)
{
    struct initrd_index ix = { 0 };
    char **out = xcalloc(1, sizeof(char *));
    size_t n = 0;
    int r = initrd_index_load(modules_dir, &ix, err);
    for (size_t i = 0; r == 0 && images_initrd_modules[i]; i++) {
        const char *want = images_initrd_modules[i];
        struct initrd_mod *m = initrd_find(&ix, want, false);
        if (m)
            initrd_visit(&ix, m, &out, &n);
        else if (!initrd_is_builtin(&ix, want))
            r = bg_fail(err, -ENOENT, "the kernel in %s has no module %s and does not have "
                        "it built in", modules_dir, want);
    }
    initrd_index_free(&ix);
    if (r < 0) {
        images_initrd_plan_free(out);
        out = NULL;
    }
    *paths = out;
    return r;
}

static bool initrd_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A module file's plain ELF contents, whatever it is compressed with. */
static int initrd_read_module(const char *path, char **data, size_t *len,
                              struct banger_error *err)
{
    if (initrd_ends_with(path, ".ko"))
        return fs_read_all(path, INITRD_MODULE_MAX, data, len, err);
    if (initrd_ends_with(path, ".ko.zst")) {
        char *packed = NULL;
        size_t plen = 0;
        int r = fs_read_all(path, INITRD_MODULE_MAX, &packed, &plen, err);
        if (r < 0)
            return r;
        unsigned long long size = ZSTD_getFrameContentSize(packed, plen);
        if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
            size > INITRD_MODULE_MAX) {
            free(packed);
            return bg_fail(err, -EINVAL, "%s: not a zstd frame with a known size", path);
        }
        *data = xmalloc(size ? size : 1);
        size_t got = ZSTD_decompress(*data, size, packed, plen);
        free(packed);
        if (ZSTD_isError(got) || got != size) {
            free(*data);
            *data = NULL;
            return bg_fail(err, -EINVAL, "%s: %s", path,
                           ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short output");
        }
        *len = got;
        return 0;
    }
    bool xz = initrd_ends_with(path, ".ko.xz");
    if (!xz && !initrd_ends_with(path, ".ko.gz"))
        return bg_fail(err, -EINVAL, "%s: unknown module compression", path);
    const char *argv[] = { xz ? "xz" : "gzip", "-dc", path, NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts),
                                    .timeout_ms = INITRD_TOOL_TIMEOUT_MS };
    struct banger_run_result res = { .struct_size = sizeof(res) };
    int r = runner_run(argv, &opts, &res, err);
    if (r == 0) {
        *data = res.out;
        *len = res.out_len;
        res.out = NULL;
    }
    runner_result_clear(&res);
    return r;
}

static int initrd_add(struct archive *a, const char *path, mode_t type, mode_t perm,
                      const void *data, size_t len, struct banger_error *err)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_nlink(e, type == AE_IFDIR ? 2 : 1);
    if (type == AE_IFCHR)
        archive_entry_set_rdev(e, makedev(5, 1));
    archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
    int r = 0;
    if (archive_write_header(a, e) < ARCHIVE_WARN ||
        (type == AE_IFREG && len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len))
        r = bg_fail(err, -EIO, "initrd entry %s: %s", path, archive_error_string(a));
    archive_entry_free(e);
    return r;
}

static char *initrd_script(char *const *plan)
{
    size_t len = sizeof(initrd_init_head) + sizeof(initrd_init_tail);
    for (size_t i = 0; plan[i]; i++)
        len += strlen(plan[i]) + 2;
    char *s = xmalloc(len);
    strcpy(s, initrd_init_head);
    for (size_t i = 0; plan[i]; i++) {
        char *name = initrd_mod_name(plan[i], strlen(plan[i]));
        strcat(s, " ");
        strcat(s, name);
        free(name);
    }
    strcat(s, initrd_init_tail);
    return s;
}

int images_initrd_build(const char *modules_dir, const char *busybox, const char *out,
                        struct banger_error *err)
{
    static const char *const dirs[] = { "bin", "dev", "proc", "sys", "newroot", "lib",
                                        "lib/modules" };
    char **plan = NULL;
    char *bb = NULL, *script = NULL;
    size_t bb_len = 0;
    struct archive *a = NULL;
    int r = images_initrd_plan(modules_dir, &plan, err);
    if (r == 0)
        r = fs_read_all(busybox, INITRD_MODULE_MAX, &bb, &bb_len, err);
    if (r < 0)
        goto cleanup;
    a = archive_write_new();
    if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK ||
        archive_write_add_filter_gzip(a) < ARCHIVE_WARN ||
        archive_write_open_filename(a, out) != ARCHIVE_OK) {
        r = bg_fail(err, -EIO, "initrd %s: %s", out, archive_error_string(a));
        goto cleanup;
    }
    for (size_t i = 0; r == 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++)
        r = initrd_add(a, dirs[i], AE_IFDIR, 0755, NULL, 0, err);
    /* The kernel opens /dev/console for init before anything is mounted. */
    if (r == 0)
        r = initrd_add(a, "dev/console", AE_IFCHR, 0600, NULL, 0, err);
    if (r == 0)
        r = initrd_add(a, "bin/busybox", AE_IFREG, 0755, bb, bb_len, err);
    script = initrd_script(plan);
    if (r == 0)
        r = initrd_add(a, "init", AE_IFREG, 0755, script, strlen(script), err);
    for (size_t i = 0; r == 0 && plan[i]; i++) {
        char *src = fs_join(modules_dir, plan[i]);
        char *name = initrd_mod_name(plan[i], strlen(plan[i]));
        char *dst = xasprintf("lib/modules/%s.ko", name);
        char *data = NULL;
        size_t len = 0;
        r = initrd_read_module(src, &data, &len, err);
        if (r == 0)
            r = initrd_add(a, dst, AE_IFREG, 0644, data, len, err);
        free(data);
        free(src);
        free(name);
        free(dst);
    }
    if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
        r = bg_fail(err, -EIO, "initrd %s: %s", out, archive_error_string(a));

cleanup:
    archive_write_free(a);
    images_initrd_plan_free(plan);
    free(bb);
    free(script);
    if (r < 0)
        unlink(out);
    return r;
}
