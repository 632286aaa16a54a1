/* Store behaviour: migrations, reservation rules, lookups, images. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_test_util.h"
#include "store/store_internal.h"

#define ERRLEN 512

static struct vm_record *reserve(struct store *store, const char *name, const char *image,
                                 uint32_t net, unsigned prefix)
{
    struct vm_request req = {
        .name = name, .image = image, .vcpu = 2, .memory_mib = 1024,
        .disk_size = 8ull << 30, .overlay_size = 4ull << 30, .nat = true,
    };
    struct vm_record *rec = NULL;
    char err[ERRLEN] = "";
    int r;

    r = store_vm_reserve(store, &req, net, prefix, &rec, err, sizeof(err));
    ck_assert_msg(r == 0, "reserve '%s': %d %s", name ? name : "(gen)", r, err);
    return rec;
}

static int reserve_err(struct store *store, const char *name, const char *image, uint32_t net,
                       unsigned prefix, char *err)
{
    struct vm_request req = {.name = name, .image = image, .vcpu = 1, .memory_mib = 256};
    struct vm_record *rec = NULL;
    int r;

    err[0] = '\0';
    r = store_vm_reserve(store, &req, net, prefix, &rec, err, ERRLEN);
    ck_assert_ptr_null(rec);
    ck_assert_msg(r < 0, "reserve '%s' unexpectedly succeeded", name ? name : "(gen)");
    return r;
}

/* ---- opening and migrations --------------------------------------------- */

START_TEST(test_open_creates_schema)
{
    char path[TEST_PATH_MAX], wal[TEST_PATH_MAX + 8];
    struct store *store = store_test_open(path);
    struct stat st;
    char err[ERRLEN];
    int version = -1;

    ck_assert_int_eq(store_schema_version(store, &version, err, sizeof(err)), 0);
    ck_assert_int_eq(version, STORE_SCHEMA_VERSION);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT MAX(version) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION);
    ck_assert_int_gt(store_test_sql_int(path, "SELECT MIN(applied_at) FROM schema_migrations"),
                     1600000000);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE"
                                              " type = 'table' AND name IN ('images', 'vms')"),
                     2);
    /* journal_mode=WAL is persistent in the file. */
    ck_assert_int_eq(store_test_sql_int(path, "SELECT journal_mode = 'wal' FROM"
                                              " pragma_journal_mode"),
                     1);

    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    if (stat(wal, &st) == 0)
        ck_assert_uint_eq(st.st_mode & 0077, 0);
    store_close(store);
}
END_TEST

START_TEST(test_reopen_is_idempotent)
{
    char path[TEST_PATH_MAX], err[ERRLEN] = "";
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    struct vm_record *vm = reserve(store, "keep", image, TEST_NET, TEST_PREFIX);

    store_close(store);
    for (int i = 0; i < 3; i++) {
        store = NULL;
        ck_assert_int_eq(store_open(path, &store, err, sizeof(err)), 0);
        store_close(store);
    }
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM vms WHERE name = 'keep'"), 1);
    vm_record_free(vm);
    free(image);
}
END_TEST

START_TEST(test_future_schema_refused)
{
    char path[TEST_PATH_MAX], err[ERRLEN] = "";
    struct store *store = store_test_open(path);

    store_close(store);
    store_test_sql(path, "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)");

    store = NULL;
    ck_assert_int_eq(store_open(path, &store, err, sizeof(err)), -ENOTSUP);
    ck_assert_ptr_null(store);
    ck_assert_msg(strstr(err, "schema version 99") && strstr(err, "newer"), "%s", err);
    err[0] = '\0';
    ck_assert_int_eq(store_open_readonly(path, &store, err, sizeof(err)), -ENOTSUP);
    ck_assert_ptr_null(store);
    ck_assert_ptr_nonnull(strstr(err, "newer"));
    /* Nothing was touched. */
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION + 1);
}
END_TEST

/* The schema exactly as version 1 of banger created it, with one image and
 * one VM, as an upgrade finds it. */
