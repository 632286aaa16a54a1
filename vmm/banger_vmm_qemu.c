/* banger-vmm-qemu: a VMM with Firecracker v1.16.1's command line and API that runs the
 * guest in QEMU's microvm machine. See README.md.
 *
 *   banger-vmm-qemu --api-sock PATH [--id ID] [other firecracker flags, ignored]
 *   banger-vmm-qemu --version
 *
 * Environment: BANGER_VMM_QEMU (the QEMU binary), BANGER_VMM_ACCEL (kvm|tcg|auto).
 *
 * The API (vmm/libfcapi, the same code as tests/fcdouble's double) validates requests;
 * InstanceStart builds QEMU's argv (vmm_argv.c) and starts it (vmm_qemu.c). The main
 * thread only waits for SIGTERM/SIGINT/SIGHUP, kills QEMU and dies by the same signal.
 * When the guest resets or powers off QEMU exits (-no-reboot), and so does this process. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "fcapi.h"
#include "vmm_argv.h"
#include "vmm_host.h"
#include "vmm_qemu.h"

static void vmm_usage(FILE *out)
{
	fprintf(out, "usage: banger-vmm-qemu --api-sock PATH [--id ID] [firecracker flags]\n"
		     "       banger-vmm-qemu --version\n"
		     "Firecracker's v%s API over QEMU's microvm machine.\n"
		     "Environment: BANGER_VMM_QEMU=PATH, BANGER_VMM_ACCEL=kvm|tcg|auto\n",
		FCD_VERSION);
}

/* banger's version parser reads the leading "Firecracker vX.Y.Z". */
static const struct fcd_args_program vmm_program = {
	.name = "banger-vmm-qemu",
	.version_line = "Firecracker v" FCD_VERSION " (banger-vmm-qemu " PACKAGE_VERSION
			", QEMU microvm)",
	.usage = vmm_usage,
};

/* InstanceStart, under fcd_vm.lock: the API accepted the configuration; run it. */
static void vmm_instance_start(struct fcd_response *resp)
{
	struct vmm_qemu_opts opts = { .qmp_fd = VMM_QEMU_QMP_FD };
	char **argv = NULL;
	char *qemu = NULL;
	char msg[FCD_MSG_MAX] = "";
	char why[256];
	int r;

	r = vmm_qemu_find(&qemu, msg, sizeof(msg));
	if (r < 0) {
		fcd_response_fault(resp, "Start microvm error: cannot run QEMU: %s",
				   r == -ENOMEM ? "out of memory" : msg);
		goto cleanup;
	}
	r = vmm_host_choose_accel(&opts.kvm, why, sizeof(why));
	if (r < 0) {
		fcd_response_fault(resp, "Start microvm error: %s", why);
		goto cleanup;
	}
	opts.qemu = qemu;
	opts.vhost_vsock = vmm_host_has_vhost_vsock();
	if (!opts.kvm)
		opts.host_mhz = vmm_host_cpu_mhz();
	fcd_log("accel=%s (%s)", opts.kvm ? "kvm" : "tcg", why);
	if (!opts.kvm && opts.host_mhz)
		fcd_log("TCG: kernel command line gets tsc_early_khz=%u lpj=%u so the guest skips "
			"its clock calibration", opts.host_mhz * 1000, opts.host_mhz * 4000);
	if (fcd_vm.vsock && !opts.vhost_vsock)
		fcd_log("vsock: /dev/vhost-vsock is missing; guest vsock connections will be "
			"refused");
	r = vmm_qemu_argv(&fcd_vm, &opts, &argv, msg, sizeof(msg));
	if (r < 0) {
		fcd_response_fault(resp, "Start microvm error: %s",
				   r == -ENOMEM ? "out of memory" : msg);
		goto cleanup;
	}
	r = vmm_qemu_start(argv, msg, sizeof(msg));
	if (r < 0) {
		fcd_log("InstanceStart failed: %s", msg);
		fcd_response_fault(resp, "Start microvm error: %s", msg);
		/* QEMU is gone (reaped): this VMM has no VM left to run; exit after the reply. */
		resp->after = FCD_AFTER_CRASH;
		goto cleanup;
	}
	fcd_log("QEMU runs the guest");
cleanup:
	vmm_argv_free(argv);
	free(qemu);
}

