#include "config.h"

#include "tap-pool.h"
#include "tap-addr.h"
#include "tap-nl.h"

#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Names are <prefix><n>; n wraps well before the name outgrows IFNAMSIZ. */
#define TAP_POOL_NAME_WRAP 1000000u
#define TAP_POOL_NAME_TRIES 64
#define TAP_POOL_RETRY_MS 1000

struct tap_pool {
    struct tap_pool_cfg cfg;
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* the thread: pool below size, or stop */
    pthread_cond_t changed;   /* waiters: a refill finished */
    char names[TAP_POOL_MAX][IFNAMSIZ];
    size_t n;
    char creating[IFNAMSIZ];  /* a TAP being made by the thread, "" when none */
    /* Surplus TAPs handed back while the pool was full: the thread deletes
     * them, so a VM's teardown does not wait for the kernel's unregister. */
    char doomed[TAP_POOL_MAX][IFNAMSIZ];
    size_t n_doomed;
    unsigned next;
    unsigned long refill_failures;
    char last_error[256];
    bool stop;
    bool thread_running;
    pthread_t thread;
};

int tap_pool_new(const struct tap_pool_cfg *cfg, struct tap_pool **out)
{
    struct tap_pool *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    p->cfg = *cfg;
    if (p->cfg.size > TAP_POOL_MAX)
        p->cfg.size = TAP_POOL_MAX;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->changed, NULL);
    *out = p;
    return 0;
}

int tap_pool_bridge(struct tap_pool *p, int *ifindex, char *why, size_t why_len)
{
    return tap_bridge_ensure(p->cfg.bridge, p->cfg.gateway, p->cfg.prefix_len, ifindex, why,
                             why_len);
}

/* Create one TAP on the bridge. `reserve`, when set, is filled with the
 * name under the lock before the device exists so reconcile never takes
 * it for an orphan. */
static int tap_pool_make(struct tap_pool *p, char name[IFNAMSIZ], bool reserve, char *why,
                         size_t why_len)
{
    int br, r = -EBUSY;

    r = tap_pool_bridge(p, &br, why, why_len);
    if (r < 0)
        return r;
    for (int tries = 0; tries < TAP_POOL_NAME_TRIES; tries++) {
        pthread_mutex_lock(&p->lock);
        snprintf(name, IFNAMSIZ, "%s%u", p->cfg.prefix, p->next % TAP_POOL_NAME_WRAP);
        p->next = (p->next + 1) % TAP_POOL_NAME_WRAP;
        if (reserve)
            memcpy(p->creating, name, IFNAMSIZ);
        pthread_mutex_unlock(&p->lock);
        r = tap_dev_create(name, why, why_len);
        if (r != -EBUSY)
            break;
    }
    if (r < 0)
        return r;
    r = tap_dev_attach_up(name, br, why, why_len);
    if (r < 0) {
        char ignored[128];
        tap_dev_delete(name, ignored, sizeof(ignored));
    }
    return r;
}

