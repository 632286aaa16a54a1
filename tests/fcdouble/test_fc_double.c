/* Check suite for fc-double: starts the built binary on a socket in a temp dir and
 * talks to it with libcurl (and raw sockets for broken HTTP and hybrid vsock).
 * Cleanup even when an assertion fails: every fc-double child gets PR_SET_PDEATHSIG
 * (a failing Check test process _exit()s, which kills it), and each test's temp dir
 * lives under one base dir that main() removes after the run. */
#include "config.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T_WAIT_MS 10000 /* upper bound on any wait; never an assertion on speed */

static char t_base[32];
static char t_dir[48];
static char t_api[100];
static char t_vsock[100];
static char t_agent[100];
static char t_record[128];
static pid_t t_child = -1;
static int t_echo_fd = -1;
static pthread_t t_echo_thread;

static const char *t_bin(void)
{
	const char *b = getenv("FC_DOUBLE_BIN");
	return b && *b ? b : "./fc-double";
}

static int t_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void t_cleanup(void)
{
	if (t_child > 0) {
		kill(t_child, SIGKILL);
		waitpid(t_child, NULL, 0);
		t_child = -1;
	}
	if (t_echo_fd >= 0) {
		shutdown(t_echo_fd, SHUT_RDWR);
		pthread_join(t_echo_thread, NULL);
		close(t_echo_fd);
		t_echo_fd = -1;
	}
	if (t_dir[0]) {
		nftw(t_dir, t_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		t_dir[0] = '\0';
	}
}

static void t_setup(void)
{
	snprintf(t_dir, sizeof(t_dir), "%s/tXXXXXX", t_base);
	ck_assert_ptr_nonnull(mkdtemp(t_dir));
	snprintf(t_api, sizeof(t_api), "%s/api.sock", t_dir);
	snprintf(t_vsock, sizeof(t_vsock), "%s/v.sock", t_dir);
	snprintf(t_agent, sizeof(t_agent), "%s/agent.sock", t_dir);
	snprintf(t_record, sizeof(t_record), "%s/record.jsonl", t_dir);
}

static void t_teardown(void)
{
	t_cleanup();
}

static void t_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Starts fc-double with extra args and "K=V" env entries; returns its pid. */
static pid_t t_spawn(const char *const *args, const char *const *env, int stdout_fd)
{
	const char *argv[16];
	size_t n = 0;
	pid_t parent = getpid();
	pid_t pid;

	argv[n++] = t_bin();
	for (; args && *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		unsetenv("FC_DOUBLE_RECORD");
		unsetenv("FC_DOUBLE_FAIL");
		unsetenv("FC_DOUBLE_VSOCK_MAP");
		unsetenv("FC_DOUBLE_EXIT_ON_START");
		unsetenv("FC_DOUBLE_BOOT_DELAY_MS");
		unsetenv("FC_DOUBLE_STARTUP_DELAY_MS");
		for (; env && *env; env++)
			putenv((char *)*env);
		if (stdout_fd >= 0)
			dup2(stdout_fd, STDOUT_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int t_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits for the child to exit; returns its wait status, or -1 if it still runs. */
static int t_wait_exit(pid_t pid)
{
	int status;

	for (int waited = 0; waited < T_WAIT_MS; waited += 5) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		t_sleep_ms(5);
	}
	return -1;
}

/* Starts fc-double on t_api, its stdout on stdout_fd (-1: ours), and waits
 * until it accepts connections. */
static void t_start_out(const char *const *extra_args, const char *const *env, int stdout_fd)
{
	const char *args[12] = { "--api-sock", t_api, "--id", "vm-test", "--level", "Debug" };
	size_t n = 6;

	for (; extra_args && *extra_args && n < 11; extra_args++)
		args[n++] = *extra_args;
	args[n] = NULL;
	t_child = t_spawn(args, env, stdout_fd);
	for (int waited = 0; waited < T_WAIT_MS; waited += 5) {
		int fd = t_connect(t_api);
		if (fd >= 0) {
			close(fd);
			return;
		}
		ck_assert_msg(waitpid(t_child, NULL, WNOHANG) == 0, "fc-double exited early");
		t_sleep_ms(5);
	}
	ck_abort_msg("fc-double did not open %s", t_api);
}

static void t_start(const char *const *extra_args, const char *const *env)
{
	t_start_out(extra_args, env, -1);
}

struct t_buf {
	char *data;
	size_t len;
};

static size_t t_curl_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct t_buf *b = userdata;
	size_t n = size * nmemb;
	char *nd = realloc(b->data, b->len + n + 1);

	if (!nd)
		return 0;
	b->data = nd;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* One request on an existing handle (so keep-alive can be observed); returns the
 * HTTP status and the body (caller frees). */
static long t_request_on(CURL *curl, const char *method, const char *path, const char *body,
			 char **ret_body)
{
	struct t_buf buf = { 0 };
	struct curl_slist *headers = NULL;
	char url[512];
	long status = -1;

	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, t_api);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)T_WAIT_MS);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, t_curl_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Accept: application/json");
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	if (body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	}
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	if (ret_body)
		*ret_body = buf.data;
	else
		free(buf.data);
	return status;
}

