#include "config.h"

#include "images/images.h"
#include "images/image_stage.h"
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

static int images_open_regular(const char *path, const char *what, int *fd_out, struct stat *st,
                               struct banger_error *err)
{
    if (!path || path[0] != '/')
        return bg_fail(err, -EINVAL, "%s path '%s' must be absolute", what, path ? path : "");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bg_fail_errno(err, -errno, "%s %s", what, path);
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return bg_fail(err, -EINVAL, "%s %s is not a regular file", what, path);
    }
    *fd_out = fd;
    return 0;
}

int images_check_rootfs(const char *path, struct banger_error *err)
{
    int fd;
    struct stat st;
    int r = images_open_regular(path, "rootfs", &fd, &st, err);
    if (r < 0)
        return r;
    unsigned char magic[2] = { 0 };
    /* The ext2/3/4 superblock starts at 1024; s_magic is at offset 56 in it. */
    ssize_t n = pread(fd, magic, sizeof(magic), 1024 + 56);
    close(fd);
    if (n != 2 || magic[0] != 0x53 || magic[1] != 0xEF)
        return bg_fail(err, -EINVAL, "rootfs %s is not an ext4 filesystem (no ext superblock magic)", path);
    return 0;
}

int images_check_kernel(const char *path, struct banger_error *err)
{
    int fd;
    struct stat st;
    int r = images_open_regular(path, "kernel", &fd, &st, err);
    if (r < 0)
        return r;
    unsigned char head[0x210] = { 0 };
    ssize_t n = pread(fd, head, sizeof(head), 0);
    close(fd);
    if (n >= 4 && memcmp(head, "\177ELF", 4) == 0)
        return 0;
    if (n >= 0x206 && memcmp(head + 0x202, "HdrS", 4) == 0)
        return bg_fail(err, -EINVAL,
                       "kernel %s is a compressed bzImage; Firecracker boots an uncompressed ELF "
                       "vmlinux on x86_64 — extract it with the kernel's scripts/extract-vmlinux "
                       "(extract-vmlinux %s > vmlinux) and register that", path, path);
    return bg_fail(err, -EINVAL, "kernel %s is not an ELF vmlinux", path);
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

int images_register(struct store *store, const char *images_dir,
                    const struct images_register_params *p, struct image_record **out,
                    struct banger_error *err)
{
    char eb[512] = "";
    static const char *const names[3] = { "rootfs.ext4", "vmlinux", "initrd.img" };
    const char *srcs[3] = { p->rootfs, p->kernel, p->initrd };
    struct images_stage st = { 0 };
    int r;

    if (image_name_check(p->name, eb, sizeof(eb)) < 0)
        return bg_fail(err, -EINVAL, "%s", eb);
    r = images_check_rootfs(p->rootfs, err);
    if (r == 0)
        r = images_check_kernel(p->kernel, err);
    if (r == 0 && p->initrd) {
        int fd;
        struct stat sb;
        r = images_open_regular(p->initrd, "initrd", &fd, &sb, err);
        if (r == 0)
            close(fd);
    }
    if (r == 0)
        r = images_name_free(store, p->name, err);
    if (r < 0)
        return r;

    r = images_stage_open(images_dir, &st, err);
    if (r < 0)
        return r;
    for (int i = 0; i < 3; i++) {
        if (!srcs[i])
            continue;
        char *tmp = images_stage_path(&st, names[i]);
        r = images_copy_file(srcs[i], tmp, err);
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
