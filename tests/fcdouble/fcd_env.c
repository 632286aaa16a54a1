/* fc-double: the FC_DOUBLE_* test knobs (documented in main and README.md). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcd.h"

static int fcd_env_ms(const char *name, long *ret_ms, char *msg, size_t msg_len)
{
	const char *v = getenv(name);
	char *end = NULL;
	long ms;

	*ret_ms = 0;
	if (!v || !*v)
		return 0;
	errno = 0;
	ms = strtol(v, &end, 10);
	if (errno || *end || ms < 0 || ms > 600000) {
		snprintf(msg, msg_len, "%s='%s' is not a number of milliseconds (0..600000)", name,
			 v);
		return -EINVAL;
	}
	*ret_ms = ms;
	return 0;
}

static char *fcd_env_trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* FC_DOUBLE_FAIL="PUT /drives/rootfs, PUT /actions InstanceStart" */
static int fcd_env_fail_rules(struct fcd_knobs *cfg, char *msg, size_t msg_len)
{
	const char *v = getenv("FC_DOUBLE_FAIL");
	char *copy = NULL;
	char *save = NULL;
	int r = 0;

	if (!v || !*v)
		return 0;
	copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, ",;", &save); item; item = strtok_r(NULL, ",;", &save)) {
		char *words[3] = { NULL, NULL, NULL };
		char *wsave = NULL;
		size_t n = 0;

		item = fcd_env_trim(item);
		if (!*item)
			continue;
		for (char *w = strtok_r(item, " \t", &wsave); w; w = strtok_r(NULL, " \t", &wsave)) {
			if (n == 3) {
				n = 4;
				break;
			}
			words[n++] = w;
		}
		if (n < 2 || n > 3 || words[1][0] != '/') {
			snprintf(msg, msg_len,
				 "FC_DOUBLE_FAIL: '%s' is not 'METHOD /path [ACTION]'", item);
			r = -EINVAL;
			goto cleanup;
		}
		struct fcd_fail_rule *rules =
			realloc(cfg->fail_rules, (cfg->n_fail_rules + 1) * sizeof(*rules));
		if (!rules) {
			r = -ENOMEM;
			goto cleanup;
		}
		cfg->fail_rules = rules;
		struct fcd_fail_rule *rule = &rules[cfg->n_fail_rules];
		rule->method = strdup(words[0]);
		rule->path = strdup(words[1]);
		rule->action = words[2] ? strdup(words[2]) : NULL;
		cfg->n_fail_rules++;
		if (!rule->method || !rule->path || (words[2] && !rule->action)) {
			r = -ENOMEM;
			goto cleanup;
		}
	}
cleanup:
	free(copy);
	return r;
}

/* FC_DOUBLE_VSOCK_MAP="10789=/path/agent.sock,22=/path/x" */
static int fcd_env_vsock_map(struct fcd_knobs *cfg, char *msg, size_t msg_len)
{
	const char *v = getenv("FC_DOUBLE_VSOCK_MAP");
	char *copy = NULL;
	char *save = NULL;
	int r = 0;

	if (!v || !*v)
		return 0;
	copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq;
		char *end = NULL;
		unsigned long port = 0;

		item = fcd_env_trim(item);
		if (!*item)
			continue;
		eq = strchr(item, '=');
		if (eq) {
			*eq = '\0';
			errno = 0;
			port = strtoul(item, &end, 10);
		}
		if (!eq || errno || end == item || *end || port > UINT32_MAX || eq[1] == '\0') {
			snprintf(msg, msg_len, "FC_DOUBLE_VSOCK_MAP: '%s' is not 'PORT=/unix/path'",
				 item);
			r = -EINVAL;
			goto cleanup;
		}
		struct fcd_vsock_route *routes =
			realloc(cfg->vsock_routes, (cfg->n_vsock_routes + 1) * sizeof(*routes));
		if (!routes) {
			r = -ENOMEM;
			goto cleanup;
		}
		cfg->vsock_routes = routes;
		routes[cfg->n_vsock_routes].port = (uint32_t)port;
		routes[cfg->n_vsock_routes].path = strdup(eq + 1);
		if (!routes[cfg->n_vsock_routes].path) {
			r = -ENOMEM;
			goto cleanup;
		}
		cfg->n_vsock_routes++;
	}
cleanup:
	free(copy);
	return r;
}

const char *fcd_env_version(void)
{
	const char *v = getenv("FC_DOUBLE_VERSION");
	unsigned a, b, c;
	int used = 0;

	if (!v || !*v)
		return FCD_VERSION;
	if (sscanf(v, "%u.%u.%u%n", &a, &b, &c, &used) != 3 || v[used] != '\0')
		return NULL;
	return v;
}

