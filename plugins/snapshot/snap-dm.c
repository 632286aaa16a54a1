#include "config.h"

#include "snap-dm.h"

#include <errno.h>
#include <libdevmapper.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static pthread_mutex_t snap_dm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t snap_dm_once = PTHREAD_ONCE_INIT;
/* libdevmapper's last error line, for messages. libdevmapper logs from the
 * thread that makes the call, so a per-thread buffer keeps the reason of one
 * VM's start out of another's message even for calls made outside the lock. */
static _Thread_local char snap_dm_last_error[256];

static void snap_dm_log(int level, const char *file, int line, int dm_errno, const char *fmt,
                        ...)
{
    va_list ap;

    if ((level & 7) > 3) /* keep errors only (_LOG_ERR = 3) */
        return;
    va_start(ap, fmt);
    vsnprintf(snap_dm_last_error, sizeof(snap_dm_last_error), fmt, ap);
    va_end(ap);
}

static void snap_dm_setup_once(void)
{
    dm_log_with_errno_init(snap_dm_log);
    /* Without a running udev, waiting on a cookie would hang; libdevmapper
     * then creates and removes the /dev/mapper nodes itself. */
    if (access("/run/udev/control", F_OK) != 0)
        dm_udev_set_sync_support(0);
}

void snap_dm_setup(void)
{
    pthread_once(&snap_dm_once, snap_dm_setup_once);
}

/* "<what>: <libdevmapper's line or strerror>" */
static void snap_dm_why(char *why, size_t why_len, const char *what, int r)
{
    if (!why)
        return;
    if (snap_dm_last_error[0])
        snprintf(why, why_len, "%s: %s", what, snap_dm_last_error);
    else
        snprintf(why, why_len, "%s: %s", what, strerror(r < 0 ? -r : EIO));
}

static int snap_dm_task_errno(struct dm_task *dmt)
{
    int e = dm_task_get_errno(dmt);
    return e > 0 ? -e : -EIO;
}

int snap_dm_check_snapshot_target(char *why, size_t why_len)
{
    struct dm_versions *v, *last;
    struct dm_task *dmt;
    int r = -ENOENT;

    snap_dm_setup();
    pthread_mutex_lock(&snap_dm_lock);
    snap_dm_last_error[0] = '\0';
    if (access("/dev/mapper/control", F_OK) != 0 && access("/proc/misc", F_OK) == 0) {
        FILE *f = fopen("/proc/misc", "re");
        char line[128];
        int found = 0;

        while (f && fgets(line, sizeof(line), f))
            if (strstr(line, "device-mapper"))
                found = 1;
        if (f)
            fclose(f);
        if (!found) {
            snprintf(why, why_len,
                     "no device-mapper in this kernel (no /dev/mapper/control; modprobe dm-mod)");
            r = -ENODEV;
            goto cleanup;
        }
    }
    dmt = dm_task_create(DM_DEVICE_LIST_VERSIONS);
    if (!dmt) {
        r = -ENOMEM;
        snap_dm_why(why, why_len, "device-mapper", r);
        goto cleanup;
    }
    if (!dm_task_run(dmt)) {
        r = snap_dm_task_errno(dmt);
        snap_dm_why(why, why_len, "device-mapper not usable", r);
        dm_task_destroy(dmt);
        goto cleanup;
    }
    v = dm_task_get_versions(dmt);
    do {
        last = v;
        if (strcmp(v->name, "snapshot") == 0)
            r = 0;
        v = (struct dm_versions *)((char *)v + v->next);
    } while (last != v);
    dm_task_destroy(dmt);
    if (r < 0)
        snprintf(why, why_len, "no dm-snapshot target in the kernel (modprobe dm-snapshot)");
cleanup:
    pthread_mutex_unlock(&snap_dm_lock);
    return r;
}

int snap_dm_exists(const char *name)
{
    struct dm_task *dmt;
    struct dm_info info;
    int r;

    snap_dm_setup();
    pthread_mutex_lock(&snap_dm_lock);
    dmt = dm_task_create(DM_DEVICE_INFO);
    if (!dmt) {
        r = -ENOMEM;
        goto cleanup;
    }
    if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) || !dm_task_get_info(dmt, &info))
        r = snap_dm_task_errno(dmt);
    else
        r = info.exists ? 1 : 0;
    dm_task_destroy(dmt);
cleanup:
    pthread_mutex_unlock(&snap_dm_lock);
    return r;
}

