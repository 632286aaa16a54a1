#include "config.h"

#include "images/image_bundle.h"
#include "images/image_stage.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STAGE_SCAN_MAX (64u << 20)
#define STAGE_CHUNK (1u << 20)

static const char *const stage_files[] = { "rootfs.ext4", "vmlinux", "initrd.img" };

static void stage_dir_id(char *buf, size_t len)
{
    unsigned char raw[6] = { 0 };
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
        memcpy(raw, &t, sizeof(raw));
    }
    snprintf(buf, len, "%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3], raw[4], raw[5]);
}

int images_stage_open(const char *images_dir, struct images_stage *st, struct banger_error *err)
{
    char id[16];
    memset(st, 0, sizeof(*st));
    int r = fs_ensure_private_dir(images_dir, 0700, err);
    if (r < 0)
        return r;
    stage_dir_id(id, sizeof(id));
    char *staging_name = xasprintf("%s.staging", id);
    st->staging = fs_join(images_dir, staging_name);
    free(staging_name);
    st->final = fs_join(images_dir, id);
    if (mkdir(st->staging, 0700) < 0) {
        r = bg_fail_errno(err, -errno, "create %s", st->staging);
        free(st->staging);
        free(st->final);
        st->staging = st->final = NULL;
        return r;
    }
    return 0;
}

char *images_stage_path(const struct images_stage *st, const char *file)
{
    return fs_join(st->staging, file);
}

void images_stage_close(struct images_stage *st)
{
    if (!st)
        return;
    if (st->staging && !st->committed) {
        struct banger_error e2 = { 0 };
        if (fs_remove_tree(st->staging, &e2) < 0)
            bg_log(BANGER_LOG_WARNING, NULL, "cannot remove %s: %s", st->staging,
                   bg_error_text(&e2));
    }
    free(st->staging);
    free(st->final);
    st->staging = st->final = NULL;
}

int images_name_free(struct store *store, const char *name, struct banger_error *err)
{
    char eb[512] = "";
    struct image_record *existing = NULL;
    int r = store_image_get_by_name(store, name, &existing, eb, sizeof(eb));
    if (r == 0) {
        image_record_free(existing);
        return bg_fail(err, -EEXIST, "an image named '%s' already exists", name);
    }
    if (r != -ENOENT)
        return bg_fail(err, r, "%s", eb);
    return 0;
}

int images_sha256_fd(int fd, const char *path, char hex[IMAGES_SHA256_HEX],
                     struct banger_error *err)
{
    return images_sha256_fd_cancel(fd, path, NULL, hex, err);
}

int images_sha256_fd_cancel(int fd, const char *path, const struct images_cancel *cancel,
                            char hex[IMAGES_SHA256_HEX], struct banger_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char *buf = NULL;
    EVP_MD_CTX *ctx = NULL;
    off_t pos = 0;
    int r = 0;

    buf = xmalloc(STAGE_CHUNK);
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        r = bg_fail(err, -ENOMEM, "sha256: cannot set up a digest");
        goto cleanup;
    }
    for (;;) {
        if (images_cancelled(cancel)) {
            r = bg_fail(err, -ECANCELED, "cancelled: the client went away");
            goto cleanup;
        }
        ssize_t n = pread(fd, buf, STAGE_CHUNK, pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = bg_fail_errno(err, -errno, "read %s", path);
            goto cleanup;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        pos += n;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        r = bg_fail(err, -EIO, "sha256 of %s failed", path);
        goto cleanup;
    }
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);

cleanup:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return r;
}

int images_sha256_file(const char *path, char hex[IMAGES_SHA256_HEX], struct banger_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int r;

    if (fd < 0)
        return bg_fail_errno(err, -errno, "open %s", path);
    r = images_sha256_fd(fd, path, hex, err);
    close(fd);
    return r;
}

/* The .rodata range of an ELF64 file, or [0, STAGE_SCAN_MAX) without one. */
static void stage_rodata_range(int fd, off_t *start, off_t *len)
{
    Elf64_Ehdr eh;
    *start = 0;
    *len = STAGE_SCAN_MAX;
    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096 ||
        eh.e_shstrndx >= eh.e_shnum)
        return;
    Elf64_Shdr *sh = xcalloc(eh.e_shnum, sizeof(*sh));
    char *names = NULL;
    size_t bytes = (size_t)eh.e_shnum * sizeof(*sh);
    if (pread(fd, sh, bytes, (off_t)eh.e_shoff) != (ssize_t)bytes)
        goto cleanup;
    const Elf64_Shdr *strs = &sh[eh.e_shstrndx];
    if (strs->sh_size == 0 || strs->sh_size > (1u << 20))
        goto cleanup;
    names = xcalloc(1, strs->sh_size + 1);
    if (pread(fd, names, strs->sh_size, (off_t)strs->sh_offset) != (ssize_t)strs->sh_size)
        goto cleanup;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_name < strs->sh_size && strcmp(names + sh[i].sh_name, ".rodata") == 0 &&
            sh[i].sh_type == SHT_PROGBITS) {
            *start = (off_t)sh[i].sh_offset;
            *len = sh[i].sh_size < STAGE_SCAN_MAX ? (off_t)sh[i].sh_size : STAGE_SCAN_MAX;
            break;
        }
    }