static const char schema_v1_with_a_vm[] =
    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL,"
    "  applied_at INTEGER NOT NULL);"
    "INSERT INTO schema_migrations VALUES (1, 1764150000);"
    "CREATE TABLE images (id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 12),"
    "  name TEXT NOT NULL UNIQUE, rootfs_path TEXT NOT NULL, kernel_path TEXT NOT NULL,"
    "  initrd_path TEXT, manifest TEXT CHECK (manifest IS NULL OR json_valid(manifest)),"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE vms (id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 12),"
    "  name TEXT NOT NULL UNIQUE,"
    "  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE RESTRICT,"
    "  vcpu INTEGER NOT NULL CHECK (vcpu >= 1),"
    "  memory_mib INTEGER NOT NULL CHECK (memory_mib >= 1),"
    "  disk_size INTEGER NOT NULL CHECK (disk_size >= 0),"
    "  overlay_size INTEGER NOT NULL CHECK (overlay_size >= 0),"
    "  nat INTEGER NOT NULL DEFAULT 0 CHECK (nat IN (0, 1)),"
    "  state TEXT NOT NULL DEFAULT 'created'"
    "    CHECK (state IN ('created', 'running', 'stopped', 'error')),"
    "  ip TEXT NOT NULL UNIQUE, mac TEXT NOT NULL UNIQUE,"
    "  cid INTEGER NOT NULL UNIQUE CHECK (cid >= 3), last_error TEXT,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, started_at INTEGER);"
    "CREATE INDEX vms_image_id ON vms(image_id);"
    "INSERT INTO images VALUES ('aaaaaaaaaaaa', 'default', '/i/rootfs.ext4', '/i/vmlinux',"
    "  NULL, NULL, 1764150000);"
    "INSERT INTO vms VALUES ('bbbbbbbbbbbb', 'old', 'aaaaaaaaaaaa', 2, 1024, 8589934592,"
    "  4294967296, 0, 'stopped', '172.29.0.2', '06:00:AC:1D:00:02', 3, NULL, 1764150000,"
    "  1764150000, NULL);";

START_TEST(test_migration_gives_old_vms_to_root)
{
    char path[TEST_PATH_MAX], err[ERRLEN] = "";
    struct store *store = NULL;
    struct vm_record *old = NULL, *mine = NULL;
    struct vm_request req = {
        .name = "mine", .image = "default", .vcpu = 1, .memory_mib = 256, .owner_uid = 1001,
    };
    int version = -1;

    store_test_db_path(path);
    store_test_sql(path, schema_v1_with_a_vm);
    ck_assert_int_eq(store_open(path, &store, err, sizeof(err)), 0);
    ck_assert_int_eq(store_schema_version(store, &version, err, sizeof(err)), 0);
    ck_assert_int_eq(version, 2);

    /* The VM from before owners existed is root's, and otherwise unchanged. */
    ck_assert_int_eq(store_vm_find(store, "old", &old, err, sizeof(err)), 0);
    ck_assert_uint_eq(old->owner_uid, 0);
    ck_assert_str_eq(old->ip, "172.29.0.2");
    ck_assert_int_eq(old->state, VM_STATE_STOPPED);

    /* A new VM carries the uid it was reserved for, through a reopen. */
    ck_assert_int_eq(store_vm_reserve(store, &req, TEST_NET, TEST_PREFIX, &mine, err,
                                      sizeof(err)), 0);
    ck_assert_uint_eq(mine->owner_uid, 1001);
    store = store_close(store);
    mine = vm_record_free(mine);
    ck_assert_int_eq(store_open(path, &store, err, sizeof(err)), 0);
    ck_assert_int_eq(store_vm_find(store, "mine", &mine, err, sizeof(err)), 0);
    ck_assert_uint_eq(mine->owner_uid, 1001);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT owner_uid FROM vms WHERE name = 'old'"), 0);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM schema_migrations"), 2);

    /* The name stays one namespace across owners. */
    req.owner_uid = 1002;
    req.name = "mine";
    vm_record_free(old);
    old = NULL;
    ck_assert_int_eq(store_vm_reserve(store, &req, TEST_NET, TEST_PREFIX, &old, err,
                                      sizeof(err)), -EEXIST);
    ck_assert_ptr_null(old);
    /* (uid_t)-1 means "no uid" to the kernel and owns nothing. */
    req.name = "nobody-at-all";
    req.owner_uid = UINT32_MAX;
    ck_assert_int_eq(store_vm_reserve(store, &req, TEST_NET, TEST_PREFIX, &old, err,
                                      sizeof(err)), -EINVAL);
    vm_record_free(mine);
    store_close(store);
}
END_TEST

