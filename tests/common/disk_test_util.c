#include "config.h"

#include "disk_test_util.h"

#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t dtu_file_hash(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    unsigned char buf[65536];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
    close(fd);
    return h;
}

bool dtu_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}
