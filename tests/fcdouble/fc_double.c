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
 *   FC_DOUBLE_VERSION=X.Y.Z        the version --version and the API report (1.16.1)
 *   FC_DOUBLE_CONSOLE_FILE=FILE    copy FILE to stdout (the "serial console") once the
 *                                  VM runs; with FC_DOUBLE_EXIT_ON_START, the exit follows it
 *   FC_DOUBLE_CONSOLE_FLOOD=N|endless  then write N NUL bytes (or NULs until stdout
 *                                  fails) to stdout, like `cat /dev/zero > /dev/console`
 *                                  in a guest; a finite flood ends with the line
 *                                  "fc-double: console flood of N bytes done"
 *   FC_DOUBLE_EXIT_AFTER_MS=N      N ms (at least 100) after InstanceStart, log
 *                                  Firecracker's exit lines and exit 0, as on a guest reboot
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fcd.h"

/* The earliest exit after InstanceStart (FC_DOUBLE_EXIT_AFTER_MS). */
#define FCD_EXIT_AFTER_MIN_MS 100

struct fcd_knobs fcd_knobs;

static void fcd_usage(FILE *out)
{
	fprintf(out, "usage: fc-double --api-sock PATH [--id ID] [--ignore-ctrl-alt-del]\n"
		     "       fc-double --version\n"
		     "A test double of firecracker v%s; see tests/fcdouble/README.md.\n",
		fcd_version());
}

static bool fcd_double_switch(const char *arg)
{
	if (strcmp(arg, "--ignore-ctrl-alt-del") != 0)
		return false;
	fcd_knobs.ignore_ctrl_alt_del = true;
	return true;
}

/* version_line is set in main, from FC_DOUBLE_VERSION. */
static struct fcd_args_program fcd_double_program = {
	.name = "fc-double",
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

/* One line in Firecracker's log format on stdout:
 * "2026-02-23T21:05:34.876998360 [id:thread] message". */
static void fcd_vmm_log_line(const char *thread, const char *message)
{
	struct timespec ts;
	struct tm tm;
	char when[32], line[512];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(line, sizeof(line), "%s.%09ld [%s:%s] %s\n", when, ts.tv_nsec, fcd_cfg.id,
			 thread, message);
	if (n > 0)
		(void)fcd_write_all(STDOUT_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n
										 : sizeof(line) - 1);
}

static void fcd_copy_console(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fcd_log("FC_DOUBLE_CONSOLE_FILE: cannot open '%s': %s", path, strerror(errno));
		return;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		(void)fcd_write_all(STDOUT_FILENO, buf, (size_t)n);
	close(fd);
}

/* NULs as fast as stdout takes them; n < 0: until a write fails (the reader went away). */
static void fcd_flood_console(long long n)
{
	static const char zeros[65536];
	long long left = n;

	while (n < 0 || left > 0) {
		size_t k = n < 0 || left > (long long)sizeof(zeros) ? sizeof(zeros) : (size_t)left;
		if (fcd_write_all(STDOUT_FILENO, zeros, k) < 0)
			return;
		left -= (long long)k;
	}
	char done[80];
	int len = snprintf(done, sizeof(done), "fc-double: console flood of %lld bytes done\n", n);
	(void)fcd_write_all(STDOUT_FILENO, done, (size_t)len);
}

/* Plays the guest after InstanceStart: its console output, then its reset. */
static void *fcd_guest_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&fcd_vm.lock);
	while (fcd_vm.state == FCD_NOT_STARTED)
		pthread_cond_wait(&fcd_vm.state_changed, &fcd_vm.lock);
	pthread_mutex_unlock(&fcd_vm.lock);
	if (fcd_knobs.console_file)
		fcd_copy_console(fcd_knobs.console_file);
	if (fcd_knobs.console_flood)
		fcd_flood_console(fcd_knobs.console_flood);
	if (fcd_knobs.exit_after_ms < 0)
		return NULL;
	/* This thread wakes when InstanceStart changes the state, before its
	 * 204 is written: leave the reply time to go out, as a real guest's
	 * reset (panic=1 waits a second) always does. */
	fcd_sleep_ms(fcd_knobs.exit_after_ms > FCD_EXIT_AFTER_MIN_MS ? fcd_knobs.exit_after_ms
								      : FCD_EXIT_AFTER_MIN_MS);
	if (fcd_knobs.exit_after_code == 0) {
		/* What Firecracker logs when the guest resets through the i8042. */
		fcd_vmm_log_line("fc_vcpu 0", "Received KVM_EXIT_SHUTDOWN signal");
		fcd_vmm_log_line("main", "Vmm is stopping.");
		fcd_vmm_log_line("main", "Firecracker exiting successfully. exit_code=0");
	} else {
		fcd_vmm_log_line("main", "Firecracker exiting with error. exit_code=1");
	}
	_exit(fcd_knobs.exit_after_code);
}

int main(int argc, char **argv)
{
	char msg[FCD_MSG_MAX];
	int listen_fd;
	int r;

	static char version_line[64];

	fcd_hooks = &fcd_double_hooks;
	fcd_cfg.version = fcd_env_version();
	if (!fcd_cfg.version) {
		fprintf(stderr, "fc-double: FC_DOUBLE_VERSION='%s' is not X.Y.Z\n",
			getenv("FC_DOUBLE_VERSION"));
		return FCD_EXIT_GENERIC;
	}
	snprintf(version_line, sizeof(version_line), "Firecracker v%s", fcd_cfg.version);
	fcd_double_program.version_line = version_line;
	if (fcd_args_parse(argc, argv, &fcd_double_program) < 0)
		return FCD_EXIT_ARG_PARSING;
	r = fcd_env_load(&fcd_cfg, &fcd_knobs, msg, sizeof(msg));
	if (r < 0) {
		fcd_log("%s", r == -ENOMEM ? "out of memory" : msg);
		return FCD_EXIT_GENERIC;
	}
	if (fcd_knobs.console_file || fcd_knobs.console_flood || fcd_knobs.exit_after_ms >= 0) {
		pthread_t guest;
		if (pthread_create(&guest, NULL, fcd_guest_thread, NULL) != 0) {
			fcd_log("cannot start the guest thread");
			return FCD_EXIT_GENERIC;
		}
		pthread_detach(guest);
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
	/* Firecracker's first log line, in its format, on stdout. */
	char hello[128];
	snprintf(hello, sizeof(hello), "Running Firecracker v%s", fcd_version());
	fcd_vmm_log_line("main", hello);
	r = fcd_http_serve(listen_fd);
	fcd_log("API server stopped: %s", strerror(-r));
	return FCD_EXIT_GENERIC;
}
