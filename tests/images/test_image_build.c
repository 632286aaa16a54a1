/* build-default's pieces without the network: the kernel payload out of a
 * bzImage (the host's real one, and made-up ones for each compressor), the
 * initrd (from the host's real modules, and from a made-up modules dir with
 * compressed and built-in modules), and the mirror from apt sources. */
#include "config.h"

#include "images/image_build.h"
#include "images/image_guest.h"
#include "images/image_initrd.h"
#include "images/image_kernel.h"
#include "images/image_stage.h"
#include "images_test_util.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static struct itest t;

static void setup(void) { itest_setup(&t); }
static void teardown(void) { itest_teardown(&t); }

static void write_file(const char *path, const void *data, size_t len)
{
    struct banger_error err = { 0 };
    ck_assert_msg(fs_write_atomic(path, data, len, 0644, &err) == 0, "%s", err.msg);
}

static void mkdirs(const char *path)
{
    char *copy = xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(copy, 0755);
            *p = '/';
        }
    }
    mkdir(copy, 0755);
    free(copy);
}

/* ---- kernel ------------------------------------------------------------- */

START_TEST(bzimage_real_kernel_is_elf_with_its_version)
{
    char ver[128];
    struct banger_error err = { 0 };
    if (images_host_kernel("/boot", "/lib/modules", ver, sizeof(ver), &err) < 0) {
        fprintf(stderr, "SKIP-PART: no Debian kernel on this host (%s)\n", err.msg);
        return;
    }
    char *bz = xasprintf("/boot/vmlinuz-%s", ver);
    char *out = itest_path(&t, "vmlinux");
    ck_assert_msg(images_bzimage_extract(bz, out, &err) == 0, "%s", err.msg);
    size_t len = 0;
    char *data = itest_read(out, &len);
    ck_assert_uint_gt(len, 1u << 20);
    ck_assert_int_eq(memcmp(data, "\177ELF", 4), 0);
    free(data);
    char got[128];
    ck_assert_int_eq(images_kernel_version(out, got, sizeof(got)), 0);
    ck_assert_str_eq(got, ver);
    /* No temporary payload file is left beside it. */
    char *xz = xasprintf("%s.xz", out);
    ck_assert_int_ne(access(xz, F_OK), 0);
    free(xz);
    free(out);
    free(bz);
}
END_TEST

/* A small "vmlinux": an ELF header and a version banner. */
static const char fake_elf[] = "\177ELF\2\1\1\0\0\0\0\0\0\0\0\0"
                               "padding padding Linux version 9.9.9-fake (x) #1\0tail";

/* The fake vmlinux compressed by `tool`; malloc'd, length in *len. */
static char *compress_with(const char *tool, size_t *len)
{
    char *plain = itest_path(&t, "plain");
    write_file(plain, fake_elf, sizeof(fake_elf));
    const char *argv[] = { tool, "-c", plain, NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .timeout_ms = 30000 };
    struct banger_run_result res = { .struct_size = sizeof(res) };
    struct banger_error err = { 0 };
    ck_assert_msg(runner_run(argv, &opts, &res, &err) == 0, "%s", err.msg);
    char *out = xmalloc(res.out_len);
    memcpy(out, res.out, res.out_len);
    *len = res.out_len;
    runner_result_clear(&res);
    free(plain);
    return out;
}

/* junk, payload, a 4-byte size trailer, as in a bzImage without a usable
 * setup header: the scan path. */
static void check_fake_bzimage(const void *payload, size_t len)
{
    static const char junk[] = "MZ not a setup header at all, just bytes before the payload";
    size_t total = sizeof(junk) + len + 4;
    char *img = xcalloc(1, total);
    memcpy(img, junk, sizeof(junk));
    memcpy(img + sizeof(junk), payload, len);
    memcpy(img + sizeof(junk) + len, "\x99\x00\x00\x00", 4);
    char *bz = itest_path(&t, "vmlinuz-fake");
    char *out = itest_path(&t, "vmlinux-fake");
    write_file(bz, img, total);
    struct banger_error err = { 0 };
    ck_assert_msg(images_bzimage_extract(bz, out, &err) == 0, "%s", err.msg);
    size_t got_len = 0;
    char *got = itest_read(out, &got_len);
    ck_assert_uint_eq(got_len, sizeof(fake_elf));
    ck_assert_int_eq(memcmp(got, fake_elf, sizeof(fake_elf)), 0);
    char ver[64];
    ck_assert_int_eq(images_kernel_version(out, ver, sizeof(ver)), 0);
    ck_assert_str_eq(ver, "9.9.9-fake");
    free(got);
    free(img);
    free(bz);
    free(out);
}

