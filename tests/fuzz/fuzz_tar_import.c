/* libFuzzer target: `image import`'s tarball extraction (core/images/
 * image_import.c through libarchive), fed from a memfd as the daemon reads
 * the client's descriptor. Every input is extracted for real into a fresh
 * tree, then checked: nothing was written outside the tree, no device node,
 * fifo or socket is in it, nothing links to the file beside it, and a
 * refusal names the entry. As root the target first drops to nobody (so a
 * hole could not reach the host as root), and each file is capped at
 * 16 MiB (RLIMIT_FSIZE) so a sparse or compressed bomb stays small. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "images/image_import.h"
#include "util/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SECRET "not for the tarball\n"

static char fuzz_base[256];   /* <tmp>/banger-fuzz-tar.XXXXXX */
static char fuzz_root[300];   /* base/root: the tree each input is extracted into */
static char fuzz_secret[300]; /* base/outside/secret: must stay as it is */

/* Leave nothing behind in the temporary directory. */
static void fuzz_cleanup(void)
{
    char outside[300];

    snprintf(outside, sizeof(outside), "%s/outside", fuzz_base);
    unlink(fuzz_secret);
    rmdir(outside);
    rmdir(fuzz_root);
    rmdir(fuzz_base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    struct rlimit fsize = { 16u << 20, 16u << 20 };
    char outside[300];
    int fd;

    (void)argc;
    (void)argv;
    if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                           setresuid(65534, 65534, 65534) < 0)) {
        perror("fuzz_tar_import: dropping to nobody");
        exit(1);
    }
    signal(SIGXFSZ, SIG_IGN); /* EFBIG instead */
    setrlimit(RLIMIT_FSIZE, &fsize);
    snprintf(fuzz_base, sizeof(fuzz_base), "%s/banger-fuzz-tar.XXXXXX",
             tmp && tmp[0] ? tmp : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"));
    if (!mkdtemp(fuzz_base)) {
        perror(fuzz_base);
        exit(1);
    }
    snprintf(fuzz_root, sizeof(fuzz_root), "%s/root", fuzz_base);
    snprintf(outside, sizeof(outside), "%s/outside", fuzz_base);
    snprintf(fuzz_secret, sizeof(fuzz_secret), "%s/secret", outside);
    FUZZ_CHECK(mkdir(outside, 0755) == 0);
    fd = open(fuzz_secret, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, FUZZ_SECRET, strlen(FUZZ_SECRET)) == (ssize_t)strlen(FUZZ_SECRET));
    close(fd);
    atexit(fuzz_cleanup);
    bg_log_set_level(BANGER_LOG_ERROR); /* no line per skipped dev/ entry */
    return 0;
}

/* Check and remove the tree below dfd (which it closes): no special files,
 * nothing linked to the secret. Directories are made searchable first, as
 * an archive may leave them mode 0. */
static void fuzz_check_remove(int dfd, const struct stat *secret)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;

    FUZZ_CHECK(d != NULL);
    while ((de = readdir(d))) {
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        FUZZ_CHECK(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
        FUZZ_CHECK(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode));
        FUZZ_CHECK(!(st.st_dev == secret->st_dev && st.st_ino == secret->st_ino));
        if (S_ISDIR(st.st_mode)) {
            int sub;
            fchmodat(dirfd(d), de->d_name, 0700, 0);
            sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            FUZZ_CHECK(sub >= 0);
            fuzz_check_remove(sub, secret);
            FUZZ_CHECK(unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0);
        } else {
            FUZZ_CHECK(unlinkat(dirfd(d), de->d_name, 0) == 0);
        }
    }
    closedir(d);
}

/* The names in directory `path`, other than "." and "..", must be `want`. */
static void fuzz_check_names(const char *path, const char *const *want, int n_want)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    FUZZ_CHECK(d != NULL);
    while ((de = readdir(d))) {
        bool known = false;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        for (int i = 0; i < n_want; i++)
            known = known || strcmp(de->d_name, want[i]) == 0;
        FUZZ_CHECK(known);
        n++;
    }
    closedir(d);
    FUZZ_CHECK(n <= n_want);
}

/* base holds only root and outside; outside only the secret, unchanged,
 * with one link. */
static void fuzz_check_outside(struct stat *secret)
{
    static const char *const in_base[] = { "root", "outside" };
    static const char *const in_outside[] = { "secret" };
    char outside[300], buf[64];
    ssize_t len;
    int fd;

    fuzz_check_names(fuzz_base, in_base, 2);
    snprintf(outside, sizeof(outside), "%s/outside", fuzz_base);
    fuzz_check_names(outside, in_outside, 1);
    FUZZ_CHECK(lstat(fuzz_secret, secret) == 0);
    FUZZ_CHECK(S_ISREG(secret->st_mode) && secret->st_nlink == 1);
    fd = open(fuzz_secret, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    len = read(fd, buf, sizeof(buf));
    close(fd);
    FUZZ_CHECK(len == (ssize_t)strlen(FUZZ_SECRET) && memcmp(buf, FUZZ_SECRET, (size_t)len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct banger_error err = { 0 };
    struct stat secret;
    uint64_t bytes = 0;
    int fd, dfd, r;

    fd = memfd_create("fuzz.tar", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
    FUZZ_CHECK(mkdir(fuzz_root, 0755) == 0);

    r = images_extract_tree_fd(fd, "fuzz.tar", fuzz_root, 0, &bytes, &err);
    close(fd);
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL || r == -EIO);
        fuzz_check_message(bg_error_text(&err), sizeof(err.msg), 0);
    }

    fuzz_check_outside(&secret);
    chmod(fuzz_root, 0700);
    dfd = open(fuzz_root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    FUZZ_CHECK(dfd >= 0);
    fuzz_check_remove(dfd, &secret);
    FUZZ_CHECK(rmdir(fuzz_root) == 0);
    return 0;
}
