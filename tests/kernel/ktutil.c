#include "config.h"

#include "ktutil.h"

#include "host/host.h"
#include "runner/runner.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kt_run(const char *const *argv, char **out)
{
    struct banger_run_result res = {.struct_size = sizeof(res)};
    struct banger_error e = {0};
    int status;

    runner_run(argv, NULL, &res, &e);
    status = res.exit_status;
    if (out)
        *out = strdup(res.out ? res.out : "");
    if (status != 0)
        fprintf(stderr, "%s: exit %d: %s%s\n", argv[0], status, res.err ? res.err : "",
                bg_error_text(&e));
    runner_result_clear(&res);
    return status;
}

static void kt_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

void kt_env_init(struct kt_env *env, const char *conf)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    struct banger_error e = {0};
    char tpl[512], files[600], path[700];
    int fd;

    memset(env, 0, sizeof(*env));
    snprintf(tpl, sizeof(tpl), "%s/bgsnap.XXXXXX", tmp);
    ck_assert_ptr_nonnull(mkdtemp(tpl));
    env->dir = strdup(tpl);
    snprintf(files, sizeof(files), "%s/files", env->dir);
    ck_assert_int_eq(mkdir(files, 0755), 0);
    snprintf(path, sizeof(path), "%s/hello.txt", files);
    kt_write(path, "hello from the image\n");
    snprintf(path, sizeof(path), "%s/etc", files);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/etc/os-release", files);
    kt_write(path, "NAME=banger-test\n");

    snprintf(env->image, sizeof(env->image), "%s/rootfs.ext4", env->dir);
    fd = open(env->image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 32 << 20), 0);
    close(fd);
    {
        const char *argv[] = {"mkfs.ext4", "-q", "-F", "-d", files, env->image, NULL};
        ck_assert_int_eq(kt_run(argv, NULL), 0);
    }

    ck_assert_msg(config_load_string(conf, "test.conf", &env->cfg, &e) == 0, "%s",
                  bg_error_text(&e));
    config_set_current(env->cfg);
    ck_assert_msg(loader_open(BUILDDIR "/plugins/snapshot/.libs", "snapshot", false,
                              &env->plugin, &e) == 0, "%s", bg_error_text(&e));
    ck_assert_msg(env->plugin.cap->init(bg_host_api(), config_group(env->cfg, "snapshot"),
                                        &env->plugin.state, &e) == 0, "%s", bg_error_text(&e));
    env->plugin.inited = true;
}

void kt_env_free(struct kt_env *env)
{
    if (env->plugin.inited && env->plugin.cap->fini)
        env->plugin.cap->fini(env->plugin.state);
    env->plugin.inited = false;
    if (env->plugin.dl)
        loader_close(&env->plugin);
    if (env->dir) {
        kt_rmtree(env->dir);
        free(env->dir);
    }
    config_set_current(NULL);
    config_free(env->cfg);
    memset(env, 0, sizeof(*env));
}

struct banger_vm *kt_vm(struct kt_env *env, const char *id)
{
    struct banger_error e = {0};
    struct banger_vm *vm = NULL;
    char state[600];
    struct banger_vm_info info = {
        .struct_size = sizeof(info), .vcpu = 1, .id = id, .name = "web", .ip = "172.29.0.2",
        .mac = "06:00:ac:1d:00:02", .gateway = "172.29.0.1", .prefix_len = 24, .cid = 3,
        .memory_mib = 128, .state_dir = state, .runtime_dir = state,
        .rootfs_path = env->image, .bridge = "br-banger",
    };

    snprintf(state, sizeof(state), "%s/%s", env->dir, id);
    if (mkdir(state, 0700) < 0)
        ck_assert_int_eq(errno, EEXIST);
    ck_assert_msg(bg_vm_new(&info, &vm, &e) == 0, "%s", bg_error_text(&e));
    return vm;
}

size_t kt_bound_loops(const char *under)
{
    DIR *d = opendir("/sys/block");
    struct dirent *de;
    size_t n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d))) {
        char p[300], backing[4096];
        ssize_t len;
        int fd;

        if (strncmp(de->d_name, "loop", 4) != 0)
            continue;
        snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", de->d_name);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        len = read(fd, backing, sizeof(backing) - 1);
        close(fd);
        if (len <= 0)
            continue;
        backing[len] = '\0';
        if (!under || strncmp(backing, under, strlen(under)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static int kt_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void kt_rmtree(const char *path)
{
    nftw(path, kt_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