cleanup:
    free(names);
    free(sh);
}

int images_kernel_version(const char *path, char *out, size_t len)
{
    static const char banner[] = "Linux version ";
    const size_t blen = sizeof(banner) - 1;
    const size_t keep = 128; /* carried between chunks: a banner may straddle them */
    off_t start, span;
    int r = -ENOENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    stage_rodata_range(fd, &start, &span);
    char *buf = xmalloc(STAGE_CHUNK + keep);
    size_t have = 0;
    off_t pos = start, end = start + span;
    for (;;) {
        bool eof = pos >= end;
        if (!eof) {
            size_t want = STAGE_CHUNK;
            if ((off_t)want > end - pos)
                want = (size_t)(end - pos);
            ssize_t n = pread(fd, buf + have, want, pos);
            if (n <= 0) {
                eof = true;
            } else {
                pos += n;
                have += (size_t)n;
            }
        }
        size_t from = 0;
        const char *pending = NULL;
        for (;;) {
            const char *hit = memmem(buf + from, have - from, banner, blen);
            if (!hit)
                break;
            size_t after = (size_t)(buf + have - (hit + blen));
            if (after < 64 && !eof) {
                pending = hit;
                break;
            }
            const char *v = hit + blen;
            size_t i = 0;
            while (i + 1 < len && i < 64 && i < after && v[i] > ' ' && v[i] < 127) {
                out[i] = v[i];
                i++;
            }
            out[i] = '\0';
            if (i > 0) {
                r = 0;
                break;
            }
            from = (size_t)(hit - buf) + blen;
        }
        if (r == 0 || eof)
            break;
        size_t drop = pending ? (size_t)(pending - buf) : (have > keep ? have - keep : 0);
        memmove(buf, buf + drop, have - drop);
        have -= drop;
    }
    free(buf);
    close(fd);
    return r;
}

int images_stage_commit(struct images_stage *st, struct store *store, const char *name,
                        const cJSON *extra, struct image_record **out, struct banger_error *err)
{
    char eb[512] = "";
    char *paths[3] = { NULL, NULL, NULL };
    char *manifest_text = NULL;
    cJSON *manifest = cJSON_CreateObject();
    int r = 0;

    cJSON_AddStringToObject(manifest, "name", name);
    cJSON_AddNumberToObject(manifest, "created", (double)time(NULL));
    cJSON *files = cJSON_AddObjectToObject(manifest, "files");
    for (int i = 0; i < 3; i++) {
        char *staged = images_stage_path(st, stage_files[i]);
        struct stat sb;
        if (stat(staged, &sb) < 0) {
            free(staged);
            if (i < 2) {
                r = bg_fail(err, -ENOENT, "image '%s' has no %s", name, stage_files[i]);
                goto cleanup;
            }
            continue;
        }
        char hex[IMAGES_SHA256_HEX];
        r = images_sha256_file(staged, hex, err);
        if (r < 0) {
            free(staged);
            goto cleanup;
        }
        cJSON *f = cJSON_AddObjectToObject(files, stage_files[i]);
        cJSON_AddNumberToObject(f, "size", (double)sb.st_size);
        cJSON_AddStringToObject(f, "sha256", hex);
        if (i == 1) {
            char ver[80];
            if (images_kernel_version(staged, ver, sizeof(ver)) == 0)
                cJSON_AddStringToObject(manifest, "kernel_version", ver);
        }
        free(staged);
        paths[i] = fs_join(st->final, stage_files[i]);
    }
    if (extra) {
        const cJSON *it;
        cJSON_ArrayForEach(it, extra) {
            if (!cJSON_GetObjectItemCaseSensitive(manifest, it->string))
                cJSON_AddItemToObject(manifest, it->string, cJSON_Duplicate(it, true));
        }
    }
    manifest_text = cJSON_Print(manifest);
    char *mpath = images_stage_path(st, "manifest.json");
    r = fs_write_atomic(mpath, manifest_text, strlen(manifest_text), 0644, err);
    free(mpath);
    if (r < 0)
        goto cleanup;
    /* The image appears whole or not at all. */
    if (rename(st->staging, st->final) < 0) {
        r = bg_fail_errno(err, -errno, "rename %s", st->staging);
        goto cleanup;
    }
    struct image_request req = {
        .name = name, .rootfs_path = paths[0], .kernel_path = paths[1],
        .initrd_path = paths[2], .manifest = manifest_text,
    };
    r = store_image_insert(store, &req, out, eb, sizeof(eb));
    if (r < 0) {
        bg_fail(err, r, "%s", eb);
        /* Back to a staging dir, which the caller's close removes. */
        if (rename(st->final, st->staging) < 0) {
            struct banger_error e2 = { 0 };
            fs_remove_tree(st->final, &e2);
        }
        goto cleanup;
    }
    st->committed = true;
    bg_log(BANGER_LOG_INFO, NULL, "image '%s' is in %s", name, st->final);

cleanup:
    cJSON_Delete(manifest);
    free(manifest_text);
    for (int i = 0; i < 3; i++)
        free(paths[i]);
    return r;
}