static long t_request(const char *method, const char *path, const char *body, char **ret_body)
{
	CURL *curl = curl_easy_init();
	long status;

	ck_assert_ptr_nonnull(curl);
	status = t_request_on(curl, method, path, body, ret_body);
	curl_easy_cleanup(curl);
	return status;
}

static void t_expect_204(const char *method, const char *path, const char *body)
{
	char *resp = NULL;
	long status = t_request(method, path, body, &resp);

	ck_assert_msg(status == 204, "%s %s %s -> %ld %s", method, path, body ? body : "",
		      status, resp ? resp : "");
	free(resp);
}

/* Expects 400 with a fault_message that contains want. */
static void t_expect_fault(const char *method, const char *path, const char *body,
			   const char *want)
{
	char *resp = NULL;
	long status = t_request(method, path, body, &resp);
	cJSON *json = resp ? cJSON_Parse(resp) : NULL;
	const cJSON *fm = cJSON_GetObjectItemCaseSensitive(json, "fault_message");

	ck_assert_msg(status == 400, "%s %s %s -> %ld (want 400)", method, path,
		      body ? body : "", status);
	ck_assert_msg(cJSON_IsString(fm), "no fault_message in '%s'", resp ? resp : "");
	ck_assert_msg(strstr(fm->valuestring, want), "%s %s: fault '%s' lacks '%s'", method,
		      path, fm->valuestring, want);
	cJSON_Delete(json);
	free(resp);
}

static char *t_get_state(void)
{
	char *resp = NULL;
	ck_assert_int_eq(t_request("GET", "/", NULL, &resp), 200);
	cJSON *json = cJSON_Parse(resp);
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(json, "state");
	ck_assert(cJSON_IsString(state));
	char *s = strdup(state->valuestring);
	cJSON_Delete(json);
	free(resp);
	return s;
}

static void t_configure(bool with_vsock)
{
	char vsock[256];

	t_expect_204("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":1024,"
					       "\"smt\":false,\"track_dirty_pages\":false}");
	t_expect_204("PUT", "/boot-source", "{\"kernel_image_path\":\"/srv/vmlinux\","
					    "\"boot_args\":\"console=ttyS0 reboot=k panic=1\"}");
	t_expect_204("PUT", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"path_on_host\":"
					      "\"/dev/mapper/vm42\",\"is_root_device\":true,"
					      "\"is_read_only\":false}");
	t_expect_204("PUT", "/network-interfaces/eth0",
		     "{\"iface_id\":\"eth0\",\"host_dev_name\":\"fctap42\","
		     "\"guest_mac\":\"06:00:AC:10:00:02\"}");
	if (with_vsock) {
		snprintf(vsock, sizeof(vsock), "{\"guest_cid\":3,\"uds_path\":\"%s\"}", t_vsock);
		t_expect_204("PUT", "/vsock", vsock);
	}
}

