#ifndef BANGER_DAEMON_CHECK_H
#define BANGER_DAEMON_CHECK_H

#include <stdio.h>

#include "config/config.h"
#include "util/error.h"

/* `bangerd --check`: load plugins, print the start chain, unload. */
int bangerd_check(const struct bg_config *cfg, FILE *out, struct banger_error *err);

/* Run the daemon until SIGTERM/SIGINT. */
int bangerd_run(const struct bg_config *cfg, struct banger_error *err);

#endif
