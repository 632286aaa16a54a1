#include "config.h"

#include "images/image_import.h"
#include "images/image_guest.h"
#include "images/images.h"
#include "runner/runner.h"
#include "store/names.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMPORT_MIN_SIZE (1ull << 30)
#define IMPORT_MKFS_TIMEOUT_MS (20 * 60 * 1000)

/* Does a tar path stay inside the tree? */
static const char *import_path_problem(const char *path)
{
    if (!path || path[0] == '\0')
        return "has an empty path";
    if (path[0] == '/')
        return "has an absolute path";
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "contains '..'";
        if (!slash)
            break;
        p = slash + 1;
    }
    return NULL;
}

/* "dev/null" or "./dev/null": an entry right in the tree's dev/ directory. */
static bool import_directly_in_dev(const char *path)
{
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    if (strncmp(path, "dev/", 4) != 0)
        return false;
    const char *rest = path + 4;
    size_t n = strcspn(rest, "/");
    return n > 0 && (rest[n] == '\0' || (rest[n] == '/' && rest[n + 1] == '\0'));
}

/* 0: extract it, 1: skip it, <0: refuse the archive. */
static int import_entry_check(struct archive_entry *e, struct banger_error *err)
{
    const char *path = archive_entry_pathname(e);
    const char *shown = path ? path : "(none)";
    const char *why = import_path_problem(path);
    if (why)
        return bg_fail(err, -EINVAL, "tar entry '%s' %s: refusing the archive", shown, why);
    const char *kind = NULL;
    switch (archive_entry_filetype(e)) {
    case AE_IFCHR:
    case AE_IFBLK:
        kind = "a device node";
        break;
    case AE_IFIFO:
        kind = "a fifo";
        break;
    case AE_IFSOCK:
        kind = "a socket";
        break;
    default:
        break;
    }
    if (kind) {
        /* debootstrap and `docker export` ship a static dev/; the guest's
         * devtmpfs replaces it at boot. */
        if (import_directly_in_dev(path)) {
            bg_log(BANGER_LOG_INFO, NULL, "import: skipping tar entry '%s' (%s; the guest's "
                   "devtmpfs provides /dev)", shown, kind);
            return 1;
        }
        return bg_fail(err, -EINVAL, "tar entry '%s' is %s outside dev/: refusing the archive",
                       shown, kind);
    }
    const char *hl = archive_entry_hardlink(e);
    if (hl && (why = import_path_problem(hl)))
        return bg_fail(err, -EINVAL, "tar entry '%s' is a hard link that %s ('%s'): refusing "
                       "the archive", shown, why, hl);
    return 0;
}

static int import_copy_data(struct archive *in, struct archive *out, const char *path,
                            struct banger_error *err)
{
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        int rc = archive_read_data_block(in, &buf, &size, &off);
        if (rc == ARCHIVE_EOF)
            return 0;
        if (rc < ARCHIVE_WARN)
            return bg_fail(err, -EIO, "tar entry '%s': %s", path, archive_error_string(in));
        if (archive_write_data_block(out, buf, size, off) < ARCHIVE_WARN)
            return bg_fail(err, -EIO, "extract '%s': %s", path, archive_error_string(out));
    }
}

int images_extract_tree(const char *tar, const char *root, uint64_t *bytes,
                        struct banger_error *err)
{
    int fd = open(tar, O_RDONLY | O_CLOEXEC);
    int r;

    if (fd < 0)
        return bg_fail_errno(err, -errno, "cannot read %s", tar);
    r = images_extract_tree_fd(fd, tar, root, 0, bytes, err);
    close(fd);
    return r;
}

