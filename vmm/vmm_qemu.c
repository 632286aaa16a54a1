/* banger-vmm-qemu: the QEMU child. It is forked by a thread that lives as long as the
 * process, because PR_SET_PDEATHSIG fires when the forking *thread* ends; so QEMU dies
 * with banger-vmm-qemu however that ends. A reaper thread waits for QEMU; a relay thread
 * copies QEMU's stderr to ours and keeps its tail, which becomes the fault_message when
 * QEMU exits before the QMP handshake. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fcapi.h"
#include "vmm_qemu.h"

#define VMM_QEMU_HANDSHAKE_MS 30000
#define VMM_QEMU_COMMAND_MS 5000
#define VMM_QEMU_ERR_TAIL 1024

extern char **environ;

void (*vmm_qemu_on_exit)(int wait_status);

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	/* spawn request, served by the spawner thread */
	bool spawner_running;
	char *const *spawn_argv;
	int spawn_fds[2]; /* QMP end and stderr write end for the child */
	bool spawn_pending;
	int spawn_result; /* pid or -errno */
	/* the running QEMU */
	pid_t pid;
	bool exited;
	int status;
	bool started;
	bool err_eof;
	char err_tail[VMM_QEMU_ERR_TAIL];
	size_t err_len;
	int qmp_fd;
	char qmp_buf[8192];
	size_t qmp_len;
} vq = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
	.qmp_fd = -1,
};

int vmm_qemu_find(char **ret_path, char *msg, size_t msg_len)
{
	const char *env = getenv("BANGER_VMM_QEMU");
	const char *path_env = getenv("PATH");
	char *copy = NULL, *save = NULL;
	int r = -ENOENT;

	if (env && *env) {
		if (access(env, X_OK) < 0) {
			r = -errno;
			snprintf(msg, msg_len, "BANGER_VMM_QEMU=%s: %s", env, strerror(-r));
			return r;
		}
		*ret_path = strdup(env);
		return *ret_path ? 0 : -ENOMEM;
	}
	copy = strdup(path_env && *path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
	if (!copy)
		return -ENOMEM;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *candidate = NULL;
		if (asprintf(&candidate, "%s/qemu-system-x86_64", dir) < 0) {
			r = -ENOMEM;
			goto cleanup;
		}
		if (access(candidate, X_OK) == 0) {
			*ret_path = candidate;
			r = 0;
			goto cleanup;
		}
		free(candidate);
	}
	snprintf(msg, msg_len, "qemu-system-x86_64 was not found on PATH (install "
		 "qemu-system-x86 or set BANGER_VMM_QEMU)");
cleanup:
	free(copy);
	return r;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void vmm_qemu_child(char *const *argv, int qmp_fd, int err_fd, pid_t parent)
{
	static const char fail[] = "banger-vmm-qemu: cannot exec QEMU\n";
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	if (dup2(err_fd, STDERR_FILENO) < 0)
		_exit(127);
	if (qmp_fd == VMM_QEMU_QMP_FD)
		fcntl(qmp_fd, F_SETFD, 0);
	else if (dup2(qmp_fd, VMM_QEMU_QMP_FD) < 0)
		_exit(127);
	execve(argv[0], argv, environ);
	(void)!write(STDERR_FILENO, fail, sizeof(fail) - 1);
	_exit(127);
}

static void *vmm_qemu_spawner(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&vq.lock);
	for (;;) {
		while (!vq.spawn_pending)
			pthread_cond_wait(&vq.changed, &vq.lock);
		pid_t parent = getpid();
		pid_t pid = fork();
		if (pid == 0)
			vmm_qemu_child(vq.spawn_argv, vq.spawn_fds[0], vq.spawn_fds[1], parent);
		vq.spawn_result = pid < 0 ? -errno : pid;
		vq.spawn_pending = false;
		pthread_cond_broadcast(&vq.changed);
	}
	return NULL;
}

static void *vmm_qemu_reaper(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;
	int status = 0;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&vq.lock);
	vq.exited = true;
	vq.status = status;
	pthread_cond_broadcast(&vq.changed);
	/* Let the relay pass on QEMU's last words before the process ends. */
	while (!vq.err_eof)
		pthread_cond_wait(&vq.changed, &vq.lock);
	bool started = vq.started;
	pthread_mutex_unlock(&vq.lock);
	if (started && vmm_qemu_on_exit)
		vmm_qemu_on_exit(status);
	return NULL;
}

