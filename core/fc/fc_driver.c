/* The launch step: launch, graceful stop, kill, adoption, version check. */
#include "config.h"

#include "fc/fc.h"
#include "host/host.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

extern char **environ;

/* SIGKILL -> exit: freeing a large guest can take seconds. */
#define FC_KILL_WAIT_MS 30000
#define FC_VERSION_TIMEOUT_MS 10000
#define FC_MANIFEST_MAX (1024 * 1024)

static long long fc_driver_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fc_driver_api_timeout(const struct fc_driver *drv)
{
    return drv && drv->api_timeout_ms > 0 ? drv->api_timeout_ms : FC_DEFAULT_API_TIMEOUT_MS;
}

static pid_t fc_driver_recorded_pid(struct banger_vm *vm)
{
    if (vm->vmm_pid > 0)
        return vm->vmm_pid;
    const char *h = bg_vm_get_handle(vm, FC_HANDLE_PID);
    return h ? (pid_t)atoi(h) : 0;
}

int fc_launch(const struct fc_driver *drv, struct banger_vm *vm, struct banger_error *err)
{
    char *sock = NULL;
    int timeout = fc_driver_api_timeout(drv);
    int r;

    r = fc_check_version(drv->firecracker_bin, vm, err);
    if (r < 0)
        goto cleanup;
    r = fc_spawn(drv, vm, err);
    if (r < 0)
        goto cleanup;
    r = fc_wait_api(vm, drv->api_wait_ms > 0 ? drv->api_wait_ms : FC_DEFAULT_API_WAIT_MS, err);
    if (r < 0)
        goto cleanup;
    /* Fault points let tests prove that undo copes with every partial state. */
    r = bg_host_api()->fault_point(vm, "fc.configure", err);
    if (r < 0)
        goto cleanup;
    sock = fc_api_sock_for_stop(vm);
    r = fc_configure(vm, sock, timeout, err);
    if (r < 0)
        goto cleanup;
    r = bg_host_api()->fault_point(vm, "fc.start", err);
    if (r < 0)
        goto cleanup;
    r = fc_action(sock, "InstanceStart", timeout, err);
    if (r < 0)
        goto cleanup;
    bg_log(BANGER_LOG_INFO, vm->info.id, "firecracker booted (pid %d)", vm->vmm_pid);
cleanup:
    /* A VMM that died while being configured explains the failed request. */
    if (r < 0 && sock && fc_pid_exited(vm->vmm_pid)) {
        struct banger_error why = { 0 };
        if (fc_check_alive(vm, &why) < 0)
            bg_error_join(err, &why);
    }
    free(sock);
    return r;
}

/* The process is gone: end its console writer, drop its sockets and handles. */
static int fc_driver_forget(struct banger_vm *vm, struct banger_error *err)
{
    static const char *const keys[] = { FC_HANDLE_PID, FC_HANDLE_API_SOCK };
    int r = fc_console_log_stop(vm, err);
    if (r < 0)
        return r;
    r = fc_remove_sockets(vm, err);
    if (r == 0)
        r = fc_jail_remove(vm, err);
    vm->vmm_pid = 0;
    for (size_t i = 0; r == 0 && i < sizeof(keys) / sizeof(keys[0]); i++)
        if (bg_vm_get_handle(vm, keys[i]))
            r = bg_vm_set_handle(vm, keys[i], NULL, err);
    return r;
}

int fc_stop(const struct fc_driver *drv, struct banger_vm *vm, int grace_ms,
            struct banger_error *err)
{
    char *sock = fc_api_sock_for_stop(vm);
    int r = 0;

    pid_t pid = fc_find_pid(sock, fc_driver_recorded_pid(vm));
    if (pid > 0 && grace_ms > 0) {
        struct banger_error e = { 0 };
        long long start = fc_driver_now_ms();
        int timeout = fc_driver_api_timeout(drv);
        r = fc_action(sock, "SendCtrlAltDel", timeout < grace_ms ? timeout : grace_ms, &e);
        if (r == 0) {
            long long left = grace_ms - (fc_driver_now_ms() - start);
            r = fc_signal_and_wait(sock, pid, 0, left > 0 ? (int)left : 0, &e);
        }
        if (r < 0)
            bg_log(BANGER_LOG_INFO, vm->info.id, "graceful stop of pid %d failed (%s); killing",
                   (int)pid, bg_error_text(&e));
    }
    if (pid > 0) {
        r = fc_signal_and_wait(sock, pid, SIGKILL, FC_KILL_WAIT_MS, err);
        if (r < 0)
            goto cleanup;
    }
    r = fc_driver_forget(vm, err);
cleanup:
    free(sock);
    return r;
}

