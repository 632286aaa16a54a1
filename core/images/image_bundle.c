#include "config.h"

#include "images/image_bundle.h"
#include "util/xalloc.h"

#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Tar headers, pax records and end-of-archive padding on top of the
 * members' data: what an honest bundle's decompressed stream may add. */
#define BUNDLE_STREAM_SLACK (8ull << 20)
#define BUNDLE_ZERO_CHUNK (1u << 20)
/* Sizes are JSON numbers (doubles): integers up to 2^53 are exact. */
#define BUNDLE_SIZE_EXACT_MAX 9007199254740992.0

const struct images_limits images_default_limits = {
    .max_bundle_bytes = 64ull << 30,
    .max_rootfs_bytes = 64ull << 30,
    .max_kernel_bytes = 256ull << 20,
    .max_initrd_bytes = 1ull << 30,
};

const char *const images_bundle_files[IMAGES_BUNDLE_FILES] = { "rootfs.ext4", "vmlinux",
                                                               "initrd.img" };
static const char *const bundle_cap_keys[IMAGES_BUNDLE_FILES] = {
    "images.max_rootfs_bytes", "images.max_kernel_bytes", "images.max_initrd_bytes" };

bool images_cancelled(const struct images_cancel *c)
{
    return c && c->cancelled && c->cancelled(c->ctx);
}

static int bundle_cancelled_fail(struct banger_error *err)
{
    return bg_fail(err, -ECANCELED, "cancelled: the client went away");
}

static uint64_t bundle_cap(const struct images_limits *lim, int i)
{
    return i == 0 ? lim->max_rootfs_bytes : i == 1 ? lim->max_kernel_bytes : lim->max_initrd_bytes;
}

static int bundle_file_index(const char *name)
{
    for (int i = 0; i < IMAGES_BUNDLE_FILES; i++)
        if (strcmp(name, images_bundle_files[i]) == 0)
            return i;
    return -1;
}

/* ---- manifest.json -------------------------------------------------------- */

static int bundle_parse_file(const cJSON *f, int i, const struct images_limits *lim,
                             struct images_bundle_file *out, struct banger_error *err)
{
    const char *name = images_bundle_files[i];
    if (!cJSON_IsObject(f))
        return bg_fail(err, -EINVAL, "bundle manifest.json: \"%s\" is not an object", name);
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(f, "size");
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(f, "sha256");
    if (!cJSON_IsNumber(size) || !(size->valuedouble >= 0) ||
        size->valuedouble > BUNDLE_SIZE_EXACT_MAX ||
        (double)(uint64_t)size->valuedouble != size->valuedouble)
        return bg_fail(err, -EINVAL, "bundle manifest.json gives no size (a whole number of "
                       "bytes) for %s", name);
    out->size = (uint64_t)size->valuedouble;
    uint64_t cap = bundle_cap(lim, i);
    if (out->size > cap)
        return bg_fail(err, -EFBIG, "bundle manifest.json: %s is %llu bytes, over the %llu-byte "
                       "cap (%s): refusing the bundle", name, (unsigned long long)out->size,
                       (unsigned long long)cap, bundle_cap_keys[i]);
    if (!cJSON_IsString(sum) || strlen(sum->valuestring) != IMAGES_SHA256_HEX - 1)
        return bg_fail(err, -EINVAL, "bundle manifest.json gives no sha256 for %s", name);
    for (size_t k = 0; k < IMAGES_SHA256_HEX - 1; k++) {
        unsigned char c = (unsigned char)sum->valuestring[k];
        if (!isxdigit(c))
            return bg_fail(err, -EINVAL, "bundle manifest.json: the sha256 of %s is not 64 hex "
                           "digits", name);
        out->sha256[k] = (char)tolower(c);
    }
    out->sha256[IMAGES_SHA256_HEX - 1] = '\0';
    out->listed = true;
    return 0;
}

int images_bundle_manifest_parse(const char *text, size_t len, const struct images_limits *lim,
                                 struct images_bundle_manifest *out, struct banger_error *err)
{
    struct images_bundle_manifest m = { 0 };
    int r = 0;

