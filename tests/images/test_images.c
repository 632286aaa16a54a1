/* Image register, import and pull against a real store in a temp dir: the
 * checks, the manifest, and that a failure leaves nothing in images/. */
#include "config.h"

#include "config/config.h"
#include "images/image_import.h"
#include "images/image_pull.h"
#include "images/image_stage.h"
#include "images/images.h"
#include "images_test_util.h"
#include "runner/runner.h"
#include "util/caller_open.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static struct itest t;

static void setup(void) { itest_setup(&t); }
static void teardown(void) { itest_teardown(&t); }

static int do_register(const char *name, const char *rootfs, const char *kernel,
                       struct banger_error *err)
{
    struct images_register_params p = { .name = name, .rootfs = rootfs, .kernel = kernel };
    struct image_record *img = NULL;
    int r = images_register(t.store, t.images_dir, &p, &img, err);
    image_record_free(img);
    return r;
}

static void assert_msg_has(const struct banger_error *err, const char *needle)
{
    ck_assert_msg(strstr(err->msg, needle), "message '%s' lacks '%s'", err->msg, needle);
}

/* A register from another file system (copy_file_range says EXDEV between
 * tmpfs and the state dir's) still copies, and keeps the holes. */
START_TEST(copy_across_file_systems_keeps_holes)
{
    struct stat sb;
    if (stat("/dev/shm", &sb) < 0 || !S_ISDIR(sb.st_mode))
        return; /* no tmpfs to copy from */
    char from[] = "/dev/shm/banger-copy-XXXXXX";
    int fd = mkstemp(from);
    ck_assert_int_ge(fd, 0);
    const off_t far = 96 << 20, size = 128 << 20;
    ck_assert_int_eq(pwrite(fd, "head", 4, 0), 4);
    ck_assert_int_eq(pwrite(fd, "tail", 4, far), 4);
    ck_assert_int_eq(ftruncate(fd, size), 0);
    close(fd);
    char *to = xasprintf("%s/copy.img", t.dir);
    struct banger_error err = { 0 };
    int r = images_copy_file(from, to, &err);
    unlink(from);
    ck_assert_msg(r == 0, "%s", err.msg);
    char buf[5] = "";
    fd = open(to, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, 4, 0), 4);
    ck_assert_str_eq(buf, "head");
    ck_assert_int_eq(pread(fd, buf, 4, far), 4);
    ck_assert_str_eq(buf, "tail");
    ck_assert_int_eq(fstat(fd, &sb), 0);
    close(fd);
    ck_assert_int_eq(sb.st_size, size);
    ck_assert_msg(sb.st_blocks * 512 < (1 << 20), "the copy is not sparse: %lld bytes used",
                  (long long)sb.st_blocks * 512);
    unlink(to);
    free(to);
}
END_TEST

/* ---- register ----------------------------------------------------------- */

START_TEST(register_writes_sha256_and_kernel_version)
{
    char *rootfs = itest_path(&t, "root.img");
    struct banger_error err = { 0 };
    struct image_record *img = NULL;
    itest_fake_rootfs(rootfs);
    struct images_register_params p = { .name = "one", .rootfs = rootfs,
                                        .kernel = itest_elf_kernel() };
    ck_assert_msg(images_register(t.store, t.images_dir, &p, &img, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(itest_count_images_dir(&t), 1);

    cJSON *m = cJSON_Parse(img->manifest);
    ck_assert_ptr_nonnull(m);
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(m, "kernel_version");
    ck_assert_msg(cJSON_IsString(kv), "no kernel_version in %s", img->manifest);
    ck_assert_str_eq(kv->valuestring, ITEST_KERNEL_VERSION);
    size_t len;
    char *data = itest_read(rootfs, &len), hex[65];
    itest_sha256_hex(data, len, hex);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, "files"), "rootfs.ext4");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(f, "sha256")->valuestring, hex);
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(f, "size")->valuedouble, (int)len);

    /* manifest.json on disk is the same document. */
    char *dir = xstrdup(img->rootfs_path);
    *strrchr(dir, '/') = '\0';
    char *mpath = fs_join(dir, "manifest.json");
    char *disk = itest_read(mpath, NULL);
    ck_assert_str_eq(disk, img->manifest);
    free(disk);
    free(mpath);
    free(dir);
    free(data);
    cJSON_Delete(m);
    image_record_free(img);
    free(rootfs);
}
END_TEST

START_TEST(register_rejects_non_ext4)
{
    char *rootfs = itest_path(&t, "plain.img");
    struct banger_error err = { 0 };
    FILE *f = fopen(rootfs, "we");
    fputs("not a filesystem\n", f);
    fclose(f);
    ck_assert_int_eq(do_register("x", rootfs, itest_elf_kernel(), &err), -EINVAL);
    assert_msg_has(&err, "not an ext4 filesystem");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(rootfs);
}
END_TEST

START_TEST(register_rejects_bzimage)
{
    char *bz = itest_find_bzimage();
    if (!bz) {
        fprintf(stderr, "SKIP register_rejects_bzimage: no /boot/vmlinuz-*\n");
        return;
    }
    char *rootfs = itest_path(&t, "root.img");
    struct banger_error err = { 0 };
    itest_fake_rootfs(rootfs);
    ck_assert_int_eq(do_register("x", rootfs, bz, &err), -EINVAL);
    assert_msg_has(&err, "bzImage");
    assert_msg_has(&err, "extract-vmlinux");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(rootfs);
    free(bz);
}
END_TEST

START_TEST(register_rejects_taken_name)
{
    char *rootfs = itest_path(&t, "root.img");
    struct banger_error err = { 0 };
    itest_fake_rootfs(rootfs);
    ck_assert_int_eq(do_register("dup", rootfs, itest_elf_kernel(), &err), 0);
    ck_assert_int_eq(do_register("dup", rootfs, itest_elf_kernel(), &err), -EEXIST);
    assert_msg_has(&err, "an image named 'dup' already exists");
    ck_assert_int_eq(itest_count_images_dir(&t), 1);
    free(rootfs);
}
END_TEST

START_TEST(register_rejects_missing_file)
{
    char *rootfs = itest_path(&t, "root.img");
    char *missing = itest_path(&t, "no-such-initrd");
    struct banger_error err = { 0 };
    itest_fake_rootfs(rootfs);
    ck_assert_int_eq(do_register("x", missing, itest_elf_kernel(), &err), -ENOENT);
    assert_msg_has(&err, "no-such-initrd");
    struct images_register_params p = { .name = "x", .rootfs = rootfs,
                                        .kernel = itest_elf_kernel(), .initrd = missing };
    struct image_record *img = NULL;
    ck_assert_int_eq(images_register(t.store, t.images_dir, &p, &img, &err), -ENOENT);
    assert_msg_has(&err, "initrd");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(rootfs);
    free(missing);
}
END_TEST

