/* libfcapi: the API endpoints. Parsing errors come first (as in Firecracker's API
 * thread), then the VMM rules (pre-boot / post-boot, device rules) under fcd_vm.lock,
 * which also serialises requests like Firecracker's single VMM thread. What starting
 * the VM and Ctrl-Alt-Del do is up to fcd_hooks. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcapi.h"

#define FCD_NOT_AFTER_BOOT "The requested operation is not supported after starting the microVM."
#define FCD_NOT_BEFORE_BOOT \
	"The requested operation is not supported before starting the microVM."
#define FCD_SERDE_PREFIX "An error occurred when deserializing the json body of a request: "

struct fcd_config fcd_cfg = {
	.api_sock = "/run/firecracker.socket",
	.id = FCD_DEFAULT_ID,
	.max_payload = FCD_DEFAULT_MAX_PAYLOAD,
	.record_fd = -1,
};
struct fcd_vm fcd_vm = FCD_VM_INIT;
const struct fcd_hooks *fcd_hooks;

void fcd_response_fault(struct fcd_response *resp, const char *fmt, ...)
{
	char msg[FCD_MSG_MAX];
	cJSON *obj;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	resp->status = 400;
	free(resp->body);
	resp->body = NULL;
	obj = cJSON_CreateObject();
	if (obj && cJSON_AddStringToObject(obj, "fault_message", msg))
		resp->body = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
}

const char *fcd_version(void)
{
	return fcd_cfg.version ? fcd_cfg.version : FCD_VERSION;
}

static void fcd_api_json(struct fcd_response *resp, cJSON *obj)
{
	resp->status = 200;
	resp->body = obj ? cJSON_PrintUnformatted(obj) : NULL;
	cJSON_Delete(obj);
	if (!resp->body)
		fcd_response_fault(resp, "out of memory");
}

static bool fcd_api_schema_ok(const struct fcd_schema *schema, const cJSON *body,
			      struct fcd_response *resp)
{
	char msg[FCD_MSG_MAX];

	if (fcd_schema_check(schema, body, msg, sizeof(msg)) == 0)
		return true;
	fcd_response_fault(resp, FCD_SERDE_PREFIX "%s.", msg);
	return false;
}

static const char *fcd_api_str(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Copies an optional string field; NULL leaves an empty string. */
static void fcd_api_copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static bool fcd_api_bool(const cJSON *obj, const char *name, bool dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static bool fcd_api_has_num(const cJSON *obj, const char *name, double *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!cJSON_IsNumber(v))
		return false;
	*ret = v->valuedouble;
	return true;
}

/* Path ids go through checked_id, then the body id must match the path id. */
static bool fcd_api_ids_ok(const char *path_id, const cJSON *body, const char *field,
			   struct fcd_response *resp)
{
	const char *body_id = fcd_api_str(body, field);

	if (strlen(path_id) > FCD_ID_MAX || !fcd_id_valid(path_id)) {
		fcd_response_fault(resp, "API Resource IDs can only contain alphanumeric "
					 "characters and underscores.");
		return false;
	}
	if (!body_id || strcmp(body_id, path_id) != 0) {
		fcd_response_fault(resp,
				   "The id from the path [%s] does not match the id from the body [%s]!",
				   path_id, body_id ? body_id : "");
		return false;
	}
	return true;
}

/* With check_paths, files are opened at PUT time like Firecracker does. */
static int fcd_api_check_file(const char *path, char *msg, size_t msg_len)
{
	int fd;

	if (!fcd_cfg.check_paths || !path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		snprintf(msg, msg_len, "%s (os error %d): \"%s\"", strerror(-r), -r, path);
		return r;
	}
	close(fd);
	return 0;
}

static int fcd_api_open_sink(const char *path, char *msg, size_t msg_len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);

	if (fd < 0)
		snprintf(msg, msg_len, "Failed to open target file: %s (os error %d)",
			 strerror(errno), errno);
	return fd;
}

static bool fcd_api_machine_values_ok(unsigned vcpus, uint64_t mem, bool smt,
				      const char *huge_pages, struct fcd_response *resp)
{
	if (vcpus == 0 || vcpus > 32 || (smt && vcpus > 1 && vcpus % 2)) {
		fcd_response_fault(resp, "Machine config error: The vCPU number is invalid! The "
					 "vCPU number can only be 1 or an even number when SMT "
					 "is enabled.");
		return false;
	}
	if (mem == 0) {
		fcd_response_fault(resp, "Machine config error: The memory size (MiB) is invalid.");
		return false;
	}
	if (strcmp(huge_pages, "2M") == 0 && mem % 2) {
		fcd_response_fault(resp, "Machine config error: The memory size (MiB) must be a "
					 "multiple of the huge page size.");
		return false;
	}
	return true;
}