START_TEST(bzimage_scan_finds_each_codec)
{
    static const char *const tools[] = { "xz", "gzip" };
    for (size_t i = 0; i < 2; i++) {
        size_t len = 0;
        char *blob = compress_with(tools[i], &len);
        check_fake_bzimage(blob, len);
        free(blob);
    }
    size_t cap = ZSTD_compressBound(sizeof(fake_elf));
    char *z = xmalloc(cap);
    size_t zlen = ZSTD_compress(z, cap, fake_elf, sizeof(fake_elf), 3);
    ck_assert(!ZSTD_isError(zlen));
    check_fake_bzimage(z, zlen);
    free(z);
}
END_TEST

START_TEST(bzimage_without_payload_is_refused)
{
    char *bz = itest_path(&t, "vmlinuz-empty");
    char *out = itest_path(&t, "vmlinux-empty");
    write_file(bz, "nothing compressed in here", 26);
    struct banger_error err = { 0 };
    ck_assert_int_eq(images_bzimage_extract(bz, out, &err), -EINVAL);
    ck_assert_msg(strstr(err.msg, "no xz, zstd or gzip kernel payload"), "%s", err.msg);
    ck_assert_int_ne(access(out, F_OK), 0);
    free(bz);
    free(out);
}
END_TEST

/* ---- initrd -------------------------------------------------------------- */

struct cpio_list {
    char *init;
    int n;
    char *names[64];
};

static void list_cpio(const char *path, struct cpio_list *l)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    ck_assert_int_eq(archive_read_open_filename(a, path, 1 << 16), ARCHIVE_OK);
    ck_assert_int_eq(archive_filter_code(a, 0), ARCHIVE_FILTER_GZIP);
    struct archive_entry *e;
    memset(l, 0, sizeof(*l));
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        ck_assert_int_eq(archive_format(a), ARCHIVE_FORMAT_CPIO_SVR4_NOCRC);
        const char *name = archive_entry_pathname(e);
        ck_assert_int_lt(l->n, 64);
        l->names[l->n++] = xstrdup(name);
        if (strcmp(name, "init") == 0) {
            la_int64_t size = archive_entry_size(e);
            l->init = xcalloc(1, (size_t)size + 1);
            ck_assert_int_eq(archive_read_data(a, l->init, (size_t)size), size);
            ck_assert_int_eq(archive_entry_perm(e) & 0111, 0111);
        }
    }
    archive_read_free(a);
}

static bool cpio_has(const struct cpio_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return true;
    return false;
}

static void cpio_free(struct cpio_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->init);
}

/* Where "insmod ... m" order puts a module in the init script's list. */
static long init_pos(const char *init, const char *mod)
{
    char *needle = xasprintf(" %s ", mod);
    const char *list = strstr(init, "for m in");
    ck_assert_ptr_nonnull(list);
    const char *hit = strstr(list, needle);
    free(needle);
    if (!hit) {
        char *last = xasprintf(" %s;", mod);
        hit = strstr(list, last);
        free(last);
    }
    ck_assert_msg(hit != NULL, "%s not in the init script", mod);
    return hit - init;
}

