#include "config.h"

#include "images/image_kernel.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define KERNEL_BZIMAGE_MAX (256u << 20)
#define KERNEL_TOOL_TIMEOUT_MS (5 * 60 * 1000)
#define KERNEL_SCAN_TRIES 16

enum kernel_codec { KERNEL_XZ, KERNEL_ZSTD, KERNEL_GZIP };

static const struct {
    const char *name;
    unsigned char magic[6];
    size_t len;
} kernel_codecs[] = {
    [KERNEL_XZ] = { "xz", { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6 },
    [KERNEL_ZSTD] = { "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4 },
    [KERNEL_GZIP] = { "gzip", { 0x1f, 0x8b, 0x08 }, 3 },
};
#define KERNEL_NCODECS (sizeof(kernel_codecs) / sizeof(kernel_codecs[0]))

static uint32_t kernel_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int kernel_codec_at(const unsigned char *p, size_t avail)
{
    for (size_t c = 0; c < KERNEL_NCODECS; c++)
        if (avail >= kernel_codecs[c].len && memcmp(p, kernel_codecs[c].magic,
                                                    kernel_codecs[c].len) == 0)
            return (int)c;
    return -1;
}

/* The payload the boot protocol (>= 2.08) describes, when it starts with a
 * known magic: offset and length into off and len. */
static bool kernel_header_payload(const unsigned char *img, size_t size, size_t *off, size_t *len)
{
    if (size < 0x250 || memcmp(img + 0x202, "HdrS", 4) != 0)
        return false;
    unsigned version = (unsigned)img[0x206] | (unsigned)img[0x207] << 8;
    if (version < 0x208)
        return false;
    unsigned setup_sects = img[0x1f1] ? img[0x1f1] : 4;
    size_t start = ((size_t)setup_sects + 1) * 512 + kernel_le32(img + 0x248);
    size_t n = kernel_le32(img + 0x24c);
    if (start >= size || n == 0 || n > size - start ||
        kernel_codec_at(img + start, size - start) < 0)
        return false;
    *off = start;
    *len = n;
    return true;
}

static int kernel_check_elf(const char *path, struct banger_error *err)
{
    unsigned char head[4] = { 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bg_fail_errno(err, -errno, "open %s", path);
    ssize_t n = pread(fd, head, sizeof(head), 0);
    close(fd);
    if (n != (ssize_t)sizeof(head) || memcmp(head, "\177ELF", 4) != 0)
        return bg_fail(err, -EINVAL, "%s: the decompressed kernel is not an ELF file", path);
    return 0;
}

static int kernel_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int kernel_unzstd(const unsigned char *src, size_t len, const char *out,
                         struct banger_error *err)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    size_t cap = ZSTD_DStreamOutSize();
    unsigned char *buf = xmalloc(cap);
    int r = 0;
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = bg_fail_errno(err, -errno, "create %s", out);
        goto cleanup;
    }
    ZSTD_inBuffer in = { src, len, 0 };
    for (;;) {
        ZSTD_outBuffer o = { buf, cap, 0 };
        size_t ret = ZSTD_decompressStream(dctx, &o, &in);
        if (ZSTD_isError(ret)) {
            r = bg_fail(err, -EINVAL, "kernel payload (zstd): %s", ZSTD_getErrorName(ret));
            goto cleanup;
        }
        if (o.pos > 0 && kernel_write_all(fd, buf, o.pos) < 0) {
            r = bg_fail_errno(err, -errno, "write %s", out);
            goto cleanup;
        }
        /* One frame is the kernel; bytes after it (a size trailer) are not. */
        if (ret == 0)
            break;
        if (in.pos == in.size && o.pos < o.size) {
            r = bg_fail(err, -EINVAL, "kernel payload (zstd) is truncated");
            goto cleanup;
        }
    }
cleanup:
    if (fd >= 0)
        close(fd);
    free(buf);
    ZSTD_freeDCtx(dctx);
    return r;
}

/* xz and gzip: write the payload beside `out` and let the tool replace it
 * with the decompressed file. */
static int kernel_untool(enum kernel_codec codec, const unsigned char *src, size_t len,
                         const char *out, struct banger_error *err)
{
    char *packed = xasprintf("%s.%s", out, codec == KERNEL_XZ ? "xz" : "gz");
    int r = fs_write_atomic(packed, src, len, 0600, err);
    if (r < 0)
        goto cleanup;
    /* The kernel's payload carries a 4-byte size trailer after the stream:
     * xz ignores it with --single-stream, gzip calls it trailing garbage
     * (exit status 2, a warning). */
    const char *xz_argv[] = { "xz", "-d", "-f", "-q", "--single-stream", packed, NULL };
    const char *gz_argv[] = { "gzip", "-d", "-f", "-q", packed, NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts),
                                    .timeout_ms = KERNEL_TOOL_TIMEOUT_MS };
    struct banger_run_result res = { .struct_size = sizeof(res) };
    struct banger_error e2 = { 0 };
    r = runner_run(codec == KERNEL_XZ ? xz_argv : gz_argv, &opts, &res, &e2);
    if (r < 0 && codec == KERNEL_GZIP && res.exit_status == 2 && res.term_signal == 0 &&
        access(out, F_OK) == 0)
        r = 0;
    if (r < 0)
        bg_fail(err, r, "kernel payload (%s): %s", kernel_codecs[codec].name, bg_error_text(&e2));
    runner_result_clear(&res);
cleanup:
    unlink(packed);
    free(packed);
    return r;
}