static void fcd_api_machine_config(const cJSON *body, bool patch, struct fcd_response *resp)
{
	const char *hp = fcd_api_str(body, "huge_pages");
	unsigned vcpus = patch ? fcd_vm.vcpu_count : 0;
	uint64_t mem = patch ? fcd_vm.mem_size_mib : 0;
	bool smt = fcd_api_bool(body, "smt", patch ? fcd_vm.smt : false);
	bool dirty = fcd_api_bool(body, "track_dirty_pages", patch ? fcd_vm.track_dirty_pages : false);
	double d;

	if (!fcd_api_schema_ok(patch ? &fcd_schema_machine_config_patch : &fcd_schema_machine_config,
			       body, resp))
		return;
	if (fcd_vm.state != FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_AFTER_BOOT);
		return;
	}
	if (fcd_api_has_num(body, "vcpu_count", &d))
		vcpus = (unsigned)d;
	if (fcd_api_has_num(body, "mem_size_mib", &d))
		mem = (uint64_t)d;
	if (!hp)
		hp = patch ? fcd_vm.huge_pages : "None";
	if (!fcd_api_machine_values_ok(vcpus, mem, smt, hp, resp))
		return;
	fcd_vm.vcpu_count = vcpus;
	fcd_vm.mem_size_mib = mem;
	fcd_vm.smt = smt;
	fcd_vm.track_dirty_pages = dirty;
	snprintf(fcd_vm.huge_pages, sizeof(fcd_vm.huge_pages), "%s", hp);
}

static void fcd_api_get_machine_config(struct fcd_response *resp)
{
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddNumberToObject(obj, "vcpu_count", fcd_vm.vcpu_count);
	cJSON_AddNumberToObject(obj, "mem_size_mib", (double)fcd_vm.mem_size_mib);
	cJSON_AddBoolToObject(obj, "smt", fcd_vm.smt);
	cJSON_AddBoolToObject(obj, "track_dirty_pages", fcd_vm.track_dirty_pages);
	cJSON_AddStringToObject(obj, "huge_pages", fcd_vm.huge_pages);
	fcd_api_json(resp, obj);
}

static void fcd_api_get_instance(struct fcd_response *resp)
{
	static const char *const names[] = { "Not started", "Running", "Paused" };
	cJSON *obj = cJSON_CreateObject();

	cJSON_AddStringToObject(obj, "app_name", "Firecracker");
	cJSON_AddStringToObject(obj, "id", fcd_cfg.id);
	cJSON_AddStringToObject(obj, "state", names[fcd_vm.state]);
	cJSON_AddStringToObject(obj, "vmm_version", fcd_version());
	fcd_api_json(resp, obj);
}

static void fcd_api_boot_source(const cJSON *body, struct fcd_response *resp)
{
	char msg[FCD_MSG_MAX];

	if (!fcd_api_schema_ok(&fcd_schema_boot_source, body, resp))
		return;
	if (fcd_vm.state != FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_AFTER_BOOT);
		return;
	}
	if (fcd_api_check_file(fcd_api_str(body, "kernel_image_path"), msg, sizeof(msg)) < 0) {
		fcd_response_fault(resp, "Boot source error: The kernel file cannot be opened: %s",
				   msg);
		return;
	}
	if (fcd_api_check_file(fcd_api_str(body, "initrd_path"), msg, sizeof(msg)) < 0) {
		fcd_response_fault(resp, "Boot source error: The initrd file cannot be opened: %s",
				   msg);
		return;
	}
	fcd_api_copy(fcd_vm.kernel_path, sizeof(fcd_vm.kernel_path),
		     fcd_api_str(body, "kernel_image_path"));
	fcd_api_copy(fcd_vm.initrd_path, sizeof(fcd_vm.initrd_path),
		     fcd_api_str(body, "initrd_path"));
	fcd_api_copy(fcd_vm.boot_args, sizeof(fcd_vm.boot_args), fcd_api_str(body, "boot_args"));
	fcd_vm.boot_args_set = fcd_api_str(body, "boot_args") != NULL;
	fcd_vm.boot_source_set = true;
}