START_TEST(initrd_from_real_modules)
{
    char ver[128];
    struct banger_error err = { 0 };
    if (images_host_kernel("/boot", "/lib/modules", ver, sizeof(ver), &err) < 0 ||
        access("/bin/busybox", X_OK) < 0) {
        fprintf(stderr, "SKIP-PART: no Debian kernel or busybox on this host\n");
        return;
    }
    char *mods = xasprintf("/lib/modules/%s", ver);
    char *out = itest_path(&t, "initrd.img");
    ck_assert_msg(images_initrd_build(mods, "/bin/busybox", out, &err) == 0, "%s", err.msg);
    struct cpio_list l;
    list_cpio(out, &l);
    ck_assert(cpio_has(&l, "init"));
    ck_assert(cpio_has(&l, "bin/busybox"));
    ck_assert(cpio_has(&l, "dev/console"));
    ck_assert(cpio_has(&l, "newroot"));
    for (size_t i = 0; images_initrd_modules[i]; i++) {
        char *ko = xasprintf("lib/modules/%s.ko", images_initrd_modules[i]);
        ck_assert_msg(cpio_has(&l, ko), "%s missing", ko);
        free(ko);
    }
    for (int i = 0; i < l.n; i++)
        ck_assert_msg(!strstr(l.names[i], ".ko.xz") && !strstr(l.names[i], ".ko.zst") &&
                      !strstr(l.names[i], ".ko.gz"), "compressed module %s", l.names[i]);
    ck_assert_ptr_nonnull(l.init);
    ck_assert(strncmp(l.init, "#!/bin/busybox sh\n", 18) == 0);
    ck_assert(strstr(l.init, "switch_root /newroot"));
    /* Dependencies before their users. */
    ck_assert_int_lt(init_pos(l.init, "virtio_ring"), init_pos(l.init, "virtio_mmio"));
    ck_assert_int_lt(init_pos(l.init, "virtio"), init_pos(l.init, "virtio_blk"));
    ck_assert_int_lt(init_pos(l.init, "vsock"), init_pos(l.init, "vmw_vsock_virtio_transport"));
    ck_assert_int_lt(init_pos(l.init, "jbd2"), init_pos(l.init, "ext4"));
    ck_assert_int_lt(init_pos(l.init, "crc32c_generic"), init_pos(l.init, "ext4"));
    cpio_free(&l);
    free(out);
    free(mods);
}
END_TEST

/* A made-up kernel: modules compressed three ways, one built in. */
START_TEST(initrd_decompresses_modules)
{
    char *mods = itest_path(&t, "mods");
    char *kdir = xasprintf("%s/kernel/x", mods);
    mkdirs(kdir);
    static const char *const plain_names[] = { "virtio_ring", "virtio", "virtio_mmio",
                                               "vsock", "jbd2", "ext4" };
    char dep[2048] = "";
    for (size_t i = 0; i < 6; i++) {
        char *p = xasprintf("%s/%s.ko", kdir, plain_names[i]);
        char *body = xasprintf("\177ELF module %s", plain_names[i]);
        write_file(p, body, strlen(body));
        free(p);
        free(body);
    }
    /* virtio_blk as .ko.xz, virtio_net as .ko.gz, the vsock transports as .ko.zst. */
    const char *packers[][2] = { { "xz", "virtio_blk" }, { "gzip", "virtio_net" } };
    for (size_t i = 0; i < 2; i++) {
        char *p = xasprintf("%s/%s.ko", kdir, packers[i][1]);
        char *body = xasprintf("\177ELF module %s", packers[i][1]);
        write_file(p, body, strlen(body));
        const char *argv[] = { packers[i][0], "-f", p, NULL };
        struct banger_run_opts o = { .struct_size = sizeof(o), .timeout_ms = 30000 };
        struct banger_run_result res = { .struct_size = sizeof(res) };
        struct banger_error e = { 0 };
        ck_assert_msg(runner_run(argv, &o, &res, &e) == 0, "%s", e.msg);
        runner_result_clear(&res);
        free(p);
        free(body);
    }
    static const char *const zst[] = { "vmw_vsock_virtio_transport_common",
                                       "vmw_vsock_virtio_transport" };
    for (size_t i = 0; i < 2; i++) {
        char *body = xasprintf("\177ELF module %s", zst[i]);
        size_t cap = ZSTD_compressBound(strlen(body));
        char *z = xmalloc(cap);
        size_t zl = ZSTD_compress(z, cap, body, strlen(body), 3);
        ck_assert(!ZSTD_isError(zl));
        char *p = xasprintf("%s/%s.ko.zst", kdir, zst[i]);
        write_file(p, z, zl);
        free(p);
        free(z);
        free(body);
    }
    strcat(dep, "kernel/x/virtio_ring.ko:\n"
                "kernel/x/virtio.ko: kernel/x/virtio_ring.ko\n"
                "kernel/x/virtio_mmio.ko: kernel/x/virtio.ko kernel/x/virtio_ring.ko\n"
                "kernel/x/virtio_blk.ko.xz: kernel/x/virtio.ko kernel/x/virtio_ring.ko\n"
                "kernel/x/virtio_net.ko.gz: kernel/x/virtio.ko kernel/x/virtio_ring.ko\n"
                "kernel/x/vsock.ko:\n"
                "kernel/x/vmw_vsock_virtio_transport_common.ko.zst: kernel/x/vsock.ko\n"
                "kernel/x/vmw_vsock_virtio_transport.ko.zst: "
                "kernel/x/vmw_vsock_virtio_transport_common.ko kernel/x/vsock.ko\n"
                "kernel/x/jbd2.ko:\n"
                "kernel/x/ext4.ko: kernel/x/jbd2.ko\n");
    /* The transport's dep above names the .ko, not the .ko.zst: unknown
     * paths are ignored; the order still comes from the wanted list. */
    char *dep_path = xasprintf("%s/modules.dep", mods);
    write_file(dep_path, dep, strlen(dep));
    char *builtin = xasprintf("%s/modules.builtin", mods);
    write_file(builtin, "kernel/crypto/crc32c_generic.ko\n", 32);
    char *bb = itest_path(&t, "busybox");
    write_file(bb, "\177ELF busybox", 12);
    char *out = itest_path(&t, "initrd.img");
    struct banger_error err = { 0 };
    ck_assert_msg(images_initrd_build(mods, bb, out, &err) == 0, "%s", err.msg);

    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    ck_assert_int_eq(archive_read_open_filename(a, out, 1 << 16), ARCHIVE_OK);
    struct archive_entry *e;
    int modules = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (strncmp(name, "lib/modules/", 12) != 0 || !strstr(name, ".ko"))
            continue;
        modules++;
        char buf[256] = "";
        la_ssize_t n = archive_read_data(a, buf, sizeof(buf) - 1);
        ck_assert_int_gt(n, 0);
        char *want = xasprintf("\177ELF module %.*s", (int)(strlen(name) - 15), name + 12);
        ck_assert_str_eq(buf, want);
        free(want);
    }
    archive_read_free(a);
    ck_assert_int_eq(modules, 10);
    free(out);
    free(bb);
    free(builtin);
    free(dep_path);
    free(kdir);
    free(mods);
}
END_TEST

