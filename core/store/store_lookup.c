/* Lookups shared by the VM and image tables: one row by a column, find by
 * exact id / exact name / unique id prefix, and list. A struct store_table
 * says what differs; every message is built from its noun. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_lookup_one(struct store *store, const struct store_table *tbl, const char *where,
                     const char *arg, void *out, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    char what[64];
    int rc, r;

    snprintf(sql, sizeof(sql), "%s WHERE %s", tbl->select, where);
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
        snprintf(what, sizeof(what), "cannot read %s", tbl->noun);
        r = store_db_fail(store, rc, errbuf, errlen, what);
        goto cleanup;
    }
    r = tbl->from_row(stmt, out);
    if (r < 0) {
        store_fail(errbuf, errlen, r, "out of memory");
        goto cleanup;
    }
    r = 1;
cleanup:
    sqlite3_finalize(stmt);
    return r;
}

int store_lookup_inserted(struct store *store, const struct store_table *tbl, const char *id,
                          void *out, char *errbuf, size_t errlen)
{
    char where[64];
    int r;

    snprintf(where, sizeof(where), "%s = ?1", tbl->id_col);
    r = store_lookup_one(store, tbl, where, id, out, errbuf, errlen);
    if (r == 0)
        return store_fail(errbuf, errlen, -EIO, "%s %s vanished right after insert", tbl->noun,
                          id);
    return r < 0 ? r : 0;
}

int store_lookup_get(struct store *store, const struct store_table *tbl, const char *col,
                     const char *label, const char *arg, void *out, char *errbuf, size_t errlen)
{
    char where[64];
    int r;

    if (!arg || arg[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "no %s %s given", tbl->noun, label);
    snprintf(where, sizeof(where), "%s = ?1", col);
    pthread_mutex_lock(&store->lock);
    r = store_lookup_one(store, tbl, where, arg, out, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    if (r == 0)
        return store_fail(errbuf, errlen, -ENOENT, "%s %s '%s' not found", tbl->noun, label, arg);
    return r < 0 ? r : 0;
}

/* Unique id-prefix match: 1 found, 0 none, -ENOTUNIQ when several. */
static int store_lookup_prefix(struct store *store, const struct store_table *tbl,
                               const char *prefix, void *out, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    char sql[512];
    char where[64];
    char what[64];
    char ids[128] = "";
    size_t matches = 0;
    int rc, r;

    /* prefix is lowercase hex only (store_is_id_prefix), so it cannot
     * carry GLOB metacharacters. */
    snprintf(where, sizeof(where), "%s GLOB ?1 || '*'", tbl->id_col);
    snprintf(sql, sizeof(sql), "%s WHERE %s ORDER BY %s", tbl->select, where, tbl->id_col);
    r = store_prepare(store, sql, &stmt, errbuf, errlen);
    if (r < 0)
        return r;
    sqlite3_bind_text(stmt, 1, prefix, -1, SQLITE_STATIC);
    /* Every select starts with id, name: the first three name the
     * candidates. */
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        size_t used = strlen(ids);

        if (matches < 3)
            snprintf(ids + used, sizeof(ids) - used, "%s%s (%s)", matches ? ", " : "",
                     (const char *)sqlite3_column_text(stmt, 0),
                     (const char *)sqlite3_column_text(stmt, 1));
        else if (matches == 3)
            snprintf(ids + used, sizeof(ids) - used, ", ...");
        matches++;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        snprintf(what, sizeof(what), "cannot read %ss", tbl->noun);
        return store_db_fail(store, rc, errbuf, errlen, what);
    }
    if (matches > 1 && tbl->ambiguity_names_ids)
        return store_fail(errbuf, errlen, -ENOTUNIQ,
                          "%s id prefix '%s' is ambiguous: it matches %s; give more characters",
                          tbl->noun, prefix, ids);
    if (matches > 1)
        return store_fail(errbuf, errlen, -ENOTUNIQ,
                          "%s id prefix '%s' is ambiguous: it matches %zu %ss; give more characters",
                          tbl->noun, prefix, matches, tbl->noun);
    if (matches == 0)
        return 0;
    return store_lookup_one(store, tbl, where, prefix, out, errbuf, errlen);
}

int store_lookup_find(struct store *store, const struct store_table *tbl, const char *ref,
                      void *out, char *errbuf, size_t errlen)
{
    char by_id[64], by_name[64];
    int r;

    if (!ref || ref[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "no %s name or id given", tbl->noun);
    snprintf(by_id, sizeof(by_id), "%s = ?1", tbl->id_col);
    snprintf(by_name, sizeof(by_name), "%s = ?1", tbl->name_col);
    pthread_mutex_lock(&store->lock);
    r = store_lookup_one(store, tbl, by_id, ref, out, errbuf, errlen);
    if (r == 0)
        r = store_lookup_one(store, tbl, by_name, ref, out, errbuf, errlen);
    if (r == 0 && store_is_id_prefix(ref))
        r = store_lookup_prefix(store, tbl, ref, out, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    if (r == 0)
        return store_fail(errbuf, errlen, -ENOENT, "%s '%s' not found", tbl->noun, ref);
    return r < 0 ? r : 0;
}

static int store_lookup_list_locked(struct store *store, const struct store_table *tbl,
                                    void **items, size_t *count, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    char *slots = NULL;
    size_t n = 0, cap = 0;
    char sql[512];
    char what[64];
    int rc, r;

    snprintf(sql, sizeof(sql), "%s ORDER BY %s", tbl->select, tbl->order);
    r = store_prepare(store, sql, &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char *grown = realloc(slots, ncap * tbl->slot_size);

            if (!grown) {
                r = store_fail(errbuf, errlen, -ENOMEM, "out of memory");
                goto cleanup;
            }
            slots = grown;
            cap = ncap;
        }
        r = tbl->from_row(stmt, slots + n * tbl->slot_size);
        if (r < 0) {
            store_fail(errbuf, errlen, r, "out of memory");
            goto cleanup;
        }
        n++;
    }
    if (rc != SQLITE_DONE) {
        snprintf(what, sizeof(what), "cannot list %ss", tbl->noun);
        r = store_db_fail(store, rc, errbuf, errlen, what);
        goto cleanup;
    }
    *items = slots;
    *count = n;
    slots = NULL;
    n = 0;
    r = 0;
cleanup:
    sqlite3_finalize(stmt);
    for (size_t i = 0; i < n; i++)
        tbl->free_slot(slots + i * tbl->slot_size);
    free(slots);
    return r;
}

int store_lookup_list(struct store *store, const struct store_table *tbl, void **items,
                      size_t *count, char *errbuf, size_t errlen)
{
    int r;

    pthread_mutex_lock(&store->lock);
    r = store_lookup_list_locked(store, tbl, items, count, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    return r;
}
