/* Opening, migrations and the shared SQLite helpers. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Forward-only migrations: entry i takes the schema from version i to i+1.
 * Never edit an entry once released; append a new one. */
static const char *const store_migrations[] = {
    /* 1: images and vms */
    "CREATE TABLE images ("
    "  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 12),"
    "  name TEXT NOT NULL UNIQUE,"
    "  rootfs_path TEXT NOT NULL,"
    "  kernel_path TEXT NOT NULL,"
    "  initrd_path TEXT,"
    "  manifest TEXT CHECK (manifest IS NULL OR json_valid(manifest)),"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE vms ("
    "  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 12),"
    "  name TEXT NOT NULL UNIQUE,"
    "  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE RESTRICT,"
    "  vcpu INTEGER NOT NULL CHECK (vcpu >= 1),"
    "  memory_mib INTEGER NOT NULL CHECK (memory_mib >= 1),"
    "  disk_size INTEGER NOT NULL CHECK (disk_size >= 0),"
    "  overlay_size INTEGER NOT NULL CHECK (overlay_size >= 0),"
    "  nat INTEGER NOT NULL DEFAULT 0 CHECK (nat IN (0, 1)),"
    "  state TEXT NOT NULL DEFAULT 'created'"
    "    CHECK (state IN ('created', 'running', 'stopped', 'error')),"
    "  ip TEXT NOT NULL UNIQUE,"
    "  mac TEXT NOT NULL UNIQUE,"
    "  cid INTEGER NOT NULL UNIQUE CHECK (cid >= 3),"
    "  last_error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  started_at INTEGER"
    ");"
    "CREATE INDEX vms_image_id ON vms(image_id);",
    /* 2: every VM belongs to the uid that created it; VMs from before
     * owners existed were made through root's daemon and become root's. */
    "ALTER TABLE vms ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT 0"
    "  CHECK (owner_uid >= 0 AND owner_uid <= 4294967294);"
    "CREATE INDEX vms_owner_uid ON vms(owner_uid);",
};

_Static_assert(sizeof(store_migrations) / sizeof(store_migrations[0]) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must equal the number of migrations");

int store_fail(char *errbuf, size_t errlen, int err, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}

static int store_errno_from_sqlite(sqlite3 *db, int rc)
{
    int sys;

    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return -EEXIST;
        /* ON DELETE RESTRICT fires as a trigger: a row is still in use. */
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY || rc == SQLITE_CONSTRAINT_TRIGGER)
            return -EBUSY;
        return -EINVAL;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return -EBADMSG;
    case SQLITE_CANTOPEN:
        sys = db ? sqlite3_system_errno(db) : 0;
        return sys > 0 ? -sys : -EIO;
    default:
        return -EIO;
    }
}

int store_db_fail(struct store *store, int rc, char *errbuf, size_t errlen, const char *what)
{
    sqlite3 *db = store ? store->db : NULL;
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

    return store_fail(errbuf, errlen, store_errno_from_sqlite(db, rc), "%s: %s", what, msg);
}

int store_prepare(struct store *store, const char *sql, sqlite3_stmt **stmt, char *errbuf,
                  size_t errlen)
{
    int rc = sqlite3_prepare_v2(store->db, sql, -1, stmt, NULL);

    if (rc != SQLITE_OK)
        return store_db_fail(store, rc, errbuf, errlen, "database query failed");
    return 0;
}

static int store_exec(struct store *store, const char *sql, char *errbuf, size_t errlen,
                      const char *what)
{
    int rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return store_db_fail(store, rc, errbuf, errlen, what);
    return 0;
}

int store_begin(struct store *store, char *errbuf, size_t errlen)
{
    return store_exec(store, "BEGIN IMMEDIATE", errbuf, errlen, "cannot start a transaction");
}

int store_commit(struct store *store, char *errbuf, size_t errlen)
{
    return store_exec(store, "COMMIT", errbuf, errlen, "cannot commit");
}

void store_rollback(struct store *store)
{
    /* Fails harmlessly when SQLite already rolled back on its own. */
    sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_column_text(sqlite3_stmt *stmt, int col, char **out)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);

    *out = NULL;
    if (!text)
        return sqlite3_column_type(stmt, col) == SQLITE_NULL ? 0 : -ENOMEM;
    *out = strdup((const char *)text);
    return *out ? 0 : -ENOMEM;
}

int store_check_writable(struct store *store, char *errbuf, size_t errlen)
{
    if (store->readonly)
        return store_fail(errbuf, errlen, -EROFS, "database %s is open read-only", store->path);
    return 0;
}

