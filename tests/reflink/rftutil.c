#include "config.h"

#include "rftutil.h"

#include "host/host.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int rft_run(const char *const *argv, char **out)
{
    int pipefd[2];
    pid_t pid;
    int status = 0;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);

    ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(pipefd[1], 1);
        dup2(devnull, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    for (;;) {
        ssize_t n;
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        n = read(pipefd[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

uint64_t rft_allocated(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

static void rft_sized_file(const char *path, uint64_t bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)bytes), 0);
    close(fd);
}

void rft_fs_make(struct rft_fs *fs, const char *fstype)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char opts[64];

    memset(fs, 0, sizeof(*fs));
    snprintf(fs->dir, sizeof(fs->dir), "%s/bgreflink.XXXXXX", tmp);
    ck_assert_ptr_nonnull(mkdtemp(fs->dir));
    snprintf(fs->mnt, sizeof(fs->mnt), "%s/mnt", fs->dir);
    snprintf(fs->backing, sizeof(fs->backing), "%s/fs.img", fs->dir);
    ck_assert_int_eq(mkdir(fs->mnt, 0700), 0);
    /* xfs wants at least 300 MiB; sparse, so it costs nothing. */
    rft_sized_file(fs->backing, 1536ull << 20);
    if (strcmp(fstype, "xfs") == 0) {
        const char *argv[] = {"mkfs.xfs", "-q", "-f", "-m", "reflink=1", fs->backing, NULL};
        ck_assert_int_eq(rft_run(argv, NULL), 0);
    } else if (strcmp(fstype, "btrfs") == 0) {
        const char *argv[] = {"mkfs.btrfs", "-q", "-f", fs->backing, NULL};
        ck_assert_int_eq(rft_run(argv, NULL), 0);
    } else {
        const char *argv[] = {"mkfs.ext4", "-q", "-F", fs->backing, NULL};
        ck_assert_int_eq(rft_run(argv, NULL), 0);
    }
    /* Mounts stay in this test's own namespace and vanish with it. */
    ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s (needs root)",
                  strerror(errno));
    ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    snprintf(opts, sizeof(opts), "loop");
    {
        const char *argv[] = {"mount", "-t", fstype, "-o", opts, fs->backing, fs->mnt, NULL};
        ck_assert_int_eq(rft_run(argv, NULL), 0);
    }
}

void rft_fs_free(struct rft_fs *fs)
{
    char *out = NULL;

    if (!fs->dir[0])
        return;
    /* Unmounting the last mount releases the autoclear loop device. */
    ck_assert_int_eq(umount2(fs->mnt, 0), 0);
    {
        const char *argv[] = {"losetup", "-j", fs->backing, NULL};
        rft_run(argv, &out);
        ck_assert_msg(out[0] == '\0', "loop device left: %s", out);
        free(out);
    }
    unlink(fs->backing);
    rmdir(fs->mnt);
    rmdir(fs->dir);
    memset(fs, 0, sizeof(*fs));
}

void rft_make_image(const char *path, uint64_t bytes, unsigned data_mib)
{
    char files[600], file[700];
    unsigned char buf[65536];

    snprintf(files, sizeof(files), "%s.files", path);
    ck_assert_int_eq(mkdir(files, 0755), 0);
    snprintf(file, sizeof(file), "%s/hello.txt", files);
    {
        int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ck_assert_int_eq(write(fd, "hello from the image\n", 21), 21);
        close(fd);
    }
    /* Incompressible-ish data, one MiB per file, like binaries in a rootfs. */
    for (unsigned i = 0; i < data_mib; i++) {
        int fd;
        snprintf(file, sizeof(file), "%s/blob%u", files, i);
        fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        for (unsigned k = 0; k < 16; k++) {
            for (size_t j = 0; j < sizeof(buf); j++)
                buf[j] = (unsigned char)((i * 131u + k * 31u + j * 7u) ^ (j >> 8));
            ck_assert_int_eq(write(fd, buf, sizeof(buf)), sizeof(buf));
        }
        close(fd);
    }
    rft_sized_file(path, bytes);
    {
        const char *argv[] = {"mkfs.ext4", "-q", "-F", "-d", files, path, NULL};
        ck_assert_int_eq(rft_run(argv, NULL), 0);
    }
    {
        const char *argv[] = {"rm", "-rf", files, NULL};
        ck_assert_int_eq(rft_run(argv, NULL), 0);
    }
}

int rft_module_load(struct rft_module *m, const char *conf, struct banger_error *e)
{
    char *text = NULL;
    int r;

    memset(m, 0, sizeof(*m));
    /* Line 1 enables the module, so its group is the module's to check. */
    ck_assert_int_ge(asprintf(&text, "plugins = ( \"reflink\" );\n%s", conf), 0);
    r = config_load_string(text, "test.conf", &m->cfg, e);
    free(text);
    if (r < 0)
        return r;
    config_set_current(m->cfg);
    r = loader_open(BUILDDIR "/plugins/reflink/.libs", "reflink", false, &m->plugin, e);
    if (r < 0)
        return r;
    r = m->plugin.cap->init(bg_host_api(), config_group(m->cfg, "reflink"), &m->plugin.state, e);
    if (r == 0)
        m->plugin.inited = true;
    return r;
}

void rft_module_free(struct rft_module *m)
{
    if (m->plugin.inited && m->plugin.cap->fini)
        m->plugin.cap->fini(m->plugin.state);
    m->plugin.inited = false;
    if (m->plugin.dl)
        loader_close(&m->plugin);
    config_set_current(NULL);
    config_free(m->cfg);
    memset(m, 0, sizeof(*m));
}

struct banger_vm *rft_vm(const char *parent, const char *id, const char *image)
{
    struct banger_error e = {0};
    struct banger_vm *vm = NULL;
    char state[600];
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .vcpu = 1, .id = id, .name = "web", .ip = "172.29.0.2",
        .mac = "06:00:ac:1d:00:02", .gateway = "172.29.0.1", .prefix_len = 24, .cid = 3,
        .memory_mib = 128, .disk_size = 64ull << 20, .overlay_size = 64ull << 20,
        .state_dir = state, .runtime_dir = state, .rootfs_path = image, .bridge = "br-banger",
    };

    snprintf(state, sizeof(state), "%s/%s", parent, id);
    if (mkdir(state, 0700) < 0)
        ck_assert_int_eq(errno, EEXIST);
    ck_assert_msg(bg_vm_new(&info, &vm, &e) == 0, "%s", bg_error_text(&e));
    return vm;
}

static char rft_capture_file[512];

void rft_capture_stderr(const char *file)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    close(fd);
    snprintf(rft_capture_file, sizeof(rft_capture_file), "%s", file);
}

char *rft_captured(void)
{
    const char *argv[] = {"cat", rft_capture_file, NULL};
    char *out = NULL;

    ck_assert_int_eq(rft_run(argv, &out), 0);
    return out;
}
