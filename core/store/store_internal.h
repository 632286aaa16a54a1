/* Shared by the store's own files only. */
#ifndef BANGER_STORE_INTERNAL_H
#define BANGER_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store {
    sqlite3 *db;
    pthread_mutex_t lock; /* held for the whole of every public call */
    bool readonly;
    char *path;
};

/* Fill errbuf (may be NULL) and return err. */
int store_fail(char *errbuf, size_t errlen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Map a SQLite result code to a negative errno and describe it as
 * "<what>: <sqlite message>". */
int store_db_fail(struct store *store, int rc, char *errbuf, size_t errlen, const char *what);

/* Start a write transaction (BEGIN IMMEDIATE: takes the write lock now, so a
 * check-then-insert cannot race another connection). */
int store_begin(struct store *store, char *errbuf, size_t errlen);
int store_commit(struct store *store, char *errbuf, size_t errlen);
void store_rollback(struct store *store);

/* Prepare a statement, describing failures. */
int store_prepare(struct store *store, const char *sql, sqlite3_stmt **stmt, char *errbuf,
                  size_t errlen);

/* Copy a text column (NULL stays NULL). Returns 0 or -ENOMEM. */
int store_column_text(sqlite3_stmt *stmt, int col, char **out);

/* Refuse writes on a read-only handle. */
int store_check_writable(struct store *store, char *errbuf, size_t errlen);

int64_t store_now(void);

/* Fill buf with len random bytes from getrandom(). */
int store_random_bytes(void *buf, size_t len, char *errbuf, size_t errlen);

/* A fresh random id: STORE_ID_LEN lowercase hex chars. */
int store_random_id(char id[STORE_ID_LEN + 1], char *errbuf, size_t errlen);

/* True when text could be an id prefix: STORE_ID_PREFIX_MIN..STORE_ID_LEN-1
 * lowercase hex chars (so it is also safe inside a GLOB pattern). */
bool store_is_id_prefix(const char *text);

/* What the shared lookups (store_lookup.c) need to know about a table. A
 * slot is where one record pointer lives: a struct vm_record * or a
 * struct image_record *, as the table says. */
struct store_table {
    const char *noun;          /* "VM", "image": starts every message */
    const char *select;        /* SELECT with id and name first, no WHERE */
    const char *id_col;        /* columns as the SELECT's alias names them */
    const char *name_col;
    const char *order;         /* ORDER BY of a full list */
    bool ambiguity_names_ids;  /* name ambiguous candidates, else count them */
    size_t slot_size;
    /* Build a record from the current row into the slot: 0 or -ENOMEM. */
    int (*from_row)(sqlite3_stmt *stmt, void *slot);
    void (*free_slot)(void *slot);
};

extern const struct store_table store_vm_table;
extern const struct store_table store_image_table;

/* Fetch at most one row matching `where` (SQL over the SELECT's alias,
 * with ?1 bound to arg) into the slot out. Returns 1 found, 0 not found,
 * or a negative errno. The caller holds the lock. */
int store_lookup_one(struct store *store, const struct store_table *tbl, const char *where,
                     const char *arg, void *out, char *errbuf, size_t errlen);

/* Re-read a row just inserted by id; its absence is -EIO. */
int store_lookup_inserted(struct store *store, const struct store_table *tbl, const char *id,
                          void *out, char *errbuf, size_t errlen);

/* The public get-by-column, find and list calls; they take the lock.
 * store_lookup_list hands back a malloc'ed array of count slots. */
int store_lookup_get(struct store *store, const struct store_table *tbl, const char *col,
                     const char *label, const char *arg, void *out, char *errbuf, size_t errlen);
int store_lookup_find(struct store *store, const struct store_table *tbl, const char *ref,
                      void *out, char *errbuf, size_t errlen);
int store_lookup_list(struct store *store, const struct store_table *tbl, void **items,
                      size_t *count, char *errbuf, size_t errlen);

/* Fetch at most one VM row matching `where` (SQL over alias v, with ?1
 * bound to arg). Returns 1 found, 0 not found, or a negative errno. */
int store_vm_query_one(struct store *store, const char *where, const char *arg,
                       struct vm_record **out, char *errbuf, size_t errlen);

/* 1 when sql (with ?1 = arg) returns a row, 0 when not, or negative errno. */
int store_vm_exists(struct store *store, const char *sql, const char *arg, char *errbuf,
                    size_t errlen);

#endif