static void tap_pool_deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *tap_pool_thread(void *arg)
{
    struct tap_pool *p = arg;

    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        char name[IFNAMSIZ], why[256] = "";
        int r;

        if (p->n_doomed > 0) {
            memcpy(name, p->doomed[--p->n_doomed], IFNAMSIZ);
            memcpy(p->creating, name, IFNAMSIZ);
            pthread_mutex_unlock(&p->lock);
            tap_dev_delete(name, why, sizeof(why));
            pthread_mutex_lock(&p->lock);
            p->creating[0] = '\0';
            pthread_cond_broadcast(&p->changed);
            continue;
        }
        if (p->n >= p->cfg.size) {
            pthread_cond_wait(&p->wake, &p->lock);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        r = tap_pool_make(p, name, true, why, sizeof(why));
        pthread_mutex_lock(&p->lock);
        p->creating[0] = '\0';
        if (r == 0 && p->n < p->cfg.size && !p->stop) {
            snprintf(p->names[p->n++], IFNAMSIZ, "%s", name);
            p->last_error[0] = '\0';
        } else if (r == 0) {
            pthread_mutex_unlock(&p->lock);
            tap_dev_delete(name, why, sizeof(why));
            pthread_mutex_lock(&p->lock);
        } else {
            struct timespec ts;

            p->refill_failures++;
            snprintf(p->last_error, sizeof(p->last_error), "%s", why);
            pthread_cond_broadcast(&p->changed);
            /* Back off; a release or stop wakes us earlier. */
            tap_pool_deadline(&ts, TAP_POOL_RETRY_MS);
            pthread_cond_timedwait(&p->wake, &p->lock, &ts);
            continue;
        }
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int tap_pool_start(struct tap_pool *p, char *why, size_t why_len)
{
    pthread_condattr_t attr;
    int r;

    if (p->cfg.size == 0)
        return 0;
    /* Timed waits use the monotonic clock. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_destroy(&p->wake);
    pthread_cond_init(&p->wake, &attr);
    pthread_cond_destroy(&p->changed);
    pthread_cond_init(&p->changed, &attr);
    pthread_condattr_destroy(&attr);
    r = -pthread_create(&p->thread, NULL, tap_pool_thread, p);
    if (r < 0) {
        snprintf(why, why_len, "refill thread: %s", strerror(-r));
        return r;
    }
    p->thread_running = true;
    return 0;
}

void tap_pool_free(struct tap_pool *p)
{
    char why[256];

    if (!p)
        return;
    if (p->thread_running) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->n; i++)
        tap_dev_delete(p->names[i], why, sizeof(why));
    for (size_t i = 0; i < p->n_doomed; i++)
        tap_dev_delete(p->doomed[i], why, sizeof(why));
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int tap_pool_acquire(struct tap_pool *p, char name[IFNAMSIZ], char *why, size_t why_len)
{
    char reason[256];
    int r;

    pthread_mutex_lock(&p->lock);
    if (p->n > 0) {
        snprintf(name, IFNAMSIZ, "%s", p->names[--p->n]);
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    r = tap_pool_make(p, name, false, reason, sizeof(reason));
    if (r < 0 && p->cfg.size > 0)
        snprintf(why, why_len, "TAP pool exhausted and refill failed: %s", reason);
    else if (r < 0)
        snprintf(why, why_len, "%s", reason);
    return r;
}

int tap_pool_release(struct tap_pool *p, const char *name, char *why, size_t why_len)
{
    bool in_use = false, keep;
    int br = 0, r;

    if (!tap_name_has_prefix(name, p->cfg.prefix) || p->cfg.size == 0)
        return tap_dev_delete(name, why, why_len);
    /* The bridge normally exists: skip the full ensure on this path. */
    br = (int)if_nametoindex(p->cfg.bridge);
    r = br > 0 ? 0 : tap_pool_bridge(p, &br, why, why_len);
    if (r == 0)
        r = tap_dev_reset(name, br, &in_use, why, why_len);
    if (r == -ENODEV)
        return 0;
    pthread_mutex_lock(&p->lock);
    keep = r == 0 && !in_use && p->n < p->cfg.size;
    if (keep) {
        snprintf(p->names[p->n++], IFNAMSIZ, "%s", name);
        pthread_cond_broadcast(&p->changed);
    } else if (r == 0 && !in_use && p->thread_running && !p->stop &&
               p->n_doomed < TAP_POOL_MAX) {
        /* Healthy surplus: the thread deletes it. */
        snprintf(p->doomed[p->n_doomed++], IFNAMSIZ, "%s", name);
        pthread_cond_signal(&p->wake);
        keep = true;
    }
    pthread_mutex_unlock(&p->lock);
    if (keep)
        return 0;
    return tap_dev_delete(name, why, why_len);
}

bool tap_pool_owns(struct tap_pool *p, const char *name)
{
    bool owns;

    pthread_mutex_lock(&p->lock);
    owns = strcmp(p->creating, name) == 0;
    for (size_t i = 0; i < p->n && !owns; i++)
        owns = strcmp(p->names[i], name) == 0;
    for (size_t i = 0; i < p->n_doomed && !owns; i++)
        owns = strcmp(p->doomed[i], name) == 0;
    pthread_mutex_unlock(&p->lock);
    return owns;
}

size_t tap_pool_count(struct tap_pool *p, char *last_error, size_t len)
{
    size_t n;

    pthread_mutex_lock(&p->lock);
    n = p->n;
    if (last_error)
        snprintf(last_error, len, "%s", p->last_error);
    pthread_mutex_unlock(&p->lock);
    return n;
}

size_t tap_pool_wait_full(struct tap_pool *p, int timeout_ms)
{
    struct timespec ts;
    unsigned long failures;
    size_t n;

    tap_pool_deadline(&ts, timeout_ms);
    pthread_mutex_lock(&p->lock);
    failures = p->refill_failures;
    while (p->thread_running && p->n < p->cfg.size && p->refill_failures == failures)
        if (pthread_cond_timedwait(&p->changed, &p->lock, &ts) == ETIMEDOUT)
            break;
    n = p->n;
    pthread_mutex_unlock(&p->lock);
    return n;
}
