/* libfcapi: Firecracker's command line, shared by banger-vmm-qemu and fc-double:
 * --api-sock, --id, --http-api-max-payload-size, --version, --help, and the flags both
 * accept and ignore. Anything else is an error (the caller exits 153, like Firecracker). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcapi.h"

/* Real Firecracker flags that take a value, accepted and ignored. */
static const char *const fcd_value_flags[] = {
	"--log-path", "--level", "--module", "--metrics-path", "--seccomp-filter",
	"--metadata", "--mmds-size-limit", "--start-time-us", "--start-time-cpu-us",
	"--parent-cpu-time-us", NULL,
};

/* Real Firecracker switches, accepted and ignored. */
static const char *const fcd_switch_flags[] = {
	"--show-level", "--show-log-origin", "--boot-timer", "--no-seccomp", "--enable-pci",
	NULL,
};

static bool fcd_in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static bool fcd_flag_is_ignored_with_value(const char *arg)
{
	return fcd_in_list(fcd_value_flags, arg);
}

static bool fcd_flag_is_ignored_switch(const char *arg)
{
	return fcd_in_list(fcd_switch_flags, arg);
}

int fcd_args_parse(int argc, char **argv, const struct fcd_args_program *prog)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--version") == 0) {
			printf("%s\n", prog->version_line);
			exit(0);
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			prog->usage(stdout);
			exit(0);
		} else if (prog->own_switch && prog->own_switch(a)) {
			continue;
		} else if (fcd_flag_is_ignored_switch(a)) {
			continue;
		} else if (strcmp(a, "--api-sock") == 0 || strcmp(a, "--id") == 0 ||
			   strcmp(a, "--http-api-max-payload-size") == 0 ||
			   fcd_flag_is_ignored_with_value(a)) {
			if (!v) {
				fprintf(stderr, "%s: %s needs a value\n", prog->name, a);
				return -EINVAL;
			}
			i++;
			if (strcmp(a, "--api-sock") == 0) {
				fcd_cfg.api_sock = v;
			} else if (strcmp(a, "--id") == 0) {
				fcd_cfg.id = v;
			} else if (strcmp(a, "--http-api-max-payload-size") == 0) {
				char *end = NULL;
				unsigned long n = strtoul(v, &end, 10);
				if (!*v || *end || n == 0) {
					fprintf(stderr, "%s: bad %s '%s'\n", prog->name, a, v);
					return -EINVAL;
				}
				fcd_cfg.max_payload = n;
			}
		} else {
			fprintf(stderr, "%s: unsupported argument '%s'\n", prog->name, a);
			prog->usage(stderr);
			return -EINVAL;
		}
	}
	if (!fcd_instance_id_valid(fcd_cfg.id)) {
		fprintf(stderr, "%s: invalid instance id '%s'\n", prog->name, fcd_cfg.id);
		return -EINVAL;
	}
	return 0;
}
