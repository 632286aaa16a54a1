/* Concurrent reservations: the daemon shares one store handle between its
 * threads; separate handles stand in for separate processes. Either way all
 * 20 reservations succeed with distinct names, IPs, MACs and CIDs. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_test_util.h"

#define NTHREADS 20

struct worker {
    struct store *shared; /* NULL: open a private handle on path */
    const char *path;
    const char *image;
    pthread_barrier_t *start;
    int index;
    int ret;
    char err[256];
    struct vm_record *rec;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct store *store = w->shared;
    struct vm_request req = {.image = w->image, .vcpu = 1, .memory_mib = 128};
    char name[32];

    if (!store) {
        w->ret = store_open(w->path, &store, w->err, sizeof(w->err));
        if (w->ret < 0)
            return NULL;
    }
    /* Half named, half generated. */
    if (w->index % 2 == 0) {
        snprintf(name, sizeof(name), "worker-%d", w->index);
        req.name = name;
    }
    pthread_barrier_wait(w->start);
    w->ret = store_vm_reserve(store, &req, TEST_NET, TEST_PREFIX, &w->rec, w->err,
                              sizeof(w->err));
    if (!w->shared)
        store_close(store);
    return NULL;
}

static void run_workers(bool shared)
{
    char path[TEST_PATH_MAX];
    struct store *store = store_test_open(path);
    char *image = store_test_add_image(store, "base");
    struct worker workers[NTHREADS];
    pthread_t threads[NTHREADS];
    pthread_barrier_t start;
    bool ip_seen[256] = {false};
    bool cid_seen[NTHREADS + 3] = {false};

    ck_assert_int_eq(pthread_barrier_init(&start, NULL, NTHREADS), 0);
    for (int i = 0; i < NTHREADS; i++) {
        workers[i] = (struct worker){
            .shared = shared ? store : NULL, .path = path, .image = image,
            .start = &start, .index = i,
        };
        ck_assert_int_eq(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);

    for (int i = 0; i < NTHREADS; i++) {
        struct vm_record *rec = workers[i].rec;
        uint32_t ip;
        char mac[MAC_STR_MAX];

        ck_assert_msg(workers[i].ret == 0, "worker %d: %d %s", i, workers[i].ret,
                      workers[i].err);
        ck_assert_int_eq(ip4_parse(rec->ip, &ip), 0);
        ck_assert_uint_eq(ip & 0xFFFFFF00u, TEST_NET);
        /* The lowest 20 hosts after the gateway, each exactly once. */
        ck_assert_uint_ge(ip & 0xff, 2);
        ck_assert_uint_le(ip & 0xff, NTHREADS + 1);
        ck_assert_msg(!ip_seen[ip & 0xff], "IP %s handed out twice", rec->ip);
        ip_seen[ip & 0xff] = true;
        mac_from_ip4(ip, mac, sizeof(mac));
        ck_assert_str_eq(rec->mac, mac);
        ck_assert_uint_ge(rec->cid, 3);
        ck_assert_uint_lt(rec->cid, NTHREADS + 3);
        ck_assert_msg(!cid_seen[rec->cid], "CID %u handed out twice", rec->cid);
        cid_seen[rec->cid] = true;
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(rec->name, workers[j].rec->name);
            ck_assert_str_ne(rec->id, workers[j].rec->id);
            ck_assert_str_ne(rec->mac, workers[j].rec->mac);
        }
    }
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM vms"), NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        vm_record_free(workers[i].rec);
    free(image);
    store_close(store);
}

START_TEST(test_concurrent_shared_handle)
{
    run_workers(true);
}
END_TEST

START_TEST(test_concurrent_separate_handles)
{
    run_workers(false);
}
END_TEST

/* Two handles opening the same fresh file at once: one migrates, the other
 * sees the finished schema. */
struct opener {
    const char *path;
    pthread_barrier_t *start;
    int ret;
    char err[256];
};

static void *opener_run(void *arg)
{
    struct opener *o = arg;
    struct store *store = NULL;

    pthread_barrier_wait(o->start);
    o->ret = store_open(o->path, &store, o->err, sizeof(o->err));
    store_close(store);
    return NULL;
}

START_TEST(test_concurrent_first_open)
{
    enum { N = 8 };
    char path[TEST_PATH_MAX];
    struct opener openers[N];
    pthread_t threads[N];
    pthread_barrier_t start;

    store_test_db_path(path);
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, N), 0);
    for (int i = 0; i < N; i++) {
        openers[i] = (struct opener){.path = path, .start = &start};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, opener_run, &openers[i]), 0);
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < N; i++)
        ck_assert_msg(openers[i].ret == 0, "opener %d: %d %s", i, openers[i].ret,
                      openers[i].err);
    ck_assert_int_eq(store_test_sql_int(path, "SELECT count(*) FROM schema_migrations"),
                     STORE_SCHEMA_VERSION);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store-concurrency");
    TCase *tc = tcase_create("concurrency");
    SRunner *sr;
    int failed;

    tcase_add_unchecked_fixture(tc, store_test_dir_setup, store_test_dir_teardown);
    /* Generous: a bound for a hang, never a performance assertion. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_concurrent_shared_handle);
    tcase_add_test(tc, test_concurrent_separate_handles);
    tcase_add_test(tc, test_concurrent_first_open);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