START_TEST(test_readonly)
{
    char path[TEST_PATH_MAX], err[ERRLEN] = "";
    struct store *store = NULL, *ro = NULL;
    struct vm_list *list = NULL;
    char *image;
    int version = -1;

    /* A missing file is an error, and stays missing. */
    store_test_db_path(path);
    ck_assert_int_eq(store_open_readonly(path, &ro, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_int_eq(access(path, F_OK), -1);

    /* An empty file opens at version 0 and is not migrated. */
    store_test_sql(path, "CREATE TABLE unrelated (x)");
    ck_assert_int_eq(store_open_readonly(path, &ro, err, sizeof(err)), 0);
    ck_assert_int_eq(store_schema_version(ro, &version, err, sizeof(err)), 0);
    ck_assert_int_eq(version, 0);
    ro = store_close(ro);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE"
                                              " name = 'schema_migrations'"),
                     0);

    /* A migrated store reads fine and refuses writes. */
    ck_assert_int_eq(store_open(path, &store, err, sizeof(err)), 0);
    image = store_test_add_image(store, "base");
    vm_record_free(reserve(store, "one", image, TEST_NET, TEST_PREFIX));
    ck_assert_int_eq(store_open_readonly(path, &ro, err, sizeof(err)), 0);
    ck_assert_int_eq(store_vm_list(ro, &list, err, sizeof(err)), 0);
    ck_assert_uint_eq(list->count, 1);
    ck_assert_int_eq(reserve_err(ro, "two", image, TEST_NET, TEST_PREFIX, err), -EROFS);
    ck_assert_int_eq(store_vm_delete(ro, list->items[0]->id, err, sizeof(err)), -EROFS);
    vm_list_free(list);
    store_close(ro);
    store_close(store);
    free(image);
}
END_TEST

