/* Image rows: registration, lookups, deletion guarded by VM references. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_SELECT                                                                   \
    "SELECT i.id, i.name, i.rootfs_path, i.kernel_path, i.initrd_path, i.manifest,"    \
    " i.created_at, (SELECT count(*) FROM vms v WHERE v.image_id = i.id) FROM images i"

struct image_record *image_record_free(struct image_record *rec)
{
    if (!rec)
        return NULL;
    free(rec->id);
    free(rec->name);
    free(rec->rootfs_path);
    free(rec->kernel_path);
    free(rec->initrd_path);
    free(rec->manifest);
    free(rec);
    return NULL;
}

struct image_list *image_list_free(struct image_list *list)
{
    if (!list)
        return NULL;
    for (size_t i = 0; i < list->count; i++)
        image_record_free(list->items[i]);
    free(list->items);
    free(list);
    return NULL;
}

static int store_image_from_row(sqlite3_stmt *stmt, struct image_record **out)
{
    struct image_record *rec = calloc(1, sizeof(*rec));

    if (!rec)
        return -ENOMEM;
    if (store_column_text(stmt, 0, &rec->id) < 0 || store_column_text(stmt, 1, &rec->name) < 0 ||
        store_column_text(stmt, 2, &rec->rootfs_path) < 0 ||
        store_column_text(stmt, 3, &rec->kernel_path) < 0 ||
        store_column_text(stmt, 4, &rec->initrd_path) < 0 ||
        store_column_text(stmt, 5, &rec->manifest) < 0) {
        image_record_free(rec);
        return -ENOMEM;
    }
    rec->created_at = sqlite3_column_int64(stmt, 6);
    rec->vm_count = (unsigned)sqlite3_column_int64(stmt, 7);
    *out = rec;
    return 0;
}

/* 1 found, 0 not found, or a negative errno. */
static int store_image_query_one(struct store *store, const char *where, const char *arg,
                                 struct image_record **out, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    int rc, r;

    snprintf(sql, sizeof(sql), "%s WHERE %s", IMAGE_SELECT, where);
    r = store_prepare(store, sql, &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        r = 0;
        goto cleanup;
    }
    if (rc != SQLITE_ROW) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot read image");
        goto cleanup;
    }
    r = store_image_from_row(stmt, out);
    if (r < 0) {
        store_fail(errbuf, errlen, r, "out of memory");
        goto cleanup;
    }
    r = 1;
cleanup:
    sqlite3_finalize(stmt);
    return r;
}

static int store_image_check_path(const char *label, const char *path, bool required,
                                  char *errbuf, size_t errlen)
{
    if (!path || path[0] == '\0') {
        if (required)
            return store_fail(errbuf, errlen, -EINVAL, "image %s path is missing", label);
        return 0;
    }
    /* The daemon's working directory means nothing to the user who
     * registered the image, so only absolute paths are stored. */
    if (path[0] != '/')
        return store_fail(errbuf, errlen, -EINVAL, "image %s path '%s' is not absolute", label,
                          path);
    return 0;
}

static int store_image_validate(const struct image_request *req, char *errbuf, size_t errlen)
{
    int r;

    if (!req)
        return store_fail(errbuf, errlen, -EINVAL, "no image request");
    r = image_name_check(req->name, errbuf, errlen);
    if (r == 0)
        r = store_image_check_path("rootfs", req->rootfs_path, true, errbuf, errlen);
    if (r == 0)
        r = store_image_check_path("kernel", req->kernel_path, true, errbuf, errlen);
    if (r == 0)
        r = store_image_check_path("initrd", req->initrd_path, false, errbuf, errlen);
    return r;
}

static int store_image_insert_locked(struct store *store, const struct image_request *req,
                                     struct image_record **out, char *errbuf, size_t errlen)
{
    struct image_record *rec = NULL;
    sqlite3_stmt *stmt = NULL;
    char id[STORE_ID_LEN + 1];
    bool in_tx = false;
    int rc, r;