static void t_boot(bool with_vsock)
{
	t_configure(with_vsock);
	t_expect_204("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
}

START_TEST(test_version)
{
	int pfd[2];
	char out[128] = { 0 };
	const char *args[] = { "--version", NULL };
	size_t len = 0;

	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	t_child = t_spawn(args, NULL, pfd[1]);
	close(pfd[1]);
	for (;;) {
		ssize_t n = read(pfd[0], out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(pfd[0]);
	int status = t_wait_exit(t_child);
	t_child = -1;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_str_eq(out, "Firecracker v1.16.1\n");
}
END_TEST

START_TEST(test_good_sequence)
{
	const char *env[] = { "FC_DOUBLE_BOOT_DELAY_MS=50", "FC_DOUBLE_STARTUP_DELAY_MS=50",
			      NULL };
	char *state;
	char *resp = NULL;

	t_start(NULL, env);
	state = t_get_state();
	ck_assert_str_eq(state, "Not started");
	free(state);
	t_expect_204("PUT", "/logger", "{\"level\":\"debug\",\"show_level\":true}");
	t_boot(true);
	state = t_get_state();
	ck_assert_str_eq(state, "Running");
	free(state);

	ck_assert_int_eq(t_request("GET", "/machine-config", NULL, &resp), 200);
	cJSON *mc = cJSON_Parse(resp);
	ck_assert_int_eq(cJSON_GetObjectItem(mc, "vcpu_count")->valueint, 2);
	ck_assert_int_eq(cJSON_GetObjectItem(mc, "mem_size_mib")->valueint, 1024);
	cJSON_Delete(mc);
	free(resp);

	ck_assert_int_eq(t_request("GET", "/", NULL, &resp), 200);
	cJSON *info = cJSON_Parse(resp);
	ck_assert_str_eq(cJSON_GetObjectItem(info, "id")->valuestring, "vm-test");
	ck_assert_str_eq(cJSON_GetObjectItem(info, "app_name")->valuestring, "Firecracker");
	ck_assert_str_eq(cJSON_GetObjectItem(info, "vmm_version")->valuestring, "1.16.1");
	cJSON_Delete(info);
	free(resp);

	t_expect_204("PATCH", "/vm", "{\"state\":\"Paused\"}");
	state = t_get_state();
	ck_assert_str_eq(state, "Paused");
	free(state);
	t_expect_204("PATCH", "/vm", "{\"state\":\"Resumed\"}");
	t_expect_204("PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}");
}
END_TEST

START_TEST(test_keep_alive)
{
	CURL *curl;
	long connects = -1;

	t_start(NULL, NULL);
	curl = curl_easy_init();
	ck_assert_ptr_nonnull(curl);
	ck_assert_int_eq(t_request_on(curl, "GET", "/", NULL, NULL), 200);
	ck_assert_int_eq(t_request_on(curl, "PUT", "/machine-config",
				      "{\"vcpu_count\":1,\"mem_size_mib\":256}", NULL), 204);
	curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
	ck_assert_int_eq(connects, 0); /* the second request reused the connection */
	ck_assert_int_eq(t_request_on(curl, "PUT", "/drives/a-b",
				      "{\"drive_id\":\"a-b\",\"is_root_device\":false}", NULL), 400);
	ck_assert_int_eq(t_request_on(curl, "GET", "/version", NULL, NULL), 200);
	curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
	ck_assert_int_eq(connects, 0);
	curl_easy_cleanup(curl);
}
END_TEST

START_TEST(test_validation_errors)
{
	t_start(NULL, NULL);
	t_expect_fault("PUT", "/machine-config", "{\"vcpu_count\":2}", "missing field `mem_size_mib`");
	t_expect_fault("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":64,\"x\":1}",
		       "unknown field `x`");
	t_expect_fault("PUT", "/machine-config", "{\"vcpu_count\":\"2\",\"mem_size_mib\":64}",
		       "invalid type");
	t_expect_fault("PUT", "/machine-config", "{\"vcpu_count\":-1,\"mem_size_mib\":64}",
		       "invalid value");
	t_expect_fault("PUT", "/machine-config", "{\"vcpu_count\":33,\"mem_size_mib\":64}",
		       "vCPU number is invalid");
	t_expect_fault("PUT", "/machine-config",
		       "{\"vcpu_count\":1,\"mem_size_mib\":64,\"huge_pages\":\"1G\"}",
		       "unknown variant `1G`");
	t_expect_fault("PUT", "/machine-config",
		       "{\"vcpu_count\":1,\"vcpu_count\":1,\"mem_size_mib\":64}", "duplicate field");
	t_expect_fault("PUT", "/boot-source", "{\"boot_args\":\"x\"}",
		       "missing field `kernel_image_path`");
	t_expect_fault("PUT", "/drives/root-fs",
		       "{\"drive_id\":\"root-fs\",\"is_root_device\":true,\"path_on_host\":\"/x\"}",
		       "alphanumeric characters and underscores");
	t_expect_fault("PUT", "/drives/rootfs",
		       "{\"drive_id\":\"data\",\"is_root_device\":true,\"path_on_host\":\"/x\"}",
		       "does not match the id from the body");
	t_expect_fault("PUT", "/drives/rootfs", "{\"drive_id\":\"rootfs\",\"path_on_host\":\"/x\"}",
		       "missing field `is_root_device`");
	t_expect_fault("PUT", "/drives/rootfs",
		       "{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"/x\","
		       "\"rate_limiter\":{\"ops\":{\"size\":1}}}",
		       "missing field `refill_time`");
	t_expect_fault("PUT", "/network-interfaces/eth-0",
		       "{\"iface_id\":\"eth-0\",\"host_dev_name\":\"tap0\"}",
		       "alphanumeric characters and underscores");
	t_expect_fault("PUT", "/network-interfaces/eth0",
		       "{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\"}",
		       "does not match the id from the body");
	t_expect_fault("PUT", "/network-interfaces/eth0", "{\"iface_id\":\"eth0\"}",
		       "missing field `host_dev_name`");
	t_expect_fault("PUT", "/vsock", "{\"guest_cid\":3}", "missing field `uds_path`");
	t_expect_fault("PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"/x\",\"y\":true}",
		       "unknown field `y`");
	t_expect_fault("PUT", "/actions", "{\"action_type\":\"Reboot\"}", "unknown variant");
	t_expect_fault("PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}",
		       "not supported before starting the microVM");
	t_expect_fault("PATCH", "/vm", "{\"state\":\"Paused\"}",
		       "not supported before starting the microVM");
	t_expect_fault("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}",
		       "without kernel configuration");
	t_expect_fault("PUT", "/machine-config", "{not json", "deserializing the json body");
	t_expect_fault("PUT", "/nope", "{}", "Invalid request method and/or path");
	t_expect_fault("DELETE", "/", NULL, "Invalid request method and/or path");
	t_expect_fault("PUT", "/metrics", "{}", "missing field `metrics_path`");
	t_expect_fault("PUT", "/logger", "{\"level\":\"Loud\"}", "unknown variant");
	/* Nothing above changed the state. */
	char *state = t_get_state();
	ck_assert_str_eq(state, "Not started");
	free(state);
}
END_TEST

START_TEST(test_post_boot_rules)
{
	t_start(NULL, NULL);
	t_boot(false);
	t_expect_fault("PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":64}",
		       "The requested operation is not supported after starting the microVM.");
	t_expect_fault("PUT", "/boot-source", "{\"kernel_image_path\":\"/k\"}",
		       "not supported after starting the microVM");
	t_expect_fault("PUT", "/drives/data",
		       "{\"drive_id\":\"data\",\"is_root_device\":false,\"path_on_host\":\"/x\"}",
		       "not supported after starting the microVM");
	t_expect_fault("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}",
		       "not supported after starting the microVM");
	/* Body parsing still comes first, as in Firecracker. */
	t_expect_fault("PUT", "/drives/data", "{\"drive_id\":\"data\"}", "missing field");
}
END_TEST

static cJSON *t_read_record_line(FILE *f)
{
	char line[4096];
	if (!fgets(line, sizeof(line), f))
		return NULL;
	return cJSON_Parse(line);
}

START_TEST(test_record)
{
	char env_record[160];
	const char *env[] = { env_record, NULL };
	FILE *f;
	cJSON *rec;

	snprintf(env_record, sizeof(env_record), "FC_DOUBLE_RECORD=%s", t_record);
	t_start(NULL, env);
	t_expect_204("PUT", "/machine-config", "{\"vcpu_count\":2,\"mem_size_mib\":512}");
	t_expect_fault("PUT", "/drives/a-b", "{\"drive_id\":\"a-b\",\"is_root_device\":true}",
		       "alphanumeric");
	t_expect_fault("PUT", "/boot-source", "{oops", "deserializing");
	ck_assert_int_eq(t_request("GET", "/", NULL, NULL), 200);

	f = fopen(t_record, "re");
	ck_assert_ptr_nonnull(f);

	rec = t_read_record_line(f);
	ck_assert_ptr_nonnull(rec);
	ck_assert_str_eq(cJSON_GetObjectItem(rec, "method")->valuestring, "PUT");
	ck_assert_str_eq(cJSON_GetObjectItem(rec, "path")->valuestring, "/machine-config");
	ck_assert_int_eq(cJSON_GetObjectItem(rec, "status")->valueint, 204);
	const cJSON *body = cJSON_GetObjectItem(rec, "body");
	ck_assert(cJSON_IsObject(body));
	ck_assert_int_eq(cJSON_GetObjectItem(body, "mem_size_mib")->valueint, 512);
	cJSON_Delete(rec);

	rec = t_read_record_line(f);
	ck_assert_ptr_nonnull(rec);
	ck_assert_str_eq(cJSON_GetObjectItem(rec, "path")->valuestring, "/drives/a-b");
	ck_assert_int_eq(cJSON_GetObjectItem(rec, "status")->valueint, 400);
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "body"), "drive_id")
				 ->valuestring, "a-b");
	cJSON_Delete(rec);

	rec = t_read_record_line(f);
	ck_assert_ptr_nonnull(rec);
	ck_assert_str_eq(cJSON_GetObjectItem(rec, "body")->valuestring, "{oops");
	ck_assert_int_eq(cJSON_GetObjectItem(rec, "status")->valueint, 400);
	cJSON_Delete(rec);

	rec = t_read_record_line(f);
	ck_assert_ptr_nonnull(rec);
	ck_assert_str_eq(cJSON_GetObjectItem(rec, "method")->valuestring, "GET");
	ck_assert_str_eq(cJSON_GetObjectItem(rec, "path")->valuestring, "/");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(rec, "body")));
	ck_assert_int_eq(cJSON_GetObjectItem(rec, "status")->valueint, 200);
	cJSON_Delete(rec);

	ck_assert_ptr_null(t_read_record_line(f));
	fclose(f);
}
END_TEST

