#include "config.h"

#include "images/image_bundle.h"
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
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- download ----------------------------------------------------------- */

struct pull_download {
    int fd;
    int write_errno;
    bool over_cap;
    bool cancelled;
    uint64_t bytes;
    const struct images_pull_params *p;
    uint64_t cap;
    int last_bucket;
};

static size_t pull_on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct pull_download *d = userdata;
    size_t len = size * nmemb, done = 0;
    /* A server that sends no length, or lies about it, still stops here. */
    if (len > d->cap - d->bytes) {
        d->over_cap = true;
        return 0;
    }
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
    d->bytes += len;
    return len;
}

static int pull_on_progress(void *userdata, curl_off_t total, curl_off_t now, curl_off_t ut,
                            curl_off_t un)
{
    (void)ut;
    (void)un;
    struct pull_download *d = userdata;
    if (images_cancelled(d->p->cancel)) {
        d->cancelled = true;
        return 1;
    }
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

static int pull_download(const struct images_pull_params *p, uint64_t cap, const char *to,
                         struct banger_error *err)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    struct pull_download d = { .p = p, .cap = cap, .last_bucket = -1 };
    bool https = strncmp(p->source, "https://", 8) == 0;
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
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, https ? "https" : "http,https");
    /* No downgrade: what started on https stays on https. */
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
    if (p->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_file);
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
        if (d.cancelled)
            r = bg_fail(err, -ECANCELED, "download %s cancelled: the client went away",
                        p->source);
        else if (d.over_cap || rc == CURLE_FILESIZE_EXCEEDED)
            r = bg_fail(err, -EFBIG, "download %s: larger than the %llu-byte cap "
                        "(images.max_bundle_bytes)", p->source, (unsigned long long)cap);
        else if (d.write_errno)
            r = bg_fail(err, -d.write_errno, "download %s: writing %s: %s", p->source, to,
                        strerror(d.write_errno));
        else if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_TOO_MANY_REDIRECTS)
            r = bg_fail(err, -EPERM, "download %s refused: %s (an https pull may only "
                        "redirect to https)", p->source,
                        curl_err[0] ? curl_err : curl_easy_strerror(rc));
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

static int pull_extract(int bundle_fd, const char *bundle, const struct images_stage *st,
                        const struct images_pull_params *p, const struct images_limits *lim,
                        struct images_bundle_manifest *m, struct banger_error *err)
{
    struct archive *a = archive_read_new();
    int dir_fd = open(st->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;
    if (dir_fd < 0) {
        r = bg_fail_errno(err, -errno, "open %s", st->staging);
        goto cleanup;
    }
    if (lseek(bundle_fd, 0, SEEK_SET) < 0) {
        r = bg_fail_errno(err, -errno, "seek %s", bundle);
        goto cleanup;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_fd(a, bundle_fd, 1 << 16) != ARCHIVE_OK) {
        r = bg_fail(err, -EINVAL, "bundle %s: %s", bundle, archive_error_string(a));
        goto cleanup;
    }
    r = images_bundle_extract(a, dir_fd, lim, p->cancel, m, err);
cleanup:
    archive_read_free(a);
    if (dir_fd >= 0)
        close(dir_fd);
    return r;
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

/* What may be fetched from where, before anything is opened. */
static int pull_check_source(const struct images_pull_params *p, struct banger_error *err)
{
    if (!pull_is_url(p->source) && p->source[0] != '/')
        return bg_fail(err, -EINVAL, "source '%s' is neither an http(s):// URL nor an absolute "
                       "path", p->source);
    /* Over plain http anyone on the path can swap the bundle: only a hash
     * the client already trusts makes it safe. */
    if (strncmp(p->source, "http://", 7) == 0 && !p->sha256)
        return bg_fail(err, -EINVAL, "a pull over plain http needs --sha256 (the bundle's "
                       "expected sha256); or use https");
    return 0;
}

static int pull_run(struct store *store, const char *images_dir,
                    const struct images_pull_params *p, char **name_out,
                    struct image_record **out, struct banger_error *err)
{
    const struct images_limits *lim = p->limits ? p->limits : &images_default_limits;
    char eb[512] = "";
    struct images_stage st = { 0 };
    struct images_bundle_manifest manifest = { 0 };
    char *download = NULL;
    cJSON *extra = NULL;
    const char *bundle = p->source;
    const char *name = p->name;
    int bundle_fd = -1;
    struct stat sb;
    int r;

    if (name && image_name_check(name, eb, sizeof(eb)) < 0)
        return bg_fail(err, -EINVAL, "%s", eb);
    if (name && (r = images_name_free(store, name, err)) < 0)
        return r;
    r = pull_check_source(p, err);
    if (r < 0)
        return r;
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
        r = pull_download(p, lim->max_bundle_bytes, download, err);
        if (r == 0)
            r = images_open_source(NULL, "bundle", download, &bundle_fd, err);
        if (r < 0)
            goto cleanup;
        bundle = download;
    }
    if (fstat(bundle_fd, &sb) < 0) {
        r = bg_fail_errno(err, -errno, "stat %s", bundle);
        goto cleanup;
    }
    if ((uint64_t)sb.st_size > lim->max_bundle_bytes) {
        r = bg_fail(err, -EFBIG, "bundle %s is %lld bytes, over the %llu-byte cap "
                    "(images.max_bundle_bytes)", bundle, (long long)sb.st_size,
                    (unsigned long long)lim->max_bundle_bytes);
        goto cleanup;
    }
    if (p->sha256) {
        char hex[IMAGES_SHA256_HEX];
        pull_stage(p, "verify");
        r = images_sha256_fd_cancel(bundle_fd, bundle, p->cancel, hex, err);
        if (r < 0)
            goto cleanup;
        if (strcasecmp(hex, p->sha256) != 0) {
            r = bg_fail(err, -EBADMSG, "bundle sha256 %s does not match the expected %s", hex,
                        p->sha256);
            goto cleanup;
        }
    }
    pull_stage(p, "extract");
    r = pull_extract(bundle_fd, bundle, &st, p, lim, &manifest, err);
    if (r < 0)
        goto cleanup;
    if (download) {
        close(bundle_fd);
        bundle_fd = -1;
        unlink(download);
    }
    if (!name) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(manifest.doc, "name");
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
    if (images_cancelled(p->cancel)) {
        r = bg_fail(err, -ECANCELED, "cancelled: the client went away");
        goto cleanup;
    }
    pull_stage(p, "register");
    extra = cJSON_CreateObject();
    cJSON *source = cJSON_AddObjectToObject(extra, "source");
    cJSON_AddStringToObject(source, "type", "pull");
    cJSON_AddStringToObject(source, "from", p->source);
    if (p->sha256)
        cJSON_AddStringToObject(source, "bundle_sha256", p->sha256);
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(manifest.doc, "kernel_version");
    if (cJSON_IsString(kv))
        cJSON_AddStringToObject(extra, "kernel_version", kv->valuestring);
    r = images_stage_commit(&st, store, name, extra, out, err);
    if (r == 0)
        *name_out = xstrdup(name);

cleanup:
    images_stage_close(&st);
    images_bundle_manifest_clear(&manifest);
    cJSON_Delete(extra);
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
