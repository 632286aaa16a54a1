/* fc-double: a test double of the Firecracker v1.16.1 API process. The API server itself
 * is vmm/libfcapi (fcapi.h); this header adds the double's test knobs and stand-in guest.
 * See README.md for behaviour and knobs. */
#ifndef FCD_H
#define FCD_H

#include "fcapi.h"

/* One "METHOD PATH [ACTION]" entry of FC_DOUBLE_FAIL. */
struct fcd_fail_rule {
	char *method;
	char *path;
	char *action; /* NULL: any body */
};

/* One "PORT=PATH" entry of FC_DOUBLE_VSOCK_MAP. */
struct fcd_vsock_route {
	uint32_t port;
	char *path;
};

/* The double's knobs from its command line and environment, fixed after start. */
struct fcd_knobs {
	bool ignore_ctrl_alt_del;
	long boot_delay_ms;
	long startup_delay_ms;
	long ctrl_alt_del_delay_ms;
	bool exit_on_start;
	struct fcd_fail_rule *fail_rules;
	size_t n_fail_rules;
	struct fcd_vsock_route *vsock_routes;
	size_t n_vsock_routes;
	const char *console_file; /* FC_DOUBLE_CONSOLE_FILE: "guest" output at InstanceStart */
	long long console_flood;  /* FC_DOUBLE_CONSOLE_FLOOD: NUL bytes after it; -1 endless, 0 none */
	long exit_after_ms;       /* FC_DOUBLE_EXIT_AFTER_MS; -1: never */
	int exit_after_code;      /* 0 (guest reset), 1 with FC_DOUBLE_EXIT_ON_START */
};

extern struct fcd_knobs fcd_knobs;

/* fcd_env.c */
/* FC_DOUBLE_VERSION ("X.Y.Z") or the default; NULL when malformed. Read
 * before the command line, which may ask for --version. */
const char *fcd_env_version(void);
/* Fills fcd_knobs and the shared settings (record file, path checks). */
int fcd_env_load(struct fcd_config *cfg, struct fcd_knobs *knobs, char *msg, size_t msg_len);
bool fcd_env_should_fail(const struct fcd_knobs *knobs, const char *method, const char *path,
			 const cJSON *body);
const char *fcd_env_vsock_route(const struct fcd_knobs *knobs, uint32_t port);

/* fcd_guest.c: the stand-in guest (FC_DOUBLE_STANDIN=1) */
void fcd_guest_observe(const char *method, const char *resource, const cJSON *body);

#endif