    if (len > IMAGES_BUNDLE_MANIFEST_MAX)
        return bg_fail(err, -EFBIG, "bundle manifest.json is larger than %u bytes",
                       IMAGES_BUNDLE_MANIFEST_MAX);
    m.doc = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(m.doc)) {
        r = bg_fail(err, -EINVAL, "bundle manifest.json is not a JSON object");
        goto cleanup;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m.doc, "name");
    if (name && !cJSON_IsString(name)) {
        r = bg_fail(err, -EINVAL, "bundle manifest.json: \"name\" is not a string");
        goto cleanup;
    }
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m.doc, "files");
    if (!cJSON_IsObject(files)) {
        r = bg_fail(err, -EINVAL, "bundle manifest.json has no \"files\" object");
        goto cleanup;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, files) {
        int i = it->string ? bundle_file_index(it->string) : -1;
        if (i < 0) {
            r = bg_fail(err, -EINVAL, "bundle manifest.json lists '%s', which is not one of "
                        "rootfs.ext4, vmlinux, initrd.img: refusing the bundle",
                        it->string ? it->string : "");
            goto cleanup;
        }
        if (m.files[i].listed) {
            r = bg_fail(err, -EINVAL, "bundle manifest.json lists %s twice: refusing the bundle",
                        it->string);
            goto cleanup;
        }
        r = bundle_parse_file(it, i, lim, &m.files[i], err);
        if (r < 0)
            goto cleanup;
        m.total += m.files[i].size;
    }
    for (int i = 0; i < 2; i++) {
        if (!m.files[i].listed) {
            r = bg_fail(err, -EINVAL, "bundle manifest.json does not list %s",
                        images_bundle_files[i]);
            goto cleanup;
        }
    }
    if (m.total > lim->max_bundle_bytes) {
        r = bg_fail(err, -EFBIG, "bundle manifest.json: its files total %llu bytes, over the "
                    "%llu-byte cap (images.max_bundle_bytes): refusing the bundle",
                    (unsigned long long)m.total, (unsigned long long)lim->max_bundle_bytes);
        goto cleanup;
    }
    *out = m;
    m.doc = NULL;

cleanup:
    cJSON_Delete(m.doc);
    return r;
}

void images_bundle_manifest_clear(struct images_bundle_manifest *m)
{
    if (!m)
        return;
    cJSON_Delete(m->doc);
    memset(m, 0, sizeof(*m));
}

/* ---- members --------------------------------------------------------------- */

/* 0..2: a file, 3: manifest.json, -1: anything else. */
static int bundle_member_index(const char *path)
{
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    if (strcmp(path, "manifest.json") == 0)
        return IMAGES_BUNDLE_FILES;
    return bundle_file_index(path);
}