    r = store_begin(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = true;

    r = store_image_query_one(store, "i.name = ?1", req->name, &rec, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    if (r > 0) {
        r = store_fail(errbuf, errlen, -EEXIST, "image '%s' already exists", req->name);
        goto cleanup;
    }
    for (int attempt = 0;; attempt++) {
        r = store_random_id(id, errbuf, errlen);
        if (r < 0)
            goto cleanup;
        r = store_image_query_one(store, "i.id = ?1", id, &rec, errbuf, errlen);
        if (r < 0)
            goto cleanup;
        if (r == 0)
            break;
        rec = image_record_free(rec);
        if (attempt >= 8) {
            r = store_fail(errbuf, errlen, -EEXIST, "could not generate a unique image id");
            goto cleanup;
        }
    }

    r = store_prepare(store,
                      "INSERT INTO images (id, name, rootfs_path, kernel_path, initrd_path,"
                      " manifest, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, req->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, req->rootfs_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, req->kernel_path, -1, SQLITE_STATIC);
    if (req->initrd_path && req->initrd_path[0] != '\0')
        sqlite3_bind_text(stmt, 5, req->initrd_path, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 5);
    if (req->manifest)
        sqlite3_bind_text(stmt, 6, req->manifest, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 6);
    sqlite3_bind_int64(stmt, 7, store_now());
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_CONSTRAINT_CHECK) {
        /* The only CHECK a valid request can trip is json_valid. */
        r = store_fail(errbuf, errlen, -EINVAL, "manifest of image '%s' is not valid JSON",
                       req->name);
        goto cleanup;
    }
    if (rc != SQLITE_DONE) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot insert image");
        goto cleanup;
    }

    r = store_image_query_one(store, "i.id = ?1", id, &rec, errbuf, errlen);
    if (r <= 0) {
        if (r == 0)
            r = store_fail(errbuf, errlen, -EIO, "image %s vanished right after insert", id);
        goto cleanup;
    }
    r = store_commit(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = false;
    *out = rec;
    rec = NULL;
cleanup:
    sqlite3_finalize(stmt);
    if (in_tx)
        store_rollback(store);
    image_record_free(rec);
    return r;
}

int store_image_insert(struct store *store, const struct image_request *req,
                       struct image_record **out, char *errbuf, size_t errlen)
{
    int r;

    r = store_image_validate(req, errbuf, errlen);
    if (r < 0)
        return r;
    pthread_mutex_lock(&store->lock);
    r = store_check_writable(store, errbuf, errlen);
    if (r == 0)
        r = store_image_insert_locked(store, req, out, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    return r;
}

static int store_image_get(struct store *store, const char *where, const char *label,
                           const char *arg, struct image_record **out, char *errbuf,
                           size_t errlen)
{
    int r;

    if (!arg || arg[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "no image %s given", label);
    pthread_mutex_lock(&store->lock);
    r = store_image_query_one(store, where, arg, out, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    if (r == 0)
        return store_fail(errbuf, errlen, -ENOENT, "image %s '%s' not found", label, arg);
    return r < 0 ? r : 0;
}

int store_image_get_by_id(struct store *store, const char *id, struct image_record **out,
                          char *errbuf, size_t errlen)
{
    return store_image_get(store, "i.id = ?1", "id", id, out, errbuf, errlen);
}

int store_image_get_by_name(struct store *store, const char *name, struct image_record **out,
                            char *errbuf, size_t errlen)
{
    return store_image_get(store, "i.name = ?1", "name", name, out, errbuf, errlen);
}

/* Unique id-prefix match: 1 found, 0 none, -ENOTUNIQ when several. */
static int store_image_find_prefix(struct store *store, const char *prefix,
                                   struct image_record **out, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    /* Count first: cheap, and the message only needs the number. */
    r = store_prepare(store, "SELECT count(*) FROM images WHERE id GLOB ?1 || '*'", &stmt,
                      errbuf, errlen);
    if (r < 0)
        return r;
    sqlite3_bind_text(stmt, 1, prefix, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot read images");
    } else {
        int64_t n = sqlite3_column_int64(stmt, 0);

        if (n > 1)
            r = store_fail(errbuf, errlen, -ENOTUNIQ,
                           "image id prefix '%s' is ambiguous: it matches %lld images; give more characters",
                           prefix, (long long)n);
        else if (n == 1)
            r = store_image_query_one(store, "i.id GLOB ?1 || '*'", prefix, out, errbuf, errlen);
        else
            r = 0;
    }
    sqlite3_finalize(stmt);
    return r;
}

int store_image_find(struct store *store, const char *ref, struct image_record **out,
                     char *errbuf, size_t errlen)
{
    int r;

    if (!ref || ref[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "no image name or id given");
    pthread_mutex_lock(&store->lock);
    r = store_image_query_one(store, "i.id = ?1", ref, out, errbuf, errlen);
    if (r == 0)
        r = store_image_query_one(store, "i.name = ?1", ref, out, errbuf, errlen);
    if (r == 0 && store_is_id_prefix(ref))
        r = store_image_find_prefix(store, ref, out, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    if (r == 0)
        return store_fail(errbuf, errlen, -ENOENT, "image '%s' not found", ref);
    return r < 0 ? r : 0;
}

static int store_image_list_locked(struct store *store, struct image_list **out, char *errbuf,
                                   size_t errlen)
{
    struct image_list *list = calloc(1, sizeof(*list));
    sqlite3_stmt *stmt = NULL;
    size_t cap = 0;
    int rc, r;

    if (!list)
        return store_fail(errbuf, errlen, -ENOMEM, "out of memory");
    r = store_prepare(store, IMAGE_SELECT " ORDER BY i.created_at, i.rowid", &stmt, errbuf,
                      errlen);
    if (r < 0)
        goto cleanup;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (list->count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct image_record **grown = realloc(list->items, ncap * sizeof(*grown));

            if (!grown) {
                r = store_fail(errbuf, errlen, -ENOMEM, "out of memory");
                goto cleanup;
            }
            list->items = grown;
            cap = ncap;
        }
        r = store_image_from_row(stmt, &list->items[list->count]);
        if (r < 0) {
            store_fail(errbuf, errlen, r, "out of memory");
            goto cleanup;
        }
        list->count++;
    }
    if (rc != SQLITE_DONE) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot list images");
        goto cleanup;
    }
    *out = list;
    list = NULL;
    r = 0;
cleanup:
    sqlite3_finalize(stmt);
    image_list_free(list);
    return r;
}

int store_image_list(struct store *store, struct image_list **out, char *errbuf, size_t errlen)
{
    int r;

    pthread_mutex_lock(&store->lock);
    r = store_image_list_locked(store, out, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    return r;
}

int store_image_vm_count(struct store *store, const char *id, unsigned *count, char *errbuf,
                         size_t errlen)
{
    struct image_record *rec = NULL;
    int r;

    r = store_image_get_by_id(store, id, &rec, errbuf, errlen);
    if (r < 0)
        return r;
    *count = rec->vm_count;
    image_record_free(rec);
    return 0;
}

/* Comma-separated names of the VMs using an image, for the refusal. */
static int store_image_users(struct store *store, const char *id, char *names, size_t len,
                             size_t *count, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    names[0] = '\0';
    *count = 0;
    r = store_prepare(store, "SELECT name FROM vms WHERE image_id = ?1 ORDER BY name", &stmt,
                      errbuf, errlen);
    if (r < 0)
        return r;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        size_t used = strlen(names);

        if (*count < 8)
            snprintf(names + used, len - used, "%s%s", *count ? ", " : "",
                     (const char *)sqlite3_column_text(stmt, 0));
        else if (*count == 8)
            snprintf(names + used, len - used, ", ...");
        (*count)++;
    }
    if (rc != SQLITE_DONE)
        r = store_db_fail(store, rc, errbuf, errlen, "cannot read VMs");
    sqlite3_finalize(stmt);
    return r;
}

static int store_image_delete_locked(struct store *store, const char *id, char *errbuf,
                                     size_t errlen)
{
    struct image_record *rec = NULL;
    sqlite3_stmt *stmt = NULL;
    char users[640];
    size_t count = 0;
    bool in_tx = false;
    int rc, r;

    r = store_begin(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = true;
    r = store_image_query_one(store, "i.id = ?1", id, &rec, errbuf, errlen);
    if (r <= 0) {
        if (r == 0)
            r = store_fail(errbuf, errlen, -ENOENT, "image id '%s' not found", id);
        goto cleanup;
    }
    r = store_image_users(store, id, users, sizeof(users), &count, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    if (count > 0) {
        r = store_fail(errbuf, errlen, -EBUSY, "image '%s' is used by VM(s) %s", rec->name, users);
        goto cleanup;
    }
    r = store_prepare(store, "DELETE FROM images WHERE id = ?1", &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot delete image");
        goto cleanup;
    }
    r = store_commit(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = false;
cleanup:
    sqlite3_finalize(stmt);
    if (in_tx)
        store_rollback(store);
    image_record_free(rec);
    return r;
}

int store_image_delete(struct store *store, const char *id, char *errbuf, size_t errlen)
{
    int r;

    if (!id || id[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "no image id given");
    pthread_mutex_lock(&store->lock);
    r = store_check_writable(store, errbuf, errlen);
    if (r == 0)
        r = store_image_delete_locked(store, id, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    return r;
}
