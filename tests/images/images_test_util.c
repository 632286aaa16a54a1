#include "config.h"

#include "images_test_util.h"
#include "images/image_pull.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* What images_kernel_version finds in this program's .rodata. */
__attribute__((used)) static const char itest_banner[] =
    "Linux version " ITEST_KERNEL_VERSION " (test@banger) (gcc) #1 SMP PREEMPT_DYNAMIC";

void itest_setup(struct itest *t)
{
    char tmpl[] = "/tmp/banger-images-XXXXXX";
    char eb[512] = "";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    t->dir = xstrdup(tmpl);
    t->images_dir = fs_join(t->dir, "images");
    char *db = fs_join(t->dir, "state.db");
    int r = store_open(db, &t->store, eb, sizeof(eb));
    free(db);
    ck_assert_msg(r == 0, "store_open: %s", eb);
}

void itest_teardown(struct itest *t)
{
    struct banger_error err = { 0 };
    store_close(t->store);
    if (t->dir)
        fs_remove_tree(t->dir, &err);
    free(t->dir);
    free(t->images_dir);
    memset(t, 0, sizeof(*t));
}

int itest_count_images_dir(const struct itest *t)
{
    DIR *d = opendir(t->images_dir);
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

char *itest_path(const struct itest *t, const char *name) { return fs_join(t->dir, name); }

void itest_fake_rootfs(const char *path)
{
    unsigned char buf[4096] = { 0 };
    buf[1024 + 56] = 0x53;
    buf[1024 + 57] = 0xEF;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    close(fd);
}

const char *itest_elf_kernel(void)
{
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    ck_assert_int_gt(n, 0);
    path[n] = '\0';
    (void)itest_banner;
    return path;
}

char *itest_find_bzimage(void)
{
    glob_t g;
    char *found = NULL;
    if (glob("/boot/vmlinuz-*", 0, NULL, &g) == 0 && g.gl_pathc > 0)
        found = xstrdup(g.gl_pathv[0]);
    globfree(&g);
    return found;
}

void itest_write_tar(const char *path, bool zstd, const struct itest_entry *entries, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax(a);
    if (zstd)
        ck_assert_int_eq(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        const struct itest_entry *it = &entries[i];
        struct archive_entry *e = archive_entry_new();
        size_t len = it->type == 's' ? 0 : it->len ? it->len : (it->data ? strlen(it->data) : 0);
        archive_entry_set_pathname(e, it->path);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, 1700000000, 0);
        switch (it->type) {
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_perm(e, 0777);
            archive_entry_set_symlink(e, it->data);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_hardlink(e, it->data);
            break;
        case 'p':
            archive_entry_set_filetype(e, AE_IFIFO);
            archive_entry_set_perm(e, 0600);
            break;
        case 's': {
            const struct itest_sparse *sp = (const void *)it->data;
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)sp->size);
            archive_entry_sparse_add_entry(e, (la_int64_t)(sp->size - sp->len),
                                           (la_int64_t)sp->len);
            break;
        }
        case 'c':
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_perm(e, 0600);
            archive_entry_set_rdev(e, makedev(5, 1));
            break;
        default:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)len);
            break;
        }
        ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
        if (it->type == 'f' && len)
            ck_assert_int_eq(archive_write_data(a, it->data, len), (la_ssize_t)len);
        if (it->type == 's') {
            const struct itest_sparse *sp = (const void *)it->data;
            ck_assert_int_eq(archive_write_data(a, sp->data, sp->len), (la_ssize_t)sp->len);
        }
        archive_entry_free(e);
    }
    ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

char *itest_read(const char *path, size_t *len)
{
    struct banger_error err = { 0 };
    char *data = NULL;
    int r = fs_read_all(path, 1u << 30, &data, len, &err);
    ck_assert_msg(r == 0, "read %s: %s", path, bg_error_text(&err));
    return data;
}

void itest_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

char *itest_bundle_rootfs(size_t *len)
{
    char *rootfs = xcalloc(1, 4096);
    rootfs[1024 + 56] = 0x53;
    rootfs[1024 + 57] = (char)0xEF;
    *len = 4096;
    return rootfs;
}

