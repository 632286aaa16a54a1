/* Noticing a VMM that exits on its own (the guest rebooted, powered off
 * through a reset, or crashed): one thread waits on a pidfd per running VM in
 * one epoll set. When one becomes readable, the thread takes that VM's lock,
 * re-reads the record, and runs the ordinary stop steps only if the VM is
 * still recorded as running and no VMM serves it any more. A `vm stop`,
 * `kill` or `delete` holds the lock while it makes the VMM exit, so by the
 * time the watcher gets the lock the record says stopped (or is gone) and
 * the watcher leaves it alone; after a restart the new VMM is found alive. */
#include "config.h"

#include "util/log.h"
#include "util/xalloc.h"
#include "vmsvc/vmsvc_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VMSVC_WATCH_EVENTS 16

struct vmsvc_watch_entry {
    char id[VMSVC_ID_MAX];
    pid_t pid;
    int pidfd;
    struct vmsvc_watch_entry *next;
};

struct vmsvc_watch {
    struct vmsvc *svc;
    int epoll_fd;
    int wake_fd;                        /* eventfd: new work or shutdown */
    pthread_t thread;
    pthread_mutex_t mutex;              /* guards the lists and stopping */
    struct vmsvc_watch_entry *watched;  /* pidfds in the epoll set */
    struct vmsvc_watch_entry *exited;   /* to be handled, oldest last */
    bool stopping;
};

static void vmsvc_watch_wake(struct vmsvc_watch *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->wake_fd, &one, sizeof(one));
    (void)n; /* a full counter still wakes the thread */
}

/* The VMM of `id` is gone: stop the VM unless someone else already did. */
static void vmsvc_watch_handle_exit(struct vmsvc *svc, const char *id, pid_t pid)
{
    struct vmsvc_lock *lock = vmsvc_lock(svc, id);
    struct vm_record *rec = NULL;
    struct banger_vm *vm = NULL;
    struct banger_error err = { 0 };
    char eb[512] = "";

    if (store_vm_get_by_id(svc->store, id, &rec, eb, sizeof(eb)) < 0)
        goto cleanup; /* deleted meanwhile */
    if (rec->state != VM_STATE_RUNNING)
        goto cleanup; /* a stop, kill or failed start got there first */
    if (vmsvc_vm_object(svc, rec, &vm, &err) < 0) {
        bg_log(BANGER_LOG_ERROR, id, "watcher: %s", bg_error_text(&err));
        goto cleanup;
    }
    int live = svc->vmm.find ? svc->vmm.find(svc->vmm.ctx, vm) : 0;
    if (live > 0)
        goto cleanup; /* restarted meanwhile: the new VMM has its own watch */
    bg_log(BANGER_LOG_INFO, id,
           "VM '%s': firecracker (pid %d) exited on its own (guest reboot, power-off or "
           "crash); running its stop steps", rec->name, (int)pid);
    if (vmsvc_stop_locked(svc, rec, &err) < 0)
        bg_log(BANGER_LOG_ERROR, id, "VM '%s': stop after the VMM exited: %s", rec->name,
               bg_error_text(&err));
    else
        bg_log(BANGER_LOG_INFO, id, "VM '%s' stopped", rec->name);
cleanup:
    bg_vm_free(vm);
    vm_record_free(rec);
    vmsvc_unlock(svc, lock);
}

/* Move a watched entry whose pidfd fired to the exited list. */
static void vmsvc_watch_fired(struct vmsvc_watch *w, struct vmsvc_watch_entry *e)
{
    pthread_mutex_lock(&w->mutex);
    struct vmsvc_watch_entry **pp = &w->watched;
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = e->next;
        epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, e->pidfd, NULL);
        close(e->pidfd);
        e->pidfd = -1;
        e->next = w->exited;
        w->exited = e;
    }
    pthread_mutex_unlock(&w->mutex);
}