static void fcd_api_drive(const char *id, const cJSON *body, struct fcd_response *resp)
{
	bool is_root = fcd_api_bool(body, "is_root_device", false);
	const char *path = fcd_api_str(body, "path_on_host");
	struct fcd_drive *slot = NULL;
	char msg[FCD_MSG_MAX];

	if (!fcd_api_schema_ok(&fcd_schema_drive, body, resp) ||
	    !fcd_api_ids_ok(id, body, "drive_id", resp))
		return;
	if (fcd_vm.state != FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_AFTER_BOOT);
		return;
	}
	if (!path && !fcd_api_str(body, "socket")) {
		fcd_response_fault(resp, "Drive config error: Unable to create the virtio block "
					 "device: path_on_host is required");
		return;
	}
	if (fcd_api_check_file(path, msg, sizeof(msg)) < 0) {
		fcd_response_fault(resp, "Drive config error: Unable to create the virtio block "
					 "device: BackingFile(%s)", msg);
		return;
	}
	for (size_t i = 0; i < fcd_vm.n_drives; i++) {
		struct fcd_drive *d = &fcd_vm.drives[i];
		if (strcmp(d->id, id) == 0)
			slot = d;
		else if (is_root && d->is_root) {
			fcd_response_fault(resp, "Drive config error: A root block device already "
						 "exists!");
			return;
		}
	}
	if (!slot) {
		if (fcd_vm.n_drives == FCD_MAX_DRIVES) {
			fcd_response_fault(resp, "Drive config error: too many drives");
			return;
		}
		slot = &fcd_vm.drives[fcd_vm.n_drives++];
	}
	snprintf(slot->id, sizeof(slot->id), "%s", id);
	slot->is_root = is_root;
	slot->read_only = fcd_api_bool(body, "is_read_only", false);
	fcd_api_copy(slot->path, sizeof(slot->path), path);
	fcd_api_copy(slot->cache_type, sizeof(slot->cache_type), fcd_api_str(body, "cache_type"));
	if (!slot->cache_type[0])
		snprintf(slot->cache_type, sizeof(slot->cache_type), "Unsafe");
}

static bool fcd_api_mac_ok(const char *mac)
{
	static const char hex[] = "0123456789abcdefABCDEF";

	if (strlen(mac) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? mac[i] != ':' : !strchr(hex, mac[i]))
			return false;
	}
	return true;
}

static void fcd_api_network_interface(const char *id, const cJSON *body,
				      struct fcd_response *resp)
{
	const char *tap = fcd_api_str(body, "host_dev_name");
	const char *mac = fcd_api_str(body, "guest_mac");
	struct fcd_iface *slot = NULL;
	double mtu;

	if (!fcd_api_schema_ok(&fcd_schema_network_interface, body, resp))
		return;
	if (mac && !fcd_api_mac_ok(mac)) {
		fcd_response_fault(resp, FCD_SERDE_PREFIX "invalid value: string \"%.32s\", "
				   "expected a MAC address.", mac);
		return;
	}
	if (!fcd_api_ids_ok(id, body, "iface_id", resp))
		return;
	if (fcd_vm.state != FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_AFTER_BOOT);
		return;
	}
	if (tap[0] == '\0' || strlen(tap) > 15) {
		fcd_response_fault(resp, "Network config error: Could not create the network "
					 "device: Open tap device failed: Invalid interface name");
		return;
	}
	if (fcd_api_has_num(body, "mtu", &mtu) && mtu < 68) {
		fcd_response_fault(resp, "Network config error: Invalid MTU %.0f: must be between "
					 "68 and 65535", mtu);
		return;
	}
	for (size_t i = 0; i < fcd_vm.n_ifaces; i++) {
		struct fcd_iface *f = &fcd_vm.ifaces[i];
		if (strcmp(f->id, id) == 0)
			slot = f;
		else if (strcmp(f->host_dev_name, tap) == 0) {
			fcd_response_fault(resp, "Network config error: The host device name %s is "
						 "already in use.", tap);
			return;
		}
	}
	if (!slot) {
		if (fcd_vm.n_ifaces == FCD_MAX_IFACES) {
			fcd_response_fault(resp, "Network config error: too many interfaces");
			return;
		}
		slot = &fcd_vm.ifaces[fcd_vm.n_ifaces++];
	}
	snprintf(slot->id, sizeof(slot->id), "%s", id);
	snprintf(slot->host_dev_name, sizeof(slot->host_dev_name), "%s", tap);
	fcd_api_copy(slot->guest_mac, sizeof(slot->guest_mac), mac);
}

