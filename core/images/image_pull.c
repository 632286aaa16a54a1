#include "config.h"

#include "images/image_pull.h"
#include "images/images.h"
#include "store/names.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PULL_MEMBERS 4
#define PULL_MANIFEST_MAX (1u << 20)

static const char *const pull_members[PULL_MEMBERS] = { "rootfs.ext4", "vmlinux", "initrd.img",
                                                        "manifest.json" };

/* ---- the in-flight table: a second pull of a name waits for the first --- */

struct pull_flight {
    struct pull_flight *next;
    char *key;
    char *name;            /* the image name the leader registered */
    bool done;
    int result;
    struct banger_error err;
    int waiters;
};

static pthread_mutex_t pull_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pull_cond = PTHREAD_COND_INITIALIZER;
static struct pull_flight *pull_flights;

int images_pull_waiters(const char *key)
{
    int n = 0;
    pthread_mutex_lock(&pull_lock);
    for (struct pull_flight *f = pull_flights; f; f = f->next)
        if (strcmp(f->key, key) == 0 && !f->done)
            n = f->waiters;
    pthread_mutex_unlock(&pull_lock);
    return n;
}

static void pull_flight_unlink(struct pull_flight *f)
{
    for (struct pull_flight **pp = &pull_flights; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    free(f->key);
    free(f->name);
    free(f);
}

/* ---- hashing ------------------------------------------------------------ */

static int pull_hex(EVP_MD_CTX *ctx, char hex[IMAGES_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32)
        return -EIO;
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* ---- download ----------------------------------------------------------- */

struct pull_download {
    int fd;
    int write_errno;
    const struct images_pull_params *p;
    int last_bucket;
};

static size_t pull_on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct pull_download *d = userdata;
    size_t len = size * nmemb, done = 0;
    while (done < len) {
        ssize_t n = write(d->fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            d->write_errno = errno;
            return 0;
        }
        done += (size_t)n;
    }
    return len;
}

static int pull_on_progress(void *userdata, curl_off_t total, curl_off_t now, curl_off_t ut,
                            curl_off_t un)
{
    (void)ut;
    (void)un;
    struct pull_download *d = userdata;
    if (!d->p->progress || total <= 0)
        return 0;
    int bucket = (int)(now * 10 / total);
    if (bucket != d->last_bucket) {
        char stage[48];
        d->last_bucket = bucket;
        snprintf(stage, sizeof(stage), "download %d%%", bucket * 10);
        d->p->progress(d->p->progress_ctx, stage);
    }
    return 0;
}

static pthread_once_t pull_curl_once = PTHREAD_ONCE_INIT;
static void pull_curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static int pull_download(const struct images_pull_params *p, const char *to,
                         struct banger_error *err)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    struct pull_download d = { .p = p, .last_bucket = -1 };
    int r = 0;
    pthread_once(&pull_curl_once, pull_curl_init);
    d.fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (d.fd < 0)
        return bg_fail_errno(err, -errno, "create %s", to);
    CURL *c = curl_easy_init();
    if (!c) {
        close(d.fd);
        return bg_fail(err, -ENOMEM, "cannot set up a download");
    }
    curl_easy_setopt(c, CURLOPT_URL, p->source);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled server: give up after a minute without progress. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, pull_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, pull_on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        if (d.write_errno)
            r = bg_fail(err, -d.write_errno, "download %s: writing %s: %s", p->source, to,
                        strerror(d.write_errno));
        else
            r = bg_fail(err, -EIO, "download %s failed: %s", p->source,
                        curl_err[0] ? curl_err : curl_easy_strerror(rc));
    }
    curl_easy_cleanup(c);
    if (close(d.fd) < 0 && r == 0)
        r = bg_fail_errno(err, -errno, "close %s", to);
    return r;
}

/* ---- the bundle --------------------------------------------------------- */

static int pull_member_index(const char *path)
{
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    for (int i = 0; i < PULL_MEMBERS; i++)
        if (strcmp(path, pull_members[i]) == 0)
            return i;
    return -1;
}

