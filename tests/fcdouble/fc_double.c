/* fc-double: a test double of the `firecracker` v1.16.1 process for banger's tests.
 *
 *   fc-double --api-sock PATH [--id ID] [--ignore-ctrl-alt-del] [other firecracker flags]
 *   fc-double --version        prints "Firecracker v1.16.1"
 *
 * It binds PATH (refusing an existing file, like Firecracker), serves the v1.16.1 API on
 * it (204/200 on success, 400 + {"fault_message": ...} on error) and never unlinks any
 * socket file. SendCtrlAltDel after boot makes it exit 0 (a guest that resets), unless
 * --ignore-ctrl-alt-del is given. SIGTERM and SIGINT keep their default action.
 *
 * Test knobs (environment):
 *   FC_DOUBLE_RECORD=FILE          append one JSON line per request:
 *                                  {"method","path","body" (JSON, raw string or null),"status"}
 *   FC_DOUBLE_BOOT_DELAY_MS=N      delay the reply to InstanceStart
 *   FC_DOUBLE_STARTUP_DELAY_MS=N   delay before binding the API socket
 *   FC_DOUBLE_CTRL_ALT_DEL_DELAY_MS=N  delay between SendCtrlAltDel's reply and the exit
 *   FC_DOUBLE_FAIL="PUT /drives/rootfs, PUT /actions InstanceStart"
 *                                  answer 400 "injected failure" to these requests
 *                                  (an optional third word matches action_type)
 *   FC_DOUBLE_EXIT_ON_START=1      exit with code 1 right after answering InstanceStart
 *   FC_DOUBLE_CHECK_PATHS=1        open kernel, initrd and drive files at PUT time
 *   FC_DOUBLE_VSOCK_MAP="10789=/path/agent.sock,22=/path/x"
 *                                  guest vsock port -> Unix socket playing the guest side
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcd.h"

struct fcd_knobs fcd_knobs;

static void fcd_usage(FILE *out)
{
	fprintf(out, "usage: fc-double --api-sock PATH [--id ID] [--ignore-ctrl-alt-del]\n"
		     "       fc-double --version\n"
		     "A test double of firecracker v%s; see tests/fcdouble/README.md.\n",
		FCD_VERSION);
}

static bool fcd_double_switch(const char *arg)
{
	if (strcmp(arg, "--ignore-ctrl-alt-del") != 0)
		return false;
	fcd_knobs.ignore_ctrl_alt_del = true;
	return true;
}

static const struct fcd_args_program fcd_double_program = {
	.name = "fc-double",
	.version_line = "Firecracker v" FCD_VERSION,
	.usage = fcd_usage,
	.own_switch = fcd_double_switch,
};

static bool fcd_double_should_fail(const char *method, const char *path, const cJSON *body)
{
	return fcd_env_should_fail(&fcd_knobs, method, path, body);
}

/* The "guest" boots after FC_DOUBLE_BOOT_DELAY_MS, and maybe "crashes" at once. */
static void fcd_double_instance_start(struct fcd_response *resp)
{
	fcd_sleep_ms(fcd_knobs.boot_delay_ms);
	if (fcd_knobs.exit_on_start)
		resp->after = FCD_AFTER_CRASH;
}

static void fcd_double_ctrl_alt_del(struct fcd_response *resp)
{
	if (!fcd_knobs.ignore_ctrl_alt_del)
		resp->after = FCD_AFTER_CTRL_ALT_DEL;
}

static void fcd_double_after_reply(enum fcd_after after)
{
	if (after == FCD_AFTER_CRASH) {
		fcd_log("FC_DOUBLE_EXIT_ON_START: exiting after InstanceStart");
		_exit(1);
	}
	if (after == FCD_AFTER_CTRL_ALT_DEL) {
		/* The guest reacts to Ctrl-Alt-Del by resetting; Firecracker then exits 0. */
		fcd_sleep_ms(fcd_knobs.ctrl_alt_del_delay_ms);
		_exit(0);
	}
}

/* The guest side of a vsock port is the Unix socket FC_DOUBLE_VSOCK_MAP names. */
static int fcd_double_vsock_connect(uint32_t guest_cid, uint32_t port)
{
	(void)guest_cid;
	return fcd_unix_connect(fcd_env_vsock_route(&fcd_knobs, port));
}

static const struct fcd_hooks fcd_double_hooks = {
	.log_name = "fc-double",
	.should_fail = fcd_double_should_fail,
	.instance_start = fcd_double_instance_start,
	.ctrl_alt_del = fcd_double_ctrl_alt_del,
	/* Stand-in guest for tests (fcd_guest.c; only with FC_DOUBLE_STANDIN=1). */
	.observe = fcd_guest_observe,
	.after_reply = fcd_double_after_reply,
	.vsock_connect = fcd_double_vsock_connect,
};

int main(int argc, char **argv)
{
	char msg[FCD_MSG_MAX];
	int listen_fd;
	int r;

	fcd_hooks = &fcd_double_hooks;
	if (fcd_args_parse(argc, argv, &fcd_double_program) < 0)
		return FCD_EXIT_ARG_PARSING;
	r = fcd_env_load(&fcd_cfg, &fcd_knobs, msg, sizeof(msg));
	if (r < 0) {
		fcd_log("%s", r == -ENOMEM ? "out of memory" : msg);
		return FCD_EXIT_GENERIC;
	}
	/* Firecracker only counts SIGPIPE; writes to gone peers must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	fcd_sleep_ms(fcd_knobs.startup_delay_ms);
	listen_fd = fcd_http_bind(fcd_cfg.api_sock);
	if (listen_fd < 0) {
		fcd_log("Failed to open the API socket at: %s. Check that it is not already used. "
			"(%s)", fcd_cfg.api_sock, strerror(-listen_fd));
		return FCD_EXIT_GENERIC;
	}
	fcd_log("Running Firecracker v%s (test double), API at %s", FCD_VERSION,
		fcd_cfg.api_sock);
	r = fcd_http_serve(listen_fd);
	fcd_log("API server stopped: %s", strerror(-r));
	return FCD_EXIT_GENERIC;
}