char *itest_bundle_kernel(size_t *len) { return itest_read(itest_elf_kernel(), len); }

char *itest_manifest(const char *name, const char *rootfs, size_t rootfs_len,
                     uint64_t rootfs_declared, const char *kernel, size_t kernel_len)
{
    char rh[65], kh[65];
    itest_sha256_hex(rootfs, rootfs_len, rh);
    itest_sha256_hex(kernel, kernel_len, kh);
    return xasprintf("{\"name\":\"%s\",\"files\":{\"rootfs.ext4\":{\"size\":%llu,"
                     "\"sha256\":\"%s\"},\"vmlinux\":{\"size\":%zu,\"sha256\":\"%s\"}}}",
                     name, (unsigned long long)rootfs_declared, rh, kernel_len, kh);
}

void itest_write_bundle(const char *path, const char *name, bool bad_sum)
{
    size_t rlen = 0, klen = 0;
    char *rootfs = itest_bundle_rootfs(&rlen);
    char *kernel = itest_bundle_kernel(&klen);
    char *manifest = itest_manifest(name, rootfs, rlen, rlen, kernel, klen);
    if (bad_sum) {
        char *sum = strstr(manifest, "\"sha256\":\"") + 10;
        *sum = *sum == '0' ? '1' : '0';
    }
    struct itest_entry entries[] = {
        { "manifest.json", 'f', manifest, 0 },
        { "rootfs.ext4", 'f', rootfs, rlen },
        { "./vmlinux", 'f', kernel, klen },
    };
    itest_write_tar(path, true, entries, 3);
    free(manifest);
    free(kernel);
    free(rootfs);
}

static void itest_send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void itest_http_endless(struct itest_http *h, int fd)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                               "Connection: close\r\n\r\n";
    static char chunk[64 << 10];
    uint64_t max = h->endless_max ? h->endless_max : 256ull << 20, sent = 0;
    memset(chunk, 'x', sizeof(chunk));
    itest_send_all(fd, head, sizeof(head) - 1);
    while (!h->stop && sent < max) {
        ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
        if (n <= 0) {
            h->peer_closed = true;
            return;
        }
        sent += (uint64_t)n;
        h->sent = sent;
        if (h->trickle_ms)
            usleep((useconds_t)h->trickle_ms * 1000);
    }
}

static void *itest_http_main(void *arg)
{
    struct itest_http *h = arg;
    int fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return NULL;
    char req[4096];
    size_t have = 0;
    while (have < sizeof(req) - 1) {
        ssize_t n = recv(fd, req + have, sizeof(req) - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        req[have] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    if (h->endless) {
        itest_http_endless(h, fd);
        close(fd);
        return NULL;
    }
    char head[512];
    int hl;
    if (h->redirect)
        hl = snprintf(head, sizeof(head), "HTTP/1.1 302 Found\r\nLocation: %s\r\n"
                      "Content-Length: 0\r\nConnection: close\r\n\r\n", h->redirect);
    else
        hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", h->len);
    itest_send_all(fd, head, (size_t)hl);
    if (h->redirect) {
        close(fd);
        return NULL;
    }
    size_t half = h->len / 2;
    itest_send_all(fd, h->body, half);
    if (h->wait_key) {
        /* Hold the download open until the second pull has joined. */
        while (images_pull_waiters(h->wait_key) < 1)
            usleep(10000);
    }
    if (!h->truncate)
        itest_send_all(fd, h->body + half, h->len - half);
    close(fd);
    return NULL;
}

void itest_http_start(struct itest_http *h, const char *body_file)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t slen = sizeof(sa);
    if (body_file)
        h->body = itest_read(body_file, &h->len);
    h->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(h->listen_fd, 0);
    ck_assert_int_eq(bind(h->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(h->listen_fd, 4), 0);
    ck_assert_int_eq(getsockname(h->listen_fd, (struct sockaddr *)&sa, &slen), 0);
    h->port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&h->thread, NULL, itest_http_main, h), 0);
}

void itest_http_stop(struct itest_http *h)
{
    h->stop = true;
    shutdown(h->listen_fd, SHUT_RDWR);
    pthread_join(h->thread, NULL);
    close(h->listen_fd);
    free(h->body);
}