static void vmm_ctrl_alt_del(struct fcd_response *resp)
{
	char msg[FCD_MSG_MAX];

	if (vmm_qemu_send_ctrl_alt_del(msg, sizeof(msg)) < 0)
		fcd_response_fault(resp, "Ctrl-Alt-Del: %s", msg);
}

static void vmm_set_paused(bool paused, struct fcd_response *resp)
{
	char msg[FCD_MSG_MAX];

	if (vmm_qemu_set_paused(paused, msg, sizeof(msg)) < 0)
		fcd_response_fault(resp, "%s: %s", paused ? "Pause" : "Resume", msg);
}

static int vmm_vsock_connect(uint32_t guest_cid, uint32_t port)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = guest_cid,
		.svm_port = port,
	};

	if (!vmm_host_has_vhost_vsock())
		return -ECONNREFUSED;
	return fcd_stream_connect((struct sockaddr *)&addr, sizeof(addr));
}

/* QEMU ended after a successful start: the guest reset or powered off (exit 0), like
 * Firecracker after a guest reset; anything else is an error exit. */
static void vmm_on_qemu_exit(int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		fcd_log("the guest stopped; exiting");
		_exit(0);
	}
	if (WIFEXITED(status))
		fcd_log("QEMU exited with status %d", WEXITSTATUS(status));
	else
		fcd_log("QEMU was killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	_exit(FCD_EXIT_GENERIC);
}

static void vmm_after_reply(enum fcd_after after)
{
	if (after == FCD_AFTER_CRASH) {
		fcd_log("QEMU did not start; exiting");
		_exit(FCD_EXIT_GENERIC);
	}
}

static const struct fcd_hooks vmm_hooks = {
	.log_name = "banger-vmm-qemu",
	.instance_start = vmm_instance_start,
	.ctrl_alt_del = vmm_ctrl_alt_del,
	.set_paused = vmm_set_paused,
	.after_reply = vmm_after_reply,
	.vsock_connect = vmm_vsock_connect,
};

static void *vmm_api_thread(void *arg)
{
	int r = fcd_http_serve((int)(intptr_t)arg);

	fcd_log("API server stopped: %s", strerror(-r));
	vmm_qemu_kill();
	_exit(FCD_EXIT_GENERIC);
	return NULL;
}

int main(int argc, char **argv)
{
	sigset_t stop;
	pthread_t api;
	int listen_fd;
	int sig = 0;

	fcd_hooks = &vmm_hooks;
	fcd_cfg.check_paths = true; /* Firecracker opens the files at PUT time */
	vmm_qemu_on_exit = vmm_on_qemu_exit;
	if (fcd_args_parse(argc, argv, &vmm_program) < 0)
		return FCD_EXIT_ARG_PARSING;
	signal(SIGPIPE, SIG_IGN);
	/* Blocked in every thread (they inherit the mask); the main thread takes them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	listen_fd = fcd_http_bind(fcd_cfg.api_sock);
	if (listen_fd < 0) {
		fcd_log("Failed to open the API socket at: %s. Check that it is not already used. "
			"(%s)", fcd_cfg.api_sock, strerror(-listen_fd));
		return FCD_EXIT_GENERIC;
	}
	fcd_log("Running Firecracker v%s API (banger-vmm-qemu %s, QEMU microvm) at %s",
		FCD_VERSION, PACKAGE_VERSION, fcd_cfg.api_sock);
	if (pthread_create(&api, NULL, vmm_api_thread, (void *)(intptr_t)listen_fd) != 0) {
		fcd_log("cannot start the API thread");
		return FCD_EXIT_GENERIC;
	}
	while (sigwait(&stop, &sig) != 0)
		;
	/* Never leave QEMU behind; then die by the signal, as Firecracker does. */
	vmm_qemu_kill();
	signal(sig, SIG_DFL);
	pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
	raise(sig);
	return 128 + sig;
}