int fc_kill(struct banger_vm *vm, int sig, struct banger_error *err)
{
    char *sock = fc_api_sock_for_stop(vm);
    int r = fc_signal_and_wait(sock, fc_driver_recorded_pid(vm), sig > 0 ? sig : SIGKILL,
                               FC_KILL_WAIT_MS, err);
    if (r == 0)
        r = fc_driver_forget(vm, err);
    free(sock);
    return r;
}

pid_t fc_find(struct banger_vm *vm)
{
    char *sock = fc_api_sock_for_stop(vm);
    pid_t pid = fc_find_pid(sock, fc_driver_recorded_pid(vm));
    free(sock);
    return pid;
}

pid_t fc_adopt(struct banger_vm *vm)
{
    char *sock = fc_api_sock_for_stop(vm);
    pid_t recorded = fc_driver_recorded_pid(vm);
    pid_t pid = fc_find_pid(sock, recorded);
    vm->vmm_pid = (int)pid;
    if (pid > 0 && pid != recorded) {
        char text[24];
        struct banger_error e = { 0 };
        snprintf(text, sizeof(text), "%d", (int)pid);
        if (bg_vm_set_handle(vm, FC_HANDLE_PID, text, &e) < 0)
            bg_log(BANGER_LOG_WARNING, vm->info.id, "%s", bg_error_text(&e));
    }
    free(sock);
    return pid;
}

static int fc_ops_launch(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    return fc_launch(ctx, vm, err);
}

static int fc_ops_undo(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    (void)ctx;
    return fc_kill(vm, SIGKILL, err);
}

static int fc_ops_stop(void *ctx, struct banger_vm *vm, struct banger_error *err)
{
    const struct fc_driver *drv = ctx;
    int grace = drv->stop_grace_ms > 0 ? drv->stop_grace_ms : FC_DEFAULT_STOP_GRACE_MS;
    return fc_stop(drv, vm, grace, err);
}

void fc_driver_launch_ops(struct fc_driver *drv, struct engine_launch_ops *ops)
{
    ops->ctx = drv;
    ops->launch = fc_ops_launch;
    ops->undo = fc_ops_undo;
    ops->stop = fc_ops_stop;
}

/* "X.Y.Z" -> three numbers; false when unparsable. */
static bool fc_version_parse(const char *s, unsigned v[3])
{
    int used = 0;
    return s && sscanf(s, "%u.%u.%u%n", &v[0], &v[1], &v[2], &used) == 3 && used > 0;
}

int fc_version_compare(const char *a, const char *b)
{
    unsigned va[3], vb[3];
    bool ok_a = fc_version_parse(a, va), ok_b = fc_version_parse(b, vb);
    if (!ok_a || !ok_b)
        return (int)ok_a - (int)ok_b;
    for (int i = 0; i < 3; i++)
        if (va[i] != vb[i])
            return va[i] < vb[i] ? -1 : 1;
    return 0;
}

bool fc_version_supported(const char *version)
{
    return fc_version_compare(version, FC_MIN_VERSION) >= 0;
}

int fc_version(const char *bin, char **version, struct banger_error *err)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    struct banger_run_opts opts = { .struct_size = sizeof(opts),
                                    .timeout_ms = FC_VERSION_TIMEOUT_MS };
    const char *name = bin ? bin : FC_DEFAULT_BIN;
    char *path = runner_find_program(name, NULL);
    unsigned v[3];
    int r = 0;

    if (!path) {
        r = bg_fail(err, -ENOENT, "firecracker: binary '%s' not found or not executable", name);
        goto cleanup;
    }
    /* The same environment the VMM itself gets. */
    opts.envp = (const char *const *)environ;
    const char *argv[] = { path, "--version", NULL };
    r = runner_run(argv, &opts, &res, err);
    if (r < 0)
        goto cleanup;
    const char *p = res.out ? strstr(res.out, "Firecracker v") : NULL;
    if (!p || !fc_version_parse(p + strlen("Firecracker v"), v)) {
        r = bg_fail(err, -EPROTO, "firecracker: '%s --version' printed no \"Firecracker vX.Y.Z\"",
                    path);
        goto cleanup;
    }
    *version = xasprintf("%u.%u.%u", v[0], v[1], v[2]);
cleanup:
    runner_result_clear(&res);
    free(path);
    return r;
}

