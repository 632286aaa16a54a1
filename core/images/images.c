#include "config.h"

#include "images/images.h"
#include "images/image_stage.h"
#include "util/caller_open.h"
#include "util/file_copy.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int images_open_source(const struct bg_caller *caller, const char *what, const char *path,
                       int *fd_out, struct banger_error *err)
{
    char why[BANGER_ERROR_MSG_MAX];
    int r = bg_caller_open(caller, path, fd_out, why, sizeof(why));

    if (r < 0)
        return bg_fail(err, r, "%s %s", what, why);
    return 0;
}

int images_check_rootfs_fd(int fd, const char *path, struct banger_error *err)
{
    unsigned char magic[2] = { 0 };
    /* The ext2/3/4 superblock starts at 1024; s_magic is at offset 56 in it. */
    ssize_t n = pread(fd, magic, sizeof(magic), 1024 + 56);

    if (n != 2 || magic[0] != 0x53 || magic[1] != 0xEF)
        return bg_fail(err, -EINVAL, "rootfs %s is not an ext4 filesystem (no ext superblock magic)", path);
    return 0;
}

int images_check_kernel_fd(int fd, const char *path, struct banger_error *err)
{
    unsigned char head[0x210] = { 0 };
    ssize_t n = pread(fd, head, sizeof(head), 0);

    if (n >= 4 && memcmp(head, "\177ELF", 4) == 0)
        return 0;
    if (n >= 0x206 && memcmp(head + 0x202, "HdrS", 4) == 0)
        return bg_fail(err, -EINVAL,
                       "kernel %s is a compressed bzImage; Firecracker boots an uncompressed ELF "
                       "vmlinux on x86_64 — extract it with the kernel's scripts/extract-vmlinux "
                       "(extract-vmlinux %s > vmlinux) and register that", path, path);
    return bg_fail(err, -EINVAL, "kernel %s is not an ELF vmlinux", path);
}

int images_check_initrd_fd(int fd, const char *path, struct banger_error *err)
{
    /* What the kernel's initramfs unpacker accepts: a newc/crc cpio archive
     * (often an uncompressed microcode archive comes first), or one
     * compressed with a method the kernel knows. */
    static const struct { const char *magic; size_t len; } known[] = {
        { "070701", 6 }, { "070702", 6 },             /* cpio newc, crc */
        { "\x1f\x8b", 2 }, { "\x1f\x9e", 2 },         /* gzip */
        { "\x28\xb5\x2f\xfd", 4 },                    /* zstd */
        { "\xfd\x37\x7a\x58\x5a\x00", 6 },            /* xz */
        { "\x02\x21\x4c\x18", 4 },                    /* lz4 (legacy frame) */
        { "\x04\x22\x4d\x18", 4 },                    /* lz4 frame */
        { "BZh", 3 },                                 /* bzip2 */
        { "\x5d\x00\x00", 3 },                        /* lzma */
        { "\x89\x4c\x5a\x4f", 4 },                    /* lzo */
    };
    unsigned char head[8] = { 0 };
    ssize_t n = pread(fd, head, sizeof(head), 0);

    for (size_t i = 0; n > 0 && i < sizeof(known) / sizeof(known[0]); i++)
        if ((size_t)n >= known[i].len && memcmp(head, known[i].magic, known[i].len) == 0)
            return 0;
    return bg_fail(err, -EINVAL, "initrd %s is not an initrd (neither a cpio archive nor "
                   "gzip, zstd, xz, lz4, bzip2, lzma or lzo compressed)", path);
}

static int images_check_path(const char *path, const char *what,
                             int (*check)(int, const char *, struct banger_error *),
                             struct banger_error *err)
{
    int fd = -1;
    int r = images_open_source(NULL, what, path, &fd, err);

    if (r == 0)
        r = check(fd, path, err);
    if (fd >= 0)
        close(fd);
    return r;
}

int images_check_rootfs(const char *path, struct banger_error *err)
{
    return images_check_path(path, "rootfs", images_check_rootfs_fd, err);
}

int images_check_kernel(const char *path, struct banger_error *err)
{
    return images_check_path(path, "kernel", images_check_kernel_fd, err);
}

