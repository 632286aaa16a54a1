/* libfcapi: Firecracker v1.16.1's API server, shared by banger-vmm-qemu (a VMM over QEMU)
 * and tests/fcdouble's fc-double (a test double). HTTP framing (fcd_http.c), serde-like
 * body schemas (fcd_schema.c), the API state machine with pre/post-boot rules
 * (fcd_api.c), hybrid vsock (fcd_vsock.c) and helpers (fcd_util.c). What differs between
 * the two programs goes through struct fcd_hooks. */
#ifndef FCAPI_H
#define FCAPI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#define FCD_VERSION "1.16.1"
#define FCD_DEFAULT_ID "anonymous-instance"
#define FCD_DEFAULT_MAX_PAYLOAD 51200
#define FCD_MAX_DRIVES 32
#define FCD_MAX_IFACES 16
#define FCD_ID_MAX 64
#define FCD_MSG_MAX 512
#define FCD_PATH_MAX 4096

/* Firecracker exit codes (FcExitCode). */
#define FCD_EXIT_GENERIC 1
#define FCD_EXIT_ARG_PARSING 153

/* Settings from the command line, fixed after start. */
struct fcd_config {
	const char *api_sock;
	const char *id;
	size_t max_payload;
	bool check_paths; /* open kernel, initrd and drive files at PUT time */
	int record_fd;    /* -1: not recording */
	const char *version; /* reported by GET / and GET /version; NULL: FCD_VERSION */
};

/* The Firecracker version this process reports. */
const char *fcd_version(void);

enum fcd_vm_state { FCD_NOT_STARTED, FCD_RUNNING, FCD_PAUSED };

struct fcd_drive {
	char id[FCD_ID_MAX + 1];
	bool is_root;
	bool read_only;
	char path[FCD_PATH_MAX]; /* path_on_host; empty for a vhost-user "socket" drive */
	char cache_type[16];     /* "Unsafe" (the default) or "Writeback" */
};

struct fcd_iface {
	char id[FCD_ID_MAX + 1];
	char host_dev_name[32];
	char guest_mac[18]; /* empty: none given */
};

struct fcd_vsock; /* fcd_vsock.c */

/* The VM as configured through the API; every field is guarded by lock. */
struct fcd_vm {
	pthread_mutex_t lock;
	pthread_cond_t state_changed;
	enum fcd_vm_state state;
	unsigned vcpu_count;
	uint64_t mem_size_mib;
	bool smt;
	bool track_dirty_pages;
	char huge_pages[8];
	bool boot_source_set;
	char kernel_path[FCD_PATH_MAX];
	char initrd_path[FCD_PATH_MAX]; /* empty: none */
	char boot_args[FCD_PATH_MAX];
	bool boot_args_set;
	struct fcd_drive drives[FCD_MAX_DRIVES];
	size_t n_drives;
	struct fcd_iface ifaces[FCD_MAX_IFACES];
	size_t n_ifaces;
	struct fcd_vsock *vsock;
	uint32_t vsock_cid;
	int logger_fd;
	int metrics_fd;
};

#define FCD_VM_INIT                                                                      \
	{                                                                                \
		.lock = PTHREAD_MUTEX_INITIALIZER, .state_changed = PTHREAD_COND_INITIALIZER, \
		.state = FCD_NOT_STARTED, .vcpu_count = 1, .mem_size_mib = 128,          \
		.huge_pages = "None", .logger_fd = -1, .metrics_fd = -1,                 \
	}

/* What the connection does once the reply has been written (see fcd_hooks.after_reply). */
enum fcd_after {
	FCD_AFTER_NONE,
	FCD_AFTER_CTRL_ALT_DEL, /* the guest got Ctrl-Alt-Del */
	FCD_AFTER_CRASH,        /* the VMM dies right after the reply */
};

struct fcd_response {
	int status;       /* 200, 204 or 400 */
	char *body;       /* JSON text, malloc'd, or NULL */
	enum fcd_after after;
};

/* What each program does differently. Every hook may be NULL (nothing happens). The
 * request hooks run under fcd_vm.lock, which serialises requests like Firecracker's
 * single VMM thread. */
