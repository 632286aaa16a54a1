/* jailer-standin: the Firecracker jailer's documented steps, done for real,
 * for tests (no jailer binary exists on test machines).
 *
 *   jailer-standin --id ID --exec-file BIN --uid U --gid G
 *                  [--chroot-base-dir DIR] [--cgroup-version 2] [--parent-cgroup P]
 *                  [--netns PATH] [--daemonize] -- [firecracker args]
 *
 * As the jailer does (fc:docs/jailer.md): makes <base>/<basename BIN>/<ID>/root,
 * copies BIN into it, makes dev/net/tun (and dev/kvm when the host has one)
 * owned by U:G, joins the cgroup v2 <P> (default: the exec file's name) when
 * it exists, sets RLIMIT_NOFILE to 2048, joins --netns, enters a new mount
 * namespace, pivots into the jail, drops to U:G with no groups and execs
 * /<basename BIN> --id ID --start-time-us T --start-time-cpu-us T ARGS.
 *
 * Two test-only additions, in its private mount namespace only (they vanish
 * with the process): fc-double is dynamically linked, so /usr is bound
 * read-only into the jail (the real Firecracker is a static binary); and a
 * file named by FC_DOUBLE_RECORD is bound at /fc-double-record so the double's
 * request log reaches the test. Unsupported jailer flags are refused. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>

#define JS_RECORD_IN_JAIL "/fc-double-record"
#define JS_NOFILE 2048
/* Paths that do not fit are refused, never cut. */
#define JS_FMT(buf, ...)                                                   \
	do {                                                               \
		if ((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) >= sizeof(buf)) \
			js_usage("path too long");                          \
	} while (0)

struct js_args {
	const char *id, *exec_file, *base, *cgroup_version, *parent_cgroup, *netns;
	long uid, gid;
	bool daemonize;
	char **rest;
};

static void __attribute__((noreturn)) js_die(const char *what)
{
	fprintf(stderr, "jailer-standin: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void __attribute__((noreturn)) js_usage(const char *why)
{
	fprintf(stderr, "jailer-standin: %s\n", why);
	exit(2);
}

static bool js_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			return false;
	return true;
}

static long js_number(const char *s)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || !end || *end || v < 0 || v > (long)UINT_MAX - 1)
		js_usage("--uid/--gid must be numbers");
	return v;
}

static void js_parse(int argc, char **argv, struct js_args *a)
{
	*a = (struct js_args){ .base = "/srv/jailer", .uid = -1, .gid = -1 };
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			a->rest = argv + i + 1;
			break;
		}
		if (strcmp(arg, "--daemonize") == 0) {
			a->daemonize = true;
			continue;
		}
		if (i + 1 >= argc)
			js_usage("a flag lacks its value");
		const char *v = argv[++i];
		if (strcmp(arg, "--id") == 0)
			a->id = v;
		else if (strcmp(arg, "--exec-file") == 0)
			a->exec_file = v;
		else if (strcmp(arg, "--uid") == 0)
			a->uid = js_number(v);
		else if (strcmp(arg, "--gid") == 0)
			a->gid = js_number(v);
		else if (strcmp(arg, "--chroot-base-dir") == 0)
			a->base = v;
		else if (strcmp(arg, "--cgroup-version") == 0)
			a->cgroup_version = v;
		else if (strcmp(arg, "--parent-cgroup") == 0)
			a->parent_cgroup = v;
		else if (strcmp(arg, "--netns") == 0)
			a->netns = v;
		else
			js_usage("unsupported flag (this stand-in does what banger uses)");
	}
	if (!a->id || !a->exec_file || a->uid < 0 || a->gid < 0)
		js_usage("--id, --exec-file, --uid and --gid are required");
	if (!js_id_valid(a->id))
		js_usage("--id must be 1-64 alphanumerics and '-'");
	if (a->cgroup_version && strcmp(a->cgroup_version, "2") != 0)
		js_usage("only --cgroup-version 2");
	if (a->exec_file[0] != '/' || a->base[0] != '/')
		js_usage("--exec-file and --chroot-base-dir must be absolute");
}

static void js_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	JS_FMT(buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			js_die(buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		js_die(buf);
}

static void js_copy(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		js_die(from);
	unlink(to);
	int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (out < 0)
		js_die(to);
	char buf[1 << 16];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			js_die(to);
	if (n < 0)
		js_die(from);
	close(in);
	if (close(out) < 0)
		js_die(to);
}

static void js_node(const char *root, const char *name, dev_t dev, uid_t uid, gid_t gid)
{
	char path[PATH_MAX];
	JS_FMT(path, "%s/%s", root, name);
	unlink(path);
	if (mknod(path, S_IFCHR | 0600, dev) < 0 || chown(path, uid, gid) < 0)
		js_die(path);
}

/* v2 without --cgroup: join the parent cgroup only when it exists. */
static void js_cgroup(const struct js_args *a, const char *exec_name)
{
	char path[PATH_MAX];
	JS_FMT(path, "/sys/fs/cgroup/%s/cgroup.procs",
		 a->parent_cgroup ? a->parent_cgroup : exec_name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "0", 1) != 1)
		js_die(path);
	close(fd);
}

