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

/* Firecracker exit codes (FcExitCode). */
#define FCD_EXIT_GENERIC 1
#define FCD_EXIT_ARG_PARSING 153

/* The earliest exit after InstanceStart (FC_DOUBLE_EXIT_AFTER_MS). */
#define FCD_EXIT_AFTER_MIN_MS 100

struct fcd_config fcd_cfg = { .record_fd = -1 };
struct fcd_vm fcd_vm = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.state_changed = PTHREAD_COND_INITIALIZER,
	.state = FCD_NOT_STARTED,
	.vcpu_count = 1,
	.mem_size_mib = 128,
	.huge_pages = "None",
	.logger_fd = -1,
	.metrics_fd = -1,
};

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

/* --id: 1..64 characters, alphanumerics and '-'. */
static bool fcd_instance_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return false;
	for (const char *p = id; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '-';
		if (!ok)
			return false;
	}
	return true;
}

static void fcd_usage(FILE *out)
{
	fprintf(out, "usage: fc-double --api-sock PATH [--id ID] [--ignore-ctrl-alt-del]\n"
		     "       fc-double --version\n"
		     "A test double of firecracker v%s; see tests/fcdouble/README.md.\n",
		FCD_VERSION);
}

static int fcd_parse_args(int argc, char **argv)
{
	fcd_cfg.api_sock = "/run/firecracker.socket";
	fcd_cfg.id = FCD_DEFAULT_ID;
	fcd_cfg.max_payload = FCD_DEFAULT_MAX_PAYLOAD;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--version") == 0) {
			printf("Firecracker v%s\n", FCD_VERSION);
			exit(0);
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fcd_usage(stdout);
			exit(0);
		} else if (strcmp(a, "--ignore-ctrl-alt-del") == 0) {
			fcd_cfg.ignore_ctrl_alt_del = true;
		} else if (fcd_in_list(fcd_switch_flags, a)) {
			continue;
		} else if (strcmp(a, "--api-sock") == 0 || strcmp(a, "--id") == 0 ||
			   strcmp(a, "--http-api-max-payload-size") == 0 ||
			   fcd_in_list(fcd_value_flags, a)) {
			if (!v) {
				fprintf(stderr, "fc-double: %s needs a value\n", a);
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
					fprintf(stderr, "fc-double: bad %s '%s'\n", a, v);
					return -EINVAL;
				}
				fcd_cfg.max_payload = n;
			}
		} else {
			fprintf(stderr, "fc-double: unsupported argument '%s'\n", a);
			fcd_usage(stderr);
			return -EINVAL;
		}
	}
	if (!fcd_instance_id_valid(fcd_cfg.id)) {
		fprintf(stderr, "fc-double: invalid instance id '%s'\n", fcd_cfg.id);
		return -EINVAL;
	}
	return 0;
}

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

/* Plays the guest after InstanceStart: its console output, then its reset. */
static void *fcd_guest_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&fcd_vm.lock);
	while (fcd_vm.state == FCD_NOT_STARTED)
		pthread_cond_wait(&fcd_vm.state_changed, &fcd_vm.lock);
	pthread_mutex_unlock(&fcd_vm.lock);
	if (fcd_cfg.console_file)
		fcd_copy_console(fcd_cfg.console_file);
	if (fcd_cfg.exit_after_ms < 0)
		return NULL;
	/* This thread wakes when InstanceStart changes the state, before its
	 * 204 is written: leave the reply time to go out, as a real guest's
	 * reset (panic=1 waits a second) always does. */
	fcd_sleep_ms(fcd_cfg.exit_after_ms > FCD_EXIT_AFTER_MIN_MS ? fcd_cfg.exit_after_ms
								    : FCD_EXIT_AFTER_MIN_MS);
	if (fcd_cfg.exit_after_code == 0) {
		/* What Firecracker logs when the guest resets through the i8042. */
		fcd_vmm_log_line("fc_vcpu 0", "Received KVM_EXIT_SHUTDOWN signal");
		fcd_vmm_log_line("main", "Vmm is stopping.");
		fcd_vmm_log_line("main", "Firecracker exiting successfully. exit_code=0");
	} else {
		fcd_vmm_log_line("main", "Firecracker exiting with error. exit_code=1");
	}
	_exit(fcd_cfg.exit_after_code);
}

static int fcd_bind_api(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int main(int argc, char **argv)
{
	char msg[FCD_MSG_MAX];
	int listen_fd;
	int r;

	fcd_cfg.version = fcd_env_version();
	if (!fcd_cfg.version) {
		fprintf(stderr, "fc-double: FC_DOUBLE_VERSION='%s' is not X.Y.Z\n",
			getenv("FC_DOUBLE_VERSION"));
		return FCD_EXIT_GENERIC;
	}
	if (fcd_parse_args(argc, argv) < 0)
		return FCD_EXIT_ARG_PARSING;
	r = fcd_env_load(&fcd_cfg, msg, sizeof(msg));
	if (r < 0) {
		fcd_log("%s", r == -ENOMEM ? "out of memory" : msg);
		return FCD_EXIT_GENERIC;
	}
	if (fcd_cfg.console_file || fcd_cfg.exit_after_ms >= 0) {
		pthread_t guest;
		if (pthread_create(&guest, NULL, fcd_guest_thread, NULL) != 0) {
			fcd_log("cannot start the guest thread");
			return FCD_EXIT_GENERIC;
		}
		pthread_detach(guest);
	}
	/* Firecracker only counts SIGPIPE; writes to gone peers must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	fcd_sleep_ms(fcd_cfg.startup_delay_ms);
	listen_fd = fcd_bind_api(fcd_cfg.api_sock);
	if (listen_fd < 0) {
		fcd_log("Failed to open the API socket at: %s. Check that it is not already used. "
			"(%s)", fcd_cfg.api_sock, strerror(-listen_fd));
		return FCD_EXIT_GENERIC;
	}
	/* Firecracker's first log line, in its format, on stdout. */
	char hello[128];
	snprintf(hello, sizeof(hello), "Running Firecracker v%s", FCD_VERSION);
	fcd_vmm_log_line("main", hello);
	r = fcd_http_serve(listen_fd);
	fcd_log("API server stopped: %s", strerror(-r));
	return FCD_EXIT_GENERIC;
}