static void fcd_api_vsock(const cJSON *body, struct fcd_response *resp)
{
	char msg[FCD_MSG_MAX];
	double cid = 0;

	if (!fcd_api_schema_ok(&fcd_schema_vsock, body, resp))
		return;
	if (fcd_vm.state != FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_AFTER_BOOT);
		return;
	}
	(void)fcd_api_has_num(body, "guest_cid", &cid);
	if (cid < 3) {
		fcd_response_fault(resp, "Vsock config error: Invalid guest CID %.0f: must be at "
					 "least 3", cid);
		return;
	}
	/* Replacing the device removes the old socket file, as Firecracker does. */
	fcd_vm.vsock = fcd_vsock_destroy(fcd_vm.vsock);
	if (fcd_vsock_create(fcd_api_str(body, "uds_path"), (uint32_t)cid, &fcd_vm.vsock, msg,
			     sizeof(msg)) < 0)
		fcd_response_fault(resp, "Vsock config error: Cannot create backend for vsock "
					 "device: %s", msg);
	else
		fcd_vm.vsock_cid = (uint32_t)cid;
}

static void fcd_api_logger(const cJSON *body, struct fcd_response *resp)
{
	const char *path = fcd_api_str(body, "log_path");
	char msg[FCD_MSG_MAX];
	int fd;

	if (!fcd_api_schema_ok(&fcd_schema_logger, body, resp))
		return;
	if (fcd_vm.state != FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_AFTER_BOOT);
		return;
	}
	if (!path)
		return;
	fd = fcd_api_open_sink(path, msg, sizeof(msg));
	if (fd < 0) {
		fcd_response_fault(resp, "Logger error: %s", msg);
		return;
	}
	if (fcd_vm.logger_fd >= 0)
		close(fcd_vm.logger_fd);
	fcd_vm.logger_fd = fd;
	dprintf(fd, "[%s:main] Running Firecracker v%s\n", fcd_cfg.id, fcd_version());
}

static void fcd_api_metrics(const cJSON *body, struct fcd_response *resp)
{
	char msg[FCD_MSG_MAX];
	int fd;

	if (!fcd_api_schema_ok(&fcd_schema_metrics, body, resp))
		return;
	if (fcd_vm.state != FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_AFTER_BOOT);
		return;
	}
	if (fcd_vm.metrics_fd >= 0) {
		fcd_response_fault(resp, "Metrics error: Reinitialization of metrics not allowed.");
		return;
	}
	fd = fcd_api_open_sink(fcd_api_str(body, "metrics_path"), msg, sizeof(msg));
	if (fd < 0) {
		fcd_response_fault(resp, "Metrics error: %s", msg);
		return;
	}
	fcd_vm.metrics_fd = fd;
}

static void fcd_api_action(const cJSON *body, struct fcd_response *resp)
{
	const char *type;

	if (!fcd_api_schema_ok(&fcd_schema_action, body, resp))
		return;
	type = fcd_api_str(body, "action_type");
	if (strcmp(type, "InstanceStart") == 0) {
		if (fcd_vm.state != FCD_NOT_STARTED) {
			fcd_response_fault(resp, FCD_NOT_AFTER_BOOT);
			return;
		}
		if (!fcd_vm.boot_source_set) {
			fcd_response_fault(resp, "Start microvm error: Cannot start microvm without "
						 "kernel configuration.");
			return;
		}
		if (fcd_hooks && fcd_hooks->instance_start)
			fcd_hooks->instance_start(resp);
		if (resp->status != 204)
			return;
		fcd_vm.state = FCD_RUNNING;
		pthread_cond_broadcast(&fcd_vm.state_changed);
		return;
	}
	if (fcd_vm.state == FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_BEFORE_BOOT);
		return;
	}
	if (strcmp(type, "SendCtrlAltDel") == 0) {
		if (fcd_hooks && fcd_hooks->ctrl_alt_del)
			fcd_hooks->ctrl_alt_del(resp);
		return;
	}
	/* FlushMetrics */
	if (fcd_vm.metrics_fd >= 0)
		dprintf(fcd_vm.metrics_fd, "{\"utc_timestamp_ms\":%lld}\n",
			(long long)time(NULL) * 1000);
}

static void fcd_api_patch_vm(const cJSON *body, struct fcd_response *resp)
{
	if (!fcd_api_schema_ok(&fcd_schema_vm, body, resp))
		return;
	if (fcd_vm.state == FCD_NOT_STARTED) {
		fcd_response_fault(resp, FCD_NOT_BEFORE_BOOT);
		return;
	}
	bool paused = strcmp(fcd_api_str(body, "state"), "Paused") == 0;

	if (fcd_hooks && fcd_hooks->set_paused)
		fcd_hooks->set_paused(paused, resp);
	if (resp->status != 204)
		return;
	fcd_vm.state = paused ? FCD_PAUSED : FCD_RUNNING;
	pthread_cond_broadcast(&fcd_vm.state_changed);
}

