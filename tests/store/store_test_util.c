#define _GNU_SOURCE
#include "store_test_util.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char store_test_dir[256];

static int store_test_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void store_test_dir_setup(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(store_test_dir, sizeof(store_test_dir), "%s/banger-store-test-XXXXXX",
             base && base[0] ? base : "/tmp");
    if (!mkdtemp(store_test_dir)) {
        perror("mkdtemp");
        abort();
    }
}

void store_test_dir_teardown(void)
{
    if (store_test_dir[0])
        nftw(store_test_dir, store_test_rm, 16, FTW_DEPTH | FTW_PHYS);
    store_test_dir[0] = '\0';
}

void store_test_db_path(char path[TEST_PATH_MAX])
{
    char dir[384];

    ck_assert_msg(store_test_dir[0] != '\0', "fixture directory missing");
    snprintf(dir, sizeof(dir), "%s/t-XXXXXX", store_test_dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, TEST_PATH_MAX, "%s/banger.db", dir);
}

struct store *store_test_open(char path[TEST_PATH_MAX])
{
    struct store *store = NULL;
    char err[256] = "";
    int r;

    store_test_db_path(path);
    r = store_open(path, &store, err, sizeof(err));
    ck_assert_msg(r == 0, "store_open(%s): %d %s", path, r, err);
    return store;
}

void store_test_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc;

    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

int64_t store_test_sql_int(const char *path, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    sqlite3 *db = NULL;
    int64_t value = -1;

    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
}

char *store_test_add_image(struct store *store, const char *name)
{
    struct image_request req = {
        .name = name,
        .rootfs_path = "/var/lib/banger/images/rootfs.ext4",
        .kernel_path = "/var/lib/banger/images/vmlinux",
    };
    struct image_record *rec = NULL;
    char err[256] = "";
    char *id;
    int r;

    r = store_image_insert(store, &req, &rec, err, sizeof(err));
    ck_assert_msg(r == 0, "image insert: %d %s", r, err);
    id = strdup(rec->id);
    image_record_free(rec);
    return id;
}
