/* libnftables and host access for the nat module: one nft context behind a
 * lock, banger's two tables (ip and bridge), and the default route's device. Functions return 0 or
 * a negative errno with the reason in `why`. */
#ifndef BANGER_NAT_NFT_H
#define BANGER_NAT_NFT_H

#include <stdbool.h>
#include <stddef.h>

#include "nat-rules.h"

struct nat_nft;

int nat_nft_new(struct nat_nft **out, char *why, size_t why_len);
void nat_nft_free(struct nat_nft *nft);

/* Serialise a list-then-change sequence. */
void nat_nft_lock(struct nat_nft *nft);
void nat_nft_unlock(struct nat_nft *nft);

/* Run nft commands as one transaction. With `echo`, *out receives the
 * JSON echo of what was added (with handles); free it. */
int nat_nft_run(struct nat_nft *nft, const char *cmds, bool echo, char **out, char *why,
                size_t why_len);

/* The rules of banger's tables, ip then bridge; a missing table is an
 * empty list. */
int nat_nft_list(struct nat_nft *nft, struct nat_rule **rules, size_t *n, char *why,
                 size_t why_len);

/* `nft -j list ruleset` as text (doctor). */
int nat_nft_ruleset(struct nat_nft *nft, char **out, char *why, size_t why_len);

/* Delete, in one transaction, the rules for which `doomed` returns true,
 * and each table with no rule left. *deleted counts them. */
typedef bool (*nat_rule_pred)(void *ctx, const struct nat_rule *rule);
int nat_nft_delete_where(struct nat_nft *nft, nat_rule_pred doomed, void *ctx, size_t *deleted,
                         char *why, size_t why_len);

/* The device of the main table's IPv4 default route. */
int nat_default_uplink(char *name, size_t name_len, char *why, size_t why_len);

#endif