/* FC_DOUBLE_CONSOLE_FILE and FC_DOUBLE_EXIT_AFTER_MS: a guest that prints
 * and then resets (or, with FC_DOUBLE_EXIT_ON_START, a VMM that dies). */
static int fcd_env_guest_exit(struct fcd_knobs *knobs, char *msg, size_t msg_len)
{
	const char *console = getenv("FC_DOUBLE_CONSOLE_FILE");
	const char *after = getenv("FC_DOUBLE_EXIT_AFTER_MS");
	int r;

	knobs->exit_after_ms = -1;
	knobs->exit_after_code = 0;
	knobs->console_file = console && *console ? console : NULL;
	if (after && *after) {
		r = fcd_env_ms("FC_DOUBLE_EXIT_AFTER_MS", &knobs->exit_after_ms, msg, msg_len);
		if (r < 0)
			return r;
	}
	/* The console comes out before the crash, so the crash moves here. */
	if (knobs->console_file && knobs->exit_on_start) {
		knobs->exit_on_start = false;
		knobs->exit_after_ms = 0;
		knobs->exit_after_code = 1;
	}
	return 0;
}

/* FC_DOUBLE_CONSOLE_FLOOD=<bytes>|endless: a guest doing `cat /dev/zero > /dev/console`. */
static int fcd_env_flood(struct fcd_knobs *knobs, char *msg, size_t msg_len)
{
	const char *v = getenv("FC_DOUBLE_CONSOLE_FLOOD");
	char *end = NULL;

	knobs->console_flood = 0;
	if (!v || !*v)
		return 0;
	if (strcmp(v, "endless") == 0) {
		knobs->console_flood = -1;
		return 0;
	}
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end || n < 0) {
		snprintf(msg, msg_len, "FC_DOUBLE_CONSOLE_FLOOD='%s' is not a number of bytes or "
			 "'endless'", v);
		return -EINVAL;
	}
	knobs->console_flood = n;
	return 0;
}

int fcd_env_load(struct fcd_config *cfg, struct fcd_knobs *knobs, char *msg, size_t msg_len)
{
	const char *record = getenv("FC_DOUBLE_RECORD");
	const char *v;
	int r;

	r = fcd_env_ms("FC_DOUBLE_BOOT_DELAY_MS", &knobs->boot_delay_ms, msg, msg_len);
	if (r < 0)
		return r;
	r = fcd_env_ms("FC_DOUBLE_STARTUP_DELAY_MS", &knobs->startup_delay_ms, msg, msg_len);
	if (r < 0)
		return r;
	r = fcd_env_ms("FC_DOUBLE_CTRL_ALT_DEL_DELAY_MS", &knobs->ctrl_alt_del_delay_ms, msg,
		       msg_len);
	if (r < 0)
		return r;
	v = getenv("FC_DOUBLE_EXIT_ON_START");
	knobs->exit_on_start = v && *v && strcmp(v, "0") != 0;
	v = getenv("FC_DOUBLE_CHECK_PATHS");
	cfg->check_paths = v && *v && strcmp(v, "0") != 0;
	r = fcd_env_guest_exit(knobs, msg, msg_len);
	if (r < 0)
		return r;
	r = fcd_env_flood(knobs, msg, msg_len);
	if (r < 0)
		return r;
	r = fcd_env_fail_rules(knobs, msg, msg_len);
	if (r < 0)
		return r;
	r = fcd_env_vsock_map(knobs, msg, msg_len);
	if (r < 0)
		return r;
	cfg->record_fd = -1;
	if (record && *record) {
		cfg->record_fd = open(record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (cfg->record_fd < 0) {
			r = -errno;
			snprintf(msg, msg_len, "FC_DOUBLE_RECORD: cannot open '%s': %s", record,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

bool fcd_env_should_fail(const struct fcd_knobs *cfg, const char *method, const char *path,
			 const cJSON *body)
{
	for (size_t i = 0; i < cfg->n_fail_rules; i++) {
		const struct fcd_fail_rule *rule = &cfg->fail_rules[i];

		if (strcasecmp(rule->method, method) != 0 || strcmp(rule->path, path) != 0)
			continue;
		if (!rule->action)
			return true;
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(body, "action_type");
		if (cJSON_IsString(type) && strcmp(type->valuestring, rule->action) == 0)
			return true;
	}
	return false;
}

const char *fcd_env_vsock_route(const struct fcd_knobs *cfg, uint32_t port)
{
	for (size_t i = 0; i < cfg->n_vsock_routes; i++)
		if (cfg->vsock_routes[i].port == port)
			return cfg->vsock_routes[i].path;
	return NULL;
}
