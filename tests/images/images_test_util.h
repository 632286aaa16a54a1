/* Fixtures for the image tests: a temp dir with a store, fake image files,
 * tarballs and bundles written with libarchive, a one-shot HTTP server. */
#ifndef BANGER_IMAGES_TEST_UTIL_H
#define BANGER_IMAGES_TEST_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct itest {
    char *dir;
    char *images_dir;
    struct store *store;
};

void itest_setup(struct itest *t);
void itest_teardown(struct itest *t);
/* Entries in images_dir (0 when it does not exist). */
int itest_count_images_dir(const struct itest *t);
char *itest_path(const struct itest *t, const char *name);

/* A file that passes the ext4 magic check. */
void itest_fake_rootfs(const char *path);
/* An ELF file carrying a "Linux version" banner: this test program. */
const char *itest_elf_kernel(void);
#define ITEST_KERNEL_VERSION "6.1.99-bangertest"
/* First /boot/vmlinuz-* (malloc'd) or NULL. */
char *itest_find_bzimage(void);

struct itest_entry {
    const char *path;
    char type;             /* 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'c' char dev,
                              'p' fifo,
                              's' sparse file (data: struct itest_sparse *) */
    const char *data;      /* file content, or link target */
    size_t len;            /* for 'f' when data has NULs; 0 = strlen */
};
/* Type 's': a sparse regular file; `data` points to one of these. The tar
 * records a sparse map with `len` bytes of data at the end of `size`. */
struct itest_sparse {
    const char *data;
    size_t len;
    uint64_t size;
};
/* Write a tar (zstd-compressed when `zstd`) of the entries. */
void itest_write_tar(const char *path, bool zstd, const struct itest_entry *entries, size_t n);

/* Read a whole file (malloc'd); aborts the test on error. */
char *itest_read(const char *path, size_t *len);
void itest_sha256_hex(const void *data, size_t len, char hex[65]);

/* A bundle with rootfs.ext4 (fake), vmlinux (this program) and a manifest
 * naming `name`. bad_sum: the manifest's rootfs sha256 is wrong. */
void itest_write_bundle(const char *path, const char *name, bool bad_sum);
/* The fake rootfs (4096 bytes) and kernel that bundle holds (malloc'd). */
char *itest_bundle_rootfs(size_t *len);
char *itest_bundle_kernel(size_t *len);
/* {"name":name,"files":{"rootfs.ext4":{"size":..,"sha256":..},"vmlinux":{..}}}
 * for the given contents and declared sizes (malloc'd). */
char *itest_manifest(const char *name, const char *rootfs, size_t rootfs_len,
                     uint64_t rootfs_declared, const char *kernel, size_t kernel_len);

/* One-connection HTTP server on 127.0.0.1 serving `body_file` (NULL for
 * endless or redirect). */
struct itest_http {
    pthread_t thread;
    int listen_fd;
    int port;
    char *body;
    size_t len;
    bool truncate;          /* close after half the body */
    bool endless;           /* no Content-Length; send until the peer closes
                               (or endless_max bytes) */
    uint64_t endless_max;   /* 0: 256 MiB */
    int trickle_ms;         /* endless: pause between 64 KiB chunks */
    const char *redirect;   /* answer 302 to this Location instead */
    volatile bool peer_closed;  /* endless: the client closed the connection */
    volatile uint64_t sent;     /* endless: body bytes sent so far */
    volatile bool stop;
    const char *wait_key;   /* send the second half once a pull waits on this key */
};
void itest_http_start(struct itest_http *h, const char *body_file);
void itest_http_stop(struct itest_http *h);

#endif