static int pull_write_member(struct archive *a, const char *to, const char *member, int64_t size_total,
                             char hex[IMAGES_SHA256_HEX], struct banger_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int r = 0;
    int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        EVP_MD_CTX_free(ctx);
        return bg_fail_errno(err, -errno, "create %s", to);
    }
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        r = bg_fail(err, -ENOMEM, "sha256: cannot set up a digest");
        goto cleanup;
    }
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        int rc = archive_read_data_block(a, &buf, &size, &off);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            r = bg_fail(err, -EIO, "bundle member %s: %s", member, archive_error_string(a));
            goto cleanup;
        }
        /* Holes in sparse members stay holes. */
        if (pwrite(fd, buf, size, off) != (ssize_t)size) {
            r = bg_fail_errno(err, -errno, "write %s", to);
            goto cleanup;
        }
        EVP_DigestUpdate(ctx, buf, size);
    }
    /* A trailing hole leaves the file short. */
    if (size_total > 0 && ftruncate(fd, (off_t)size_total) < 0) {
        r = bg_fail_errno(err, -errno, "size %s", to);
        goto cleanup;
    }
    if (pull_hex(ctx, hex) < 0)
        r = bg_fail(err, -EIO, "sha256 of %s failed", member);
cleanup:
    EVP_MD_CTX_free(ctx);
    if (close(fd) < 0 && r == 0)
        r = bg_fail_errno(err, -errno, "close %s", to);
    return r;
}

static int pull_extract(int bundle_fd, const char *bundle, const struct images_stage *st,
                        char hashes[PULL_MEMBERS][IMAGES_SHA256_HEX], bool have[PULL_MEMBERS],
                        struct banger_error *err)
{
    struct archive *a = archive_read_new();
    int r = 0;
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_fd(a, bundle_fd, 1 << 16) != ARCHIVE_OK) {
        r = bg_fail(err, -EINVAL, "bundle %s: %s", bundle, archive_error_string(a));
        goto cleanup;
    }
    for (;;) {
        struct archive_entry *e;
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN) {
            r = bg_fail(err, -EINVAL, "bundle %s: %s", bundle, archive_error_string(a));
            goto cleanup;
        }
        const char *path = archive_entry_pathname(e);
        int i = path ? pull_member_index(path) : -1;
        if (i < 0) {
            r = bg_fail(err, -EINVAL, "bundle member '%s' is not one of rootfs.ext4, vmlinux, "
                        "initrd.img, manifest.json: refusing the bundle", path ? path : "");
            goto cleanup;
        }
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e)) {
            r = bg_fail(err, -EINVAL, "bundle member '%s' is not a regular file: refusing the "
                        "bundle", path);
            goto cleanup;
        }
        if (have[i]) {
            r = bg_fail(err, -EINVAL, "bundle member '%s' appears twice: refusing the bundle",
                        path);
            goto cleanup;
        }
        if (i == 3 && archive_entry_size(e) > PULL_MANIFEST_MAX) {
            r = bg_fail(err, -EINVAL, "bundle manifest.json is too large");
            goto cleanup;
        }
        char *to = images_stage_path(st, pull_members[i]);
        r = pull_write_member(a, to, pull_members[i], archive_entry_size(e), hashes[i], err);
        /* The streamed hash skips holes: a sparse member is hashed again from disk. */
        if (r == 0 && archive_entry_sparse_count(e) > 0)
            r = images_sha256_file(to, hashes[i], err);
        free(to);
        if (r < 0)
            goto cleanup;
        have[i] = true;
    }
cleanup:
    archive_read_free(a);
    return r;
}

/* Every member must be listed with its sha256 and match; every listed file
 * must be there. */