START_TEST(initrd_missing_module_is_named)
{
    char *mods = itest_path(&t, "mods");
    mkdirs(mods);
    char *dep_path = xasprintf("%s/modules.dep", mods);
    write_file(dep_path, "kernel/x/other.ko:\n", 19);
    char *out = itest_path(&t, "initrd.img");
    struct banger_error err = { 0 };
    ck_assert_int_eq(images_initrd_build(mods, "/bin/sh", out, &err), -ENOENT);
    ck_assert_msg(strstr(err.msg, "no module virtio_mmio"), "%s", err.msg);
    ck_assert_int_ne(access(out, F_OK), 0);
    free(out);
    free(dep_path);
    free(mods);
}
END_TEST

/* ---- mirror ------------------------------------------------------------- */

START_TEST(mirror_from_oneline_sources)
{
    char *apt = itest_path(&t, "apt");
    mkdirs(apt);
    char *list = xasprintf("%s/sources.list", apt);
    const char *text =
        "# a comment\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb http://security.debian.org/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://old.example/debian/ "
        "bullseye main\n"
        "deb [ arch=amd64 ] http://mirror.example/debian/ bookworm main contrib\n";
    write_file(list, text, strlen(text));
    char *m = images_apt_mirror(apt, "bookworm");
    ck_assert_str_eq(m, "http://mirror.example/debian");
    free(m);
    /* Another suite only: that one, not the security archive. */
    m = images_apt_mirror(apt, "trixie");
    ck_assert_str_eq(m, "http://old.example/debian");
    free(m);
    free(list);
    free(apt);
}
END_TEST

START_TEST(mirror_from_deb822_sources)
{
    char *apt = itest_path(&t, "apt");
    char *d = xasprintf("%s/sources.list.d", apt);
    mkdirs(d);
    char *a = xasprintf("%s/a-disabled.sources", d);
    char *b = xasprintf("%s/debian.sources", d);
    char *c = xasprintf("%s/z.list.disabled", d);
    const char *ta = "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\n"
                     "Components: main\nEnabled: no\n";
    const char *tb = "Types: deb\n"
                     "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
                     "URIs: http://security.debian.org/debian-security\n"
                     "Suites: bookworm-security\nComponents: main\n"
                     "\n"
                     "Types: deb-src deb\n"
                     "URIs: http://deb.example/debian\n"
                     "Suites: bookworm\n bookworm-updates\n"
                     "Components: main\n"
                     "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
    const char *tc = "deb http://never.example/debian bookworm main\n";
    write_file(a, ta, strlen(ta));
    write_file(b, tb, strlen(tb));
    write_file(c, tc, strlen(tc));
    char *m = images_apt_mirror(apt, "bookworm");
    ck_assert_str_eq(m, "http://deb.example/debian");
    free(m);
    free(a);
    free(b);
    free(c);
    free(d);
    free(apt);
}
END_TEST