int snap_dm_create_snapshot(const char *name, dev_t origin, dev_t cow, uint64_t sectors,
                            unsigned chunk, char *why, size_t why_len)
{
    char params[96];
    uint32_t cookie = 0;
    struct dm_task *dmt;
    int r = 0;

    snap_dm_setup();
    snprintf(params, sizeof(params), "%u:%u %u:%u P %u", major(origin), minor(origin),
             major(cow), minor(cow), chunk);
    pthread_mutex_lock(&snap_dm_lock);
    snap_dm_last_error[0] = '\0';
    dmt = dm_task_create(DM_DEVICE_CREATE);
    if (!dmt) {
        r = -ENOMEM;
        snap_dm_why(why, why_len, "creating dm device", r);
        goto cleanup;
    }
    if (!dm_task_set_name(dmt, name) || !dm_task_add_target(dmt, 0, sectors, "snapshot", params) ||
        !dm_task_set_cookie(dmt, &cookie, 0)) {
        r = -EINVAL;
        snap_dm_why(why, why_len, "preparing dm device", r);
        dm_task_destroy(dmt);
        goto cleanup;
    }
    if (!dm_task_run(dmt)) {
        r = snap_dm_task_errno(dmt);
        snap_dm_why(why, why_len, "creating dm snapshot", r);
    }
    /* Also after a failure: releases the cookie, makes or drops the node. */
    dm_udev_wait(cookie);
    dm_task_destroy(dmt);
cleanup:
    pthread_mutex_unlock(&snap_dm_lock);
    return r;
}

int snap_dm_remove(const char *name, char *why, size_t why_len)
{
    uint32_t cookie = 0;
    struct dm_task *dmt;
    int r = 0;

    snap_dm_setup();
    pthread_mutex_lock(&snap_dm_lock);
    snap_dm_last_error[0] = '\0';
    dmt = dm_task_create(DM_DEVICE_REMOVE);
    if (!dmt) {
        r = -ENOMEM;
        snap_dm_why(why, why_len, "removing dm device", r);
        goto cleanup;
    }
    if (!dm_task_set_name(dmt, name) || !dm_task_set_cookie(dmt, &cookie, 0)) {
        r = -EINVAL;
        snap_dm_why(why, why_len, "preparing dm removal", r);
        dm_task_destroy(dmt);
        goto cleanup;
    }
    if (!dm_task_run(dmt)) {
        r = snap_dm_task_errno(dmt);
        if (r != -ENXIO)
            snap_dm_why(why, why_len, "removing dm device", r);
    }
    dm_udev_wait(cookie);
    dm_task_destroy(dmt);
cleanup:
    pthread_mutex_unlock(&snap_dm_lock);
    return r;
}

int snap_dm_deps(const char *name, dev_t *out, size_t max, size_t *n_out)
{
    struct dm_task *dmt;
    struct dm_deps *deps;
    int r = 0;

    snap_dm_setup();
    *n_out = 0;
    pthread_mutex_lock(&snap_dm_lock);
    dmt = dm_task_create(DM_DEVICE_DEPS);
    if (!dmt) {
        r = -ENOMEM;
        goto cleanup;
    }
    if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) || !(deps = dm_task_get_deps(dmt))) {
        r = snap_dm_task_errno(dmt);
    } else {
        for (uint32_t i = 0; i < deps->count && *n_out < max; i++)
            out[(*n_out)++] = (dev_t)deps->device[i];
    }
    dm_task_destroy(dmt);
cleanup:
    pthread_mutex_unlock(&snap_dm_lock);
    return r;
}

void snap_dm_list_free(char **names)
{
    if (!names)
        return;
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

int snap_dm_list(const char *prefix, char ***out, char *why, size_t why_len)
{
    struct dm_names *names;
    struct dm_task *dmt;
    char **list = NULL;
    size_t n = 0;
    int r = 0;

    snap_dm_setup();
    pthread_mutex_lock(&snap_dm_lock);
    snap_dm_last_error[0] = '\0';
    dmt = dm_task_create(DM_DEVICE_LIST);
    if (!dmt) {
        r = -ENOMEM;
        goto cleanup;
    }
    if (!dm_task_run(dmt) || !(names = dm_task_get_names(dmt))) {
        r = snap_dm_task_errno(dmt);
        snap_dm_why(why, why_len, "listing dm devices", r);
        dm_task_destroy(dmt);
        goto cleanup;
    }
    list = calloc(1, sizeof(char *));
    if (!list) {
        r = -ENOMEM;
        dm_task_destroy(dmt);
        goto cleanup;
    }
    if (names->dev) {
        unsigned next;

        do {
            next = names->next;
            if (strncmp(names->name, prefix, strlen(prefix)) == 0) {
                char **grown = realloc(list, (n + 2) * sizeof(char *));
                if (!grown || !(grown[n] = strdup(names->name))) {
                    list = grown ? grown : list;
                    r = -ENOMEM;
                    break;
                }
                list = grown;
                list[++n] = NULL;
            }
            names = (struct dm_names *)((char *)names + next);
        } while (next);
    }
    dm_task_destroy(dmt);
    if (r < 0) {
        snap_dm_list_free(list);
        list = NULL;
    }
cleanup:
    pthread_mutex_unlock(&snap_dm_lock);
    if (r == 0)
        *out = list;
    return r;
}
