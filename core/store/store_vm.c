/* VM rows: reservation, lookups, state changes, deletion. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VM_SELECT                                                                       \
    "SELECT v.id, v.name, v.image_id, i.name, v.vcpu, v.memory_mib, v.disk_size,"       \
    " v.overlay_size, v.nat, v.state, v.ip, v.mac, v.cid, v.last_error, v.created_at," \
    " v.updated_at, v.started_at, v.owner_uid FROM vms v LEFT JOIN images i ON i.id = v.image_id"

static const char *const vm_state_names[] = {
    [VM_STATE_CREATED] = "created",
    [VM_STATE_RUNNING] = "running",
    [VM_STATE_STOPPED] = "stopped",
    [VM_STATE_ERROR] = "error",
};

const char *vm_state_name(enum vm_state state)
{
    if ((unsigned)state >= sizeof(vm_state_names) / sizeof(vm_state_names[0]))
        return NULL;
    return vm_state_names[state];
}

int vm_state_parse(const char *text, enum vm_state *out)
{
    for (size_t i = 0; i < sizeof(vm_state_names) / sizeof(vm_state_names[0]); i++) {
        if (text && strcmp(text, vm_state_names[i]) == 0) {
            *out = (enum vm_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

struct vm_record *vm_record_free(struct vm_record *rec)
{
    if (!rec)
        return NULL;
    free(rec->id);
    free(rec->name);
    free(rec->image_id);
    free(rec->image_name);
    free(rec->ip);
    free(rec->mac);
    free(rec->last_error);
    free(rec);
    return NULL;
}

struct vm_list *vm_list_free(struct vm_list *list)
{
    if (!list)
        return NULL;
    for (size_t i = 0; i < list->count; i++)
        vm_record_free(list->items[i]);
    free(list->items);
    free(list);
    return NULL;
}

/* Build a record from the current row of a VM_SELECT statement into the
 * slot, a struct vm_record *. */
static int store_vm_from_row(sqlite3_stmt *stmt, void *slot)
{
    struct vm_record *rec = calloc(1, sizeof(*rec));
    char *state = NULL;
    int r = -ENOMEM;

    if (!rec)
        return -ENOMEM;
    if (store_column_text(stmt, 0, &rec->id) < 0 || store_column_text(stmt, 1, &rec->name) < 0 ||
        store_column_text(stmt, 2, &rec->image_id) < 0 ||
        store_column_text(stmt, 3, &rec->image_name) < 0 ||
        store_column_text(stmt, 9, &state) < 0 || store_column_text(stmt, 10, &rec->ip) < 0 ||
        store_column_text(stmt, 11, &rec->mac) < 0 ||
        store_column_text(stmt, 13, &rec->last_error) < 0)
        goto cleanup;
    rec->vcpu = (unsigned)sqlite3_column_int64(stmt, 4);
    rec->memory_mib = (uint64_t)sqlite3_column_int64(stmt, 5);
    rec->disk_size = (uint64_t)sqlite3_column_int64(stmt, 6);
    rec->overlay_size = (uint64_t)sqlite3_column_int64(stmt, 7);
    rec->nat = sqlite3_column_int(stmt, 8) != 0;
    /* The CHECK constraint keeps the state valid; 'error' is the safe
     * reading should a hand-edited row say otherwise. */
    if (vm_state_parse(state, &rec->state) < 0)
        rec->state = VM_STATE_ERROR;
    rec->cid = (uint32_t)sqlite3_column_int64(stmt, 12);
    rec->created_at = sqlite3_column_int64(stmt, 14);
    rec->updated_at = sqlite3_column_int64(stmt, 15);
    rec->started_at = sqlite3_column_int64(stmt, 16); /* NULL reads as 0 */
    rec->owner_uid = (uint32_t)sqlite3_column_int64(stmt, 17);
    *(struct vm_record **)slot = rec;
    rec = NULL;
    r = 0;
cleanup:
    free(state);
    vm_record_free(rec);
    return r;
}

static void store_vm_free_slot(void *slot)
{
    struct vm_record **rec = slot;

    *rec = vm_record_free(*rec);
}

const struct store_table store_vm_table = {
    .noun = "VM",
    .select = VM_SELECT,
    .id_col = "v.id",
    .name_col = "v.name",
    .order = "v.created_at, v.rowid",
    .ambiguity_names_ids = true,
    .slot_size = sizeof(struct vm_record *),
    .from_row = store_vm_from_row,
    .free_slot = store_vm_free_slot,
};

int store_vm_query_one(struct store *store, const char *where, const char *arg,
                       struct vm_record **out, char *errbuf, size_t errlen)
{
    return store_lookup_one(store, &store_vm_table, where, arg, out, errbuf, errlen);
}

