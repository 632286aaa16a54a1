/* Shared fixture for the store tests: a private temporary directory that
 * the parent process removes after each test case, even when a test fails
 * in its forked child. */
#ifndef STORE_TEST_UTIL_H
#define STORE_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define TEST_PATH_MAX 512

/* Unchecked fixture pair (runs in the parent). */
void store_test_dir_setup(void);
void store_test_dir_teardown(void);

/* A fresh path "<fixture dir>/<unique>/banger.db" that does not exist yet. */
void store_test_db_path(char path[TEST_PATH_MAX]);

/* Open a fresh store; fails the test on error. */
struct store *store_test_open(char path[TEST_PATH_MAX]);

/* Run SQL on the file through a separate plain connection. */
void store_test_sql(const char *path, const char *sql);
/* First column of the first row as an integer (-1 when no row). */
int64_t store_test_sql_int(const char *path, const char *sql);

/* Register an image called name; returns its id (caller frees). */
char *store_test_add_image(struct store *store, const char *name);

/* The 172.29.0.0/24 default network. */
#define TEST_NET 0xAC1D0000u
#define TEST_PREFIX 24u

#endif