START_TEST(test_open_errors)
{
    char path[TEST_PATH_MAX], link[TEST_PATH_MAX + 8], err[ERRLEN] = "";
    struct store *store = NULL;
    FILE *f;

    store_test_db_path(path);
    f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    fputs("this is not a database, just some text that is long enough to matter\n", f);
    for (int i = 0; i < 64; i++)
        fputs("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    ck_assert_int_eq(store_open(path, &store, err, sizeof(err)), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "not a usable SQLite database"));
    ck_assert_ptr_null(store);

    /* Symlinks are refused rather than followed. */
    snprintf(link, sizeof(link), "%s.lnk", path);
    ck_assert_int_eq(symlink(path, link), 0);
    ck_assert_int_lt(store_open(link, &store, err, sizeof(err)), 0);
    ck_assert_ptr_null(store);

    ck_assert_int_eq(store_open("", &store, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(store_open("/nonexistent-dir-banger/x.db", &store, err, sizeof(err)),
                     -ENOENT);
    ck_assert_ptr_null(store_close(NULL));
}
END_TEST

/* ---- reservation -------------------------------------------------------- */

START_TEST(test_reserve_basic)
{
    char path[TEST_PATH_MAX];
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    struct vm_record *a = reserve(store, "alpha", image, TEST_NET, TEST_PREFIX);
    struct vm_record *b = reserve(store, "beta", "base", TEST_NET, TEST_PREFIX);

    ck_assert_str_eq(a->name, "alpha");
    ck_assert_str_eq(a->ip, "172.29.0.2");
    ck_assert_str_eq(a->mac, "06:00:AC:1D:00:02");
    ck_assert_uint_eq(a->cid, 3);
    ck_assert_int_eq(a->state, VM_STATE_CREATED);
    ck_assert_str_eq(a->image_id, image);
    ck_assert_str_eq(a->image_name, "base");
    ck_assert_uint_eq(a->vcpu, 2);
    ck_assert_uint_eq(a->memory_mib, 1024);
    ck_assert_uint_eq(a->disk_size, 8ull << 30);
    ck_assert_uint_eq(a->overlay_size, 4ull << 30);
    ck_assert(a->nat);
    ck_assert_ptr_null(a->last_error);
    ck_assert_int_eq(a->started_at, 0);
    ck_assert_int_gt(a->created_at, 1600000000);
    ck_assert_int_eq(a->created_at, a->updated_at);
    ck_assert_uint_eq(strlen(a->id), STORE_ID_LEN);
    ck_assert_uint_eq(strspn(a->id, "0123456789abcdef"), STORE_ID_LEN);

    /* The image may be named by id or by name. */
    ck_assert_str_eq(b->ip, "172.29.0.3");
    ck_assert_str_eq(b->mac, "06:00:AC:1D:00:03");
    ck_assert_uint_eq(b->cid, 4);
    ck_assert_str_ne(a->id, b->id);

    vm_record_free(a);
    vm_record_free(b);
    free(image);
    store_close(store);
}
END_TEST

START_TEST(test_reserve_generated_names)
{
    char path[TEST_PATH_MAX];
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    struct vm_record *recs[30];

    for (int i = 0; i < 30; i++) {
        recs[i] = reserve(store, i % 2 ? "" : NULL, image, TEST_NET, TEST_PREFIX);
        ck_assert_msg(vm_name_valid(recs[i]->name), "generated '%s'", recs[i]->name);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(recs[i]->name, recs[j]->name);
    }
    for (int i = 0; i < 30; i++)
        vm_record_free(recs[i]);
    free(image);
    store_close(store);
}
END_TEST

START_TEST(test_reserve_errors)
{
    char path[TEST_PATH_MAX], err[ERRLEN];
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    struct vm_record *a = reserve(store, "dup", image, TEST_NET, TEST_PREFIX);
    struct vm_request req = {.image = image, .vcpu = 0, .memory_mib = 1};
    struct vm_record *rec = NULL;

    ck_assert_int_eq(reserve_err(store, "dup", image, TEST_NET, TEST_PREFIX, err), -EEXIST);
    ck_assert_str_eq(err, "VM name 'dup' already exists");
    ck_assert_int_eq(reserve_err(store, "Bad_Name", image, TEST_NET, TEST_PREFIX, err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "Bad_Name"));
    ck_assert_int_eq(reserve_err(store, "x", "nope", TEST_NET, TEST_PREFIX, err), -ENOENT);
    ck_assert_str_eq(err, "image 'nope' not found");
    ck_assert_int_eq(reserve_err(store, "x", NULL, TEST_NET, TEST_PREFIX, err), -EINVAL);
    ck_assert_int_eq(reserve_err(store, "x", image, TEST_NET, 31, err), -EINVAL);
    ck_assert_int_eq(reserve_err(store, "x", image, TEST_NET | 5, 24, err), -EINVAL);
    ck_assert_int_eq(store_vm_reserve(store, &req, TEST_NET, 24, &rec, err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(store_vm_reserve(store, NULL, TEST_NET, 24, &rec, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_null(rec);
    /* Failed reservations left nothing behind. */
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM vms"), 1);
    vm_record_free(a);
    free(image);
    store_close(store);
}
END_TEST

START_TEST(test_reserve_exhausts_slash29)
{
    char path[TEST_PATH_MAX], err[ERRLEN];
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    const uint32_t net = 0x0A000008u; /* 10.0.0.8/29: .8 net, .9 gw, .15 broadcast */
    static const char *const want[] = {"10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13",
                                       "10.0.0.14"};
    char *ids[5];

    for (int i = 0; i < 5; i++) {
        char name[16];
        struct vm_record *rec;

        snprintf(name, sizeof(name), "vm%d", i);
        rec = reserve(store, name, image, net, 29);
        ck_assert_str_eq(rec->ip, want[i]);
        ids[i] = strdup(rec->id);
        vm_record_free(rec);
    }
    ck_assert_int_eq(reserve_err(store, "full", image, net, 29, err), -ENOSPC);
    ck_assert_str_eq(err, "no free IP in 10.0.0.8/29");

    /* Deleting a VM frees its IP (and CID) for the next reservation. */
    ck_assert_int_eq(store_vm_delete(store, ids[2], err, sizeof(err)), 0);
    {
        struct vm_record *rec = reserve(store, "vm2", image, net, 29);

        ck_assert_str_eq(rec->ip, "10.0.0.12");
        ck_assert_str_eq(rec->mac, "06:00:0A:00:00:0C");
        ck_assert_uint_eq(rec->cid, 5);
        vm_record_free(rec);
    }
    ck_assert_int_eq(reserve_err(store, "full", image, net, 29, err), -ENOSPC);

    /* VMs in another network do not consume this one's addresses. */
    {
        struct vm_record *rec = reserve(store, "elsewhere", image, TEST_NET, TEST_PREFIX);

        ck_assert_str_eq(rec->ip, "172.29.0.2");
        ck_assert_uint_eq(rec->cid, 8);
        vm_record_free(rec);
    }
    ck_assert_int_eq(store_vm_delete(store, ids[2], err, sizeof(err)), -ENOENT);
    for (int i = 0; i < 5; i++)
        free(ids[i]);
    free(image);
    store_close(store);
}
END_TEST

/* ---- lookups ------------------------------------------------------------ */

START_TEST(test_lookups)
{
    char path[TEST_PATH_MAX], err[ERRLEN];
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    struct vm_record *rec = NULL;
    struct vm_list *list = NULL;

    vm_record_free(reserve(store, "one", image, TEST_NET, TEST_PREFIX));
    vm_record_free(reserve(store, "two", image, TEST_NET, TEST_PREFIX));
    vm_record_free(reserve(store, "three", image, TEST_NET, TEST_PREFIX));
    /* A VM whose name looks like an id prefix. */
    vm_record_free(reserve(store, "abcd", image, TEST_NET, TEST_PREFIX));
    store_test_sql(path, "UPDATE vms SET id = 'abcd00000001' WHERE name = 'one';"
                         "UPDATE vms SET id = 'abcd00000002' WHERE name = 'two';"
                         "UPDATE vms SET id = 'beef00000003' WHERE name = 'three';");

    ck_assert_int_eq(store_vm_get_by_id(store, "abcd00000001", &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->name, "one");
    rec = vm_record_free(rec);
    ck_assert_int_eq(store_vm_get_by_name(store, "two", &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->id, "abcd00000002");
    rec = vm_record_free(rec);
    ck_assert_int_eq(store_vm_get_by_id(store, "abcd", &rec, err, sizeof(err)), -ENOENT);
    ck_assert_int_eq(store_vm_get_by_name(store, "zzz", &rec, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "zzz"));
    ck_assert_ptr_null(rec);

    /* find: exact id, exact name, unique prefix. */
    ck_assert_int_eq(store_vm_find(store, "abcd00000002", &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->name, "two");
    rec = vm_record_free(rec);
    ck_assert_int_eq(store_vm_find(store, "three", &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->id, "beef00000003");
    rec = vm_record_free(rec);
    ck_assert_int_eq(store_vm_find(store, "beef", &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->name, "three");
    rec = vm_record_free(rec);
    /* The name 'abcd' wins over the ambiguous prefix 'abcd'. */
    ck_assert_int_eq(store_vm_find(store, "abcd", &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->name, "abcd");
    rec = vm_record_free(rec);
    ck_assert_int_eq(store_vm_find(store, "abcd0", &rec, err, sizeof(err)), -ENOTUNIQ);
    ck_assert_msg(strstr(err, "ambiguous") && strstr(err, "abcd00000001") &&
                      strstr(err, "abcd00000002"),
                  "%s", err);
    ck_assert_ptr_null(rec);
    ck_assert_int_eq(store_vm_find(store, "abcd000000011", &rec, err, sizeof(err)), -ENOENT);
    ck_assert_int_eq(store_vm_find(store, "abcd00000001", &rec, err, sizeof(err)), 0);
    rec = vm_record_free(rec);
    /* Too short for a prefix. */
    ck_assert_int_eq(store_vm_find(store, "bee", &rec, err, sizeof(err)), -ENOENT);
    ck_assert_str_eq(err, "VM 'bee' not found");
    /* GLOB metacharacters are never treated as a pattern. */
    ck_assert_int_eq(store_vm_find(store, "ab*", &rec, err, sizeof(err)), -ENOENT);
    ck_assert_int_eq(store_vm_find(store, "", &rec, err, sizeof(err)), -EINVAL);

    /* list: in creation order. */
    ck_assert_int_eq(store_vm_list(store, &list, err, sizeof(err)), 0);
    ck_assert_uint_eq(list->count, 4);
    ck_assert_str_eq(list->items[0]->name, "one");
    ck_assert_str_eq(list->items[1]->name, "two");
    ck_assert_str_eq(list->items[2]->name, "three");
    ck_assert_str_eq(list->items[3]->name, "abcd");
    ck_assert_str_eq(list->items[3]->image_name, "base");
    vm_list_free(list);
    ck_assert_ptr_null(vm_list_free(NULL));
    ck_assert_ptr_null(vm_record_free(NULL));
    free(image);
    store_close(store);
}
END_TEST

START_TEST(test_state_and_resources)
{
    char path[TEST_PATH_MAX], err[ERRLEN];
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    struct vm_record *vm = reserve(store, "box", image, TEST_NET, TEST_PREFIX);
    struct vm_record *rec = NULL;

    ck_assert_int_eq(store_vm_set_state(store, vm->id, VM_STATE_RUNNING, NULL, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_vm_get_by_id(store, vm->id, &rec, err, sizeof(err)), 0);
    ck_assert_int_eq(rec->state, VM_STATE_RUNNING);
    ck_assert_int_gt(rec->started_at, 0);
    rec = vm_record_free(rec);

    /* running -> running keeps the original start time. */
    store_test_sql(path, "UPDATE vms SET started_at = 1000 WHERE name = 'box'");
    ck_assert_int_eq(store_vm_set_state(store, vm->id, VM_STATE_RUNNING, NULL, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT started_at FROM vms WHERE name = 'box'"),
                     1000);

    /* vm set is refused while running. */
    ck_assert_int_eq(store_vm_set_resources(store, vm->id, 4, 2048, err, sizeof(err)), -EBUSY);
    ck_assert_str_eq(err, "VM 'box' is running; stop it first");

    ck_assert_int_eq(store_vm_set_state(store, vm->id, VM_STATE_ERROR, "tap: device busy", err,
                                        sizeof(err)),
                     0);
    ck_assert_int_eq(store_vm_get_by_id(store, vm->id, &rec, err, sizeof(err)), 0);
    ck_assert_int_eq(rec->state, VM_STATE_ERROR);
    ck_assert_str_eq(rec->last_error, "tap: device busy");
    ck_assert_int_eq(rec->started_at, 0);
    rec = vm_record_free(rec);

    ck_assert_int_eq(store_vm_set_state(store, vm->id, VM_STATE_STOPPED, NULL, err, sizeof(err)),
                     0);
    ck_assert_int_eq(store_vm_set_resources(store, vm->id, 4, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(store_vm_get_by_id(store, vm->id, &rec, err, sizeof(err)), 0);
    ck_assert_int_eq(rec->state, VM_STATE_STOPPED);
    ck_assert_ptr_null(rec->last_error);
    ck_assert_uint_eq(rec->vcpu, 4);
    ck_assert_uint_eq(rec->memory_mib, 1024);
    rec = vm_record_free(rec);
    ck_assert_int_eq(store_vm_set_resources(store, vm->id, 0, 4096, err, sizeof(err)), 0);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT memory_mib FROM vms WHERE name = 'box'"),
                     4096);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT vcpu FROM vms WHERE name = 'box'"), 4);

    ck_assert_int_eq(store_vm_set_state(store, "000000000000", VM_STATE_STOPPED, NULL, err,
                                        sizeof(err)),
                     -ENOENT);
    ck_assert_int_eq(store_vm_set_resources(store, "000000000000", 1, 1, err, sizeof(err)),
                     -ENOENT);
    ck_assert_int_eq(store_vm_set_state(store, vm->id, (enum vm_state)42, NULL, err, sizeof(err)),
                     -EINVAL);

    {
        enum vm_state st;

        ck_assert_int_eq(vm_state_parse("stopped", &st), 0);
        ck_assert_int_eq(st, VM_STATE_STOPPED);
        ck_assert_int_eq(vm_state_parse("paused", &st), -EINVAL);
        ck_assert_str_eq(vm_state_name(VM_STATE_ERROR), "error");
    }
    vm_record_free(vm);
    free(image);
    store_close(store);
}
END_TEST

/* ---- images ------------------------------------------------------------- */

START_TEST(test_images)
{
    char path[TEST_PATH_MAX], err[ERRLEN];
    struct store *store = store_test_open(path);
    struct image_request req = {
        .name = "debian-12",
        .rootfs_path = "/img/rootfs.ext4",
        .kernel_path = "/img/vmlinux",
        .initrd_path = "/img/initrd",
        .manifest = "{\"sha256\": \"abc\", \"size\": 10}",
    };
    struct image_record *img = NULL, *rec = NULL;
    struct image_list *list = NULL;
    char *other;
    unsigned count = 99;

    ck_assert_int_eq(store_image_insert(store, &req, &img, err, sizeof(err)), 0);
    ck_assert_str_eq(img->name, "debian-12");
    ck_assert_str_eq(img->initrd_path, "/img/initrd");
    ck_assert_str_eq(img->manifest, req.manifest);
    ck_assert_uint_eq(strlen(img->id), STORE_ID_LEN);
    ck_assert_uint_eq(img->vm_count, 0);

    ck_assert_int_eq(store_image_insert(store, &req, &rec, err, sizeof(err)), -EEXIST);
    ck_assert_str_eq(err, "image 'debian-12' already exists");
    req.name = "broken";
    req.manifest = "{not json";
    ck_assert_int_eq(store_image_insert(store, &req, &rec, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not valid JSON"));
    req.manifest = NULL;
    req.kernel_path = "vmlinux";
    ck_assert_int_eq(store_image_insert(store, &req, &rec, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not absolute"));
    req.kernel_path = NULL;
    ck_assert_int_eq(store_image_insert(store, &req, &rec, err, sizeof(err)), -EINVAL);
    req.kernel_path = "/img/vmlinux";
    req.name = "bad name";
    ck_assert_int_eq(store_image_insert(store, &req, &rec, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(rec);

    other = store_test_add_image(store, "alpine");
    ck_assert_int_eq(store_image_get_by_name(store, "alpine", &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->id, other);
    ck_assert_ptr_null(rec->initrd_path);
    ck_assert_ptr_null(rec->manifest);
    rec = image_record_free(rec);
    ck_assert_int_eq(store_image_get_by_id(store, img->id, &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->name, "debian-12");
    rec = image_record_free(rec);
    ck_assert_int_eq(store_image_get_by_name(store, "nope", &rec, err, sizeof(err)), -ENOENT);
    ck_assert_int_eq(store_image_find(store, "alpine", &rec, err, sizeof(err)), 0);
    rec = image_record_free(rec);
    ck_assert_int_eq(store_image_find(store, img->id, &rec, err, sizeof(err)), 0);
    rec = image_record_free(rec);
    store_test_sql(path, "UPDATE images SET id = 'aaaa00000001' WHERE name = 'alpine'");
    ck_assert_int_eq(store_image_find(store, "aaaa00", &rec, err, sizeof(err)), 0);
    ck_assert_str_eq(rec->name, "alpine");
    rec = image_record_free(rec);
    free(other);
    other = strdup("aaaa00000001");

    ck_assert_int_eq(store_image_list(store, &list, err, sizeof(err)), 0);
    ck_assert_uint_eq(list->count, 2);
    ck_assert_str_eq(list->items[0]->name, "debian-12");
    ck_assert_str_eq(list->items[1]->name, "alpine");
    list = image_list_free(list);

    /* Deleting an image in use is refused and names the users. */
    vm_record_free(reserve(store, "web", "debian-12", TEST_NET, TEST_PREFIX));
    vm_record_free(reserve(store, "db", img->id, TEST_NET, TEST_PREFIX));
    ck_assert_int_eq(store_image_vm_count(store, img->id, &count, err, sizeof(err)), 0);
    ck_assert_uint_eq(count, 2);
    ck_assert_int_eq(store_image_delete(store, img->id, err, sizeof(err)), -EBUSY);
    ck_assert_str_eq(err, "image 'debian-12' is used by VM(s) db, web");
    ck_assert_int_eq(store_image_delete(store, other, err, sizeof(err)), 0);
    ck_assert_int_eq(store_image_delete(store, other, err, sizeof(err)), -ENOENT);

    /* Once its VMs are gone, the image can go. */
    {
        struct vm_list *vms = NULL;

        ck_assert_int_eq(store_vm_list(store, &vms, err, sizeof(err)), 0);
        for (size_t i = 0; i < vms->count; i++)
            ck_assert_int_eq(store_vm_delete(store, vms->items[i]->id, err, sizeof(err)), 0);
        vm_list_free(vms);
    }
    ck_assert_int_eq(store_image_vm_count(store, img->id, &count, err, sizeof(err)), 0);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(store_image_delete(store, img->id, err, sizeof(err)), 0);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM images"), 0);

    ck_assert_ptr_null(image_record_free(NULL));
    ck_assert_ptr_null(image_list_free(NULL));
    free(other);
    image_record_free(img);
    store_close(store);
}
END_TEST

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    int64_t value = -1;

    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

/* White-box: the settings live on the store's own connection. */
START_TEST(test_connection_settings)
{
    char path[TEST_PATH_MAX];
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    struct vm_record *vm = reserve(store, "web", image, TEST_NET, TEST_PREFIX);

    ck_assert_int_eq(pragma_int(store->db, "PRAGMA foreign_keys"), 1);
    ck_assert_int_eq(pragma_int(store->db, "PRAGMA busy_timeout"), STORE_BUSY_TIMEOUT_MS);
    /* Even a raw DELETE of a referenced image is stopped by the key. */
    /* (ON DELETE RESTRICT reports as SQLITE_CONSTRAINT_TRIGGER.) */
    ck_assert_int_eq(sqlite3_exec(store->db, "DELETE FROM images", NULL, NULL, NULL) & 0xff,
                     SQLITE_CONSTRAINT);
    ck_assert_ptr_nonnull(strstr(sqlite3_errmsg(store->db), "FOREIGN KEY"));
    /* And the state CHECK holds. */
    ck_assert_int_eq(sqlite3_exec(store->db, "UPDATE vms SET state = 'paused'", NULL, NULL, NULL),
                     SQLITE_CONSTRAINT_CHECK);
    vm_record_free(vm);
    free(image);
    store_close(store);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc_open = tcase_create("open");
    TCase *tc_vm = tcase_create("vm");
    TCase *tc_image = tcase_create("image");
    SRunner *sr;
    int failed;

    tcase_add_unchecked_fixture(tc_open, store_test_dir_setup, store_test_dir_teardown);
    tcase_add_test(tc_open, test_open_creates_schema);
    tcase_add_test(tc_open, test_reopen_is_idempotent);
    tcase_add_test(tc_open, test_future_schema_refused);
    tcase_add_test(tc_open, test_migration_gives_old_vms_to_root);
    tcase_add_test(tc_open, test_readonly);
    tcase_add_test(tc_open, test_open_errors);
    suite_add_tcase(s, tc_open);

    tcase_add_unchecked_fixture(tc_vm, store_test_dir_setup, store_test_dir_teardown);
    tcase_set_timeout(tc_vm, 60);
    tcase_add_test(tc_vm, test_reserve_basic);
    tcase_add_test(tc_vm, test_reserve_generated_names);
    tcase_add_test(tc_vm, test_reserve_errors);
    tcase_add_test(tc_vm, test_reserve_exhausts_slash29);
    tcase_add_test(tc_vm, test_lookups);
    tcase_add_test(tc_vm, test_state_and_resources);
    suite_add_tcase(s, tc_vm);

    tcase_add_unchecked_fixture(tc_image, store_test_dir_setup, store_test_dir_teardown);
    tcase_add_test(tc_image, test_images);
    tcase_add_test(tc_image, test_connection_settings);
    suite_add_tcase(s, tc_image);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
