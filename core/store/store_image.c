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

/* Build a record from the current row of an IMAGE_SELECT statement into
 * the slot, a struct image_record *. */
static int store_image_from_row(sqlite3_stmt *stmt, void *slot)
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
    *(struct image_record **)slot = rec;
    return 0;
}

static void store_image_free_slot(void *slot)
{
    struct image_record **rec = slot;

    *rec = image_record_free(*rec);
}

const struct store_table store_image_table = {
    .noun = "image",
    .select = IMAGE_SELECT,
    .id_col = "i.id",
    .name_col = "i.name",
    .order = "i.created_at, i.rowid",
    .ambiguity_names_ids = false,
    .slot_size = sizeof(struct image_record *),
    .from_row = store_image_from_row,
    .free_slot = store_image_free_slot,
};

/* 1 found, 0 not found, or a negative errno. */
static int store_image_query_one(struct store *store, const char *where, const char *arg,
                                 struct image_record **out, char *errbuf, size_t errlen)
{
    return store_lookup_one(store, &store_image_table, where, arg, out, errbuf, errlen);
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

    r = store_lookup_inserted(store, &store_image_table, id, &rec, errbuf, errlen);
    if (r < 0)
        goto cleanup;
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

int store_image_get_by_id(struct store *store, const char *id, struct image_record **out,
                          char *errbuf, size_t errlen)
{
    return store_lookup_get(store, &store_image_table, "i.id", "id", id, out, errbuf, errlen);
}

int store_image_get_by_name(struct store *store, const char *name, struct image_record **out,
                            char *errbuf, size_t errlen)
{
    return store_lookup_get(store, &store_image_table, "i.name", "name", name, out, errbuf,
                            errlen);
}

int store_image_find(struct store *store, const char *ref, struct image_record **out,
                     char *errbuf, size_t errlen)
{
    return store_lookup_find(store, &store_image_table, ref, out, errbuf, errlen);
}

int store_image_list(struct store *store, struct image_list **out, char *errbuf, size_t errlen)
{
    struct image_list *list = calloc(1, sizeof(*list));
    void *items = NULL;
    int r;

    if (!list)
        return store_fail(errbuf, errlen, -ENOMEM, "out of memory");
    r = store_lookup_list(store, &store_image_table, &items, &list->count, errbuf, errlen);
    if (r < 0) {
        free(list);
        return r;
    }
    list->items = items;
    *out = list;
    return 0;
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
