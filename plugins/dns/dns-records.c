/* The record table. See dns-records.h. */
#include "config.h"

#include "dns-records.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void dns_records_init(struct dns_records *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
}

void dns_records_destroy(struct dns_records *t)
{
    if (!t)
        return;
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
    pthread_mutex_destroy(&t->lock);
}

static bool dns_records_label_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    return true;
}

/* Index of `id`, or n when absent. Caller holds the lock. */
static size_t dns_records_find(const struct dns_records *t, const char *id)
{
    size_t i;
    for (i = 0; i < t->n; i++)
        if (strcmp(t->v[i].id, id) == 0)
            break;
    return i;
}

int dns_records_set(struct dns_records *t, const char *id, const char *name, const char *ip)
{
    struct dns_record rec = {0};
    if (!id || !name || !ip || strlen(id) == 0 || strlen(id) >= sizeof rec.id ||
        !dns_records_label_ok(name) || inet_pton(AF_INET, ip, &rec.addr) != 1)
        return -EINVAL;
    strcpy(rec.id, id);
    strcpy(rec.name, name);

    int r = 0;
    pthread_mutex_lock(&t->lock);
    size_t i = dns_records_find(t, id);
    if (i == t->n) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 16;
            struct dns_record *v = realloc(t->v, cap * sizeof *v);
            if (!v) {
                r = -ENOMEM;
                goto cleanup;
            }
            t->v = v;
            t->cap = cap;
        }
        t->n++;
    }
    t->v[i] = rec;
cleanup:
    pthread_mutex_unlock(&t->lock);
    return r;
}

bool dns_records_remove(struct dns_records *t, const char *id)
{
    bool found = false;
    if (!id)
        return false;
    pthread_mutex_lock(&t->lock);
    size_t i = dns_records_find(t, id);
    if (i < t->n) {
        t->v[i] = t->v[t->n - 1];
        t->n--;
        found = true;
    }
    pthread_mutex_unlock(&t->lock);
    return found;
}

void dns_records_clear(struct dns_records *t)
{
    pthread_mutex_lock(&t->lock);
    t->n = 0;
    pthread_mutex_unlock(&t->lock);
}

size_t dns_records_count(struct dns_records *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->n;
    pthread_mutex_unlock(&t->lock);
    return n;
}

bool dns_records_lookup(void *ctx, const char *label, struct in_addr *addr)
{
    struct dns_records *t = ctx;
    bool found = false;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, label) == 0) {
            *addr = t->v[i].addr;
            found = true;
            break;
        }
    pthread_mutex_unlock(&t->lock);
    return found;
}
