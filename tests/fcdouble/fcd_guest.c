/* A stand-in guest for tests (FC_DOUBLE_STANDIN=1): when the double's VM
 * "boots", a real sshd answers at the VM's address.
 *
 * Built twice. Inside fc-double, fcd_guest_observe() notes the boot args,
 * the drives and the network interface as the API accepts them, and on
 * InstanceStart starts the fcd-standin program (built from this file with
 * FCD_STANDIN_MAIN). The double keeps the write end of a "lifeline" pipe
 * that nobody else holds; when the double exits or is killed, the stand-in
 * reads EOF and ends.
 *
 * fcd-standin, single-threaded, sees what a real guest sees: the drives
 * and the boot args. It forks the guest's "init" as pid 1 of new pid,
 * network and mount namespaces. The parent plugs a veth into the bridge the
 * VM's TAP is on, with the other end (eth0, the VM's MAC) in the guest's
 * network namespace. init gives eth0 the VM's address and default route
 * from the ip= boot argument, mounts the drive whose ext4 label is
 * banger-work at /root the way the image's fstab does (a loop mount, in its
 * private mount namespace) and a tmpfs on /run (for /run/sshd), and runs
 * sshd -D with a generated config (StrictModes on, root's own
 * ~/.ssh/authorized_keys) and a host key kept beside the work disk
 * (deleting it gives the "guest" a new host key).
 *
 * SendCtrlAltDel shuts the guest down before the double exits, as a real
 * guest does before it resets: the double closes the lifeline and waits;
 * init kills everything else, unmounts /root and exits. When the double is
 * killed instead, the lifeline breaks the same way, without the wait. With
 * init the kernel kills everything in its pid namespace, and with the
 * network namespace goes the veth. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FCD_STANDIN_MAIN

#include "fcd.h"

#define FCD_GUEST_MAX_DRIVES 8
#define FCD_GUEST_SHUTDOWN_MS 5000

static struct {
	char boot_args[1024];
	char work[PATH_MAX];
	char drives[FCD_GUEST_MAX_DRIVES][PATH_MAX];
	char drive_ids[FCD_GUEST_MAX_DRIVES][72];
	size_t n_drives;
	char tap[32];
	char mac[32];
	bool started;
	int lifeline;   /* write end; closing it shuts the guest down */
	pid_t pid;
} fcd_guest = { .lifeline = -1 };

static void fcd_guest_copy(char *dst, size_t len, const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsString(it))
		snprintf(dst, len, "%s", it->valuestring);
}