START_TEST(test_ctrl_alt_del_exits)
{
	struct stat st;
	int status;

	t_start(NULL, NULL);
	t_boot(true);
	t_expect_204("PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	status = t_wait_exit(t_child);
	ck_assert_msg(status != -1, "fc-double still runs after SendCtrlAltDel");
	t_child = -1;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Like Firecracker, nothing is unlinked. */
	ck_assert_int_eq(stat(t_api, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(stat(t_vsock, &st), 0);
}
END_TEST

START_TEST(test_ctrl_alt_del_ignored)
{
	const char *args[] = { "--ignore-ctrl-alt-del", "--show-level", NULL };
	struct stat st;
	char *state;
	int status;

	t_start(args, NULL);
	t_boot(false);
	t_expect_204("PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	state = t_get_state();
	ck_assert_str_eq(state, "Running");
	free(state);
	ck_assert_int_eq(waitpid(t_child, NULL, WNOHANG), 0);
	kill(t_child, SIGTERM);
	status = t_wait_exit(t_child);
	ck_assert_int_ne(status, -1);
	t_child = -1;
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	ck_assert_int_eq(stat(t_api, &st), 0);
}
END_TEST

START_TEST(test_socket_exists)
{
	const char *args[] = { "--api-sock", t_api, NULL };
	struct stat st;
	int fd, status;

	fd = open(t_api, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	t_child = t_spawn(args, NULL, -1);
	status = t_wait_exit(t_child);
	ck_assert_int_ne(status, -1);
	t_child = -1;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	ck_assert_int_eq(stat(t_api, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(test_fail_injection)
{
	const char *env[] = { "FC_DOUBLE_FAIL=PUT /drives/rootfs, PUT /actions InstanceStart",
			      NULL };
	char *state;

	t_start(NULL, env);
	t_expect_fault("PUT", "/drives/rootfs",
		       "{\"drive_id\":\"rootfs\",\"is_root_device\":true,\"path_on_host\":\"/x\"}",
		       "injected failure");
	t_expect_204("PUT", "/drives/data",
		     "{\"drive_id\":\"data\",\"is_root_device\":false,\"path_on_host\":\"/x\"}");
	t_expect_204("PUT", "/boot-source", "{\"kernel_image_path\":\"/k\"}");
	t_expect_fault("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", "injected failure");
	state = t_get_state();
	ck_assert_str_eq(state, "Not started");
	free(state);
}
END_TEST

START_TEST(test_exit_on_start)
{
	const char *env[] = { "FC_DOUBLE_EXIT_ON_START=1", NULL };
	int status;

	t_start(NULL, env);
	t_boot(false);
	status = t_wait_exit(t_child);
	ck_assert_int_ne(status, -1);
	t_child = -1;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}
END_TEST

/* A guest doing `cat /dev/zero > /dev/console`: exactly N NULs on stdout
 * once the VM runs, then the line that says so. */
START_TEST(test_console_flood)
{
	const char *env[] = { "FC_DOUBLE_CONSOLE_FLOOD=3000000", NULL };
	static const char done[] = "fc-double: console flood of 3000000 bytes done\n";
	static char buf[65536];
	char tail[sizeof(done)] = "";
	long long zeros = 0;
	int out[2];

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	t_start_out(NULL, env, out[1]);
	close(out[1]);
	t_boot(false);
	while (strcmp(tail, done) != 0) {
		ssize_t n = read(out[0], buf, sizeof(buf));
		ck_assert_int_gt(n, 0);
		for (ssize_t i = 0; i < n; i++) {
			zeros += buf[i] == '\0';
			memmove(tail, tail + 1, sizeof(tail) - 2);
			tail[sizeof(tail) - 2] = buf[i];
		}
	}
	ck_assert_int_eq(zeros, 3000000);
	close(out[0]);
}
END_TEST

/* An endless flood runs until its reader goes away; the VMM lives on. */
START_TEST(test_console_flood_endless)
{
	const char *env[] = { "FC_DOUBLE_CONSOLE_FLOOD=endless", NULL };
	static char buf[65536];
	long long got = 0;
	int out[2];

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	t_start_out(NULL, env, out[1]);
	close(out[1]);
	t_boot(false);
	while (got < 4 * 1024 * 1024) {
		ssize_t n = read(out[0], buf, sizeof(buf));
		ck_assert_int_gt(n, 0);
		got += n;
	}
	close(out[0]);
	t_sleep_ms(100);
	char *state = t_get_state();
	ck_assert_str_eq(state, "Running");
	free(state);
}
END_TEST

START_TEST(test_malformed_http)
{
	static const char *const bad[] = {
		"GARBAGE\r\n\r\n",
		"PUT /machine-config HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
		"PUT /machine-config HTTP/9.9\r\n\r\n",
		"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"PUT /x HTTP/1.1\r\nContent-Length: 999999\r\n\r\n",
	};
	char reply[512];
	int fd;

	t_start(NULL, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = t_connect(t_api);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		ssize_t n = read(fd, reply, sizeof(reply) - 1);
		ck_assert_int_gt(n, 0);
		reply[n] = '\0';
		ck_assert_msg(strncmp(reply, "HTTP/1.1 400", 12) == 0, "reply to '%s': %s", bad[i],
			      reply);
		ck_assert_ptr_nonnull(strstr(reply, "fault_message"));
		close(fd);
	}
	/* A client that leaves mid-request does no harm. */
	fd = t_connect(t_api);
	ck_assert_int_ge(fd, 0);
	static const char partial[] = "PUT /drives/x HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"dr";
	ck_assert_int_gt(write(fd, partial, sizeof(partial) - 1), 0);
	close(fd);
	fd = t_connect(t_api);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(write(fd, "GET / HT", 8), 0);
	close(fd);
	/* Pipelined requests on one connection are answered in order. */
	fd = t_connect(t_api);
	ck_assert_int_ge(fd, 0);
	static const char two[] = "GET /version HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n"
				  "Connection: close\r\n\r\n";
	ck_assert_int_eq(write(fd, two, sizeof(two) - 1), (ssize_t)sizeof(two) - 1);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, reply + len, sizeof(reply) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	reply[len] = '\0';
	close(fd);
	ck_assert_ptr_nonnull(strstr(reply, "firecracker_version"));
	ck_assert_ptr_nonnull(strstr(reply, "Not started"));

	char *state = t_get_state();
	ck_assert_str_eq(state, "Not started");
	free(state);
}
END_TEST

/* The "guest agent": echoes every byte, one thread per connection. */
static void *t_echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			break;
	close(fd);
	return NULL;
}

static void *t_echo_accept(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		int fd = accept4(t_echo_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			break;
		if (pthread_create(&t, NULL, t_echo_conn, (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else
			close(fd);
	}
	return NULL;
}

static void t_echo_start(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	t_echo_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(t_echo_fd, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", t_agent);
	ck_assert_int_eq(bind(t_echo_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(t_echo_fd, 16), 0);
	ck_assert_int_eq(pthread_create(&t_echo_thread, NULL, t_echo_accept, NULL), 0);
}

/* Reads one line ending in '\n' (bounded wait); returns its length, 0 on EOF. */
static ssize_t t_read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, T_WAIT_MS) != 1)
			return -1;
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0)
			break;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static int t_vsock_connect(unsigned port, char *ok_line, size_t ok_len)
{
	char line[64];
	int fd = t_connect(t_vsock);

	ck_assert_int_ge(fd, 0);
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	ck_assert_int_eq(write(fd, line, (size_t)n), n);
	ck_assert_int_ge(t_read_line(fd, ok_line, ok_len), 0);
	return fd;
}

static void t_echo_roundtrip(int fd, const char *msg)
{
	char buf[256];
	size_t len = strlen(msg), got = 0;

	ck_assert_int_eq(write(fd, msg, len), (ssize_t)len);
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ck_assert_int_eq(poll(&p, 1, T_WAIT_MS), 1);
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	buf[got] = '\0';
	ck_assert_str_eq(buf, msg);
}

START_TEST(test_vsock_relay)
{
	char env_map[300];
	const char *env[] = { env_map, NULL };
	char ok1[64], ok2[64];
	int fd1, fd2;

	snprintf(env_map, sizeof(env_map), "FC_DOUBLE_VSOCK_MAP=10789=%s,22=%s/nobody.sock",
		 t_agent, t_dir);
	t_echo_start();
	t_start(NULL, env);
	t_boot(true);

	fd1 = t_vsock_connect(10789, ok1, sizeof(ok1));
	ck_assert_msg(strncmp(ok1, "OK ", 3) == 0, "got '%s'", ok1);
	ck_assert_uint_ge(strtoul(ok1 + 3, NULL, 10), 1073741824UL);
	fd2 = t_vsock_connect(10789, ok2, sizeof(ok2));
	ck_assert_msg(strncmp(ok2, "OK ", 3) == 0, "got '%s'", ok2);
	ck_assert_str_ne(ok1, ok2);
	t_echo_roundtrip(fd1, "hello from the host\n");
	t_echo_roundtrip(fd2, "second connection");
	t_echo_roundtrip(fd1, "again");
	/* Half-close travels through: the agent sees EOF, closes, and so do we. */
	shutdown(fd1, SHUT_WR);
	char c;
	ck_assert_int_eq(read(fd1, &c, 1), 0);
	close(fd1);
	close(fd2);

	/* Lowercase keyword and data sent right behind the CONNECT line. */
	int fd3 = t_connect(t_vsock);
	ck_assert_int_ge(fd3, 0);
	static const char both[] = "connect 10789\nping";
	ck_assert_int_eq(write(fd3, both, sizeof(both) - 1), (ssize_t)sizeof(both) - 1);
	ck_assert_int_gt(t_read_line(fd3, ok1, sizeof(ok1)), 0);
	ck_assert_int_eq(strncmp(ok1, "OK ", 3), 0);
	char buf[8] = { 0 };
	struct pollfd p = { .fd = fd3, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, T_WAIT_MS), 1);
	ck_assert_int_eq(read(fd3, buf, 4), 4);
	ck_assert_str_eq(buf, "ping");
	close(fd3);
}
END_TEST

START_TEST(test_vsock_refused)
{
	char env_map[300];
	const char *env[] = { env_map, NULL };
	char line[64];
	int fd;

	snprintf(env_map, sizeof(env_map), "FC_DOUBLE_VSOCK_MAP=22=%s/nobody.sock", t_dir);
	t_start(NULL, env);
	t_boot(true);
	/* Unmapped port: closed without an OK. */
	fd = t_vsock_connect(10789, line, sizeof(line));
	ck_assert_str_eq(line, "");
	close(fd);
	/* Mapped, but nothing listens there. */
	fd = t_vsock_connect(22, line, sizeof(line));
	ck_assert_str_eq(line, "");
	close(fd);
	/* Not a CONNECT line. */
	fd = t_connect(t_vsock);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "HELLO 22\n", 9), 9);
	ck_assert_int_eq(t_read_line(fd, line, sizeof(line)), 0);
	close(fd);
	/* The API still works. */
	char *state = t_get_state();
	ck_assert_str_eq(state, "Running");
	free(state);
}
END_TEST

START_TEST(test_vsock_path_exists)
{
	char body[256];
	int fd;

	t_start(NULL, NULL);
	fd = open(t_vsock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(body, sizeof(body), "{\"guest_cid\":3,\"uds_path\":\"%s\"}", t_vsock);
	t_expect_fault("PUT", "/vsock", body, "Cannot create backend for vsock device");
	t_expect_fault("PUT", "/vsock", "{\"guest_cid\":2,\"uds_path\":\"/tmp/x\"}", "guest CID");
	/* Replacing the device removes the old file and binds the new one. */
	unlink(t_vsock);
	t_expect_204("PUT", "/vsock", body);
	char other[256], other_path[128];
	snprintf(other_path, sizeof(other_path), "%s/v2.sock", t_dir);
	snprintf(other, sizeof(other), "{\"guest_cid\":4,\"uds_path\":\"%s\"}", other_path);
	t_expect_204("PUT", "/vsock", other);
	ck_assert_int_eq(access(t_vsock, F_OK), -1);
	ck_assert_int_eq(access(other_path, F_OK), 0);
}
END_TEST

static Suite *t_suite(void)
{
	Suite *s = suite_create("fc-double");
	TCase *tc = tcase_create("api");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_good_sequence);
	tcase_add_test(tc, test_keep_alive);
	tcase_add_test(tc, test_validation_errors);
	tcase_add_test(tc, test_post_boot_rules);
	tcase_add_test(tc, test_record);
	tcase_add_test(tc, test_ctrl_alt_del_exits);
	tcase_add_test(tc, test_ctrl_alt_del_ignored);
	tcase_add_test(tc, test_socket_exists);
	tcase_add_test(tc, test_fail_injection);
	tcase_add_test(tc, test_exit_on_start);
	tcase_add_test(tc, test_malformed_http);
	tcase_add_test(tc, test_vsock_relay);
	tcase_add_test(tc, test_vsock_refused);
	tcase_add_test(tc, test_vsock_path_exists);
	tcase_add_test(tc, test_console_flood);
	tcase_add_test(tc, test_console_flood_endless);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (access(t_bin(), X_OK) != 0) {
		fprintf(stderr, "test_fc_double: %s is not built (set FC_DOUBLE_BIN)\n", t_bin());
		return 99;
	}
	snprintf(t_base, sizeof(t_base), "/tmp/fcd-test-XXXXXX");
	if (!mkdtemp(t_base)) {
		perror("test_fc_double: mkdtemp");
		return 99;
	}
	/* fc-double children of a failed test are killed (PDEATHSIG, and Check kills the
	 * test's process group); becoming their subreaper lets us reap them below. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sr = srunner_create(t_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	nftw(t_base, t_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return failed ? 1 : 0;
}
