/* The warm pool of persistent TAPs: ready-made ports of the bridge, handed
 * out in O(1) and refilled by a background thread. */
#ifndef BANGER_TAP_POOL_H
#define BANGER_TAP_POOL_H

#include "tap-addr.h"

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAP_POOL_MAX 256

struct tap_pool_cfg {
    char prefix[TAP_PREFIX_MAX + 1];
    unsigned size;          /* 0..TAP_POOL_MAX; 0 = create on demand */
    char bridge[IFNAMSIZ];
    uint32_t gateway;       /* host order */
    uint32_t prefix_len;
};

struct tap_pool;

int tap_pool_new(const struct tap_pool_cfg *cfg, struct tap_pool **out);
/* Start the refill thread (nothing to do when size is 0). */
int tap_pool_start(struct tap_pool *pool, char *why, size_t why_len);
/* Stop the thread and delete the TAPs still in the pool. Accepts NULL. */
void tap_pool_free(struct tap_pool *pool);

/* A TAP attached to the bridge and up, from the pool or, when it is empty,
 * created now. */
int tap_pool_acquire(struct tap_pool *pool, char name[IFNAMSIZ], char *why, size_t why_len);
/* Reset `name` and keep it, or delete it when the reset fails, it is still
 * held open, or it is not ours. A healthy TAP returned to a full pool is
 * deleted by the refill thread. A missing TAP is done. */
int tap_pool_release(struct tap_pool *pool, const char *name, char *why, size_t why_len);

/* Is `name` in the pool or being created for it? */
bool tap_pool_owns(struct tap_pool *pool, const char *name);
/* Warm TAPs now, and the last refill failure ("" when none). */
size_t tap_pool_count(struct tap_pool *pool, char *last_error, size_t len);
/* Wait until the pool is full or the refill failed since the call
 * (tests, doctor). Returns the count. */
size_t tap_pool_wait_full(struct tap_pool *pool, int timeout_ms);
/* The bridge's index (ensures the bridge). */
int tap_pool_bridge(struct tap_pool *pool, int *ifindex, char *why, size_t why_len);

#endif