static void *vmm_qemu_relay(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		(void)fcd_write_all(STDERR_FILENO, buf, (size_t)n);
		pthread_mutex_lock(&vq.lock);
		for (ssize_t i = 0; i < n; i++) {
			if (vq.err_len == sizeof(vq.err_tail) - 1) {
				memmove(vq.err_tail, vq.err_tail + 1, vq.err_len - 1);
				vq.err_len--;
			}
			vq.err_tail[vq.err_len++] = buf[i];
		}
		vq.err_tail[vq.err_len] = '\0';
		pthread_mutex_unlock(&vq.lock);
	}
	close(fd);
	pthread_mutex_lock(&vq.lock);
	vq.err_eof = true;
	pthread_cond_broadcast(&vq.changed);
	pthread_mutex_unlock(&vq.lock);
	return NULL;
}

static long vmm_qemu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one QMP line (a JSON object) into line; -EPIPE when QEMU closed it. */
static int vmm_qemu_qmp_line(char *line, size_t line_len, long deadline_ms)
{
	for (;;) {
		char *nl = memchr(vq.qmp_buf, '\n', vq.qmp_len);
		if (nl) {
			size_t n = (size_t)(nl - vq.qmp_buf);
			snprintf(line, line_len, "%.*s", (int)n, vq.qmp_buf);
			memmove(vq.qmp_buf, nl + 1, vq.qmp_len - n - 1);
			vq.qmp_len -= n + 1;
			return 0;
		}
		if (vq.qmp_len == sizeof(vq.qmp_buf))
			vq.qmp_len = 0; /* an absurdly long event: drop it */
		long left = deadline_ms - vmm_qemu_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = vq.qmp_fd, .events = POLLIN };
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		if (pr == 0)
			return -ETIMEDOUT;
		ssize_t n = read(vq.qmp_fd, vq.qmp_buf + vq.qmp_len, sizeof(vq.qmp_buf) - vq.qmp_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		vq.qmp_len += (size_t)n;
	}
}

/* Sends one QMP command and waits for its "return" (events are skipped). */
static int vmm_qemu_qmp_command(const char *json, long timeout_ms, char *msg, size_t msg_len)
{
	long deadline = vmm_qemu_now_ms() + timeout_ms;
	char line[sizeof(vq.qmp_buf)];
	int r;

	r = fcd_write_all(vq.qmp_fd, json, strlen(json));
	if (r < 0) {
		snprintf(msg, msg_len, "QMP: %s", strerror(-r));
		return r;
	}
	for (;;) {
		r = vmm_qemu_qmp_line(line, sizeof(line), deadline);
		if (r < 0) {
			snprintf(msg, msg_len, "QMP: %s", strerror(-r));
			return r;
		}
		if (strstr(line, "\"return\""))
			return 0;
		if (strstr(line, "\"error\"")) {
			snprintf(msg, msg_len, "QMP: %.300s", line);
			return -EIO;
		}
	}
}

static int vmm_qemu_handshake(char *msg, size_t msg_len)
{
	char line[sizeof(vq.qmp_buf)];
	int r;

	/* The greeting comes once QEMU built the machine and entered its main loop. */
	r = vmm_qemu_qmp_line(line, sizeof(line), vmm_qemu_now_ms() + VMM_QEMU_HANDSHAKE_MS);
	if (r < 0 || !strstr(line, "\"QMP\"")) {
		snprintf(msg, msg_len, "no QMP greeting: %.200s", r < 0 ? strerror(-r) : line);
		return r < 0 ? r : -EPROTO;
	}
	return vmm_qemu_qmp_command("{\"execute\":\"qmp_capabilities\"}\n",
				    VMM_QEMU_HANDSHAKE_MS, msg, msg_len);
}

/* Forks through the spawner thread; the pid or a negative errno. */
static pid_t vmm_qemu_spawn(char *const *argv, int qmp_child, int err_w)
{
	pthread_t thread;
	pid_t pid;

	pthread_mutex_lock(&vq.lock);
	if (!vq.spawner_running) {
		int r = pthread_create(&thread, NULL, vmm_qemu_spawner, NULL);
		if (r != 0) {
			pthread_mutex_unlock(&vq.lock);
			return -r;
		}
		pthread_detach(thread);
		vq.spawner_running = true;
	}
	vq.spawn_argv = argv;
	vq.spawn_fds[0] = qmp_child;
	vq.spawn_fds[1] = err_w;
	vq.spawn_pending = true;
	pthread_cond_broadcast(&vq.changed);
	while (vq.spawn_pending)
		pthread_cond_wait(&vq.changed, &vq.lock);
	pid = vq.spawn_result;
	pthread_mutex_unlock(&vq.lock);
	return pid;
}

/* The reason QEMU exited, from its stderr tail. Called with QEMU reaped. */
static void vmm_qemu_exit_reason(char *msg, size_t msg_len)
{
	char *tail = vq.err_tail;
	size_t n = vq.err_len;

	while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r' || tail[n - 1] == ' '))
		tail[--n] = '\0';
	if (WIFEXITED(vq.status))
		snprintf(msg, msg_len, "QEMU exited with status %d: %s", WEXITSTATUS(vq.status),
			 n ? tail : "(no message)");
	else
		snprintf(msg, msg_len, "QEMU was killed by signal %d: %s",
			 WIFSIGNALED(vq.status) ? WTERMSIG(vq.status) : 0, n ? tail : "(no message)");
}