/* Does a row exist for this query with ?1 = arg? 1, 0 or negative errno. */
int store_vm_exists(struct store *store, const char *sql, const char *arg, char *errbuf,
                           size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    r = store_prepare(store, sql, &stmt, errbuf, errlen);
    if (r < 0)
        return r;
    sqlite3_bind_text(stmt, 1, arg, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        r = 1;
    else if (rc == SQLITE_DONE)
        r = 0;
    else
        r = store_db_fail(store, rc, errbuf, errlen, "database query failed");
    sqlite3_finalize(stmt);
    return r;
}

/* ---- lookups ------------------------------------------------------------ */

int store_vm_get_by_id(struct store *store, const char *id, struct vm_record **out,
                       char *errbuf, size_t errlen)
{
    return store_lookup_get(store, &store_vm_table, "v.id", "id", id, out, errbuf, errlen);
}

int store_vm_get_by_name(struct store *store, const char *name, struct vm_record **out,
                         char *errbuf, size_t errlen)
{
    return store_lookup_get(store, &store_vm_table, "v.name", "name", name, out, errbuf, errlen);
}

int store_vm_find(struct store *store, const char *ref, struct vm_record **out, char *errbuf,
                  size_t errlen)
{
    return store_lookup_find(store, &store_vm_table, ref, out, errbuf, errlen);
}

int store_vm_list(struct store *store, struct vm_list **out, char *errbuf, size_t errlen)
{
    struct vm_list *list = calloc(1, sizeof(*list));
    void *items = NULL;
    int r;

    if (!list)
        return store_fail(errbuf, errlen, -ENOMEM, "out of memory");
    r = store_lookup_list(store, &store_vm_table, &items, &list->count, errbuf, errlen);
    if (r < 0) {
        free(list);
        return r;
    }
    list->items = items;
    *out = list;
    return 0;
}

/* ---- updates ------------------------------------------------------------ */

/* Run a single-row UPDATE/DELETE whose ?1 is the VM id; -ENOENT when no row
 * matched. bind() binds the remaining parameters. */
static int store_vm_write(struct store *store, const char *sql, const char *id,
                          void (*bind)(sqlite3_stmt *stmt, const void *ctx), const void *ctx,
                          char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    if (!id || id[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "no VM id given");
    pthread_mutex_lock(&store->lock);
    r = store_check_writable(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    r = store_prepare(store, sql, &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    if (bind)
        bind(stmt, ctx);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot update VM");
        goto cleanup;
    }
    if (sqlite3_changes(store->db) == 0)
        r = store_fail(errbuf, errlen, -ENOENT, "VM id '%s' not found", id);
cleanup:
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&store->lock);
    return r;
}

struct store_vm_state_args {
    const char *state;
    const char *last_error;
    int64_t now;
};

static void store_vm_bind_state(sqlite3_stmt *stmt, const void *ctx)
{
    const struct store_vm_state_args *a = ctx;

    sqlite3_bind_text(stmt, 2, a->state, -1, SQLITE_STATIC);
    if (a->last_error)
        sqlite3_bind_text(stmt, 3, a->last_error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 3);
    sqlite3_bind_int64(stmt, 4, a->now);
}

int store_vm_set_state(struct store *store, const char *id, enum vm_state state,
                       const char *last_error, char *errbuf, size_t errlen)
{
    struct store_vm_state_args args = {
        .state = vm_state_name(state),
        .last_error = last_error,
        .now = store_now(),
    };

    if (!args.state)
        return store_fail(errbuf, errlen, -EINVAL, "invalid VM state %d", (int)state);
    /* started_at survives running -> running (e.g. a reconcile rewriting
     * the state) so uptime stays right. */
    return store_vm_write(store,
                          "UPDATE vms SET"
                          " started_at = CASE WHEN ?2 = 'running' THEN"
                          "   CASE WHEN state = 'running' AND started_at IS NOT NULL"
                          "     THEN started_at ELSE ?4 END"
                          "   ELSE NULL END,"
                          " state = ?2, last_error = ?3, updated_at = ?4"
                          " WHERE id = ?1",
                          id, store_vm_bind_state, &args, errbuf, errlen);
}

int store_vm_delete(struct store *store, const char *id, char *errbuf, size_t errlen)
{
    return store_vm_write(store, "DELETE FROM vms WHERE id = ?1", id, NULL, NULL, errbuf, errlen);
}

static int store_vm_set_resources_locked(struct store *store, const char *id, unsigned vcpu,
                                         uint64_t memory_mib, char *errbuf, size_t errlen)
{
    struct vm_record *rec = NULL;
    sqlite3_stmt *stmt = NULL;
    bool in_tx = false;
    int rc, r;

    r = store_begin(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = true;
    r = store_vm_query_one(store, "v.id = ?1", id, &rec, errbuf, errlen);
    if (r <= 0) {
        if (r == 0)
            r = store_fail(errbuf, errlen, -ENOENT, "VM id '%s' not found", id);
        goto cleanup;
    }
    if (rec->state == VM_STATE_RUNNING) {
        r = store_fail(errbuf, errlen, -EBUSY, "VM '%s' is running; stop it first", rec->name);
        goto cleanup;
    }
    r = store_prepare(store,
                      "UPDATE vms SET vcpu = ?2, memory_mib = ?3, updated_at = ?4 WHERE id = ?1",
                      &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, vcpu ? vcpu : rec->vcpu);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)(memory_mib ? memory_mib : rec->memory_mib));
    sqlite3_bind_int64(stmt, 4, store_now());
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot update VM");
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
    vm_record_free(rec);
    return r;
}

int store_vm_set_resources(struct store *store, const char *id, unsigned vcpu,
                           uint64_t memory_mib, char *errbuf, size_t errlen)
{
    int r;

    if (!id || id[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "no VM id given");
    if (memory_mib > INT64_MAX)
        return store_fail(errbuf, errlen, -EINVAL, "memory size out of range");
    pthread_mutex_lock(&store->lock);
    r = store_check_writable(store, errbuf, errlen);
    if (r == 0)
        r = store_vm_set_resources_locked(store, id, vcpu, memory_mib, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    return r;
}