static int pull_verify(const cJSON *manifest, char hashes[PULL_MEMBERS][IMAGES_SHA256_HEX],
                       const bool have[PULL_MEMBERS], struct banger_error *err)
{
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(manifest, "files");
    if (!cJSON_IsObject(files))
        return bg_fail(err, -EINVAL, "bundle manifest.json has no \"files\" object");
    for (int i = 0; i < 3; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(files, pull_members[i]);
        if (!have[i]) {
            if (f)
                return bg_fail(err, -EINVAL, "bundle lacks %s, which its manifest lists",
                               pull_members[i]);
            continue;
        }
        const cJSON *sum = cJSON_GetObjectItemCaseSensitive(f, "sha256");
        if (!cJSON_IsString(sum))
            return bg_fail(err, -EINVAL, "bundle manifest.json gives no sha256 for %s",
                           pull_members[i]);
        if (strcasecmp(sum->valuestring, hashes[i]) != 0)
            return bg_fail(err, -EBADMSG, "%s: sha256 %s does not match the manifest's %s",
                           pull_members[i], hashes[i], sum->valuestring);
    }
    return 0;
}

static bool pull_is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static void pull_stage(const struct images_pull_params *p, const char *stage)
{
    if (p->progress)
        p->progress(p->progress_ctx, stage);
}

static int pull_run(struct store *store, const char *images_dir,
                    const struct images_pull_params *p, char **name_out,
                    struct image_record **out, struct banger_error *err)
{
    char eb[512] = "";
    struct images_stage st = { 0 };
    char hashes[PULL_MEMBERS][IMAGES_SHA256_HEX];
    bool have[PULL_MEMBERS] = { false };
    char *download = NULL, *mpath = NULL, *mtext = NULL;
    cJSON *manifest = NULL, *extra = NULL;
    const char *bundle = p->source;
    const char *name = p->name;
    int bundle_fd = -1;
    int r;

    if (name && image_name_check(name, eb, sizeof(eb)) < 0)
        return bg_fail(err, -EINVAL, "%s", eb);
    if (name && (r = images_name_free(store, name, err)) < 0)
        return r;
    if (!pull_is_url(p->source) && p->source[0] != '/')
        return bg_fail(err, -EINVAL, "source '%s' is neither an http(s):// URL nor an absolute "
                       "path", p->source);
    /* A local bundle is opened once, as the client, and read only through
     * that descriptor. */
    if (!pull_is_url(p->source)) {
        r = images_open_source(p->caller, "bundle", p->source, &bundle_fd, err);
        if (r < 0)
            return r;
    }
    r = images_stage_open(images_dir, &st, err);
    if (r < 0)
        goto cleanup;
    if (pull_is_url(p->source)) {
        download = images_stage_path(&st, "bundle.download");
        pull_stage(p, "download");
        r = pull_download(p, download, err);
        if (r == 0)
            r = images_open_source(NULL, "bundle", download, &bundle_fd, err);
        if (r < 0)
            goto cleanup;
        bundle = download;
    }
    if (p->sha256) {
        char hex[IMAGES_SHA256_HEX];
        pull_stage(p, "verify");
        r = images_sha256_fd(bundle_fd, bundle, hex, err);
        if (r < 0)
            goto cleanup;
        if (strcasecmp(hex, p->sha256) != 0) {
            r = bg_fail(err, -EBADMSG, "bundle sha256 %s does not match the expected %s", hex,
                        p->sha256);
            goto cleanup;
        }
    }
    pull_stage(p, "extract");
    r = pull_extract(bundle_fd, bundle, &st, hashes, have, err);
    if (r < 0)
        goto cleanup;
    if (download) {
        unlink(download);
    }
    if (!have[3] || !have[0] || !have[1]) {
        r = bg_fail(err, -EINVAL, "bundle lacks %s", !have[3] ? "manifest.json"
                                                      : !have[0] ? "rootfs.ext4" : "vmlinux");
        goto cleanup;
    }
    mpath = images_stage_path(&st, "manifest.json");
    r = fs_read_all(mpath, PULL_MANIFEST_MAX, &mtext, NULL, err);
    if (r < 0)
        goto cleanup;
    manifest = cJSON_Parse(mtext);
    if (!cJSON_IsObject(manifest)) {
        r = bg_fail(err, -EINVAL, "bundle manifest.json is not a JSON object");
        goto cleanup;
    }
    pull_stage(p, "verify members");
    r = pull_verify(manifest, hashes, have, err);
    if (r < 0)
        goto cleanup;
    if (!name) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(manifest, "name");
        if (!cJSON_IsString(n)) {
            r = bg_fail(err, -EINVAL, "bundle manifest.json has no name; pass --name");
            goto cleanup;
        }
        name = n->valuestring;
        if (image_name_check(name, eb, sizeof(eb)) < 0) {
            r = bg_fail(err, -EINVAL, "bundle name: %s", eb);
            goto cleanup;
        }
    }
    char *staged_rootfs = images_stage_path(&st, "rootfs.ext4");
    char *staged_kernel = images_stage_path(&st, "vmlinux");
    r = images_check_rootfs(staged_rootfs, err);
    if (r == 0)
        r = images_check_kernel(staged_kernel, err);
    free(staged_rootfs);
    free(staged_kernel);
    if (r < 0)
        goto cleanup;
    unlink(mpath);
    pull_stage(p, "register");
    extra = cJSON_CreateObject();
    cJSON *source = cJSON_AddObjectToObject(extra, "source");
    cJSON_AddStringToObject(source, "type", "pull");
    cJSON_AddStringToObject(source, "from", p->source);
    if (p->sha256)
        cJSON_AddStringToObject(source, "bundle_sha256", p->sha256);
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(manifest, "kernel_version");
    if (cJSON_IsString(kv))
        cJSON_AddStringToObject(extra, "kernel_version", kv->valuestring);
    r = images_stage_commit(&st, store, name, extra, out, err);
    if (r == 0)
        *name_out = xstrdup(name);