int vmm_qemu_start(char *const *argv, char *msg, size_t msg_len)
{
	int qmp[2] = { -1, -1 };
	int err[2] = { -1, -1 };
	pthread_t thread;
	char why[FCD_MSG_MAX] = "";
	pid_t pid;
	int r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0) {
		r = -errno;
		snprintf(msg, msg_len, "cannot create QEMU's pipes: %s", strerror(-r));
		goto cleanup;
	}
	pthread_mutex_lock(&vq.lock);
	vq.exited = vq.started = vq.err_eof = false;
	vq.err_len = 0;
	vq.err_tail[0] = '\0';
	vq.qmp_len = 0;
	vq.qmp_fd = qmp[0];
	qmp[0] = -1; /* owned by vq from here */
	pthread_mutex_unlock(&vq.lock);

	pid = vmm_qemu_spawn(argv, qmp[1], err[1]);
	if (pid < 0) {
		r = pid;
		snprintf(msg, msg_len, "cannot start QEMU: %s", strerror(-r));
		close(vq.qmp_fd);
		vq.qmp_fd = -1;
		goto cleanup;
	}
	close(qmp[1]);
	close(err[1]);
	qmp[1] = err[1] = -1;
	pthread_mutex_lock(&vq.lock);
	vq.pid = pid;
	pthread_mutex_unlock(&vq.lock);
	r = -pthread_create(&thread, NULL, vmm_qemu_relay, (void *)(intptr_t)err[0]);
	if (r == 0) {
		err[0] = -1; /* the relay owns it */
		pthread_detach(thread);
		r = -pthread_create(&thread, NULL, vmm_qemu_reaper, (void *)(intptr_t)pid);
	}
	if (r < 0) {
		/* Without a reaper nobody could wait for QEMU; this is fatal. */
		kill(pid, SIGKILL);
		fcd_log("cannot start the QEMU threads: %s", strerror(-r));
		_exit(FCD_EXIT_GENERIC);
	}
	pthread_detach(thread);

	r = vmm_qemu_handshake(why, sizeof(why));
	pthread_mutex_lock(&vq.lock);
	if (r == 0 && !vq.exited) {
		vq.started = true;
		pthread_mutex_unlock(&vq.lock);
		goto cleanup;
	}
	if (!vq.exited)
		kill(pid, SIGKILL);
	while (!vq.exited || !vq.err_eof)
		pthread_cond_wait(&vq.changed, &vq.lock);
	/* QEMU's own words say more than a broken QMP socket. */
	if (vq.err_len > 0 || r == -EPIPE || r == 0)
		vmm_qemu_exit_reason(msg, msg_len);
	else
		snprintf(msg, msg_len, "QEMU did not start: %s", why);
	vq.pid = 0;
	close(vq.qmp_fd);
	vq.qmp_fd = -1;
	pthread_mutex_unlock(&vq.lock);
	r = r < 0 ? r : -ECHILD;
cleanup:
	for (int i = 0; i < 2; i++) {
		if (qmp[i] >= 0)
			close(qmp[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return r;
}

int vmm_qemu_send_ctrl_alt_del(char *msg, size_t msg_len)
{
	static const char cmd[] =
		"{\"execute\":\"send-key\",\"arguments\":{\"keys\":["
		"{\"type\":\"qcode\",\"data\":\"ctrl\"},{\"type\":\"qcode\",\"data\":\"alt\"},"
		"{\"type\":\"qcode\",\"data\":\"delete\"}]}}\n";

	if (vq.qmp_fd < 0) {
		snprintf(msg, msg_len, "QEMU is not running");
		return -ESRCH;
	}
	return vmm_qemu_qmp_command(cmd, VMM_QEMU_COMMAND_MS, msg, msg_len);
}

int vmm_qemu_set_paused(bool paused, char *msg, size_t msg_len)
{
	if (vq.qmp_fd < 0) {
		snprintf(msg, msg_len, "QEMU is not running");
		return -ESRCH;
	}
	return vmm_qemu_qmp_command(paused ? "{\"execute\":\"stop\"}\n" : "{\"execute\":\"cont\"}\n",
				    VMM_QEMU_COMMAND_MS, msg, msg_len);
}

void vmm_qemu_kill(void)
{
	pthread_mutex_lock(&vq.lock);
	vq.started = false; /* our exit path, not the reaper's */
	if (vq.pid > 0 && !vq.exited) {
		kill(vq.pid, SIGKILL);
		while (!vq.exited)
			pthread_cond_wait(&vq.changed, &vq.lock);
	}
	pthread_mutex_unlock(&vq.lock);
}