static void fcd_guest_start(void)
{
	char self[PATH_MAX], prog[PATH_MAX], dir[PATH_MAX], hostkey[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int lifeline[2];
	char *slash;

	if (n <= 0 || !fcd_guest.tap[0] || !fcd_guest.work[0]) {
		fcd_log("stand-in guest: needs a network interface and a \"work\" drive");
		return;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	snprintf(prog, sizeof(prog), "%.*s/fcd-standin", (int)(slash - self), self);
	snprintf(dir, sizeof(dir), "%s", fcd_cfg.api_sock);
	slash = strrchr(dir, '/');
	snprintf(slash ? slash + 1 : dir, sizeof(dir) - (size_t)(slash ? slash + 1 - dir : 0),
		 "standin");
	snprintf(hostkey, sizeof(hostkey), "%s", fcd_guest.work);
	slash = strrchr(hostkey, '/');
	snprintf(slash ? slash + 1 : hostkey,
		 sizeof(hostkey) - (size_t)(slash ? slash + 1 - hostkey : 0), "standin_host_ed25519");
	/* The guest gets every drive and finds its work disk by label. */
	const char *argv[16 + 2 * FCD_GUEST_MAX_DRIVES] = { prog, "--dir", dir, "--hostkey",
							    hostkey, "--tap", fcd_guest.tap,
							    "--mac", fcd_guest.mac, "--boot-args",
							    fcd_guest.boot_args };
	size_t argc = 11;
	for (size_t i = 0; i < fcd_guest.n_drives; i++) {
		argv[argc++] = "--drive";
		argv[argc++] = fcd_guest.drives[i];
	}
	argv[argc] = NULL;
	if (pipe2(lifeline, O_CLOEXEC) < 0) {
		fcd_log("stand-in guest: pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls: other threads may hold locks. */
		if (dup2(lifeline[0], 3) < 0)
			_exit(127);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	close(lifeline[0]);
	if (pid < 0) {
		close(lifeline[1]);
		fcd_log("stand-in guest: fork: %s", strerror(errno));
		return;
	}
	/* lifeline[1] stays open (close-on-exec) for the life of the double. */
	fcd_guest.lifeline = lifeline[1];
	fcd_guest.pid = pid;
	fcd_log("stand-in guest started (pid %d)", (int)pid);
}

/* Ctrl-Alt-Del: the guest shuts down (unmounting its work disk) before the
 * VMM exits, so nothing writes to the disk once the double is gone. */
static void fcd_guest_shutdown(void)
{
	if (fcd_guest.lifeline < 0)
		return;
	close(fcd_guest.lifeline);
	fcd_guest.lifeline = -1;
	for (int waited = 0; waited < FCD_GUEST_SHUTDOWN_MS; waited += 10) {
		pid_t r = waitpid(fcd_guest.pid, NULL, WNOHANG);
		if (r != 0)
			return; /* gone, or reaped already (ECHILD) */
		usleep(10 * 1000);
	}
	fcd_log("stand-in guest (pid %d) still running after %d ms", (int)fcd_guest.pid,
		FCD_GUEST_SHUTDOWN_MS);
}

void fcd_guest_observe(const char *method, const char *resource, const cJSON *body)
{
	const char *on = getenv("FC_DOUBLE_STANDIN");

	if (!on || strcmp(on, "1") != 0 || !body || strcmp(method, "PUT") != 0)
		return;
	if (strcmp(resource, "boot-source") == 0) {
		fcd_guest_copy(fcd_guest.boot_args, sizeof(fcd_guest.boot_args), body, "boot_args");
	} else if (strcmp(resource, "drives") == 0) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "drive_id");
		size_t i = 0;

		if (!cJSON_IsString(id))
			return;
		/* Only for where the host key lives: the guest finds its disks itself. */
		if (strcmp(id->valuestring, "work") == 0)
			fcd_guest_copy(fcd_guest.work, sizeof(fcd_guest.work), body, "path_on_host");
		while (i < fcd_guest.n_drives && strcmp(fcd_guest.drive_ids[i], id->valuestring) != 0)
			i++;
		if (i == FCD_GUEST_MAX_DRIVES)
			return;
		if (i == fcd_guest.n_drives)
			fcd_guest.n_drives++;
		snprintf(fcd_guest.drive_ids[i], sizeof(fcd_guest.drive_ids[i]), "%s", id->valuestring);
		fcd_guest_copy(fcd_guest.drives[i], sizeof(fcd_guest.drives[i]), body, "path_on_host");
	} else if (strcmp(resource, "network-interfaces") == 0) {
		fcd_guest_copy(fcd_guest.tap, sizeof(fcd_guest.tap), body, "host_dev_name");
		fcd_guest_copy(fcd_guest.mac, sizeof(fcd_guest.mac), body, "guest_mac");
	} else if (strcmp(resource, "actions") == 0) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(body, "action_type");

		if (cJSON_IsString(type) && strcmp(type->valuestring, "InstanceStart") == 0 &&
		    !fcd_guest.started) {
			fcd_guest.started = true;
			fcd_guest_start();
		} else if (cJSON_IsString(type) && strcmp(type->valuestring, "SendCtrlAltDel") == 0 &&
			   !fcd_knobs.ignore_ctrl_alt_del) {
			fcd_guest_shutdown();
		}
	}
}

#else /* FCD_STANDIN_MAIN: the fcd-standin program */

#define STANDIN_LIFELINE_FD 3
#define STANDIN_MAX_DRIVES 8
/* The image's fstab mounts the work disk by this label. */
#define STANDIN_WORK_LABEL "banger-work"

struct standin {
	const char *dir, *hostkey, *tap, *mac, *boot_args;
	const char *drives[STANDIN_MAX_DRIVES];
	size_t n_drives;
	const char *work;   /* the drive labelled banger-work, or NULL */
	char ip[64], gw[64];
	int prefix;
	char bridge[32];
	char veth[16];
	char config[PATH_MAX];
};

static void standin_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void standin_log(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fcd-standin[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Runs argv, stdout to out_fd when >= 0; returns the exit status or -1. */
static int standin_run(const char *const *argv, int out_fd)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (out_fd >= 0)
			dup2(out_fd, STDOUT_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		standin_log("%s %s failed (status %d)", argv[0], argv[1] ? argv[1] : "", status);
		return -1;
	}
	return 0;
}

/* ip=<client>::<gateway>:<netmask>:<host>:<dev>:<autoconf>[:<dns>] */
static int standin_parse_ip(struct standin *s)
{
	const char *p = strstr(s->boot_args, "ip=");
	char field[4][64] = { "" };
	unsigned mask[4];

	if (!p)
		return -1;
	p += 3;
	for (int i = 0; i < 4; i++) {
		size_t n = strcspn(p, ": ");
		snprintf(field[i], sizeof(field[i]), "%.*s", (int)n, p);
		p += n;
		if (*p != ':')
			break;
		p++;
	}
	if (sscanf(field[3], "%u.%u.%u.%u", &mask[0], &mask[1], &mask[2], &mask[3]) != 4)
		return -1;
	s->prefix = 0;
	for (int i = 0; i < 4; i++)
		s->prefix += __builtin_popcount(mask[i] & 0xff);
	snprintf(s->ip, sizeof(s->ip), "%s", field[0]);
	snprintf(s->gw, sizeof(s->gw), "%s", field[2]);
	return s->ip[0] ? 0 : -1;
}

/* The TAP's bridge, from `ip -o link show dev TAP` ("... master BR ...");
 * /sys/class/net would show the netns sysfs was mounted in, not ours. */
static int standin_find_bridge(struct standin *s)
{
	const char *const argv[] = { "ip", "-o", "link", "show", "dev", s->tap, NULL };
	char buf[4096] = "";
	int pipefd[2];
	size_t len = 0;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	while (len < sizeof(buf) - 1 &&
	       ((n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		len += n > 0 ? (size_t)n : 0;
	close(pipefd[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	buf[len] = '\0';
	const char *m = strstr(buf, " master ");
	if (!m)
		return -1;
	m += strlen(" master ");
	snprintf(s->bridge, sizeof(s->bridge), "%.*s", (int)strcspn(m, " \n"), m);
	return s->bridge[0] ? 0 : -1;
}

/* Like blkid: an ext2/3/4 superblock (magic 0xEF53 at 1024 + 0x38) whose
 * volume name (1024 + 0x78, 16 bytes) is `label`. */
static bool standin_has_label(const char *path, const char *label)
{
	unsigned char sb[1024];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool match = false;

	if (fd < 0)
		return false;
	if (pread(fd, sb, sizeof(sb), 1024) == (ssize_t)sizeof(sb) && sb[0x38] == 0x53 &&
	    sb[0x39] == 0xef)
		match = strnlen((const char *)sb + 0x78, 16) == strlen(label) &&
			memcmp(sb + 0x78, label, strlen(label)) == 0;
	close(fd);
	return match;
}

static int standin_prepare(struct standin *s)
{
	char path[PATH_MAX];
	struct stat st;

	if (stat(s->hostkey, &st) < 0) {
		const char *const keygen[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
					       "fcd-standin", "-f", s->hostkey, NULL };
		if (standin_run(keygen, -1) < 0)
			return -1;
		snprintf(path, sizeof(path), "%s.pub", s->hostkey);
		unlink(path);
	}
	for (size_t i = 0; i < s->n_drives && !s->work; i++)
		if (standin_has_label(s->drives[i], STANDIN_WORK_LABEL))
			s->work = s->drives[i];
	if (!s->work)
		standin_log("no drive labelled %s: /root is not a work disk and nobody can log in",
			    STANDIN_WORK_LABEL);
	/* sshd reads root's ~/.ssh/authorized_keys, on the work disk, as in
	 * a real guest; StrictModes checks its owner and modes. */
	snprintf(s->config, sizeof(s->config), "%s/sshd_config", s->dir);
	FILE *f = fopen(s->config, "we");
	if (!f)
		return -1;
	fprintf(f, "Port 22\nListenAddress 0.0.0.0\nHostKey %s\n"
		   "AuthorizedKeysFile .ssh/authorized_keys\n"
		   "PidFile none\nUsePAM no\nPermitRootLogin prohibit-password\n"
		   "PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes yes\n"
		   "PrintMotd no\nPrintLastLog no\nUseDNS no\nLogLevel INFO\n"
		   "Subsystem sftp internal-sftp\n",
		s->hostkey);
	return fclose(f) == 0 ? 0 : -1;
}

/* The guest's shutdown: everything else killed, then the work disk
 * unmounted (its loop device goes with it: mount -o loop sets autoclear). */
static int standin_shutdown(struct standin *s)
{
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	if (s->work && umount2("/root", 0) < 0) {
		standin_log("umount /root: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/* pid 1 of the guest: network, the work disk at /root, a private /run,
 * sshd, then wait for the lifeline to break. */
static int standin_init(struct standin *s, int ready_fd, int go_fd)
{
	char addr[96];
	char c = 0;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
		standin_log("unshare: %s", strerror(errno));
		return 1;
	}
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1 || c != 'g')
		return 1;
	close(ready_fd);
	close(go_fd);
	snprintf(addr, sizeof(addr), "%s/%d", s->ip, s->prefix);
	const char *const lo_up[] = { "ip", "link", "set", "lo", "up", NULL };
	const char *const add_addr[] = { "ip", "addr", "add", addr, "dev", "eth0", NULL };
	const char *const eth_up[] = { "ip", "link", "set", "eth0", "up", NULL };
	const char *const route[] = { "ip", "route", "add", "default", "via", s->gw, NULL };
	if (standin_run(lo_up, -1) < 0 || standin_run(add_addr, -1) < 0 ||
	    standin_run(eth_up, -1) < 0)
		return 1;
	if (s->gw[0])
		standin_run(route, -1);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") < 0 ||
	    mkdir("/run/sshd", 0755) < 0) {
		standin_log("mounts: %s", strerror(errno));
		return 1;
	}
	const char *const work[] = { "mount", "-t", "ext4", "-o", "loop", s->work ? s->work : "",
				     "/root", NULL };
	if (s->work && standin_run(work, -1) < 0)
		return 1;
	pid_t sshd = fork();
	if (sshd == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", s->config, (char *)NULL);
		_exit(127);
	}
	standin_log("guest %s/%d (gw %s) on bridge %s via %s: sshd pid %d", s->ip, s->prefix,
		    s->gw, s->bridge, s->veth, (int)sshd);
	/* As pid 1, reap everything until the double goes away. */
	for (;;) {
		struct pollfd p = { .fd = STANDIN_LIFELINE_FD, .events = POLLIN };
		int status;
		pid_t gone;

		while ((gone = waitpid(-1, &status, WNOHANG)) > 0)
			if (gone == sshd)
				standin_log("sshd exited (status %d)", status);
		if (poll(&p, 1, 500) > 0) {
			char buf[16];
			if (read(STANDIN_LIFELINE_FD, buf, sizeof(buf)) <= 0)
				return standin_shutdown(s);
		}
	}
}

static int standin_parse_args(int argc, char **argv, struct standin *s)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (strcmp(k, "--dir") == 0) s->dir = v;
		else if (strcmp(k, "--hostkey") == 0) s->hostkey = v;
		else if (strcmp(k, "--tap") == 0) s->tap = v;
		else if (strcmp(k, "--mac") == 0) s->mac = v;
		else if (strcmp(k, "--boot-args") == 0) s->boot_args = v;
		else if (strcmp(k, "--drive") == 0 && s->n_drives < STANDIN_MAX_DRIVES)
			s->drives[s->n_drives++] = v;
		else return -1;
	}
	return s->dir && s->hostkey && s->tap && s->mac && s->boot_args ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct standin s = { 0 };
	int ready[2], go[2];
	char log[PATH_MAX], c;
	int fd, status;

	if (standin_parse_args(argc, argv, &s) < 0) {
		standin_log("usage: fcd-standin --dir D --hostkey K --tap T --mac M --boot-args A "
			    "[--drive PATH]... (lifeline on fd 3)");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	mkdir(s.dir, 0700);
	snprintf(log, sizeof(log), "%s/standin.log", s.dir);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	snprintf(s.veth, sizeof(s.veth), "bgsv%d", (int)getpid() % 100000000);
	if (standin_parse_ip(&s) < 0 || standin_find_bridge(&s) < 0) {
		standin_log("need ip= in the boot args and TAP %s on a bridge", s.tap);
		return 1;
	}
	if (standin_prepare(&s) < 0) {
		standin_log("preparing %s failed", s.dir);
		return 1;
	}
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 || unshare(CLONE_NEWPID) < 0) {
		standin_log("pipes or pid namespace: %s", strerror(errno));
		return 1;
	}
	pid_t init = fork();
	if (init < 0)
		return 1;
	if (init == 0)
		_exit(standin_init(&s, ready[1], go[0]));
	close(ready[1]);
	close(go[0]);
	close(STANDIN_LIFELINE_FD);
	if (read(ready[0], &c, 1) != 1) {
		standin_log("guest init died early");
		return 1;
	}
	/* Our children now live in the new pid namespace, where the guest's
	 * init is pid 1: that is the pid `ip` must name. */
	const char *const add[] = { "ip", "link", "add", s.veth, "type", "veth", "peer", "name",
				    "eth0", "address", s.mac, "netns", "1", NULL };
	const char *const master[] = { "ip", "link", "set", s.veth, "master", s.bridge, "up",
				       NULL };
	if (standin_run(add, -1) < 0 || standin_run(master, -1) < 0) {
		kill(init, SIGKILL);
		waitpid(init, NULL, 0);
		return 1;
	}
	if (write(go[1], "g", 1) != 1)
		standin_log("guest init gone before the go");
	close(go[1]);
	while (waitpid(init, &status, 0) < 0 && errno == EINTR)
		;
	standin_log("guest ended");
	return 0;
}

#endif