START_TEST(delete_refused_while_vm_uses_image)
{
    char *rootfs = itest_path(&t, "root.img");
    struct banger_error err = { 0 };
    char eb[512] = "";
    itest_fake_rootfs(rootfs);
    ck_assert_int_eq(do_register("busy", rootfs, itest_elf_kernel(), &err), 0);
    struct vm_request req = { .name = "vm1", .image = "busy", .vcpu = 1, .memory_mib = 128,
                              .disk_size = 1 << 30 };
    struct vm_record *vm = NULL;
    ck_assert_msg(store_vm_reserve(t.store, &req, 0x0a000000, 24, &vm, eb, sizeof(eb)) == 0,
                  "%s", eb);
    ck_assert_int_lt(images_delete(t.store, t.images_dir, "busy", NULL, &err), 0);
    ck_assert_int_eq(itest_count_images_dir(&t), 1);
    ck_assert_int_eq(store_vm_delete(t.store, vm->id, eb, sizeof(eb)), 0);
    ck_assert_msg(images_delete(t.store, t.images_dir, "busy", NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    vm_record_free(vm);
    free(rootfs);
}
END_TEST

/* ---- import ------------------------------------------------------------- */

static int do_import(const char *name, const char *tar, struct banger_error *err)
{
    struct images_import_params p = { .name = name, .tar = tar, .kernel = itest_elf_kernel() };
    struct image_record *img = NULL;
    int r = images_import(t.store, t.images_dir, &p, &img, err);
    image_record_free(img);
    return r;
}

static void import_refused(const struct itest_entry *entries, size_t n, const char *needle)
{
    char *tar = itest_path(&t, "bad.tar");
    struct banger_error err = { 0 };
    itest_write_tar(tar, false, entries, n);
    ck_assert_int_eq(do_import("bad", tar, &err), -EINVAL);
    assert_msg_has(&err, needle);
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(tar);
}

START_TEST(import_rejects_dotdot)
{
    const struct itest_entry e[] = { { "./etc", 'd', NULL, 0 },
                                     { "../evil", 'f', "x", 0 } };
    import_refused(e, 2, "tar entry '../evil' contains '..'");
    char *evil = fs_join(t.images_dir, "../evil");
    ck_assert_int_ne(access(evil, F_OK), 0);
    free(evil);
}
END_TEST

/* A few KiB of tar declaring a 1 TiB sparse file: refused at its header by
 * the rootfs cap, before a byte of it lands in the staging tree. */
START_TEST(import_sparse_bomb_refused)
{
    static const char tail[] = "x";
    const struct itest_sparse bomb = { tail, 1, 1ull << 40 };
    const struct itest_entry e[] = { { "./etc", 'd', NULL, 0 },
                                     { "./big", 's', (const char *)&bomb, 0 } };
    char *tar = itest_path(&t, "bomb.tar");
    struct banger_error err = { 0 };
    itest_write_tar(tar, false, e, 2);
    struct images_import_params p = { .name = "bomb", .tar = tar, .kernel = itest_elf_kernel(),
                                      .max_bytes = 64ull << 30 };
    struct image_record *img = NULL;
    ck_assert_int_eq(images_import(t.store, t.images_dir, &p, &img, &err), -EFBIG);
    assert_msg_has(&err, "tar entry './big': the tree would hold more than 68719476736 bytes");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(tar);
}
END_TEST

START_TEST(import_rejects_absolute)
{
    const struct itest_entry e[] = { { "/abs", 'f', "x", 0 } };
    import_refused(e, 1, "tar entry '/abs' has an absolute path");
}
END_TEST

START_TEST(import_rejects_device_node_outside_dev)
{
    const struct itest_entry e[] = { { "etc/", 'd', NULL, 0 }, { "etc/mem", 'c', NULL, 0 } };
    import_refused(e, 2, "tar entry 'etc/mem' is a device node outside dev/");
}
END_TEST

START_TEST(import_rejects_node_below_dev_subdir)
{
    const struct itest_entry e[] = { { "./dev/", 'd', NULL, 0 }, { "./dev/pts/", 'd', NULL, 0 },
                                     { "./dev/pts/ptmx", 'c', NULL, 0 } };
    import_refused(e, 3, "tar entry './dev/pts/ptmx' is a device node outside dev/");
}
END_TEST

START_TEST(import_rejects_fifo_outside_dev)
{
    const struct itest_entry e[] = { { "run/", 'd', NULL, 0 }, { "run/initctl", 'p', NULL, 0 } };
    import_refused(e, 2, "tar entry 'run/initctl' is a fifo outside dev/");
}
END_TEST

/* What debootstrap output looks like: dev/ holds nodes, which are skipped. */
START_TEST(import_skips_nodes_in_dev)
{
    char *tar = itest_path(&t, "deb.tar");
    struct banger_error err = { 0 };
    const struct itest_entry e[] = {
        { "./", 'd', NULL, 0 },           { "./dev/", 'd', NULL, 0 },
        { "./dev/null", 'c', NULL, 0 },   { "./dev/initctl", 'p', NULL, 0 },
        { "./dev/pts/", 'd', NULL, 0 },   { "./etc/", 'd', NULL, 0 },
        { "./etc/hostname", 'f', "g\n", 0 },
    };
    itest_write_tar(tar, false, e, sizeof(e) / sizeof(e[0]));
    char *root = itest_path(&t, "tree");
    ck_assert_int_eq(mkdir(root, 0755), 0);
    uint64_t bytes = 0;
    ck_assert_msg(images_extract_tree(tar, root, &bytes, &err) == 0, "%s", err.msg);
    char *null_path = fs_join(root, "dev/null");
    char *fifo_path = fs_join(root, "dev/initctl");
    char *pts = fs_join(root, "dev/pts");
    char *host = fs_join(root, "etc/hostname");
    struct stat sb;
    ck_assert_int_ne(lstat(null_path, &sb), 0);
    ck_assert_int_ne(lstat(fifo_path, &sb), 0);
    ck_assert_int_eq(stat(pts, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(stat(host, &sb), 0);
    free(null_path);
    free(fifo_path);
    free(pts);
    free(host);
    free(root);
    free(tar);
}
END_TEST

START_TEST(import_rejects_escaping_hardlink)
{
    const struct itest_entry e[] = { { "etc/passwd", 'h', "../../etc/shadow", 0 } };
    import_refused(e, 1, "tar entry 'etc/passwd' is a hard link");
}
END_TEST

START_TEST(import_rejects_garbage)
{
    char *tar = itest_path(&t, "garbage.tar");
    struct banger_error err = { 0 };
    FILE *f = fopen(tar, "we");
    fputs("this is not a tarball at all, not even close\n", f);
    fclose(f);
    ck_assert_int_lt(do_import("bad", tar, &err), 0);
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(tar);
}
END_TEST

static int run_tool(const char *const *argv, char **out)
{
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .timeout_ms = 120000 };
    struct banger_run_result res = { .struct_size = sizeof(res) };
    struct banger_error err = { 0 };
    int r = runner_run(argv, &opts, &res, &err);
    if (r < 0)
        fprintf(stderr, "%s\n", err.msg);
    if (out)
        *out = xstrdup(res.out ? res.out : "");
    runner_result_clear(&res);
    return r;
}

START_TEST(import_makes_checked_ext4_with_agent)
{
    char *tar = itest_path(&t, "root.tar.zst");
    struct banger_error err = { 0 };
    const struct itest_entry e[] = {
        { "./", 'd', NULL, 0 },
        { "./etc/", 'd', NULL, 0 },
        { "./etc/hostname", 'f', "guest\n", 0 },
        { "./etc/hostname.bak", 'h', "./etc/hostname", 0 },
        { "./etc/localtime", 'l', "/usr/share/zoneinfo/UTC", 0 },
        { "./etc/systemd/", 'd', NULL, 0 },
        { "./etc/systemd/system/", 'd', NULL, 0 },
        { "./etc/ssh/", 'd', NULL, 0 },
        { "./etc/ssh/sshd_config", 'f', "PermitRootLogin yes\n", 0 },
        { "./etc/ssh/ssh_host_ed25519_key", 'f', "made where the tarball was\n", 0 },
        { "./usr/", 'd', NULL, 0 },
        { "./usr/bin/", 'd', NULL, 0 },
        { "./usr/bin/hello", 'f', "#!/bin/sh\necho hello\n", 0 },
        { "./usr/sbin/", 'd', NULL, 0 },
        { "./usr/sbin/sshd", 'f', "", 0 },
        { "./usr/lib/", 'd', NULL, 0 },
        { "./usr/lib/systemd/", 'd', NULL, 0 },
        { "./usr/lib/systemd/systemd", 'f', "", 0 },
        { "./usr/lib/systemd/system/", 'd', NULL, 0 },
        { "./usr/lib/systemd/system/reboot.target", 'f', "[Unit]\n", 0 },
    };
    itest_write_tar(tar, true, e, sizeof(e) / sizeof(e[0]));
    cJSON *warnings = cJSON_CreateArray();
    struct images_import_params p = { .name = "imported", .tar = tar,
                                      .kernel = itest_elf_kernel(), .warnings = warnings };
    struct image_record *img = NULL;
    ck_assert_msg(images_import(t.store, t.images_dir, &p, &img, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(itest_count_images_dir(&t), 1);
    ck_assert_int_eq(cJSON_GetArraySize(warnings), 0);
    cJSON_Delete(warnings);

    struct stat sb;
    ck_assert_int_eq(stat(img->rootfs_path, &sb), 0);
    ck_assert_int_ge(sb.st_size, 1ll << 30);
    /* Sparse: far fewer blocks than the size. */
    ck_assert_int_lt((long long)sb.st_blocks * 512, sb.st_size / 4);

    const char *fsck[] = { "e2fsck", "-fn", img->rootfs_path, NULL };
    ck_assert_int_eq(run_tool(fsck, NULL), 0);
    static const char *const wanted[] = {
        "stat /usr/local/sbin/banger-vsock-agent",
        "stat /etc/systemd/system/banger-vsock-agent.service",
        "stat /etc/systemd/system/sysinit.target.wants/banger-vsock-agent.service",
        "stat /etc/systemd/system/multi-user.target.wants/banger-boot-ok.service",
        "stat /usr/local/sbin/banger-net",
        "stat /usr/local/sbin/banger-work",
        "stat /etc/systemd/system/multi-user.target.wants/banger-work.service",
        "stat /etc/systemd/system/multi-user.target.wants/banger-hostkeys.service",
        "stat /etc/systemd/system/poweroff.target",
        "stat /etc/systemd/system/ctrl-alt-del.target",
        "stat /usr/bin/hello",
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        char *out = NULL;
        const char *dbg[] = { "debugfs", "-R", wanted[i], img->rootfs_path, NULL };
        ck_assert_int_eq(run_tool(dbg, &out), 0);
        ck_assert_msg(strstr(out, "Inode:"), "%s: %s", wanted[i], out);
        free(out);
    }
    char *out = NULL;
    const char *cat[] = { "debugfs", "-R", "cat /etc/hostname", img->rootfs_path, NULL };
    ck_assert_int_eq(run_tool(cat, &out), 0);
    ck_assert_str_eq(out, "guest\n");
    free(out);
    const char *fstab[] = { "debugfs", "-R", "cat /etc/fstab", img->rootfs_path, NULL };
    ck_assert_int_eq(run_tool(fstab, &out), 0);
    ck_assert_msg(strstr(out, "LABEL=banger-work /root ext4 defaults,nofail,"), "%s", out);
    free(out);
    const char *keys[] = { "debugfs", "-R", "ls /etc/ssh", img->rootfs_path, NULL };
    ck_assert_int_eq(run_tool(keys, &out), 0);
    ck_assert_msg(!strstr(out, "ssh_host_"), "host keys left in the image: %s", out);
    free(out);
    const char *mode[] = { "debugfs", "-R", "stat /usr/local/sbin/banger-vsock-agent",
                           img->rootfs_path, NULL };
    ck_assert_int_eq(run_tool(mode, &out), 0);
    ck_assert_msg(strstr(out, "Mode:  0755"), "%s", out);
    free(out);
    image_record_free(img);
    free(tar);
}
END_TEST

/* A tarball without sshd imports, with a warning the CLI shows. */
START_TEST(import_without_sshd_warns)
{
    char *tar = itest_path(&t, "nossh.tar");
    struct banger_error err = { 0 };
    const struct itest_entry e[] = {
        { "./", 'd', NULL, 0 },
        { "./bin/", 'd', NULL, 0 },
        { "./bin/busybox", 'f', "", 0 },
        { "./sbin/", 'd', NULL, 0 },
        { "./sbin/init", 'l', "../bin/busybox", 0 },
    };
    itest_write_tar(tar, false, e, sizeof(e) / sizeof(e[0]));
    cJSON *warnings = cJSON_CreateArray();
    struct images_import_params p = { .name = "nossh", .tar = tar,
                                      .kernel = itest_elf_kernel(), .warnings = warnings };
    struct image_record *img = NULL;
    ck_assert_msg(images_import(t.store, t.images_dir, &p, &img, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cJSON_GetArraySize(warnings), 1);
    const char *w = cJSON_GetArrayItem(warnings, 0)->valuestring;
    ck_assert_msg(strstr(w, "no sshd") && strstr(w, "agent"), "%s", w);
    char *out = NULL;
    const char *cat[] = { "debugfs", "-R", "cat /etc/inittab", img->rootfs_path, NULL };
    ck_assert_int_eq(run_tool(cat, &out), 0);
    ck_assert_msg(strstr(out, "::respawn:/usr/local/sbin/banger-vsock-agent"), "%s", out);
    ck_assert_msg(strstr(out, "::ctrlaltdel:/sbin/reboot"), "%s", out);
    free(out);
    cJSON_Delete(warnings);
    image_record_free(img);
    free(tar);
}
END_TEST

/* ---- pull --------------------------------------------------------------- */

static const struct images_limits *pull_limits;  /* NULL: the defaults */

static int do_pull(const char *source, const char *name, const char *sha, struct banger_error *err,
                   char **id)
{
    struct images_pull_params p = { .source = source, .name = name, .sha256 = sha,
                                    .limits = pull_limits };
    struct image_record *img = NULL;
    int r = images_pull(t.store, t.images_dir, &p, &img, err);
    if (r == 0 && id)
        *id = xstrdup(img->id);
    image_record_free(img);
    return r;
}

START_TEST(pull_local_bundle)
{
    char *bundle = itest_path(&t, "b.tar.zst");
    struct banger_error err = { 0 };
    itest_write_bundle(bundle, "from-bundle", false);
    size_t len;
    char *data = itest_read(bundle, &len), hex[65];
    itest_sha256_hex(data, len, hex);
    ck_assert_msg(do_pull(bundle, NULL, hex, &err, NULL) == 0, "%s", err.msg);
    struct image_record *img = NULL;
    char eb[512];
    ck_assert_int_eq(store_image_get_by_name(t.store, "from-bundle", &img, eb, sizeof(eb)), 0);
    ck_assert_ptr_nonnull(strstr(img->manifest, ITEST_KERNEL_VERSION));
    ck_assert_int_eq(itest_count_images_dir(&t), 1);
    image_record_free(img);
    free(data);
    free(bundle);
}
END_TEST

START_TEST(pull_wrong_bundle_sha256_leaves_nothing)
{
    char *bundle = itest_path(&t, "b.tar.zst");
    struct banger_error err = { 0 };
    itest_write_bundle(bundle, "x", false);
    ck_assert_int_eq(do_pull(bundle, NULL, "00000000000000000000000000000000"
                                           "00000000000000000000000000000000", &err, NULL),
                     -EBADMSG);
    assert_msg_has(&err, "does not match");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(bundle);
}
END_TEST

START_TEST(pull_wrong_member_sha256_leaves_nothing)
{
    char *bundle = itest_path(&t, "b.tar.zst");
    struct banger_error err = { 0 };
    itest_write_bundle(bundle, "x", true);
    ck_assert_int_eq(do_pull(bundle, NULL, NULL, &err, NULL), -EBADMSG);
    assert_msg_has(&err, "rootfs.ext4: sha256");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(bundle);
}
END_TEST

START_TEST(pull_rejects_unexpected_members)
{
    char *bundle = itest_path(&t, "b.tar");
    struct banger_error err = { 0 };
    const struct itest_entry dotdot[] = { { "../rootfs.ext4", 'f', "x", 0 } };
    itest_write_tar(bundle, false, dotdot, 1);
    ck_assert_int_eq(do_pull(bundle, "x", NULL, &err, NULL), -EINVAL);
    assert_msg_has(&err, "bundle member '../rootfs.ext4' is not one of");
    size_t rlen, klen;
    char *rootfs = itest_bundle_rootfs(&rlen), *kernel = itest_bundle_kernel(&klen);
    char *manifest = itest_manifest("x", rootfs, rlen, rlen, kernel, klen);
    const struct itest_entry extra[] = { { "manifest.json", 'f', manifest, 0 },
                                         { "etc/passwd", 'f', "x", 0 } };
    itest_write_tar(bundle, false, extra, 2);
    free(manifest);
    free(rootfs);
    free(kernel);
    ck_assert_int_eq(do_pull(bundle, "x", NULL, &err, NULL), -EINVAL);
    assert_msg_has(&err, "'etc/passwd'");
    const struct itest_entry link[] = { { "vmlinux", 'l', "/etc/shadow", 0 } };
    itest_write_tar(bundle, false, link, 1);
    ck_assert_int_eq(do_pull(bundle, "x", NULL, &err, NULL), -EINVAL);
    assert_msg_has(&err, "not a regular file");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(bundle);
}
END_TEST

START_TEST(pull_over_http)
{
    char *bundle = itest_path(&t, "b.tar.zst");
    struct banger_error err = { 0 };
    struct itest_http h = { 0 };
    itest_write_bundle(bundle, "web", false);
    itest_http_start(&h, bundle);
    char hex[65];
    itest_sha256_hex(h.body, h.len, hex);
    char *url = xasprintf("http://127.0.0.1:%d/b.tar.zst", h.port);
    ck_assert_msg(do_pull(url, "web-image", hex, &err, NULL) == 0, "%s", err.msg);
    itest_http_stop(&h);
    ck_assert_int_eq(itest_count_images_dir(&t), 1);
    free(url);
    free(bundle);
}
END_TEST

START_TEST(pull_truncated_download_leaves_nothing)
{
    char *bundle = itest_path(&t, "b.tar.zst");
    struct banger_error err = { 0 };
    struct itest_http h = { .truncate = true };
    itest_write_bundle(bundle, "web", false);
    itest_http_start(&h, bundle);
    char *url = xasprintf("http://127.0.0.1:%d/b.tar.zst", h.port);
    char hex[65];
    itest_sha256_hex(h.body, h.len, hex);
    ck_assert_int_lt(do_pull(url, NULL, hex, &err, NULL), 0);
    assert_msg_has(&err, "download");
    itest_http_stop(&h);
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(url);
    free(bundle);
}
END_TEST

struct pull_thread {
    pthread_t thread;
    const char *url;
    const char *sha256;
    int r;
    char *id;
    struct banger_error err;
};

static void *pull_thread_main(void *arg)
{
    struct pull_thread *pt = arg;
    pt->r = do_pull(pt->url, "merged", pt->sha256, &pt->err, &pt->id);
    return NULL;
}

START_TEST(pull_same_name_twice_merges)
{
    char *bundle = itest_path(&t, "b.tar.zst");
    struct itest_http h = { .wait_key = "merged" };
    itest_write_bundle(bundle, "web", false);
    itest_http_start(&h, bundle);
    char *url = xasprintf("http://127.0.0.1:%d/b.tar.zst", h.port);
    /* The server accepts one connection: the second pull must not connect. */
    char hex[65];
    itest_sha256_hex(h.body, h.len, hex);
    struct pull_thread a = { .url = url, .sha256 = hex }, b = { .url = url, .sha256 = hex };
    ck_assert_int_eq(pthread_create(&a.thread, NULL, pull_thread_main, &a), 0);
    ck_assert_int_eq(pthread_create(&b.thread, NULL, pull_thread_main, &b), 0);
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    itest_http_stop(&h);
    ck_assert_msg(a.r == 0, "%s", a.err.msg);
    ck_assert_msg(b.r == 0, "%s", b.err.msg);
    ck_assert_str_eq(a.id, b.id);
    ck_assert_int_eq(itest_count_images_dir(&t), 1);
    free(a.id);
    free(b.id);
    free(url);
    free(bundle);
}
END_TEST


/* ---- hostile bundles ------------------------------------------------------ */

/* A bundle of the test's rootfs and kernel, manifest first, with the
 * manifest's rootfs size `declared` and `extra` entries appended. */
struct hb {
    char *rootfs, *kernel, *manifest;
    size_t rlen, klen;
};

static void hb_init(struct hb *b, uint64_t declared)
{
    b->rootfs = itest_bundle_rootfs(&b->rlen);
    b->kernel = itest_bundle_kernel(&b->klen);
    b->manifest = itest_manifest("hostile", b->rootfs, b->rlen, declared, b->kernel, b->klen);
}

static void hb_free(struct hb *b)
{
    free(b->rootfs);
    free(b->kernel);
    free(b->manifest);
}

static void hb_refused(const struct itest_entry *e, size_t n, int code, const char *needle)
{
    char *bundle = itest_path(&t, "hostile.tar.zst");
    struct banger_error err = { 0 };
    itest_write_tar(bundle, true, e, n);
    ck_assert_int_eq(do_pull(bundle, NULL, NULL, &err, NULL), code);
    assert_msg_has(&err, needle);
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(bundle);
}

/* A few KiB of tar whose rootfs.ext4 is a 1 TiB sparse file: refused from
 * its header, before a byte is written or hashed. */
START_TEST(pull_sparse_bomb_refused)
{
    struct hb b;
    hb_init(&b, 4096);
    const struct itest_sparse bomb = { b.rootfs, b.rlen, 1ull << 40 };
    const struct itest_entry e[] = { { "manifest.json", 'f', b.manifest, 0 },
                                     { "rootfs.ext4", 's', (const char *)&bomb, 0 },
                                     { "vmlinux", 'f', b.kernel, b.klen } };
    hb_refused(e, 3, -EINVAL, "is 1099511627776 bytes, but its manifest says 4096");
    hb_free(&b);
}
END_TEST

/* The same bomb declared honestly in the manifest: over the rootfs cap. */
START_TEST(pull_declared_bomb_over_cap_refused)
{
    struct hb b;
    hb_init(&b, 1ull << 40);
    const struct itest_sparse bomb = { b.rootfs, b.rlen, 1ull << 40 };
    const struct itest_entry e[] = { { "manifest.json", 'f', b.manifest, 0 },
                                     { "rootfs.ext4", 's', (const char *)&bomb, 0 },
                                     { "vmlinux", 'f', b.kernel, b.klen } };
    hb_refused(e, 3, -EFBIG, "over the 68719476736-byte cap (images.max_rootfs_bytes)");
    hb_free(&b);
}
END_TEST

/* A member within its declared size but over a configured cap. */
START_TEST(pull_oversized_member_refused)
{
    const struct images_limits lim = { .max_bundle_bytes = 1ull << 30,
                                       .max_rootfs_bytes = 2048,
                                       .max_kernel_bytes = 1ull << 30,
                                       .max_initrd_bytes = 1ull << 30 };
    struct hb b;
    hb_init(&b, 4096);
    pull_limits = &lim;
    const struct itest_entry e[] = { { "manifest.json", 'f', b.manifest, 0 },
                                     { "rootfs.ext4", 'f', b.rootfs, b.rlen },
                                     { "vmlinux", 'f', b.kernel, b.klen } };
    hb_refused(e, 3, -EFBIG, "rootfs.ext4 is 4096 bytes, over the 2048-byte cap");
    pull_limits = NULL;
    hb_free(&b);
}
END_TEST

/* Every member under its own cap, their total over the bundle cap. */
START_TEST(pull_total_over_bundle_cap_refused)
{
    struct hb b;
    hb_init(&b, 4096);
    const struct images_limits lim = { .max_bundle_bytes = b.klen + 4095,
                                       .max_rootfs_bytes = 1ull << 30,
                                       .max_kernel_bytes = 1ull << 30,
                                       .max_initrd_bytes = 1ull << 30 };
    pull_limits = &lim;
    const struct itest_entry e[] = { { "manifest.json", 'f', b.manifest, 0 },
                                     { "rootfs.ext4", 'f', b.rootfs, b.rlen },
                                     { "vmlinux", 'f', b.kernel, b.klen } };
    hb_refused(e, 3, -EFBIG, "cap (images.max_bundle_bytes)");
    pull_limits = NULL;
    hb_free(&b);
}
END_TEST

/* The manifest says 4095 bytes, the member has 4096 (hash of the real
 * 4096 in the manifest, so only the size lies). */
START_TEST(pull_lying_manifest_size_refused)
{
    struct hb b;
    hb_init(&b, 4095);
    const struct itest_entry e[] = { { "manifest.json", 'f', b.manifest, 0 },
                                     { "rootfs.ext4", 'f', b.rootfs, b.rlen },
                                     { "vmlinux", 'f', b.kernel, b.klen } };
    hb_refused(e, 3, -EINVAL, "bundle member 'rootfs.ext4' is 4096 bytes, but its manifest "
                              "says 4095");
    hb_free(&b);
}
END_TEST

/* A member the manifest does not list is refused at its header, even a
 * huge sparse one. */
START_TEST(pull_unlisted_member_refused)
{
    struct hb b;
    hb_init(&b, 4096);
    const struct itest_sparse bomb = { "070701", 6, 1ull << 40 };
    const struct itest_entry e[] = { { "manifest.json", 'f', b.manifest, 0 },
                                     { "rootfs.ext4", 'f', b.rootfs, b.rlen },
                                     { "vmlinux", 'f', b.kernel, b.klen },
                                     { "initrd.img", 's', (const char *)&bomb, 0 } };
    hb_refused(e, 4, -EINVAL, "bundle member 'initrd.img' is not listed in its manifest");
    hb_free(&b);
}
END_TEST

/* Members before the manifest would be written unchecked: refused. */
START_TEST(pull_manifest_not_first_refused)
{
    struct hb b;
    hb_init(&b, 4096);
    const struct itest_entry e[] = { { "rootfs.ext4", 'f', b.rootfs, b.rlen },
                                     { "manifest.json", 'f', b.manifest, 0 },
                                     { "vmlinux", 'f', b.kernel, b.klen } };
    hb_refused(e, 3, -EINVAL, "comes before manifest.json, which must be the first member");
    hb_free(&b);
}
END_TEST

/* The hash covers the declared bytes, holes included: a sparse member
 * whose data matches but whose hole does not is caught. */
START_TEST(pull_sparse_member_hash_covers_holes)
{
    struct hb b;
    hb_init(&b, 8192);
    /* The manifest hashed 4096 bytes, the member is 4096 zeros + rootfs. */
    const struct itest_sparse sp = { b.rootfs, b.rlen, 8192 };
    const struct itest_entry e[] = { { "manifest.json", 'f', b.manifest, 0 },
                                     { "rootfs.ext4", 's', (const char *)&sp, 0 },
                                     { "vmlinux", 'f', b.kernel, b.klen } };
    hb_refused(e, 3, -EBADMSG, "rootfs.ext4: sha256");
    hb_free(&b);
}
END_TEST

/* ---- downloads ------------------------------------------------------------ */

/* A server that never stops sending: the download stops at the cap. */
START_TEST(pull_endless_download_capped)
{
    const struct images_limits lim = { .max_bundle_bytes = 4ull << 20,
                                       .max_rootfs_bytes = 1ull << 30,
                                       .max_kernel_bytes = 1ull << 30,
                                       .max_initrd_bytes = 1ull << 30 };
    struct itest_http h = { .endless = true };
    struct banger_error err = { 0 };
    pull_limits = &lim;
    itest_http_start(&h, NULL);
    char *url = xasprintf("http://127.0.0.1:%d/endless", h.port);
    ck_assert_int_eq(do_pull(url, "endless", "00000000000000000000000000000000"
                                             "00000000000000000000000000000000", &err, NULL),
                     -EFBIG);
    assert_msg_has(&err, "larger than the 4194304-byte cap (images.max_bundle_bytes)");
    itest_http_stop(&h);
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    pull_limits = NULL;
    free(url);
}
END_TEST

START_TEST(pull_plain_http_needs_sha256)
{
    char *bundle = itest_path(&t, "b.tar.zst");
    struct banger_error err = { 0 };
    itest_write_bundle(bundle, "web", false);
    /* Refused before connecting: nothing listens on this port. */
    ck_assert_int_eq(do_pull("http://127.0.0.1:9/b.tar.zst", NULL, NULL, &err, NULL), -EINVAL);
    assert_msg_has(&err, "a pull over plain http needs --sha256");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(bundle);
}
END_TEST

/* The client "leaves" once the download has really been running. */
static bool cancel_after_download(void *ctx)
{
    const struct itest_http *h = ctx;
    return h->sent >= (1u << 20);
}

/* A cancel (the client went away) mid-download stops it; nothing stays. */
START_TEST(pull_cancel_stops_download)
{
    struct itest_http h = { .endless = true, .trickle_ms = 20 };
    struct banger_error err = { 0 };
    const struct images_cancel cancel = { cancel_after_download, &h };
    itest_http_start(&h, NULL);
    char *url = xasprintf("http://127.0.0.1:%d/slow", h.port);
    struct images_pull_params p = { .source = url, .name = "slow",
                                    .sha256 = "00000000000000000000000000000000"
                                              "00000000000000000000000000000000",
                                    .cancel = &cancel };
    struct image_record *img = NULL;
    ck_assert_int_eq(images_pull(t.store, t.images_dir, &p, &img, &err), -ECANCELED);
    assert_msg_has(&err, "cancelled: the client went away");
    ck_assert_uint_lt(h.sent, 256u << 20);
    itest_http_stop(&h);
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(url);
}
END_TEST

/* An https server on 127.0.0.1: `openssl s_server -HTTP` with a
 * certificate made for the test; every path answers with the raw HTTP
 * response in the file of that name in `dir`. */
struct tls_server {
    pid_t pid;
    int port;
    char *dir, *cert;
};

static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static bool tls_server_start(struct tls_server *ts)
{
    ts->dir = itest_path(&t, "tls");
    ck_assert_int_eq(mkdir(ts->dir, 0755), 0);
    ts->cert = fs_join(ts->dir, "cert.pem");
    char *key = fs_join(ts->dir, "key.pem");
    const char *req[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                          "-keyout", key, "-out", ts->cert, "-days", "1", "-subj",
                          "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", NULL };
    if (run_tool(req, NULL) != 0) {
        free(key);
        return false;
    }
    ts->port = free_port();
    char accept_arg[32];
    snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", ts->port);
    ts->pid = fork();
    ck_assert_int_ge(ts->pid, 0);
    if (ts->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (chdir(ts->dir) < 0)
            _exit(126);
        execlp("openssl", "openssl", "s_server", "-quiet", "-HTTP", "-accept", accept_arg,
               "-cert", ts->cert, "-key", key, (char *)NULL);
        _exit(127);
    }
    free(key);
    /* Ready once it accepts a connection. */
    for (int i = 0; i < 200; i++) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ts->port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (ok == 0)
            return true;
        usleep(50000);
    }
    return false;
}

static void tls_server_stop(struct tls_server *ts)
{
    if (ts->pid > 0) {
        kill(ts->pid, SIGKILL);
        waitpid(ts->pid, NULL, 0);
    }
    free(ts->dir);
    free(ts->cert);
}

/* https that redirects to http: refused, the http server never asked. */
START_TEST(pull_https_to_http_redirect_refused)
{
    char *bundle = itest_path(&t, "b.tar.zst");
    struct itest_http h = { 0 };
    struct tls_server ts = { 0 };
    struct banger_error err = { 0 };
    itest_write_bundle(bundle, "downgraded", false);
    itest_http_start(&h, bundle);
    ck_assert_msg(tls_server_start(&ts), "cannot start openssl s_server");
    char *redirect = xasprintf("HTTP/1.0 302 Found\r\nLocation: http://127.0.0.1:%d/b.tar.zst"
                               "\r\nContent-Length: 0\r\n\r\n", h.port);
    char *file = fs_join(ts.dir, "bundle");
    ck_assert_int_eq(fs_write_atomic(file, redirect, strlen(redirect), 0644, &err), 0);
    char *url = xasprintf("https://127.0.0.1:%d/bundle", ts.port);
    struct images_pull_params p = { .source = url, .ca_file = ts.cert };
    struct image_record *img = NULL;
    int r = images_pull(t.store, t.images_dir, &p, &img, &err);
    image_record_free(img);
    tls_server_stop(&ts);
    itest_http_stop(&h);
    ck_assert_int_eq(r, -EPERM);
    assert_msg_has(&err, "an https pull may only redirect to https");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(url);
    free(file);
    free(redirect);
    free(bundle);
}
END_TEST

/* ---- the images group of banger.conf ------------------------------------ */

static void config_refused(const char *text, const char *needle)
{
    struct bg_config *cfg = NULL;
    struct banger_error err = { 0 };
    ck_assert_int_eq(config_load_string(text, "banger.conf", &cfg, &err), -EINVAL);
    ck_assert_msg(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

START_TEST(config_images_group)
{
    struct bg_config *cfg = NULL;
    struct banger_error err = { 0 };
    ck_assert_msg(config_load_string("", "banger.conf", &cfg, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(cfg->images.max_bundle_bytes, images_default_limits.max_bundle_bytes);
    ck_assert_uint_eq(cfg->images.max_rootfs_bytes, images_default_limits.max_rootfs_bytes);
    ck_assert_uint_eq(cfg->images.max_kernel_bytes, images_default_limits.max_kernel_bytes);
    ck_assert_uint_eq(cfg->images.max_initrd_bytes, images_default_limits.max_initrd_bytes);
    ck_assert_uint_eq(cfg->images.n_mirrors, 0);
    ck_assert_str_eq(cfg->images.keyring, "/usr/share/keyrings/debian-archive-keyring.gpg");
    config_free(cfg);

    const char *text = "images = {\n  max_bundle_bytes = \"8G\";\n  max_rootfs_bytes = 1048576;\n"
                       "  mirrors = [ \"https://deb.example/debian/\", \"http://m.example/d\" ];\n"
                       "  keyring = \"/etc/banger/archive.gpg\";\n};\n";
    ck_assert_msg(config_load_string(text, "banger.conf", &cfg, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(cfg->images.max_bundle_bytes, 8ull << 30);
    ck_assert_uint_eq(cfg->images.max_rootfs_bytes, 1u << 20);
    ck_assert_uint_eq(cfg->images.n_mirrors, 2);
    ck_assert_str_eq(cfg->images.mirrors[0], "https://deb.example/debian");
    ck_assert_str_eq(cfg->images.mirrors[1], "http://m.example/d");
    ck_assert_str_eq(cfg->images.keyring, "/etc/banger/archive.gpg");
    config_free(cfg);

    config_refused("images = {\n  mirrors = [ \"file:/srv/mirror\" ];\n};\n",
                   "banger.conf:2: images.mirrors: 'file:/srv/mirror' is not an http:// or "
                   "https:// URL");
    config_refused("images = {\n  max_rootfs_bytes = \"lots\";\n};\n",
                   "banger.conf:2: images.max_rootfs_bytes: 'lots' is not a size");
    config_refused("images = {\n  max_kernel_bytes = 0;\n};\n",
                   "banger.conf:2: images.max_kernel_bytes: must be more than 0");
    config_refused("images = {\n  keyring = \"archive.gpg\";\n};\n",
                   "banger.conf:2: images.keyring: 'archive.gpg' must be an absolute path");
    config_refused("images = {\n  max_size = 1;\n};\n",
                   "banger.conf:2: images.max_size: unknown key");
    config_refused("images = 5;\n", "images: expected a group");
}
END_TEST

/* ---- opening files as the client ---------------------------------------- */

static gid_t caller_nogroup[1] = { 65534 };
static const struct bg_caller caller_nobody = { .uid = 65534, .gid = 65534, .ngroups = 1,
                                                .groups = caller_nogroup };

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static uid_t thread_fsuid(void) { return (uid_t)syscall(SYS_setfsuid, (uid_t)-1); }

/* Root-only even for the group and others: mode 0000, so only
 * CAP_DAC_OVERRIDE opens it. */
static char *make_locked_file(void)
{
    char *path = xasprintf("%s/locked", t.dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0000);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "070701", 6), 6);
    close(fd);
    ck_assert_int_eq(chmod(path, 0000), 0);
    return path;
}

static bool can_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

struct as_caller_probe {
    const char *path;
    pthread_barrier_t switched, checked;
    uid_t other_fsuid;       /* seen by the other thread while one was switched */
    bool other_opened;
    uid_t own_fsuid;
    int own_errno;
};

static void *probe_other_thread(void *arg)
{
    struct as_caller_probe *pr = arg;
    pthread_barrier_wait(&pr->switched);
    pr->other_fsuid = thread_fsuid();
    pr->other_opened = can_open(pr->path);
    pthread_barrier_wait(&pr->checked);
    return NULL;
}

static int probe_as_caller(void *arg)
{
    struct as_caller_probe *pr = arg;
    pthread_barrier_wait(&pr->switched);
    pthread_barrier_wait(&pr->checked);
    pr->own_fsuid = thread_fsuid();
    int fd = open(pr->path, O_RDONLY | O_CLOEXEC);
    pr->own_errno = fd < 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    return 7;
}

/* Only the switched thread runs as the client, without root's override;
 * another thread keeps root's, and the switched one gets them back. */
START_TEST(caller_switch_is_per_thread_and_drops_override)
{
    char *locked = make_locked_file();
    struct as_caller_probe pr = { .path = locked };
    pthread_t other;
    gid_t before[64], after[64];
    int nbefore = getgroups(64, before);

    ck_assert(can_open(locked));
    pthread_barrier_init(&pr.switched, NULL, 2);
    pthread_barrier_init(&pr.checked, NULL, 2);
    ck_assert_int_eq(pthread_create(&other, NULL, probe_other_thread, &pr), 0);
    ck_assert_int_eq(bg_caller_run_as(&caller_nobody, probe_as_caller, &pr), 7);
    pthread_join(other, NULL);
    pthread_barrier_destroy(&pr.switched);
    pthread_barrier_destroy(&pr.checked);

    ck_assert_uint_eq(pr.own_fsuid, 65534);
    ck_assert_int_eq(pr.own_errno, EACCES);
    ck_assert_uint_eq(pr.other_fsuid, 0);
    ck_assert_msg(pr.other_opened, "the other thread lost root's override");
    /* Back to root: fsuid, groups and the override. */
    ck_assert_uint_eq(thread_fsuid(), 0);
    ck_assert_int_eq(getgroups(64, after), nbefore);
    ck_assert_int_eq(memcmp(before, after, (size_t)nbefore * sizeof(gid_t)), 0);
    ck_assert(can_open(locked));
    free(locked);
}
END_TEST

START_TEST(caller_open_refuses_what_the_client_cannot_read)
{
    char *locked = make_locked_file();
    char *link = xasprintf("%s/link", t.dir);
    char *fifo = xasprintf("%s/fifo", t.dir);
    char *readable = xasprintf("%s/readable", t.dir);
    char why[512] = "";
    int fd = -1;

    ck_assert_int_eq(symlink(locked, link), 0);
    ck_assert_int_eq(mkfifo(fifo, 0666), 0);
    write_text(readable, "070701");
    ck_assert_int_eq(chmod(readable, 0644), 0);
    /* t.dir must be searchable by the client for the readable case. */
    ck_assert_int_eq(chmod(t.dir, 0755), 0);

    ck_assert_int_eq(bg_caller_open(&caller_nobody, locked, &fd, why, sizeof(why)), -EACCES);
    ck_assert_msg(strstr(why, "Permission denied (opened as uid 65534)"), "%s", why);
    ck_assert_int_eq(bg_caller_open(&caller_nobody, link, &fd, why, sizeof(why)), -ELOOP);
    ck_assert_msg(strstr(why, "symbolic link"), "%s", why);
    /* Root too: the symlink is not followed; the mode-0000 file opens. */
    ck_assert_int_eq(bg_caller_open(NULL, link, &fd, why, sizeof(why)), -ELOOP);
    ck_assert_int_eq(bg_caller_open(NULL, locked, &fd, why, sizeof(why)), 0);
    close(fd);
    /* A fifo nobody writes to neither hangs nor passes. */
    ck_assert_int_eq(bg_caller_open(&caller_nobody, fifo, &fd, why, sizeof(why)), -EINVAL);
    ck_assert_msg(strstr(why, "not a regular file"), "%s", why);
    ck_assert_int_eq(bg_caller_open(&caller_nobody, t.dir, &fd, why, sizeof(why)), -EINVAL);
    ck_assert_int_eq(bg_caller_open(&caller_nobody, "relative", &fd, why, sizeof(why)), -EINVAL);
    ck_assert_int_eq(bg_caller_open(&caller_nobody, readable, &fd, why, sizeof(why)), 0);
    ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    free(locked);
    free(link);
    free(fifo);
    free(readable);
}
END_TEST

START_TEST(register_rejects_non_initrd)
{
    char *rootfs = itest_path(&t, "root.img");
    char *initrd = itest_path(&t, "not-an-initrd");
    itest_fake_rootfs(rootfs);
    write_text(initrd, "just some text\n");
    struct images_register_params p = { .name = "noinitrd", .rootfs = rootfs,
                                        .kernel = itest_elf_kernel(), .initrd = initrd };
    struct image_record *img = NULL;
    struct banger_error err = { 0 };
    ck_assert_int_eq(images_register(t.store, t.images_dir, &p, &img, &err), -EINVAL);
    assert_msg_has(&err, "is not an initrd");
    ck_assert_int_eq(itest_count_images_dir(&t), 0);
    free(rootfs);
    free(initrd);
}
END_TEST

static Suite *images_suite(void)
{
    Suite *s = suite_create("images");
    TCase *tc = tcase_create("register");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, register_writes_sha256_and_kernel_version);
    tcase_add_test(tc, copy_across_file_systems_keeps_holes);
    tcase_add_test(tc, register_rejects_non_ext4);
    tcase_add_test(tc, register_rejects_bzimage);
    tcase_add_test(tc, register_rejects_taken_name);
    tcase_add_test(tc, register_rejects_missing_file);
    tcase_add_test(tc, register_rejects_non_initrd);
    tcase_add_test(tc, caller_switch_is_per_thread_and_drops_override);
    tcase_add_test(tc, caller_open_refuses_what_the_client_cannot_read);
    tcase_add_test(tc, delete_refused_while_vm_uses_image);
    suite_add_tcase(s, tc);

    tc = tcase_create("import");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, import_rejects_dotdot);
    tcase_add_test(tc, import_rejects_absolute);
    tcase_add_test(tc, import_sparse_bomb_refused);
    tcase_add_test(tc, import_rejects_device_node_outside_dev);
    tcase_add_test(tc, import_rejects_node_below_dev_subdir);
    tcase_add_test(tc, import_rejects_fifo_outside_dev);
    tcase_add_test(tc, import_skips_nodes_in_dev);
    tcase_add_test(tc, import_rejects_escaping_hardlink);
    tcase_add_test(tc, import_rejects_garbage);
    tcase_add_test(tc, import_makes_checked_ext4_with_agent);
    tcase_add_test(tc, import_without_sshd_warns);
    suite_add_tcase(s, tc);

    tc = tcase_create("pull");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, pull_local_bundle);
    tcase_add_test(tc, pull_wrong_bundle_sha256_leaves_nothing);
    tcase_add_test(tc, pull_wrong_member_sha256_leaves_nothing);
    tcase_add_test(tc, pull_rejects_unexpected_members);
    tcase_add_test(tc, pull_over_http);
    tcase_add_test(tc, pull_truncated_download_leaves_nothing);
    tcase_add_test(tc, pull_same_name_twice_merges);
    tcase_add_test(tc, pull_endless_download_capped);
    tcase_add_test(tc, pull_plain_http_needs_sha256);
    tcase_add_test(tc, pull_cancel_stops_download);
    tcase_add_test(tc, pull_https_to_http_redirect_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("config");
    tcase_add_test(tc, config_images_group);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile bundles");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, pull_sparse_bomb_refused);
    tcase_add_test(tc, pull_declared_bomb_over_cap_refused);
    tcase_add_test(tc, pull_oversized_member_refused);
    tcase_add_test(tc, pull_total_over_bundle_cap_refused);
    tcase_add_test(tc, pull_lying_manifest_size_refused);
    tcase_add_test(tc, pull_unlisted_member_refused);
    tcase_add_test(tc, pull_manifest_not_first_refused);
    tcase_add_test(tc, pull_sparse_member_hash_covers_holes);
    suite_add_tcase(s, tc);
    return s;
}


int main(void)
{
    /* The built agent and the guest files of this tree, not installed ones. */
    setenv("BANGER_AGENT_PATH", AGENT_BUILD_PATH, 0);
    setenv("BANGER_GUEST_DIR", GUEST_SRC_DIR, 0);
    SRunner *sr = srunner_create(images_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