/* Dispatch on "/<resource>[/<id>]"; true when the method and path are known. */
static bool fcd_api_route(const char *method, const char *resource, const char *id,
			  const cJSON *body, struct fcd_response *resp)
{
	bool get = strcmp(method, "GET") == 0;
	bool put = strcmp(method, "PUT") == 0;
	bool patch = strcmp(method, "PATCH") == 0;

	if (!id && get && resource[0] == '\0')
		fcd_api_get_instance(resp);
	else if (!id && get && strcmp(resource, "version") == 0) {
		cJSON *obj = cJSON_CreateObject();
		cJSON_AddStringToObject(obj, "firecracker_version", fcd_version());
		fcd_api_json(resp, obj);
	} else if (!id && get && strcmp(resource, "machine-config") == 0)
		fcd_api_get_machine_config(resp);
	else if (!id && (put || patch) && strcmp(resource, "machine-config") == 0)
		fcd_api_machine_config(body, patch, resp);
	else if (!id && put && strcmp(resource, "boot-source") == 0)
		fcd_api_boot_source(body, resp);
	else if (id && put && strcmp(resource, "drives") == 0)
		fcd_api_drive(id, body, resp);
	else if (id && put && strcmp(resource, "network-interfaces") == 0)
		fcd_api_network_interface(id, body, resp);
	else if (!id && put && strcmp(resource, "vsock") == 0)
		fcd_api_vsock(body, resp);
	else if (!id && put && strcmp(resource, "actions") == 0)
		fcd_api_action(body, resp);
	else if (!id && patch && strcmp(resource, "vm") == 0)
		fcd_api_patch_vm(body, resp);
	else if (!id && put && strcmp(resource, "logger") == 0)
		fcd_api_logger(body, resp);
	else if (!id && put && strcmp(resource, "metrics") == 0)
		fcd_api_metrics(body, resp);
	else
		return false;
	return true;
}

void fcd_api_handle(const char *method, const char *path, const char *body, size_t body_len,
		    struct fcd_response *resp)
{
	char resource[64];
	const char *id = NULL;
	const char *slash;
	cJSON *json = NULL;
	size_t rlen;

	resp->status = 204;
	resp->body = NULL;
	resp->after = FCD_AFTER_NONE;

	if (strcmp(method, "GET") == 0 && body_len > 0) {
		fcd_response_fault(resp, "GET request cannot have a body.");
		return;
	}
	if (strcmp(method, "PUT") == 0 && body_len == 0) {
		fcd_response_fault(resp, "Empty PUT request.");
		return;
	}
	if (strcmp(method, "PATCH") == 0 && body_len == 0) {
		fcd_response_fault(resp, "Empty PATCH request.");
		return;
	}
	if (body_len > 0)
		json = cJSON_ParseWithLength(body, body_len);

	slash = strchr(path + 1, '/');
	rlen = slash ? (size_t)(slash - path - 1) : strlen(path + 1);
	if (rlen >= sizeof(resource) || (slash && strchr(slash + 1, '/'))) {
		fcd_response_fault(resp, "Invalid request method and/or path: %s %s.", method,
				   path);
		goto cleanup;
	}
	memcpy(resource, path + 1, rlen);
	resource[rlen] = '\0';
	if (slash)
		id = slash + 1;

	pthread_mutex_lock(&fcd_vm.lock);
	if (fcd_hooks && fcd_hooks->should_fail && fcd_hooks->should_fail(method, path, json)) {
		fcd_response_fault(resp, "injected failure");
	} else if (body_len > 0 && !json) {
		fcd_response_fault(resp, FCD_SERDE_PREFIX "expected value (invalid JSON).");
	} else if (!fcd_api_route(method, resource, id, json, resp)) {
		fcd_response_fault(resp, "Invalid request method and/or path: %s %s.", method,
				   path);
	} else if (resp->status == 204 && fcd_hooks && fcd_hooks->observe) {
		fcd_hooks->observe(method, resource, json);
	}
	if (fcd_vm.logger_fd >= 0)
		dprintf(fcd_vm.logger_fd, "[%s:fc_api] The API server received a %s request on "
			"\"%s\".\n", fcd_cfg.id, method, path);
	pthread_mutex_unlock(&fcd_vm.lock);
cleanup:
	cJSON_Delete(json);
}