static int kernel_decompress(enum kernel_codec codec, const unsigned char *src, size_t len,
                             const char *out, struct banger_error *err)
{
    unlink(out);
    int r = codec == KERNEL_ZSTD ? kernel_unzstd(src, len, out, err)
                                 : kernel_untool(codec, src, len, out, err);
    if (r == 0)
        r = kernel_check_elf(out, err);
    /* xz and gzip give it the private mode of the temporary payload. */
    if (r == 0 && chmod(out, 0644) < 0)
        r = bg_fail_errno(err, -errno, "chmod %s", out);
    if (r < 0)
        unlink(out);
    return r;
}

int images_bzimage_extract(const char *bzimage, const char *out, struct banger_error *err)
{
    char *data = NULL;
    size_t size = 0, off = 0, len = 0;
    int r = fs_read_all(bzimage, KERNEL_BZIMAGE_MAX, &data, &size, err);
    if (r < 0)
        return r;
    const unsigned char *img = (const unsigned char *)data;
    if (kernel_header_payload(img, size, &off, &len)) {
        int codec = kernel_codec_at(img + off, len);
        r = kernel_decompress((enum kernel_codec)codec, img + off, len, out, err);
        goto cleanup;
    }
    /* No usable header: try the magics in file order (a gzip magic can occur
     * by chance, so a failed candidate is not the end). */
    r = bg_fail(err, -EINVAL, "%s: no xz, zstd or gzip kernel payload found", bzimage);
    int tries = 0;
    for (size_t i = 0; i + 6 < size && tries < KERNEL_SCAN_TRIES; i++) {
        int codec = kernel_codec_at(img + i, size - i);
        if (codec < 0)
            continue;
        tries++;
        struct banger_error e2 = { 0 };
        r = kernel_decompress((enum kernel_codec)codec, img + i, size - i, out, &e2);
        if (r == 0)
            break;
        bg_fail(err, r, "%s: %s", bzimage, bg_error_text(&e2));
    }
cleanup:
    free(data);
    if (r == 0)
        bg_log(BANGER_LOG_INFO, NULL, "kernel: %s unpacked to %s", bzimage, out);
    return r;
}

/* "6.1.0-18-amd64" < "6.1.0-56-amd64" < "6.10.0-1-amd64". */
int images_host_kernel(const char *boot_dir, const char *modules_root, char *ver, size_t len,
                       struct banger_error *err)
{
    DIR *d = opendir(boot_dir);
    if (!d)
        return bg_fail_errno(err, -errno, "open %s", boot_dir);
    char *best = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "vmlinuz-", 8) != 0 || !de->d_name[8])
            continue;
        const char *v = de->d_name + 8;
        char *dep = xasprintf("%s/%s/modules.dep", modules_root, v);
        bool usable = access(dep, R_OK) == 0;
        free(dep);
        if (usable && (!best || strverscmp(v, best) > 0)) {
            free(best);
            best = xstrdup(v);
        }
    }
    closedir(d);
    int r = 0;
    if (!best)
        r = bg_fail(err, -ENOENT, "no %s/vmlinuz-<version> with %s/<version>/modules.dep "
                    "(install linux-image-amd64)", boot_dir, modules_root);
    else if (strlen(best) >= len)
        r = bg_fail(err, -ENAMETOOLONG, "kernel version '%s' is too long", best);
    else
        strcpy(ver, best);
    free(best);
    return r;
}