int64_t store_now(void)
{
    return (int64_t)time(NULL);
}

int store_random_bytes(void *buf, size_t len, char *errbuf, size_t errlen)
{
    unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return store_fail(errbuf, errlen, -errno, "getrandom failed: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int store_random_id(char id[STORE_ID_LEN + 1], char *errbuf, size_t errlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[STORE_ID_LEN / 2];
    int r;

    r = store_random_bytes(bytes, sizeof(bytes), errbuf, errlen);
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof(bytes); i++) {
        id[2 * i] = hex[bytes[i] >> 4];
        id[2 * i + 1] = hex[bytes[i] & 0xf];
    }
    id[STORE_ID_LEN] = '\0';
    return 0;
}

bool store_is_id_prefix(const char *text)
{
    size_t len = strlen(text);

    if (len < STORE_ID_PREFIX_MIN || len >= STORE_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    }
    return true;
}

/* ---- schema version ----------------------------------------------------- */

static int store_read_version(struct store *store, int *version, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int rc, r;

    r = store_prepare(store,
                      "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
                      &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot read the schema version");
        goto cleanup;
    }
    if (sqlite3_column_int(stmt, 0) == 0) {
        *version = 0;
        r = 0;
        goto cleanup;
    }
    sqlite3_finalize(stmt);
    stmt = NULL;

    r = store_prepare(store, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &stmt,
                      errbuf, errlen);
    if (r < 0)
        goto cleanup;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot read the schema version");
        goto cleanup;
    }
    *version = sqlite3_column_int(stmt, 0);
    r = 0;
cleanup:
    sqlite3_finalize(stmt);
    return r;
}

static int store_refuse_newer(struct store *store, int version, char *errbuf, size_t errlen)
{
    if (version > STORE_SCHEMA_VERSION)
        return store_fail(errbuf, errlen, -ENOTSUP,
                          "database %s has schema version %d, newer than this banger supports (%d); upgrade banger or use a matching database",
                          store->path, version, STORE_SCHEMA_VERSION);
    return 0;
}

static int store_migrate(struct store *store, char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    bool in_tx = false;
    int version = 0;
    int rc, r;

    /* The whole check-and-apply runs under the write lock, so two daemons
     * (or a daemon and a test) opening a fresh file cannot both migrate. */
    r = store_begin(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = true;

    r = store_exec(store,
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   "  version INTEGER PRIMARY KEY NOT NULL,"
                   "  applied_at INTEGER NOT NULL)",
                   errbuf, errlen, "cannot create schema_migrations");
    if (r < 0)
        goto cleanup;
    r = store_read_version(store, &version, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    r = store_refuse_newer(store, version, errbuf, errlen);
    if (r < 0)
        goto cleanup;

    r = store_prepare(store, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                      &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
        char what[64];

        snprintf(what, sizeof(what), "migration to schema version %d failed", v + 1);
        r = store_exec(store, store_migrations[v], errbuf, errlen, what);
        if (r < 0)
            goto cleanup;
        sqlite3_reset(stmt);
        sqlite3_bind_int(stmt, 1, v + 1);
        sqlite3_bind_int64(stmt, 2, store_now());
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) {
            r = store_db_fail(store, rc, errbuf, errlen, what);
            goto cleanup;
        }
    }
    sqlite3_finalize(stmt);
    stmt = NULL;

    r = store_commit(store, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    in_tx = false;
cleanup:
    sqlite3_finalize(stmt);
    if (in_tx)
        store_rollback(store);
    return r;
}

/* ---- open / close ------------------------------------------------------- */

/* Run a pragma that returns one value and compare it, so a setting that
 * silently did not apply (e.g. WAL on an odd filesystem) is an error. */
static int store_pragma_expect(struct store *store, const char *sql, const char *want,
                               char *errbuf, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    const char *got;
    int rc, r;

    r = store_prepare(store, sql, &stmt, errbuf, errlen);
    if (r < 0)
        goto cleanup;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        r = store_db_fail(store, rc, errbuf, errlen, sql);
        goto cleanup;
    }
    got = (const char *)sqlite3_column_text(stmt, 0);
    if (!got || strcasecmp(got, want) != 0) {
        r = store_fail(errbuf, errlen, -EIO, "%s returned '%s', expected '%s'", sql,
                       got ? got : "(null)", want);
        goto cleanup;
    }
    r = 0;
cleanup:
    sqlite3_finalize(stmt);
    return r;
}

/* Switching a fresh file to WAL needs an exclusive lock, and SQLite
 * answers SQLITE_BUSY at once (no busy handler, to avoid a deadlock) when
 * another connection is reading it, e.g. two handles opening a new file
 * together. Retry for as long as the busy timeout would have waited. */
static int store_enable_wal(struct store *store, char *errbuf, size_t errlen)
{
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    int r;

    for (int waited_ms = 0;; waited_ms += 10) {
        r = store_pragma_expect(store, "PRAGMA journal_mode = WAL", "wal", errbuf, errlen);
        if (r != -EBUSY || waited_ms >= STORE_BUSY_TIMEOUT_MS)
            return r;
        nanosleep(&pause, NULL);
    }
}

/* Create the file ourselves so it starts life 0600 whatever the umask;
 * SQLite would create it 0644. */
static int store_create_file(const char *path, char *errbuf, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0)
        return store_fail(errbuf, errlen, -errno, "cannot open database %s: %s", path,
                          strerror(errno));
    close(fd);
    return 0;
}

