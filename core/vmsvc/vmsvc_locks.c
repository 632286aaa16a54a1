#include "config.h"

#include "util/xalloc.h"
#include "vmsvc/vmsvc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vmsvc_lock *vmsvc_lock(struct vmsvc *svc, const char *id)
{
    pthread_mutex_lock(&svc->locks_mutex);
    struct vmsvc_lock *l = svc->locks;
    while (l && strcmp(l->id, id) != 0)
        l = l->next;
    if (!l) {
        l = xcalloc(1, sizeof(*l));
        snprintf(l->id, sizeof(l->id), "%s", id);
        pthread_mutex_init(&l->mutex, NULL);
        l->next = svc->locks;
        svc->locks = l;
    }
    l->users++;
    pthread_mutex_unlock(&svc->locks_mutex);
    pthread_mutex_lock(&l->mutex);
    return l;
}

void vmsvc_unlock(struct vmsvc *svc, struct vmsvc_lock *lock)
{
    if (!lock)
        return;
    pthread_mutex_unlock(&lock->mutex);
    pthread_mutex_lock(&svc->locks_mutex);
    if (--lock->users == 0) {
        struct vmsvc_lock **pp = &svc->locks;
        while (*pp != lock)
            pp = &(*pp)->next;
        *pp = lock->next;
        pthread_mutex_destroy(&lock->mutex);
        free(lock);
    }
    pthread_mutex_unlock(&svc->locks_mutex);
}

void vmsvc_locks_free(struct vmsvc *svc)
{
    struct vmsvc_lock *l = svc->locks;
    while (l) {
        struct vmsvc_lock *next = l->next;
        pthread_mutex_destroy(&l->mutex);
        free(l);
        l = next;
    }
    svc->locks = NULL;
}