static void js_bind(const char *from, const char *to, bool read_only)
{
	if (mount(from, to, NULL, MS_BIND | MS_REC, NULL) < 0)
		js_die(to);
	if (read_only && mount(NULL, to, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		js_die(to);
}

/* Test-only: the double's shared libraries and its request log. */
static void js_test_additions(const char *root, uid_t uid, gid_t gid)
{
	char path[PATH_MAX];
	JS_FMT(path, "%s/usr", root);
	js_mkdir_p(path, 0755);
	js_bind("/usr", path, true);
	static const char *const links[][2] = { { "lib", "usr/lib" }, { "lib64", "usr/lib64" } };
	for (size_t i = 0; i < 2; i++) {
		JS_FMT(path, "%s/%s", root, links[i][0]);
		if (symlink(links[i][1], path) < 0 && errno != EEXIST)
			js_die(path);
	}
	const char *record = getenv("FC_DOUBLE_RECORD");
	if (!record || !record[0])
		return;
	int fd = open(record, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || fchown(fd, uid, gid) < 0)
		js_die(record);
	close(fd);
	JS_FMT(path, "%s" JS_RECORD_IN_JAIL, root);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		js_die(path);
	close(fd);
	js_bind(record, path, false);
	setenv("FC_DOUBLE_RECORD", JS_RECORD_IN_JAIL, 1);
}

static void js_pivot(const char *root)
{
	if (unshare(CLONE_NEWNS) < 0)
		js_die("unshare(CLONE_NEWNS)");
	/* Nothing done in here propagates back to the host. */
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		js_die("make / a slave");
	js_bind(root, root, false);
}

static void js_enter(const char *root)
{
	if (chdir(root) < 0)
		js_die(root);
	if (mkdir("old_root", 0700) < 0 && errno != EEXIST)
		js_die("old_root");
	if (syscall(SYS_pivot_root, ".", "old_root") < 0)
		js_die("pivot_root");
	if (chdir("/") < 0)
		js_die("chdir /");
	if (umount2("/old_root", MNT_DETACH) < 0)
		js_die("umount old_root");
	if (rmdir("/old_root") < 0)
		js_die("rmdir old_root");
}

static long long js_now_us(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	struct js_args a;
	js_parse(argc, argv, &a);
	/* The jail's modes are the jailer's to choose; the VMM keeps the caller's umask. */
	mode_t umask_before = umask(022);
	char *copy = strdup(a.exec_file);
	const char *exec_name = basename(copy);
	char root[PATH_MAX], path[PATH_MAX];
	JS_FMT(root, "%s/%s/%s/root", a.base, exec_name, a.id);
	uid_t uid = (uid_t)a.uid;
	gid_t gid = (gid_t)a.gid;

	js_mkdir_p(root, 0755);
	JS_FMT(path, "%s/%s", root, exec_name);
	js_copy(a.exec_file, path);
	JS_FMT(path, "%s/dev/net", root);
	js_mkdir_p(path, 0755);
	js_node(root, "dev/net/tun", makedev(10, 200), uid, gid);
	struct stat st;
	if (stat("/dev/kvm", &st) == 0 && S_ISCHR(st.st_mode))
		js_node(root, "dev/kvm", st.st_rdev, uid, gid);
	js_cgroup(&a, exec_name);
	struct rlimit nofile = { JS_NOFILE, JS_NOFILE };
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
		js_die("RLIMIT_NOFILE");
	if (a.netns) {
		int fd = open(a.netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			js_die(a.netns);
		close(fd);
	}
	js_pivot(root);
	js_test_additions(root, uid, gid);
	js_enter(root);
	if (a.daemonize) {
		if (setsid() < 0)
			js_die("setsid");
		int null = open("/dev/null", O_RDWR);
		if (null < 0)
			js_die("/dev/null");
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		js_die("drop to uid/gid");

	size_t n_rest = 0;
	while (a.rest && a.rest[n_rest])
		n_rest++;
	char **args = calloc(n_rest + 8, sizeof(char *));
	char exec_path[PATH_MAX], t_us[32], t_cpu[32];
	JS_FMT(exec_path, "/%s", exec_name);
	JS_FMT(t_us, "%lld", js_now_us(CLOCK_MONOTONIC));
	JS_FMT(t_cpu, "%lld", js_now_us(CLOCK_PROCESS_CPUTIME_ID));
	size_t k = 0;
	args[k++] = exec_path;
	args[k++] = (char *)"--id";
	args[k++] = (char *)a.id;
	args[k++] = (char *)"--start-time-us";
	args[k++] = t_us;
	args[k++] = (char *)"--start-time-cpu-us";
	args[k++] = t_cpu;
	for (size_t i = 0; i < n_rest; i++)
		args[k++] = a.rest[i];
	args[k] = NULL;
	umask(umask_before);
	execv(exec_path, args);
	js_die(exec_path);
}