/* One remembered answer per binary; replacing the binary changes its inode,
 * size or mtime, and then it is asked again. */
struct fc_version_memo {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char *version;
};

static pthread_mutex_t fc_version_memo_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fc_version_memo fc_version_memo;

static bool fc_version_memo_matches(const char *path, const struct stat *st)
{
    const struct fc_version_memo *m = &fc_version_memo;
    return m->path && strcmp(m->path, path) == 0 && m->dev == st->st_dev &&
           m->ino == st->st_ino && m->size == st->st_size &&
           m->mtime.tv_sec == st->st_mtim.tv_sec && m->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

int fc_version_cached(const char *bin, char **version, struct banger_error *err)
{
    const char *name = bin ? bin : FC_DEFAULT_BIN;
    char *path = runner_find_program(name, NULL);
    char *found = NULL;
    struct stat st;
    int r = 0;

    if (!path || stat(path, &st) < 0) {
        r = bg_fail(err, -ENOENT, "firecracker: binary '%s' not found or not executable", name);
        goto cleanup;
    }
    pthread_mutex_lock(&fc_version_memo_lock);
    if (fc_version_memo_matches(path, &st))
        found = xstrdup(fc_version_memo.version);
    pthread_mutex_unlock(&fc_version_memo_lock);
    if (!found) {
        r = fc_version(path, &found, err);
        if (r < 0)
            goto cleanup;
        pthread_mutex_lock(&fc_version_memo_lock);
        free(fc_version_memo.path);
        free(fc_version_memo.version);
        fc_version_memo = (struct fc_version_memo){
            .path = xstrdup(path), .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
            .mtime = st.st_mtim, .version = xstrdup(found),
        };
        pthread_mutex_unlock(&fc_version_memo_lock);
    }
    *version = found;
cleanup:
    free(path);
    return r;
}

int fc_version_too_old(const char *version, struct banger_error *err)
{
    return bg_fail(err, -ENOTSUP,
                   "firecracker %s is older than " FC_MIN_VERSION ", the first release that "
                   "describes virtio devices in ACPI, which the guest kernel needs to find its "
                   "disks", version);
}

/* "boot": {"min_firecracker": ...} of the manifest beside the VM's rootfs;
 * malloc'd, NULL when the image has none (registered images may lack a
 * manifest). *acpi: the image says its kernel finds devices through ACPI. */
static char *fc_image_min_version(const struct banger_vm *vm, bool *acpi)
{
    char *dir_copy = NULL, *path = NULL, *text = NULL, *min = NULL;
    cJSON *manifest = NULL;
    struct banger_error ignored = { 0 };

    if (!vm->info.rootfs_path || !vm->info.rootfs_path[0])
        goto cleanup;
    dir_copy = xstrdup(vm->info.rootfs_path);
    path = fs_join(dirname(dir_copy), "manifest.json");
    if (fs_read_all(path, FC_MANIFEST_MAX, &text, NULL, &ignored) < 0)
        goto cleanup;
    manifest = cJSON_Parse(text);
    const cJSON *boot = cJSON_GetObjectItemCaseSensitive(manifest, "boot");
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(boot, "min_firecracker");
    const cJSON *discovery = cJSON_GetObjectItemCaseSensitive(boot, "device_discovery");
    if (cJSON_IsString(want) && want->valuestring[0])
        min = xstrdup(want->valuestring);
    *acpi = cJSON_IsString(discovery) && strcmp(discovery->valuestring, "acpi") == 0;
cleanup:
    cJSON_Delete(manifest);
    free(text);
    free(path);
    free(dir_copy);
    return min;
}

int fc_check_version(const char *bin, const struct banger_vm *vm, struct banger_error *err)
{
    char *version = NULL, *image_min = NULL;
    int r = fc_version_cached(bin, &version, err);
    if (r < 0)
        goto cleanup;
    if (!fc_version_supported(version)) {
        r = fc_version_too_old(version, err);
        goto cleanup;
    }
    bool acpi = false;
    image_min = vm ? fc_image_min_version(vm, &acpi) : NULL;
    if (image_min && fc_version_compare(version, image_min) < 0)
        r = bg_fail(err, -ENOTSUP,
                    "firecracker %s is older than %s, which this VM's image asks for "
                    "(manifest.json boot.min_firecracker)%s", version, image_min,
                    acpi ? ": its kernel finds its disks through virtio devices described in "
                           "ACPI" : "");
cleanup:
    free(image_min);
    free(version);
    return r;
}