/* Copy `from` into `to`: a reflink where the filesystem allows, else a copy
 * of the data extents only, so a sparse image stays sparse. */
int images_copy_file(const char *from, const char *to, struct banger_error *err)
{
    char why[BANGER_ERROR_MSG_MAX];
    int r = bg_copy_file(from, to, 0644, true, NULL, why, sizeof(why));
    if (r < 0)
        return bg_fail(err, r, "copy %s to %s: %s", from, to, why);
    return 0;
}

int images_copy_fd(int fd, const char *from, const char *to, struct banger_error *err)
{
    char why[BANGER_ERROR_MSG_MAX];
    int r = bg_copy_fd(fd, from, to, 0644, true, NULL, why, sizeof(why));
    if (r < 0)
        return bg_fail(err, r, "copy %s to %s: %s", from, to, why);
    return 0;
}

int images_register(struct store *store, const char *images_dir,
                    const struct images_register_params *p, struct image_record **out,
                    struct banger_error *err)
{
    char eb[512] = "";
    static const char *const names[3] = { "rootfs.ext4", "vmlinux", "initrd.img" };
    static const char *const what[3] = { "rootfs", "kernel", "initrd" };
    static int (*const check[3])(int, const char *, struct banger_error *) = {
        images_check_rootfs_fd, images_check_kernel_fd, images_check_initrd_fd
    };
    const char *srcs[3] = { p->rootfs, p->kernel, p->initrd };
    int fds[3] = { -1, -1, -1 };
    struct images_stage st = { 0 };
    int r;

    if (image_name_check(p->name, eb, sizeof(eb)) < 0)
        return bg_fail(err, -EINVAL, "%s", eb);
    /* Each file is opened once, as the client, and checked and copied
     * through that descriptor: nothing is reopened by path. */
    for (int i = 0; i < 3; i++) {
        if (!srcs[i])
            continue;
        r = images_open_source(p->caller, what[i], srcs[i], &fds[i], err);
        if (r == 0)
            r = check[i](fds[i], srcs[i], err);
        if (r < 0)
            goto cleanup;
    }
    r = images_name_free(store, p->name, err);
    if (r < 0)
        goto cleanup;

    r = images_stage_open(images_dir, &st, err);
    if (r < 0)
        goto cleanup;
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0)
            continue;
        char *tmp = images_stage_path(&st, names[i]);
        r = images_copy_fd(fds[i], srcs[i], tmp, err);
        free(tmp);
        if (r < 0)
            goto cleanup;
    }
    cJSON *extra = cJSON_CreateObject();
    cJSON *source = cJSON_AddObjectToObject(extra, "source");
    cJSON_AddStringToObject(source, "type", "register");
    cJSON_AddStringToObject(source, "rootfs", p->rootfs);
    cJSON_AddStringToObject(source, "kernel", p->kernel);
    r = images_stage_commit(&st, store, p->name, extra, out, err);
    cJSON_Delete(extra);

cleanup:
    images_stage_close(&st);
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return r;
}

int images_delete(struct store *store, const char *images_dir, const char *ref,
                  struct image_record **deleted, struct banger_error *err)
{
    char eb[512] = "";
    struct image_record *img = NULL;
    int r = store_image_find(store, ref, &img, eb, sizeof(eb));
    if (r == -ENOENT)
        return bg_fail(err, r, "no image named '%s'", ref);
    if (r < 0)
        return bg_fail(err, r, "%s", eb);
    r = store_image_delete(store, img->id, eb, sizeof(eb));
    if (r < 0) {
        image_record_free(img);
        return bg_fail(err, r, "%s", eb);
    }
    /* Remove the files only when they live in our images directory. */
    char *copy = xstrdup(img->rootfs_path);
    char *dir = dirname(copy);
    size_t plen = strlen(images_dir);
    if (strncmp(dir, images_dir, plen) == 0 && dir[plen] == '/' && !strchr(dir + plen + 1, '/')) {
        struct banger_error e2 = { 0 };
        if (fs_remove_tree(dir, &e2) < 0)
            bg_log(BANGER_LOG_WARNING, NULL, "image '%s': %s", img->name, bg_error_text(&e2));
    }
    free(copy);
    if (deleted)
        *deleted = img;
    else
        image_record_free(img);
    return 0;
}