static int bundle_read_manifest(struct archive *a, struct archive_entry *e,
                                const struct images_limits *lim,
                                struct images_bundle_manifest *m, struct banger_error *err)
{
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
        archive_entry_size(e) > IMAGES_BUNDLE_MANIFEST_MAX)
        return bg_fail(err, -EFBIG, "bundle manifest.json is larger than %u bytes",
                       IMAGES_BUNDLE_MANIFEST_MAX);
    size_t want = (size_t)archive_entry_size(e), have = 0;
    char *text = xmalloc(want + 1);
    int r = 0;
    while (have < want) {
        la_ssize_t n = archive_read_data(a, text + have, want - have);
        if (n < 0) {
            r = bg_fail(err, -EIO, "bundle manifest.json: %s", archive_error_string(a));
            goto cleanup;
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    r = images_bundle_manifest_parse(text, have, lim, m, err);
cleanup:
    free(text);
    return r;
}

static int bundle_hash_zeros(EVP_MD_CTX *ctx, uint64_t n, const struct images_cancel *cancel,
                             struct banger_error *err)
{
    static const unsigned char zeros[BUNDLE_ZERO_CHUNK];
    while (n > 0) {
        if (images_cancelled(cancel))
            return bundle_cancelled_fail(err);
        size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
        EVP_DigestUpdate(ctx, zeros, k);
        n -= k;
    }
    return 0;
}

static int bundle_pwrite_all(int fd, const void *buf, size_t size, uint64_t off)
{
    const char *p = buf;
    while (size > 0) {
        ssize_t n = pwrite(fd, p, size, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        size -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int bundle_hex(EVP_MD_CTX *ctx, char hex[IMAGES_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32)
        return -EIO;
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Stream one member into dir_fd. Blocks must come in order and stay inside
 * the declared size; holes stay holes and are hashed as zeros, so the hash
 * covers exactly the declared bytes whatever the tar's sparse map says. */
static int bundle_write_member(struct archive *a, int dir_fd, int i,
                               const struct images_bundle_file *f,
                               const struct images_cancel *cancel, struct banger_error *err)
{
    const char *name = images_bundle_files[i];
    char hex[IMAGES_SHA256_HEX];
    uint64_t pos = 0;
    int r = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

    if (fd < 0) {
        r = bg_fail_errno(err, -errno, "create %s", name);
        goto cleanup;
    }
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        r = bg_fail(err, -ENOMEM, "sha256: cannot set up a digest");
        goto cleanup;
    }
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        if (images_cancelled(cancel)) {
            r = bundle_cancelled_fail(err);
            goto cleanup;
        }
        int rc = archive_read_data_block(a, &buf, &size, &off);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            r = bg_fail(err, -EIO, "bundle member %s: %s", name, archive_error_string(a));
            goto cleanup;
        }
        if (off < 0 || (uint64_t)off < pos || (uint64_t)off > f->size ||
            size > f->size - (uint64_t)off) {
            r = bg_fail(err, -EINVAL, "bundle member %s has data at %lld+%zu, outside its "
                        "declared %llu bytes: refusing the bundle", name, (long long)off, size,
                        (unsigned long long)f->size);
            goto cleanup;
        }
        r = bundle_hash_zeros(ctx, (uint64_t)off - pos, cancel, err);
        if (r < 0)
            goto cleanup;
        r = bundle_pwrite_all(fd, buf, size, (uint64_t)off);
        if (r < 0) {
            r = bg_fail_errno(err, r, "write %s", name);
            goto cleanup;
        }
        EVP_DigestUpdate(ctx, buf, size);
        pos = (uint64_t)off + size;
    }
    r = bundle_hash_zeros(ctx, f->size - pos, cancel, err);
    if (r < 0)
        goto cleanup;
    /* A trailing hole leaves the file short. */
    if (ftruncate(fd, (off_t)f->size) < 0) {
        r = bg_fail_errno(err, -errno, "size %s", name);
        goto cleanup;
    }
    if (bundle_hex(ctx, hex) < 0) {
        r = bg_fail(err, -EIO, "sha256 of %s failed", name);
        goto cleanup;
    }
    if (strcmp(hex, f->sha256) != 0)
        r = bg_fail(err, -EBADMSG, "%s: sha256 %s does not match the manifest's %s", name, hex,
                    f->sha256);

cleanup:
    EVP_MD_CTX_free(ctx);
    if (fd >= 0 && close(fd) < 0 && r == 0)
        r = bg_fail_errno(err, -errno, "close %s", name);
    return r;
}

/* Everything about a header that can be refused before its data is read. */
static int bundle_check_header(struct archive_entry *e, int i, bool have_manifest,
                               const bool seen[IMAGES_BUNDLE_FILES + 1],
                               const struct images_bundle_manifest *m, struct banger_error *err)
{
    const char *path = archive_entry_pathname(e);
    if (i < 0)
        return bg_fail(err, -EINVAL, "bundle member '%s' is not one of manifest.json, "
                       "rootfs.ext4, vmlinux, initrd.img: refusing the bundle",
                       path ? path : "");
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
        return bg_fail(err, -EINVAL, "bundle member '%s' is not a regular file: refusing the "
                       "bundle", path);
    if (i < IMAGES_BUNDLE_FILES + 1 && seen[i])
        return bg_fail(err, -EINVAL, "bundle member '%s' appears twice: refusing the bundle",
                       path);
    if (!have_manifest) {
        if (i != IMAGES_BUNDLE_FILES)
            return bg_fail(err, -EINVAL, "bundle member '%s' comes before manifest.json, which "
                           "must be the first member: refusing the bundle", path);
        return 0;
    }
    const struct images_bundle_file *f = &m->files[i];
    if (!f->listed)
        return bg_fail(err, -EINVAL, "bundle member '%s' is not listed in its manifest: "
                       "refusing the bundle", path);
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
        (uint64_t)archive_entry_size(e) != f->size)
        return bg_fail(err, -EINVAL, "bundle member '%s' is %lld bytes, but its manifest says "
                       "%llu: refusing the bundle", path, (long long)archive_entry_size(e),
                       (unsigned long long)f->size);
    return 0;
}

int images_bundle_extract(struct archive *a, int dir_fd, const struct images_limits *lim,
                          const struct images_cancel *cancel,
                          struct images_bundle_manifest *m, struct banger_error *err)
{
    struct images_bundle_manifest got = { 0 };
    bool seen[IMAGES_BUNDLE_FILES + 1] = { false };
    bool have_manifest = false;
    int r = 0;

    for (;;) {
        struct archive_entry *e;
        if (images_cancelled(cancel)) {
            r = bundle_cancelled_fail(err);
            goto cleanup;
        }
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            r = bg_fail(err, -EINVAL, "bundle: %s", archive_error_string(a));
            goto cleanup;
        }
        /* Decompressed bytes the manifest does not account for (padding,
         * giant headers) are work nobody asked for. */
        uint64_t budget = (have_manifest ? got.total : 0) + IMAGES_BUNDLE_MANIFEST_MAX +
                          BUNDLE_STREAM_SLACK;
        if ((uint64_t)archive_filter_bytes(a, 0) > budget) {
            r = bg_fail(err, -EFBIG, "bundle: more tar data than its manifest accounts for: "
                        "refusing the bundle");
            goto cleanup;
        }
        const char *path = archive_entry_pathname(e);
        int i = path ? bundle_member_index(path) : -1;
        r = bundle_check_header(e, i, have_manifest, seen, &got, err);
        if (r < 0 || i < 0)
            goto cleanup;
        seen[i] = true;
        if (i == IMAGES_BUNDLE_FILES) {
            r = bundle_read_manifest(a, e, lim, &got, err);
            if (r < 0)
                goto cleanup;
            have_manifest = true;
            continue;
        }
        r = bundle_write_member(a, dir_fd, i, &got.files[i], cancel, err);
        if (r < 0)
            goto cleanup;
    }
    if (!have_manifest) {
        r = bg_fail(err, -EINVAL, "bundle lacks manifest.json");
        goto cleanup;
    }
    for (int i = 0; i < IMAGES_BUNDLE_FILES; i++) {
        if (got.files[i].listed && !seen[i]) {
            r = bg_fail(err, -EINVAL, "bundle lacks %s, which its manifest lists",
                        images_bundle_files[i]);
            goto cleanup;
        }
    }
    *m = got;
    got.doc = NULL;

cleanup:
    images_bundle_manifest_clear(&got);
    return r;
}
