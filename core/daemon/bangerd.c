/* bangerd: the banger daemon. */
#include "config.h"

#include "config/config.h"
#include "daemon/check.h"
#include "util/log.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bangerd_usage(FILE *f)
{
    fprintf(f,
            "usage: bangerd [--config FILE] [--check]\n"
            "\n"
            "  --config FILE  configuration file (default " BANGER_DEFAULT_CONFIG ")\n"
            "  --check        load the configuration and the plugins, print the start\n"
            "                 chain, and exit (0 when everything loads)\n"
            "  --version      print the version\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    const char *config_path = NULL;
    bool check = false;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'C': check = true; break;
        case 'h': bangerd_usage(stdout); return 0;
        case 'V': printf("bangerd %s\n", PACKAGE_VERSION); return 0;
        default: bangerd_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bangerd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    struct banger_error err = { 0 };
    struct bg_config *cfg = NULL;
    int r = config_load(config_path ? config_path : BANGER_DEFAULT_CONFIG, config_path != NULL,
                        &cfg, &err);
    if (r < 0) {
        fprintf(stderr, "bangerd: %s\n", bg_error_text(&err));
        return 1;
    }
    bg_log_set_level(cfg->log_level);
    config_set_current(cfg);

    if (check)
        r = bangerd_check(cfg, stdout, &err);
    else
        r = bangerd_run(cfg, &err);
    if (r < 0)
        fprintf(stderr, "bangerd: %s\n", bg_error_text(&err));
    config_free(cfg);
    return r < 0 ? 1 : 0;
}