START_TEST(mirror_default_without_sources)
{
    char *apt = itest_path(&t, "empty-apt");
    mkdirs(apt);
    char *m = images_apt_mirror(apt, "bookworm");
    ck_assert_str_eq(m, IMAGES_BUILD_DEFAULT_MIRROR);
    free(m);
    free(apt);
}
END_TEST

/* ---- which mirror, which keyring ------------------------------------------ */

struct deboot_record {
    int runs;
    char *argv;     /* the debootstrap command line, joined */
};

static int record_debootstrap(void *ctx, const char *const *argv, struct banger_run_result *res)
{
    struct deboot_record *rec = ctx;
    (void)res;
    if (strcmp(argv[0], "debootstrap") != 0)
        return 0;
    rec->runs++;
    free(rec->argv);
    rec->argv = runner_argv_to_string(argv);
    return -EIO;   /* stop the build here */
}

/* build-default as a client asks for it: the host's sources name
 * http://mirror.example/debian, the daemon lists http://listed.example/debian. */
static int build_with_mirror(const char *mirror, const char *keyring, struct deboot_record *rec,
                             struct banger_error *err)
{
    char *apt = itest_path(&t, "apt");
    mkdirs(apt);
    char *list = xasprintf("%s/sources.list", apt);
    const char *text = "deb http://mirror.example/debian bookworm main\n";
    write_file(list, text, strlen(text));
    const char *const listed[] = { "http://listed.example/debian" };
    struct images_build_params p = { .name = "built", .mirror = mirror, .mirrors = listed,
                                     .n_mirrors = 1, .keyring = keyring, .apt_dir = apt };
    struct image_record *img = NULL;
    runner_set_hook(record_debootstrap, rec);
    int r = images_build_default(t.store, t.images_dir, &p, &img, err);
    runner_set_hook(NULL, NULL);
    image_record_free(img);
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(list);
    free(apt);
    return r;
}

/* A client's file: mirror would have root run that directory's maintainer
 * scripts: refused before anything runs. */
START_TEST(build_refuses_client_file_mirror)
{
    struct deboot_record rec = { 0 };
    struct banger_error err = { 0 };
    ck_assert_int_eq(build_with_mirror("file:/tmp/x", NULL, &rec, &err), -EPERM);
    ck_assert_msg(strstr(err.msg, "mirror 'file:/tmp/x' refused"), "%s", err.msg);
    ck_assert_int_eq(rec.runs, 0);
    ck_assert_int_eq(build_with_mirror("http://evil.example/debian", NULL, &rec, &err), -EPERM);
    ck_assert_msg(strstr(err.msg, "nor listed in the daemon's images.mirrors"), "%s", err.msg);
    ck_assert_int_eq(rec.runs, 0);
    free(rec.argv);
}
END_TEST

START_TEST(build_checks_signatures_on_allowed_mirrors)
{
    char *bz = itest_find_bzimage();
    bool have_kernel = bz != NULL;
    free(bz);
    if (!have_kernel || access("/bin/busybox", X_OK) < 0 ||
        access(IMAGES_BUILD_DEFAULT_KEYRING, R_OK) < 0) {
        fprintf(stderr, "SKIP build_checks_signatures_on_allowed_mirrors: no host kernel, "
                "busybox or archive keyring\n");
        return;
    }
    static const char *const ok[] = { "http://listed.example/debian/",
                                      "http://mirror.example/debian", NULL };
    for (size_t i = 0; ok[i]; i++) {
        struct deboot_record rec = { 0 };
        struct banger_error err = { 0 };
        ck_assert_int_lt(build_with_mirror(ok[i], NULL, &rec, &err), 0);
        ck_assert_int_eq(rec.runs, 1);
        ck_assert_msg(strstr(rec.argv, " --force-check-gpg --keyring="
                                       IMAGES_BUILD_DEFAULT_KEYRING " "), "%s", rec.argv);
        ck_assert_msg(strstr(rec.argv, ok[i]), "%s", rec.argv);
        free(rec.argv);
    }
    /* A keyring that is not there stops the build: no unchecked fallback. */
    struct deboot_record rec = { 0 };
    struct banger_error err = { 0 };
    char *missing = itest_path(&t, "no-such-keyring.gpg");
    ck_assert_int_eq(build_with_mirror(NULL, missing, &rec, &err), -ENOENT);
    ck_assert_msg(strstr(err.msg, "keyring"), "%s", err.msg);
    ck_assert_int_eq(rec.runs, 0);
    free(missing);
}
END_TEST