int images_extract_tree_fd(int tar_fd, const char *tar, const char *root, uint64_t max_bytes,
                           uint64_t *bytes, struct banger_error *err)
{
    struct archive *in = archive_read_new();
    struct archive *out = archive_write_disk_new();
    char *real_root = realpath(root, NULL);
    int r = 0;

    if (!real_root) {
        r = bg_fail_errno(err, -errno, "%s", root);
        goto cleanup;
    }
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    archive_read_support_format_gnutar(in);
    /* Paths are prefixed with the staging root here (the daemon is threaded:
     * no chdir), after import_entry_check refused absolute ones; libarchive
     * still refuses '..' and writing through symlinks. */
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                            ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM |
                                            ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                                            ARCHIVE_EXTRACT_ACL);
    archive_write_disk_set_standard_lookup(out);
    if (archive_read_open_fd(in, tar_fd, 1 << 16) != ARCHIVE_OK) {
        r = bg_fail(err, -EINVAL, "cannot read %s: %s", tar, archive_error_string(in));
        goto cleanup;
    }
    for (;;) {
        struct archive_entry *e;
        int rc = archive_read_next_header(in, &e);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            r = bg_fail(err, -EINVAL, "%s: %s", tar, archive_error_string(in));
            goto cleanup;
        }
        r = import_entry_check(e, err);
        if (r < 0)
            goto cleanup;
        if (r == 1) {
            r = 0;
            continue;
        }
        char *orig = xstrdup(archive_entry_pathname(e));
        const char *rel = orig;
        while (rel[0] == '.' && rel[1] == '/')
            rel += 2;
        if (rel[0] == '\0' || strcmp(rel, ".") == 0) {
            free(orig); /* the root itself: ours already */
            continue;
        }
        char *full = fs_join(real_root, rel);
        archive_entry_set_pathname(e, full);
        free(full);
        const char *hl = archive_entry_hardlink(e);
        if (hl) {
            while (hl[0] == '.' && hl[1] == '/')
                hl += 2;
            char *target = fs_join(real_root, hl);
            archive_entry_set_hardlink(e, target);
            free(target);
        }
        if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size_is_set(e) &&
            archive_entry_size(e) > 0)
            *bytes += (uint64_t)archive_entry_size(e);
        *bytes += 4096; /* an inode and a directory entry, roughly */
        /* A few KiB of sparse tar can declare a TiB: refuse before writing. */
        if (max_bytes && *bytes > max_bytes) {
            r = bg_fail(err, -EFBIG,
                        "tar entry '%s': the tree would hold more than %llu bytes "
                        "(images.max_rootfs_bytes)", orig, (unsigned long long)max_bytes);
            free(orig);
            goto cleanup;
        }
        rc = archive_write_header(out, e);
        if (rc < ARCHIVE_WARN) {
            r = bg_fail(err, -EINVAL, "tar entry '%s': %s", orig, archive_error_string(out));
            free(orig);
            goto cleanup;
        }
        if (archive_entry_size(e) > 0)
            r = import_copy_data(in, out, orig, err);
        if (r == 0 && archive_write_finish_entry(out) < ARCHIVE_WARN)
            r = bg_fail(err, -EIO, "tar entry '%s': %s", orig, archive_error_string(out));
        free(orig);
        if (r < 0)
            goto cleanup;
    }
    if (archive_write_close(out) < ARCHIVE_WARN)
        r = bg_fail(err, -EIO, "extract %s: %s", tar, archive_error_string(out));

cleanup:
    archive_read_free(in);
    archive_write_free(out);
    free(real_root);
    return r;
}

int images_make_ext4(const char *root, uint64_t content_bytes, const char *path,
                     struct banger_error *err)
{
    uint64_t size = content_bytes + content_bytes / 2;
    if (size < IMPORT_MIN_SIZE)
        size = IMPORT_MIN_SIZE;
    size = (size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return bg_fail_errno(err, -errno, "create %s", path);
    int r = 0;
    if (ftruncate(fd, (off_t)size) < 0)
        r = bg_fail_errno(err, -errno, "size %s", path);
    close(fd);
    if (r < 0)
        return r;
    /* No size argument: mkfs uses the file's size. */
    const char *argv[] = { "mkfs.ext4", "-F", "-q", "-d", root, "-E", "root_owner=0:0", path,
                           NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts),
                                    .timeout_ms = IMPORT_MKFS_TIMEOUT_MS };
    struct banger_run_result res = { .struct_size = sizeof(res) };
    r = runner_run(argv, &opts, &res, err);
    runner_result_clear(&res);
    return r;
}