static int store_open_common(const char *path, bool readonly, struct store **out, char *errbuf,
                             size_t errlen)
{
    struct store *store = NULL;
    struct stat st;
    int flags, rc, r, version;

    if (!path || path[0] == '\0')
        return store_fail(errbuf, errlen, -EINVAL, "database path is empty");

    if (readonly) {
        if (lstat(path, &st) < 0)
            return store_fail(errbuf, errlen, -errno, "cannot open database %s: %s", path,
                              strerror(errno));
    } else {
        r = store_create_file(path, errbuf, errlen);
        if (r < 0)
            return r;
    }

    store = calloc(1, sizeof(*store));
    if (!store)
        return store_fail(errbuf, errlen, -ENOMEM, "out of memory");
    store->readonly = readonly;
    store->path = strdup(path);
    if (!store->path || pthread_mutex_init(&store->lock, NULL) != 0) {
        free(store->path);
        free(store);
        return store_fail(errbuf, errlen, -ENOMEM, "out of memory");
    }

    flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
            (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
    rc = sqlite3_open_v2(path, &store->db, flags, NULL);
    if (rc != SQLITE_OK) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot open database");
        goto cleanup;
    }
    sqlite3_extended_result_codes(store->db, 1);

    /* Busy timeout first: the pragmas below may already need a lock. */
    rc = sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        r = store_db_fail(store, rc, errbuf, errlen, "cannot set busy timeout");
        goto cleanup;
    }
    r = store_exec(store, "PRAGMA foreign_keys = ON", errbuf, errlen,
                   "cannot enable foreign keys");
    if (r < 0)
        goto cleanup;
    r = store_pragma_expect(store, "PRAGMA foreign_keys", "1", errbuf, errlen);
    if (r < 0)
        goto cleanup;

    if (!readonly) {
        r = store_enable_wal(store, errbuf, errlen);
        if (r < 0)
            goto cleanup;
        r = store_migrate(store, errbuf, errlen);
        if (r < 0)
            goto cleanup;
    } else {
        r = store_read_version(store, &version, errbuf, errlen);
        if (r < 0)
            goto cleanup;
        r = store_refuse_newer(store, version, errbuf, errlen);
        if (r < 0)
            goto cleanup;
    }

    *out = store;
    store = NULL;
    r = 0;
cleanup:
    if (r == -EBADMSG && errbuf && errlen > 0)
        store_fail(errbuf, errlen, r, "%s is not a usable SQLite database", path);
    store_close(store);
    return r;
}

int store_open(const char *path, struct store **out, char *errbuf, size_t errlen)
{
    return store_open_common(path, false, out, errbuf, errlen);
}

int store_open_readonly(const char *path, struct store **out, char *errbuf, size_t errlen)
{
    return store_open_common(path, true, out, errbuf, errlen);
}

struct store *store_close(struct store *store)
{
    if (!store)
        return NULL;
    /* sqlite3_close_v2 tolerates a NULL handle and closes lazily if a
     * statement were ever left behind. */
    sqlite3_close_v2(store->db);
    pthread_mutex_destroy(&store->lock);
    free(store->path);
    free(store);
    return NULL;
}

int store_schema_version(struct store *store, int *version, char *errbuf, size_t errlen)
{
    int r;

    pthread_mutex_lock(&store->lock);
    r = store_read_version(store, version, errbuf, errlen);
    pthread_mutex_unlock(&store->lock);
    return r;
}
