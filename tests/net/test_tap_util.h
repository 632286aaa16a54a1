/* Shared helpers of the tap and nat tests: a private network namespace per
 * test, loaded modules, VMs in temporary directories, link snapshots. */
#ifndef BANGER_TEST_TAP_UTIL_H
#define BANGER_TEST_TAP_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "host/host.h"
#include "host/vm.h"
#include "loader/loader.h"

/* unshare(CLONE_NEWNET) for the calling (forked Check) process, lo up. */
void net_private(void);

struct net_fixture {
    struct bg_config *cfg;
    struct bg_plugin mods[2];
    struct bg_plugins set;     /* the loaded mods, for the engine */
    char dir[64];              /* temporary root for VM dirs */
};

/* Load config text and init the named modules (NULL-terminated) in order. */
void net_fixture_up(struct net_fixture *f, const char *conf, const char *const *modules);
void net_fixture_down(struct net_fixture *f);
/* Init result without asserting (config error tests). */
int net_try_init(const char *conf, const char *module, char *msg, size_t msg_len);

/* A VM with id `id`, name `name`, ip 172.29.0.<host>; state in f->dir/<id>. */
struct banger_vm *net_vm(struct net_fixture *f, const char *id, const char *name, int host,
                         bool nat);

/* Links named <prefix><n> attached to `bridge` and up. */
int net_count_prefixed(const char *prefix, const char *bridge, int *attached_up);
/* Wait (bounded) until exactly n such links exist, all attached and up. */
bool net_wait_pool(const char *prefix, const char *bridge, int n);
int net_count_links(void);
int net_count_fds(void);
/* Wait (bounded) until the process has n open fds. */
bool net_wait_fds(int n);
bool net_link_exists(const char *name);
/* "name master up addrs;" for every link not named <prefix><n>, sorted. */
char *net_snapshot_links(const char *prefix);
/* `nft list ruleset` output. */
char *net_ruleset_text(void);
/* Run a program (no shell); returns exit status. */
int net_run(const char *const *argv, char **out);

#endif
