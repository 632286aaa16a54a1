/* Link work for the tap module over rtnetlink (libnl-route) and the TUN
 * driver. Each call opens its own netlink socket, so callers on different
 * threads never share one. Functions return 0 or a negative errno and put
 * the reason in `why`. */
#ifndef BANGER_TAP_NL_H
#define BANGER_TAP_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Create the bridge when missing, give it gateway/prefix_len, bring it up.
 * Refuses a same-named interface that is not a bridge. *ifindex, when not
 * NULL, receives the bridge's index. */
int tap_bridge_ensure(const char *bridge, uint32_t gateway, uint32_t prefix_len, int *ifindex,
                      char *why, size_t why_len);

struct tap_bridge_status {
    bool present;
    bool is_bridge;
    bool up;
    int ifindex;
};
int tap_bridge_query(const char *bridge, struct tap_bridge_status *st, char *why, size_t why_len);

/* A persistent single-queue TAP with a virtio-net header (what Firecracker
 * opens). -EBUSY when the name is taken. */
int tap_dev_create(const char *name, char *why, size_t why_len);

/* Make `name` a port of the bridge with index br_ifindex and bring it up. */
int tap_dev_attach_up(const char *name, int br_ifindex, char *why, size_t why_len);

/* Down, drop every address, re-attach to the bridge, up. *in_use is set when
 * some process still holds the TAP open (carrier on). -ENODEV when it is
 * gone. */
int tap_dev_reset(const char *name, int br_ifindex, bool *in_use, char *why, size_t why_len);

/* Delete the link; a missing link counts as done. */
int tap_dev_delete(const char *name, char *why, size_t why_len);

/* Call fn for every link whose name is <prefix><number>. */
typedef void (*tap_link_fn)(void *ctx, const char *name);
int tap_dev_list(const char *prefix, tap_link_fn fn, void *ctx, char *why, size_t why_len);

#endif
