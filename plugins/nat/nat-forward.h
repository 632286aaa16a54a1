/* The forwarding flags banger turns on for --nat VMs, and their restoring.
 * The values found before are saved as records in banger's ip table (chain
 * "saved"), so they outlive a crash and come back when the last --nat VM
 * is gone, at stop or at reconcile. Callers hold the nft lock. */
#ifndef BANGER_NAT_FORWARD_H
#define BANGER_NAT_FORWARD_H

#include "nat-nft.h"

#include <stddef.h>

/* Append records of the current flags of the interfaces (NULL-terminated)
 * that `rules` has no record of yet. */
int nat_forward_save_text(char *cmds, size_t cap, const struct nat_rule *rules, size_t n,
                          const char *const *ifaces, char *why, size_t why_len);

/* Turn forwarding on for each interface. */
int nat_forward_enable(const char *const *ifaces, char *why, size_t why_len);

/* When no --nat VM's rule is left: put every saved flag back and delete the
 * records (and the ip table when nothing else is in it). A flag saved as 0
 * stays on while the host-wide ip_forward is 1: someone turned forwarding
 * on for every interface since. *restored counts the flags written. */
int nat_forward_settle(struct nat_nft *nft, size_t *restored, char *why, size_t why_len);

#endif