cleanup:
    images_stage_close(&st);
    cJSON_Delete(manifest);
    cJSON_Delete(extra);
    free(mtext);
    free(mpath);
    free(download);
    if (bundle_fd >= 0)
        close(bundle_fd);
    return r;
}

int images_pull(struct store *store, const char *images_dir, const struct images_pull_params *p,
                struct image_record **out, struct banger_error *err)
{
    const char *key = p->name ? p->name : p->source;
    struct pull_flight *f;
    char eb[512] = "";
    int r;

    if (!p->source || !p->source[0])
        return bg_fail(err, -EINVAL, "pull needs a source");
    pthread_mutex_lock(&pull_lock);
    for (f = pull_flights; f; f = f->next)
        if (strcmp(f->key, key) == 0)
            break;
    if (f) {
        /* Same pull already running: wait for it and share its result. */
        f->waiters++;
        pthread_cond_broadcast(&pull_cond);
        while (!f->done)
            pthread_cond_wait(&pull_cond, &pull_lock);
        r = f->result;
        char *name = f->name ? xstrdup(f->name) : NULL;
        if (r < 0)
            *err = f->err;
        if (--f->waiters == 0)
            pull_flight_unlink(f);
        pthread_mutex_unlock(&pull_lock);
        if (r == 0) {
            r = store_image_get_by_name(store, name, out, eb, sizeof(eb));
            if (r < 0)
                bg_fail(err, r, "image '%s' pulled by a concurrent request: %s", name, eb);
        }
        free(name);
        return r;
    }
    f = xcalloc(1, sizeof(*f));
    f->key = xstrdup(key);
    f->next = pull_flights;
    pull_flights = f;
    pthread_mutex_unlock(&pull_lock);

    char *name = NULL;
    r = pull_run(store, images_dir, p, &name, out, err);

    pthread_mutex_lock(&pull_lock);
    f->done = true;
    f->result = r;
    f->name = name;
    if (r < 0)
        f->err = *err;
    if (f->waiters == 0)
        pull_flight_unlink(f);
    else
        pthread_cond_broadcast(&pull_cond);
    pthread_mutex_unlock(&pull_lock);
    return r;
}