int images_tree_to_rootfs(const char *root, uint64_t bytes, const char *rootfs,
                          images_progress_fn progress, void *progress_ctx, cJSON *warnings,
                          struct banger_error *err)
{
    if (progress)
        progress(progress_ctx, "agent");
    int r = images_guest_inject(root, &bytes, warnings, err);
    if (r == 0) {
        if (progress)
            progress(progress_ctx, "mkfs");
        r = images_make_ext4(root, bytes, rootfs, err);
    }
    /* The tree is in the ext4 now; only the image files get renamed in. */
    if (r == 0)
        r = fs_remove_tree(root, err);
    return r;
}

int images_import(struct store *store, const char *images_dir,
                  const struct images_import_params *p, struct image_record **out,
                  struct banger_error *err)
{
    char eb[512] = "";
    struct images_stage st = { 0 };
    char *root = NULL, *rootfs = NULL, *kernel = NULL, *initrd = NULL;
    int tar_fd = -1, kernel_fd = -1, initrd_fd = -1;
    uint64_t bytes = 0;
    int r;

    if (image_name_check(p->name, eb, sizeof(eb)) < 0)
        return bg_fail(err, -EINVAL, "%s", eb);
    /* Opened once each, as the client; read only through these. */
    r = images_open_source(p->caller, "tarball", p->tar, &tar_fd, err);
    if (r == 0)
        r = images_open_source(p->caller, "kernel", p->kernel, &kernel_fd, err);
    if (r == 0)
        r = images_check_kernel_fd(kernel_fd, p->kernel, err);
    if (r == 0 && p->initrd)
        r = images_open_source(p->caller, "initrd", p->initrd, &initrd_fd, err);
    if (r == 0 && p->initrd)
        r = images_check_initrd_fd(initrd_fd, p->initrd, err);
    if (r == 0)
        r = images_name_free(store, p->name, err);
    if (r < 0)
        goto cleanup;

    r = images_stage_open(images_dir, &st, err);
    if (r < 0)
        goto cleanup;
    root = images_stage_path(&st, "root");
    rootfs = images_stage_path(&st, "rootfs.ext4");
    kernel = images_stage_path(&st, "vmlinux");
    initrd = images_stage_path(&st, "initrd.img");
    if (mkdir(root, 0755) < 0) {
        r = bg_fail_errno(err, -errno, "create %s", root);
        goto cleanup;
    }
    if (p->progress)
        p->progress(p->progress_ctx, "extract");
    r = images_extract_tree_fd(tar_fd, p->tar, root, p->max_bytes, &bytes, err);
    if (r == 0 && images_cancelled(p->cancel))
        r = bg_fail(err, -ECANCELED, "cancelled: the client went away");
    if (r == 0)
        r = images_tree_to_rootfs(root, bytes, rootfs, p->progress, p->progress_ctx,
                                  p->warnings, err);
    if (r == 0)
        r = images_copy_fd(kernel_fd, p->kernel, kernel, err);
    if (r == 0 && p->initrd)
        r = images_copy_fd(initrd_fd, p->initrd, initrd, err);
    if (r == 0 && images_cancelled(p->cancel))
        r = bg_fail(err, -ECANCELED, "cancelled: the client went away");
    if (r < 0)
        goto cleanup;
    if (p->progress)
        p->progress(p->progress_ctx, "register");
    cJSON *extra = cJSON_CreateObject();
    cJSON *source = cJSON_AddObjectToObject(extra, "source");
    cJSON_AddStringToObject(source, "type", "import");
    cJSON_AddStringToObject(source, "tar", p->tar);
    cJSON_AddStringToObject(source, "kernel", p->kernel);
    r = images_stage_commit(&st, store, p->name, extra, out, err);
    cJSON_Delete(extra);

cleanup:
    images_stage_close(&st);
    free(root);
    free(rootfs);
    free(kernel);
    free(initrd);
    if (tar_fd >= 0)
        close(tar_fd);
    if (kernel_fd >= 0)
        close(kernel_fd);
    if (initrd_fd >= 0)
        close(initrd_fd);
    return r;
}
