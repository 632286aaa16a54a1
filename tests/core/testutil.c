#include "config.h"

#include "testutil.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <check.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_tempdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *path = xasprintf("%s/banger-%s-XXXXXX", base && base[0] ? base : "/tmp", tag);
    ck_assert_ptr_nonnull(mkdtemp(path));
    return path;
}

void tu_rmtree(const char *path)
{
    struct banger_error e = { 0 };
    fs_remove_tree(path, &e);
}

void tu_copy(const char *from, const char *to)
{
    char *data = NULL;
    size_t len = 0;
    struct banger_error e = { 0 };
    ck_assert_msg(fs_read_all(from, 64u << 20, &data, &len, &e) == 0, "%s", bg_error_text(&e));
    struct stat st;
    ck_assert_int_eq(stat(from, &st), 0);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    free(data);
}

bool tu_exists(const char *path) { return access(path, F_OK) == 0; }

size_t tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

struct banger_vm *tu_vm(const char *state_dir)
{
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .id = "0123456789ab", .name = "web",
        .ip = "172.29.0.2", .mac = "06:00:ac:1d:00:02", .gateway = "172.29.0.1",
        .prefix_len = 24, .cid = 3, .vcpu = 2, .memory_mib = 1024,
        .state_dir = state_dir, .runtime_dir = state_dir, .bridge = "br-banger",
    };
    struct banger_vm *vm = NULL;
    struct banger_error e = { 0 };
    ck_assert_msg(bg_vm_new(&info, &vm, &e) == 0, "%s", bg_error_text(&e));
    return vm;
}

void tu_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}