static void *vmsvc_watch_thread(void *arg)
{
    struct vmsvc_watch *w = arg;
    struct epoll_event events[VMSVC_WATCH_EVENTS];

    for (;;) {
        int n = epoll_wait(w->epoll_fd, events, VMSVC_WATCH_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            bg_log(BANGER_LOG_ERROR, NULL, "VMM watcher: epoll_wait: %s; VMs that exit on "
                   "their own are noticed only at the next request or restart", strerror(errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                uint64_t count;
                ssize_t got = read(w->wake_fd, &count, sizeof(count));
                (void)got;
            } else {
                vmsvc_watch_fired(w, events[i].data.ptr);
            }
        }
        for (;;) {
            pthread_mutex_lock(&w->mutex);
            if (w->stopping) {
                pthread_mutex_unlock(&w->mutex);
                return NULL;
            }
            struct vmsvc_watch_entry *e = w->exited;
            if (e)
                w->exited = e->next;
            pthread_mutex_unlock(&w->mutex);
            if (!e)
                break;
            vmsvc_watch_handle_exit(w->svc, e->id, e->pid);
            free(e);
        }
    }
}

int vmsvc_watch_start(struct vmsvc *svc, struct banger_error *err)
{
    struct vmsvc_watch *w = xcalloc(1, sizeof(*w));
    struct epoll_event wake = { .events = EPOLLIN, .data.ptr = NULL };
    int r = 0;

    w->svc = svc;
    w->wake_fd = -1;
    pthread_mutex_init(&w->mutex, NULL);
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll_fd < 0) {
        r = bg_fail_errno(err, -errno, "VMM watcher: epoll_create1");
        goto cleanup;
    }
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->wake_fd < 0) {
        r = bg_fail_errno(err, -errno, "VMM watcher: eventfd");
        goto cleanup;
    }
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->wake_fd, &wake) < 0) {
        r = bg_fail_errno(err, -errno, "VMM watcher: epoll_ctl");
        goto cleanup;
    }
    int pr = pthread_create(&w->thread, NULL, vmsvc_watch_thread, w);
    if (pr != 0) {
        r = bg_fail_errno(err, -pr, "VMM watcher: pthread_create");
        goto cleanup;
    }
    svc->watch = w;
cleanup:
    if (r < 0) {
        if (w->epoll_fd >= 0)
            close(w->epoll_fd);
        if (w->wake_fd >= 0)
            close(w->wake_fd);
        pthread_mutex_destroy(&w->mutex);
        free(w);
    }
    return r;
}

void vmsvc_watch_add(struct vmsvc *svc, const char *id, pid_t pid)
{
    struct vmsvc_watch *w = svc->watch;
    if (!w || pid <= 0)
        return;
    struct vmsvc_watch_entry *e = xcalloc(1, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->pid = pid;
    e->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int open_errno = errno;
    pthread_mutex_lock(&w->mutex);
    if (e->pidfd < 0 && open_errno == ESRCH) {
        /* Gone before we could watch it: handle it as an exit right away. */
        e->next = w->exited;
        w->exited = e;
        vmsvc_watch_wake(w);
    } else if (e->pidfd < 0) {
        bg_log(BANGER_LOG_WARNING, id, "cannot watch VMM pid %d (pidfd_open: %s); its exit is "
               "noticed only at the next request", (int)pid, strerror(open_errno));
        free(e);
    } else {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = e };
        if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, e->pidfd, &ev) < 0) {
            bg_log(BANGER_LOG_WARNING, id, "cannot watch VMM pid %d: epoll_ctl: %s", (int)pid,
                   strerror(errno));
            close(e->pidfd);
            free(e);
        } else {
            e->next = w->watched;
            w->watched = e;
        }
    }
    pthread_mutex_unlock(&w->mutex);
}

static void vmsvc_watch_free_list(struct vmsvc_watch_entry *e)
{
    while (e) {
        struct vmsvc_watch_entry *next = e->next;
        if (e->pidfd >= 0)
            close(e->pidfd);
        free(e);
        e = next;
    }
}

void vmsvc_watch_stop(struct vmsvc *svc)
{
    struct vmsvc_watch *w = svc->watch;
    if (!w)
        return;
    pthread_mutex_lock(&w->mutex);
    w->stopping = true;
    pthread_mutex_unlock(&w->mutex);
    vmsvc_watch_wake(w);
    pthread_join(w->thread, NULL);
    /* VMs keep running across a daemon restart; reconcile watches them again. */
    vmsvc_watch_free_list(w->watched);
    vmsvc_watch_free_list(w->exited);
    close(w->epoll_fd);
    close(w->wake_fd);
    pthread_mutex_destroy(&w->mutex);
    free(w);
    svc->watch = NULL;
}
