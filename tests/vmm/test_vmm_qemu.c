/* Check suite for banger-vmm-qemu as a process: bad input (no QEMU, no kernel, a TAP that
 * cannot be opened), SIGTERM, and real TCG boots of a tiny guest (Debian's kernel and a
 * busybox initramfs written here as cpio newc): the serial console on the VMM's stdout,
 * a guest reboot and poweroff ending the VMM, SendCtrlAltDel reaching busybox init,
 * drives (content, read-only) and a TAP in a private network namespace.
 * Without QEMU, the kernel or busybox it SKIPs (77) loudly, or FAILs when CI=true.
 * Cleanup: the VMM gets PR_SET_PDEATHSIG (and QEMU dies with it); each test's files live
 * under one base dir that main() removes; network namespaces are unshared per test
 * process and vanish with it. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T_BUSYBOX "/bin/busybox"
#define T_BOOT_MS 90000 /* upper bound for a TCG boot on a loaded 2-core host */

/* The newest installed Debian kernel (as tests/kernel does), or
 * BANGER_KTEST_KERNEL: a kernel update must not turn these tests off. */
static char t_kernel[PATH_MAX];
static char t_modules[PATH_MAX]; /* /lib/modules/<version>/kernel/ */

static bool t_find_kernel(void)
{
	const char *env = getenv("BANGER_KTEST_KERNEL");
	glob_t g = { 0 };
	const char *best = NULL;

	if (env && *env) {
		best = env;
	} else if (glob("/boot/vmlinuz-*", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (!best || strverscmp(g.gl_pathv[i], best) > 0)
				best = g.gl_pathv[i];
	}
	if (best) {
		const char *ver = strstr(best, "vmlinuz-");
		snprintf(t_kernel, sizeof(t_kernel), "%s", best);
		snprintf(t_modules, sizeof(t_modules), "/lib/modules/%s/kernel/",
			 ver ? ver + strlen("vmlinuz-") : "");
	}
	globfree(&g);
	return best != NULL;
}

static char t_base[32];
static char t_dir[64];
static char t_api[128];
static char t_initrd[128];
static pid_t t_vmm = -1;
static int t_out = -1; /* the VMM's stdout: the guest's serial console */
static char t_console[65536];
static size_t t_console_len;

static const char *t_bin(void)
{
	const char *b = getenv("VMM_QEMU_BIN");
	return b && *b ? b : "../../vmm/banger-vmm-qemu";
}

static long t_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a cpio newc initramfs ---- */

static void t_cpio_entry(FILE *f, const char *name, unsigned mode, const void *data,
			 size_t len, unsigned rmaj, unsigned rmin)
{
	static unsigned ino = 1;
	size_t namesize = strlen(name) + 1;
	static const char zeros[4];

	fprintf(f, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino++, mode,
		0u, 0u, 1u, 0u, len, 0u, 0u, rmaj, rmin, namesize, 0u);
	fwrite(name, 1, namesize, f);
	fwrite(zeros, 1, (4 - (110 + namesize) % 4) % 4, f);
	if (len) {
		fwrite(data, 1, len, f);
		fwrite(zeros, 1, (4 - len % 4) % 4, f);
	}
}

static void t_cpio_file(FILE *f, const char *name, unsigned mode, const char *host_path)
{
	FILE *in = fopen(host_path, "rb");
	struct stat st;
	char *buf;

	ck_assert_msg(in && fstat(fileno(in), &st) == 0, "%s: %s", host_path, strerror(errno));
	buf = malloc((size_t)st.st_size);
	ck_assert(buf && fread(buf, 1, (size_t)st.st_size, in) == (size_t)st.st_size);
	t_cpio_entry(f, name, S_IFREG | mode, buf, (size_t)st.st_size, 0, 0);
	free(buf);
	fclose(in);
}

static void t_cpio_text(FILE *f, const char *name, unsigned mode, const char *text)
{
	t_cpio_entry(f, name, S_IFREG | mode, text, strlen(text), 0, 0);
}

static const char t_init[] =
	"#!/bin/busybox sh\n"
	"/bin/busybox --install -s /bin\n"
	"mount -t proc proc /proc\n"
	"mount -t sysfs sys /sys\n"
	"mount -t devtmpfs dev /dev\n"
	"for m in virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net; do\n"
	"  insmod /lib/$m.ko\n"
	"done\n"
	"exec /bin/busybox init\n";

/* busybox init turns Ctrl-Alt-Del into ::ctrlaltdel: (it disables the kernel's own). */
static const char t_inittab[] =
	"::sysinit:/etc/rc\n"
	"::ctrlaltdel:/bin/sh -c 'echo GOT-CTRL-ALT-DEL; poweroff -f'\n";

static const char t_rc[] =
	"#!/bin/sh\n"
	"echo BANGER-GUEST-UP\n"
	"for w in $(cat /proc/cmdline); do case $w in t=*) T=${w#t=};; esac; done\n"
	"case $T in\n"
	"reboot) reboot -f;;\n"
	"poweroff) poweroff -f;;\n"
	"full)\n"
	"  echo VDA=$(head -c 12 /dev/vda)\n"
	"  echo VDB_RO=$(cat /sys/block/vdb/ro)\n"
	"  if echo x | dd of=/dev/vdb conv=fsync 2>/dev/null; then echo VDB_WRITE=ok; "
	"else echo VDB_WRITE=refused; fi\n"
	"  ip link set eth0 up\n"
	"  ip addr add 10.77.0.2/24 dev eth0\n"
	"  echo MAC=$(cat /sys/class/net/eth0/address)\n"
	"  if ping -c 2 -W 10 10.77.0.1 >/dev/null; then echo PING=ok; else echo PING=fail; fi\n"
	"  echo READY-FOR-CAD;;\n"
	"esac\n";

static void t_build_initrd(const char *path)
{
	static const char *const mods[] = {
		"drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_mmio",
		"drivers/block/virtio_blk", "net/core/failover", "drivers/net/net_failover",
		"drivers/net/virtio_net", NULL,
	};
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	for (const char *const *d = (const char *const[]){ "bin", "dev", "proc", "sys", "etc",
							   "lib", NULL }; *d; d++)
		t_cpio_entry(f, *d, S_IFDIR | 0755, NULL, 0, 0, 0);
	/* Without /dev/console the kernel gives init no stdout. */
	t_cpio_entry(f, "dev/console", S_IFCHR | 0600, NULL, 0, 5, 1);
	t_cpio_file(f, "bin/busybox", 0755, T_BUSYBOX);
	t_cpio_text(f, "init", 0755, t_init);
	t_cpio_text(f, "etc/inittab", 0644, t_inittab);
	t_cpio_text(f, "etc/rc", 0755, t_rc);
	for (const char *const *m = mods; *m; m++) {
		char host[PATH_MAX + 64], name[64];
		snprintf(host, sizeof(host), "%s%s.ko", t_modules, *m);
		snprintf(name, sizeof(name), "lib/%s.ko", strrchr(*m, '/') + 1);
		t_cpio_file(f, name, 0644, host);
	}
	t_cpio_entry(f, "TRAILER!!!", 0, NULL, 0, 0, 0);
	ck_assert_int_eq(fclose(f), 0);
}

/* ---- the VMM process ---- */

static int t_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void t_setup(void)
{
	static int n;

	snprintf(t_dir, sizeof(t_dir), "%s/t%d-%d", t_base, (int)getpid(), n++);
	ck_assert_int_eq(mkdir(t_dir, 0700), 0);
	snprintf(t_api, sizeof(t_api), "%s/api.sock", t_dir);
	snprintf(t_initrd, sizeof(t_initrd), "%s/initrd.cpio", t_dir);
	t_console_len = 0;
	t_console[0] = '\0';
}

static void t_teardown(void)
{
	if (t_vmm > 0) {
		kill(t_vmm, SIGKILL);
		waitpid(t_vmm, NULL, 0);
		t_vmm = -1;
	}
	if (t_out >= 0)
		close(t_out);
	t_out = -1;
	nftw(t_dir, t_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Starts the VMM with extra environment "K=V" entries (NULL-terminated). */
static void t_start(const char *const *env)
{
	int out[2];

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	t_vmm = fork();
	ck_assert_int_ge(t_vmm, 0);
	if (t_vmm == 0) {
		int null_fd = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* As bangerd starts the VMM: stdin /dev/null, stdout a file or pipe. */
		dup2(null_fd, STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		setenv("BANGER_VMM_ACCEL", "tcg", 1);
		for (; env && *env; env++)
			putenv((char *)*env);
		execl(t_bin(), t_bin(), "--api-sock", t_api, "--id", "vmm-test", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	t_out = out[0];
	fcntl(t_out, F_SETFL, O_NONBLOCK);
	for (long end = t_now_ms() + 10000; access(t_api, F_OK) != 0; usleep(10000))
		ck_assert_msg(t_now_ms() < end, "the API socket never appeared");
}

/* One request on a fresh connection; returns the status, body copied to resp. */
static int t_api_call(const char *method, const char *path, const char *body, char *resp,
		      size_t resp_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char req[8192], buf[8192];
	size_t got = 0;
	int fd, status = 0;

	ck_assert_uint_lt(strlen(t_api), sizeof(addr.sun_path));
	memcpy(addr.sun_path, t_api, strlen(t_api) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	int n = snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			 "Content-Length: %zu\r\n\r\n%s", method, path, body ? strlen(body) : 0,
			 body ? body : "");
	ck_assert_int_eq(write(fd, req, (size_t)n), n);
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	sscanf(buf, "HTTP/1.1 %d", &status);
	if (resp) {
		char *b = strstr(buf, "\r\n\r\n");
		snprintf(resp, resp_len, "%s", b ? b + 4 : "");
	}
	return status;
}

static void t_put_ok(const char *path, const char *body)
{
	char resp[1024];
	int status = t_api_call("PUT", path, body, resp, sizeof(resp));

	ck_assert_msg(status == 204, "PUT %s: %d %s", path, status, resp);
}

/* Reads the console until marker appears; false on timeout or EOF. */
static bool t_console_wait(const char *marker, long timeout_ms)
{
	long end = t_now_ms() + timeout_ms;

	while (!strstr(t_console, marker)) {
		struct pollfd p = { .fd = t_out, .events = POLLIN };
		long left = end - t_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return false;
		if (t_console_len >= sizeof(t_console) - 1) /* keep the tail */
			t_console_len = 0;
		ssize_t n = read(t_out, t_console + t_console_len, sizeof(t_console) - 1 - t_console_len);
		if (n <= 0)
			return strstr(t_console, marker) != NULL;
		t_console_len += (size_t)n;
		t_console[t_console_len] = '\0';
	}
	return true;
}

/* Waits for the VMM to exit; its wait status, or -1 on timeout. */
static int t_wait_exit(long timeout_ms)
{
	long end = t_now_ms() + timeout_ms;
	int status;

	while (t_now_ms() < end) {
		pid_t p = waitpid(t_vmm, &status, WNOHANG);
		if (p == t_vmm) {
			t_vmm = -1;
			return status;
		}
		usleep(20000);
	}
	return -1;
}

/* Processes whose parent is pid (QEMU is the VMM's only child). */
static int t_children(pid_t pid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char path[300], line[512];
		int ppid = 0;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f)) {
			char *rp = strrchr(line, ')');
			if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == pid)
				n++;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

static void t_configure(const char *boot_args)
{
	char body[PATH_MAX + 1024];

	t_build_initrd(t_initrd);
	t_put_ok("/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":256}");
	snprintf(body, sizeof(body),
		 "{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\","
		 "\"boot_args\":\"%s\"}", t_kernel, t_initrd, boot_args);
	t_put_ok("/boot-source", body);
}

#define T_ARGS "console=ttyS0 reboot=k panic=-1 quiet"

/* A file of n bytes that starts with text. */
static void t_disk(const char *path, const char *text, off_t n)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(ftruncate(fd, n), 0);
	close(fd);
}

/* A TUN/TAP device made persistent in the current network namespace. */
static void t_make_tap(const char *name, short flags, const char *addr)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	int s;

	ck_assert_int_ge(fd, 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = flags;
	ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
	ck_assert_int_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
	close(fd);
	if (!addr)
		return;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, addr, &sin->sin_addr);
	ck_assert_int_eq(ioctl(s, SIOCSIFADDR, &ifr), 0);
	inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
	ck_assert_int_eq(ioctl(s, SIOCSIFNETMASK, &ifr), 0);
	ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

/* ---- tests without a boot ---- */

START_TEST(test_missing_qemu)
{
	char resp[1024];

	t_start((const char *const[]){ "BANGER_VMM_QEMU=/nonexistent/qemu", NULL });
	t_configure(T_ARGS);
	ck_assert_int_eq(t_api_call("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", resp,
				    sizeof(resp)), 400);
	ck_assert_msg(strstr(resp, "BANGER_VMM_QEMU=/nonexistent/qemu: No such file or directory"),
		      "%s", resp);
	ck_assert_int_eq(t_api_call("GET", "/", NULL, resp, sizeof(resp)), 200);
	ck_assert_ptr_nonnull(strstr(resp, "\"state\":\"Not started\""));
}
END_TEST

START_TEST(test_missing_kernel)
{
	char resp[1024];

	t_start(NULL);
	ck_assert_int_eq(t_api_call("PUT", "/boot-source",
				    "{\"kernel_image_path\":\"/nonexistent/vmlinux\"}", resp,
				    sizeof(resp)), 400);
	ck_assert_msg(strstr(resp, "Boot source error: The kernel file cannot be opened: No such "
				   "file or directory (os error 2)"), "%s", resp);
	ck_assert_int_eq(t_api_call("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", resp,
				    sizeof(resp)), 400);
	ck_assert_ptr_nonnull(strstr(resp, "without kernel configuration"));
}
END_TEST

START_TEST(test_version)
{
	int out[2];
	char buf[256] = "";
	int status;

	ck_assert_int_eq(pipe(out), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		execl(t_bin(), t_bin(), "--version", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	ck_assert_int_gt(read(out[0], buf, sizeof(buf) - 1), 0);
	close(out[0]);
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_msg(strncmp(buf, "Firecracker v1.16.1 (banger-vmm-qemu " PACKAGE_VERSION
				   ", QEMU microvm)\n", 200) == 0, "%s", buf);
}
END_TEST

/* A TUN where a TAP is expected: QEMU's open (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, like
 * Firecracker's) fails; InstanceStart says why, and the VMM exits 1 with no QEMU left. */
START_TEST(test_tap_cannot_be_opened)
{
	char resp[1024];
	int status;

	ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
	t_make_tap("bgtun0", IFF_TUN | IFF_NO_PI, NULL);
	t_start(NULL);
	t_configure(T_ARGS);
	t_put_ok("/network-interfaces/eth0",
		 "{\"iface_id\":\"eth0\",\"host_dev_name\":\"bgtun0\",\"guest_mac\":\"06:00:0a:4d:00:02\"}");
	ck_assert_int_eq(t_api_call("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", resp,
				    sizeof(resp)), 400);
	ck_assert_msg(strstr(resp, "Start microvm error: QEMU exited with status 1") &&
		      strstr(resp, "bgtun0"), "%s", resp);
	ck_assert_int_eq(t_children(t_vmm), 0);
	status = t_wait_exit(10000);
	ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d",
		      status);
}
END_TEST

/* Hybrid vsock with nobody listening in the guest (and here no /dev/vhost-vsock at all):
 * the CONNECT is closed without a reply, as Firecracker does. Pause and resume. Then
 * SIGTERM to the VMM takes QEMU with it. */
START_TEST(test_running_vm_vsock_pause_sigterm)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char body[512], buf[64];
	int status, fd;

	t_start(NULL);
	t_configure(T_ARGS " t=hold");
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%.60s/v.sock", t_dir);
	snprintf(body, sizeof(body), "{\"guest_cid\":3,\"uds_path\":\"%s\"}", addr.sun_path);
	t_put_ok("/vsock", body);
	t_put_ok("/actions", "{\"action_type\":\"InstanceStart\"}");
	ck_assert_int_eq(t_children(t_vmm), 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(write(fd, "CONNECT 10789\n", 14), 14);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	/* Pause and resume go to QEMU (QMP stop / cont). */
	ck_assert_int_eq(t_api_call("PATCH", "/vm", "{\"state\":\"Paused\"}", body, sizeof(body)),
			 204);
	ck_assert_int_eq(t_api_call("GET", "/", NULL, body, sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"state\":\"Paused\""));
	ck_assert_int_eq(t_api_call("PATCH", "/vm", "{\"state\":\"Resumed\"}", body, sizeof(body)),
			 204);
	pid_t vmm = t_vmm;
	kill(t_vmm, SIGTERM);
	status = t_wait_exit(10000);
	ck_assert(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	for (long end = t_now_ms() + 5000; t_children(vmm) > 0 && t_now_ms() < end;)
		usleep(20000);
	ck_assert_int_eq(t_children(vmm), 0);
}
END_TEST

/* ---- real boots ---- */

START_TEST(test_boot_console_and_guest_reboot)
{
	long start, up;
	int status;

	t_start(NULL);
	t_configure(T_ARGS " t=reboot");
	start = t_now_ms();
	t_put_ok("/actions", "{\"action_type\":\"InstanceStart\"}");
	ck_assert_msg(t_console_wait("BANGER-GUEST-UP", T_BOOT_MS), "console: %s", t_console);
	up = t_now_ms() - start;
	/* A guest reset (reboot=k) ends QEMU, and the VMM exits 0 like Firecracker. */
	status = t_wait_exit(T_BOOT_MS);
	ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "status %d", status);
	fprintf(stderr, "vmm-qemu: InstanceStart to console marker %ld ms, to exit %ld ms\n", up,
		t_now_ms() - start);
}
END_TEST

START_TEST(test_guest_poweroff_ends_vmm)
{
	int status;

	t_start(NULL);
	t_configure(T_ARGS " t=poweroff");
	t_put_ok("/actions", "{\"action_type\":\"InstanceStart\"}");
	ck_assert_msg(t_console_wait("BANGER-GUEST-UP", T_BOOT_MS), "console: %s", t_console);
	status = t_wait_exit(T_BOOT_MS);
	ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "status %d", status);
}
END_TEST

/* Drives and a TAP, then SendCtrlAltDel: busybox init powers off, the VMM exits. */
START_TEST(test_boot_drives_tap_ctrl_alt_del)
{
	char root[200], seed[200], body[1024];
	long cad;
	int status;

	ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
	t_make_tap("bgtap0", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, "10.77.0.1");
	snprintf(root, sizeof(root), "%s/root.img", t_dir);
	snprintf(seed, sizeof(seed), "%s/seed.img", t_dir);
	t_disk(root, "ROOTDISK-123", 1 << 20);
	t_disk(seed, "SEEDDISK", 1 << 20);
	t_start(NULL);
	t_configure(T_ARGS " t=full");
	/* The seed is PUT first, yet the root device must be /dev/vda. */
	snprintf(body, sizeof(body), "{\"drive_id\":\"seed\",\"path_on_host\":\"%s\","
		 "\"is_root_device\":false,\"is_read_only\":true}", seed);
	t_put_ok("/drives/seed", body);
	snprintf(body, sizeof(body), "{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\","
		 "\"is_root_device\":true,\"is_read_only\":false,\"cache_type\":\"Writeback\"}",
		 root);
	t_put_ok("/drives/rootfs", body);
	t_put_ok("/network-interfaces/eth0",
		 "{\"iface_id\":\"eth0\",\"host_dev_name\":\"bgtap0\",\"guest_mac\":\"06:00:0a:4d:00:02\"}");
	t_put_ok("/actions", "{\"action_type\":\"InstanceStart\"}");
	ck_assert_msg(t_console_wait("READY-FOR-CAD", T_BOOT_MS), "console: %s", t_console);
	ck_assert_msg(strstr(t_console, "VDA=ROOTDISK-123"), "%s", t_console);
	ck_assert_msg(strstr(t_console, "VDB_RO=1"), "%s", t_console);
	ck_assert_msg(strstr(t_console, "VDB_WRITE=refused"), "%s", t_console);
	ck_assert_msg(strstr(t_console, "MAC=06:00:0a:4d:00:02"), "%s", t_console);
	ck_assert_msg(strstr(t_console, "PING=ok"), "%s", t_console);
	cad = t_now_ms();
	t_put_ok("/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	status = t_wait_exit(30000);
	ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "status %d", status);
	fprintf(stderr, "vmm-qemu: SendCtrlAltDel to VMM exit %ld ms\n", t_now_ms() - cad);
	/* It was the guest's init that reacted. */
	ck_assert_msg(t_console_wait("GOT-CTRL-ALT-DEL", 1000), "console: %s", t_console);
}
END_TEST

static bool t_have(const char *path, bool exec);

static bool t_have_module(const char *rel)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s%s", t_modules, rel);
	return t_have(path, false);
}

static bool t_have(const char *path, bool exec)
{
	return access(path, exec ? X_OK : R_OK) == 0;
}

static bool t_qemu_on_path(void)
{
	char *path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	char *save = NULL;
	bool found = false;

	for (char *d = strtok_r(path, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char p[512];
		snprintf(p, sizeof(p), "%s/qemu-system-x86_64", d);
		found = t_have(p, true);
	}
	free(path);
	return found;
}

int main(void)
{
	const char *ci = getenv("CI");
	const char *missing = NULL;
	Suite *s = suite_create("vmm-qemu");
	TCase *quick = tcase_create("quick");
	TCase *boot = tcase_create("boot");
	SRunner *sr;
	int failed;

	if (getuid() != 0)
		missing = "root (TAPs, network namespaces)";
	else if (!t_qemu_on_path())
		missing = "qemu-system-x86_64 (package qemu-system-x86)";
	else if (!t_find_kernel() || !t_have(t_kernel, false) ||
		 !t_have_module("drivers/virtio/virtio_mmio.ko"))
		missing = "a /boot/vmlinuz-* kernel and its modules (package linux-image-amd64)";
	else if (!t_have(T_BUSYBOX, true))
		missing = T_BUSYBOX " (package busybox-static)";
	if (missing) {
		bool fail = ci && strcmp(ci, "true") == 0;
		fprintf(stderr, "************************************************************\n"
				"test_vmm_qemu: %s: %s is missing\n"
				"banger-vmm-qemu's process and boot tests did NOT run\n"
				"************************************************************\n",
			fail ? "FAIL (CI=true)" : "SKIP", missing);
		return fail ? 1 : 77;
	}
	snprintf(t_base, sizeof(t_base), "/tmp/vmm-test-XXXXXX");
	if (!mkdtemp(t_base))
		return 1;
	tcase_add_checked_fixture(quick, t_setup, t_teardown);
	tcase_set_timeout(quick, 60);
	tcase_add_test(quick, test_version);
	tcase_add_test(quick, test_missing_qemu);
	tcase_add_test(quick, test_missing_kernel);
	tcase_add_test(quick, test_tap_cannot_be_opened);
	tcase_add_test(quick, test_running_vm_vsock_pause_sigterm);
	suite_add_tcase(s, quick);
	tcase_add_checked_fixture(boot, t_setup, t_teardown);
	tcase_set_timeout(boot, 240);
	tcase_add_test(boot, test_boot_console_and_guest_reboot);
	tcase_add_test(boot, test_guest_poweroff_ends_vmm);
	tcase_add_test(boot, test_boot_drives_tap_ctrl_alt_del);
	suite_add_tcase(s, boot);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(t_base, t_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed ? 1 : 0;
}