/* ---- what goes into the guest tree ----------------------------------- */

static char *tree_file(const char *root, const char *rel)
{
    char *path = fs_join(root, rel);
    char *text = itest_read(path, NULL);
    free(path);
    return text;
}

static void tree_put(const char *root, const char *rel, const char *text)
{
    char *path = fs_join(root, rel);
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    write_file(path, text, strlen(text));
    free(dir);
    free(path);
}

static void tree_link(const char *root, const char *rel, const char *dest)
{
    char *path = fs_join(root, rel);
    char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    ck_assert_int_eq(symlink(dest, path), 0);
    free(dir);
    free(path);
}

static void assert_link(const char *root, const char *rel, const char *dest)
{
    char *path = fs_join(root, rel);
    char buf[4096];
    ssize_t n = readlink(path, buf, sizeof(buf) - 1);
    ck_assert_msg(n > 0, "%s is not a symlink", rel);
    buf[n] = '\0';
    ck_assert_str_eq(buf, dest);
    free(path);
}

static bool tree_exists(const char *root, const char *rel)
{
    char *path = fs_join(root, rel);
    struct stat sb;
    bool found = lstat(path, &sb) == 0;
    free(path);
    return found;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A Debian-like systemd tree, as debootstrap leaves it. */
static char *systemd_tree(void)
{
    char *root = itest_path(&t, "tree");
    mkdirs(root);
    tree_put(root, "usr/lib/systemd/systemd", "");
    tree_put(root, "usr/lib/systemd/system/reboot.target", "[Unit]\n");
    tree_put(root, "usr/lib/systemd/system/systemd-resolved.service", "[Unit]\n");
    tree_put(root, "usr/sbin/sshd", "");
    tree_put(root, "etc/ssh/sshd_config",
             "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n");
    tree_put(root, "etc/ssh/ssh_host_ed25519_key", "private\n");
    tree_put(root, "etc/ssh/ssh_host_ed25519_key.pub", "public\n");
    tree_put(root, "etc/ssh/ssh_host_rsa_key", "private\n");
    tree_put(root, "etc/fstab", "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n");
    tree_link(root, "etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf");
    return root;
}

START_TEST(guest_systemd_tree_gets_work_disk_sshd_and_shutdown)
{
    struct banger_error err = { 0 };
    char *root = systemd_tree();
    cJSON *warnings = cJSON_CreateArray();
    uint64_t bytes = 0;
    /* Twice: a second pass adds nothing twice. */
    for (int pass = 0; pass < 2; pass++)
        ck_assert_msg(images_guest_inject(root, &bytes, warnings, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cJSON_GetArraySize(warnings), 0);

    /* The work disk at /root by its label, a boot without it still works. */
    char *fstab = tree_file(root, "etc/fstab");
    ck_assert_ptr_nonnull(strstr(fstab, "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"));
    ck_assert_uint_eq(count_of(fstab, "\nLABEL=banger-work /root ext4 "
                                      "defaults,nofail,x-systemd.device-timeout=60s 0 2\n"), 1);
    assert_link(root, "etc/systemd/system/multi-user.target.wants/banger-work.service",
                "/etc/systemd/system/banger-work.service");
    char *work_unit = tree_file(root, "etc/systemd/system/banger-work.service");
    ck_assert_ptr_nonnull(strstr(work_unit, "After=root.mount\n"));
    ck_assert_ptr_nonnull(strstr(work_unit, "Before=ssh.service"));
    char *seed = tree_file(root, "usr/local/sbin/banger-work");
    ck_assert_ptr_nonnull(strstr(seed, "chmod 0700 /root\n"));
    ck_assert_ptr_nonnull(strstr(seed, "/etc/skel/."));

    /* No host keys baked in; made before sshd on first boot. */
    ck_assert(!tree_exists(root, "etc/ssh/ssh_host_ed25519_key"));
    ck_assert(!tree_exists(root, "etc/ssh/ssh_host_ed25519_key.pub"));
    ck_assert(!tree_exists(root, "etc/ssh/ssh_host_rsa_key"));
    char *keys_unit = tree_file(root, "etc/systemd/system/banger-hostkeys.service");
    ck_assert_ptr_nonnull(strstr(keys_unit, "Before=ssh.service"));
    ck_assert_ptr_nonnull(strstr(keys_unit, "ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N \"\" "
                                            "-f /etc/ssh/ssh_host_ed25519_key\n"));
    ck_assert_ptr_nonnull(strstr(keys_unit, "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n"));
    assert_link(root, "etc/systemd/system/multi-user.target.wants/banger-hostkeys.service",
                "/etc/systemd/system/banger-hostkeys.service");
    assert_link(root, "etc/systemd/system/ssh.service.wants/banger-hostkeys.service",
                "/etc/systemd/system/banger-hostkeys.service");

    /* Root by key only, ahead of the image's own settings. */
    char *sshd = tree_file(root, "etc/ssh/sshd_config");
    ck_assert_uint_eq(count_of(sshd, "PermitRootLogin prohibit-password\n"), 1);
    ck_assert_ptr_nonnull(strstr(sshd, "PasswordAuthentication no\n"));
    ck_assert(strstr(sshd, "PermitRootLogin prohibit-password") <
              strstr(sshd, "PermitRootLogin yes"));
    ck_assert(strstr(sshd, "PasswordAuthentication no") < strstr(sshd, "Include "));

    /* Ctrl-Alt-Del and poweroff end in a reset. */
    assert_link(root, "etc/systemd/system/ctrl-alt-del.target",
                "/usr/lib/systemd/system/reboot.target");
    assert_link(root, "etc/systemd/system/poweroff.target",
                "/usr/lib/systemd/system/reboot.target");

    /* resolv.conf: a regular file banger-net rewrites, no stub resolver. */
    char *resolv_path = fs_join(root, "etc/resolv.conf");
    struct stat sb;
    ck_assert_int_eq(lstat(resolv_path, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    assert_link(root, "etc/systemd/system/systemd-resolved.service", "/dev/null");
    char *net = tree_file(root, "usr/local/sbin/banger-net");
    ck_assert_ptr_nonnull(strstr(net, "echo \"nameserver $dns0\" > /etc/resolv.conf"));
    ck_assert_ptr_nonnull(strstr(net, "hostname \"$host\""));

    /* The agent and the boot marker, as before. */
    assert_link(root, "etc/systemd/system/sysinit.target.wants/banger-vsock-agent.service",
                "/etc/systemd/system/banger-vsock-agent.service");
    assert_link(root, "etc/systemd/system/multi-user.target.wants/banger-boot-ok.service",
                "/etc/systemd/system/banger-boot-ok.service");
    ck_assert(tree_exists(root, "usr/local/sbin/banger-vsock-agent"));

    free(fstab);
    free(work_unit);
    free(seed);
    free(keys_unit);
    free(sshd);
    free(resolv_path);
    free(net);
    cJSON_Delete(warnings);
    free(root);
}
END_TEST

START_TEST(guest_busybox_tree_gets_inittab_and_sshd_warning)
{
    struct banger_error err = { 0 };
    char *root = itest_path(&t, "tree");
    mkdirs(root);
    tree_put(root, "bin/busybox", "");
    tree_link(root, "sbin/init", "/bin/busybox");
    cJSON *warnings = cJSON_CreateArray();
    uint64_t bytes = 0;
    ck_assert_msg(images_guest_inject(root, &bytes, warnings, &err) == 0, "%s", err.msg);
    char *inittab = tree_file(root, "etc/inittab");
    ck_assert_ptr_nonnull(strstr(inittab, "::sysinit:/etc/init.d/rcS\n"));
    ck_assert_ptr_nonnull(strstr(inittab, "::sysinit:/usr/local/sbin/banger-net\n"));
    ck_assert_ptr_nonnull(strstr(inittab, "::sysinit:/usr/local/sbin/banger-work --mount\n"));
    ck_assert_ptr_nonnull(strstr(inittab, "::respawn:/usr/local/sbin/banger-vsock-agent "
                                          "--listen vsock:10789\n"));
    ck_assert_ptr_nonnull(strstr(inittab, "::ctrlaltdel:/sbin/reboot\n"));
    ck_assert(!tree_exists(root, "etc/systemd/system/banger-vsock-agent.service"));
    ck_assert_int_eq(cJSON_GetArraySize(warnings), 1);
    const char *w = cJSON_GetArrayItem(warnings, 0)->valuestring;
    ck_assert_msg(strstr(w, "no sshd"), "%s", w);
    ck_assert_msg(strstr(w, "agent"), "%s", w);

    /* An existing inittab keeps its lines and its own ctrlaltdel action. */
    char *path = fs_join(root, "etc/inittab");
    const char *own = "::sysinit:/etc/init.d/rcS\n::ctrlaltdel:/sbin/poweroff\n";
    write_file(path, own, strlen(own));
    ck_assert_msg(images_guest_inject(root, &bytes, NULL, &err) == 0, "%s", err.msg);
    free(inittab);
    inittab = tree_file(root, "etc/inittab");
    ck_assert_ptr_eq(strstr(inittab, own), inittab);
    ck_assert_uint_eq(count_of(inittab, "ctrlaltdel"), 1);
    ck_assert_uint_eq(count_of(inittab, "banger-vsock-agent"), 1);
    free(path);
    free(inittab);
    cJSON_Delete(warnings);
    free(root);
}
END_TEST

/* An fstab that is a symlink is left alone, not replaced or written through. */
START_TEST(guest_leaves_symlinked_fstab)
{
    struct banger_error err = { 0 };
    char *root = systemd_tree();
    char *outside = itest_path(&t, "outside-fstab");
    write_file(outside, "# theirs\n", 9);
    char *fstab = fs_join(root, "etc/fstab");
    ck_assert_int_eq(unlink(fstab), 0);
    ck_assert_int_eq(symlink(outside, fstab), 0);
    uint64_t bytes = 0;
    ck_assert_msg(images_guest_inject(root, &bytes, NULL, &err) == 0, "%s", err.msg);
    assert_link(root, "etc/fstab", outside);
    char *theirs = itest_read(outside, NULL);
    ck_assert_str_eq(theirs, "# theirs\n");
    free(theirs);
    free(fstab);
    free(outside);
    free(root);
}
END_TEST

START_TEST(guest_unknown_init_warns)
{
    struct banger_error err = { 0 };
    char *root = itest_path(&t, "tree");
    mkdirs(root);
    tree_put(root, "usr/sbin/sshd", "");
    cJSON *warnings = cJSON_CreateArray();
    uint64_t bytes = 0;
    ck_assert_msg(images_guest_inject(root, &bytes, warnings, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cJSON_GetArraySize(warnings), 1);
    const char *w = cJSON_GetArrayItem(warnings, 0)->valuestring;
    ck_assert_msg(strstr(w, "neither systemd nor busybox init"), "%s", w);
    cJSON_Delete(warnings);
    free(root);
}
END_TEST

/* A symlinked etc must not lead the writes out of the tree. */
START_TEST(guest_refuses_symlinked_etc)
{
    struct banger_error err = { 0 };
    char *root = itest_path(&t, "tree");
    char *outside = itest_path(&t, "outside");
    mkdirs(root);
    mkdirs(outside);
    tree_put(root, "usr/lib/systemd/systemd", "");
    tree_link(root, "etc", outside);
    uint64_t bytes = 0;
    ck_assert_int_lt(images_guest_inject(root, &bytes, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, "not a directory"), "%s", err.msg);
    ck_assert(!tree_exists(outside, "fstab"));
    ck_assert(!tree_exists(outside, "resolv.conf"));
    free(root);
    free(outside);
}
END_TEST

static Suite *build_suite(void)
{
    Suite *s = suite_create("image-build");
    TCase *tc = tcase_create("kernel");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bzimage_real_kernel_is_elf_with_its_version);
    tcase_add_test(tc, bzimage_scan_finds_each_codec);
    tcase_add_test(tc, bzimage_without_payload_is_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("initrd");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, initrd_from_real_modules);
    tcase_add_test(tc, initrd_decompresses_modules);
    tcase_add_test(tc, initrd_missing_module_is_named);
    suite_add_tcase(s, tc);

    tc = tcase_create("mirror");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mirror_from_oneline_sources);
    tcase_add_test(tc, mirror_from_deb822_sources);
    tcase_add_test(tc, mirror_default_without_sources);
    tcase_add_test(tc, build_refuses_client_file_mirror);
    tcase_add_test(tc, build_checks_signatures_on_allowed_mirrors);
    suite_add_tcase(s, tc);

    tc = tcase_create("guest");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, guest_systemd_tree_gets_work_disk_sshd_and_shutdown);
    tcase_add_test(tc, guest_busybox_tree_gets_inittab_and_sshd_warning);
    tcase_add_test(tc, guest_leaves_symlinked_fstab);
    tcase_add_test(tc, guest_unknown_init_warns);
    tcase_add_test(tc, guest_refuses_symlinked_etc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setenv("BANGER_AGENT_PATH", AGENT_BUILD_PATH, 0);
    setenv("BANGER_GUEST_DIR", GUEST_SRC_DIR, 0);
    SRunner *sr = srunner_create(build_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