struct fcd_hooks {
	const char *log_name; /* prefix of fcd_log lines */
	/* Before routing: true answers 400 "injected failure" (fc-double's FC_DOUBLE_FAIL). */
	bool (*should_fail)(const char *method, const char *path, const cJSON *body);
	/* InstanceStart passed the API's checks: boot, or fill resp with a fault. The VM is
	 * marked running only if resp->status is still 204. */
	void (*instance_start)(struct fcd_response *resp);
	/* SendCtrlAltDel after boot: deliver it, or fill resp with a fault. */
	void (*ctrl_alt_del)(struct fcd_response *resp);
	/* PATCH /vm after boot: pause or resume the vCPUs, or fill resp with a fault. */
	void (*set_paused)(bool paused, struct fcd_response *resp);
	/* After any request that got 204/200. */
	void (*observe)(const char *method, const char *resource, const cJSON *body);
	/* After the reply was written, for resp->after != FCD_AFTER_NONE. */
	void (*after_reply)(enum fcd_after after);
	/* Hybrid vsock: connect to guest port; a connected fd or a negative errno (the host
	 * client is then closed without a reply, as Firecracker does). Runs once the VM runs. */
	int (*vsock_connect)(uint32_t guest_cid, uint32_t port);
};

extern struct fcd_config fcd_cfg;
extern struct fcd_vm fcd_vm;
extern const struct fcd_hooks *fcd_hooks;

/* fcd_schema.c: request bodies, checked the way serde with deny_unknown_fields does. */
enum fcd_field_type {
	FCD_T_STRING,
	FCD_T_BOOL,
	FCD_T_UINT,
	FCD_T_ENUM,
	FCD_T_OBJECT,
};

struct fcd_schema;

struct fcd_field {
	const char *name;
	enum fcd_field_type type;
	bool required;
	uint64_t max;                    /* FCD_T_UINT: largest value of the Rust type */
	const char *const *variants;     /* FCD_T_ENUM: NULL-terminated */
	bool variants_nocase;
	const struct fcd_schema *object; /* FCD_T_OBJECT */
};

struct fcd_schema {
	const char *name;
	const struct fcd_field *fields;
	size_t n_fields;
};

extern const struct fcd_schema fcd_schema_machine_config;
extern const struct fcd_schema fcd_schema_machine_config_patch;
extern const struct fcd_schema fcd_schema_boot_source;
extern const struct fcd_schema fcd_schema_drive;
extern const struct fcd_schema fcd_schema_network_interface;
extern const struct fcd_schema fcd_schema_vsock;
extern const struct fcd_schema fcd_schema_action;
extern const struct fcd_schema fcd_schema_vm;
extern const struct fcd_schema fcd_schema_logger;
extern const struct fcd_schema fcd_schema_metrics;

int fcd_schema_check(const struct fcd_schema *schema, const cJSON *obj, char *msg,
		     size_t msg_len);

/* fcd_api.c */
void fcd_api_handle(const char *method, const char *path, const char *body, size_t body_len,
		    struct fcd_response *resp);
void fcd_response_fault(struct fcd_response *resp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* fcd_http.c */
void *fcd_http_connection(void *arg);
int fcd_http_serve(int listen_fd);
/* Binds and listens on the API socket without unlinking an existing file first. */
int fcd_http_bind(const char *path);

/* fcd_vsock.c */
int fcd_vsock_create(const char *uds_path, uint32_t guest_cid, struct fcd_vsock **ret_vsock,
		     char *msg, size_t msg_len);
struct fcd_vsock *fcd_vsock_destroy(struct fcd_vsock *vsock);
/* Connects a Unix stream socket to path: an fd or a negative errno. */
int fcd_unix_connect(const char *path);

/* fcd_args.c: the command line */
struct fcd_args_program {
	const char *name;         /* in error messages */
	const char *version_line; /* what --version prints */
	void (*usage)(FILE *out);
	bool (*own_switch)(const char *arg); /* the program's own switches; may be NULL */
};

/* Fills fcd_cfg from argv; --version and --help print and exit 0. -EINVAL (already
 * reported on stderr) for anything else. */
int fcd_args_parse(int argc, char **argv, const struct fcd_args_program *prog);

/* fcd_util.c */
void fcd_sleep_ms(long ms);
int fcd_write_all(int fd, const void *buf, size_t len);
/* A close-on-exec stream socket of addr's family (AF_UNIX, AF_VSOCK) connected to
 * addr: an fd or a negative errno. */
int fcd_stream_connect(const struct sockaddr *addr, socklen_t addr_len);
bool fcd_id_valid(const char *id);
bool fcd_instance_id_valid(const char *id);
void fcd_record(const char *method, const char *path, const char *body, size_t body_len,
		int status);
void fcd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
