/* fc-double: a test double of the Firecracker v1.16.1 API process.
 * Shared declarations of its modules. See README.md for behaviour and knobs. */
#ifndef FCD_H
#define FCD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define FCD_DEFAULT_VERSION "1.16.1"
/* What --version, GET / and GET /version report: FC_DOUBLE_VERSION or 1.16.1. */
#define FCD_VERSION (fcd_cfg.version)
#define FCD_DEFAULT_ID "anonymous-instance"
#define FCD_DEFAULT_MAX_PAYLOAD 51200
#define FCD_MAX_DRIVES 32
#define FCD_MAX_IFACES 16
#define FCD_ID_MAX 64
#define FCD_MSG_MAX 512

/* One "METHOD PATH [ACTION]" entry of FC_DOUBLE_FAIL. */
struct fcd_fail_rule {
	char *method;
	char *path;
	char *action; /* NULL: any body */
};

/* One "PORT=PATH" entry of FC_DOUBLE_VSOCK_MAP. */
struct fcd_vsock_route {
	uint32_t port;
	char *path;
};

/* Settings from the command line and the environment, fixed after start. */
struct fcd_config {
	const char *api_sock;
	const char *id;
	bool ignore_ctrl_alt_del;
	size_t max_payload;
	long boot_delay_ms;
	long startup_delay_ms;
	long ctrl_alt_del_delay_ms;
	bool exit_on_start;
	bool check_paths;
	int record_fd; /* -1: not recording */
	struct fcd_fail_rule *fail_rules;
	size_t n_fail_rules;
	struct fcd_vsock_route *vsock_routes;
	size_t n_vsock_routes;
	const char *version;      /* FC_DOUBLE_VERSION */
	const char *console_file; /* FC_DOUBLE_CONSOLE_FILE: "guest" output at InstanceStart */
	long exit_after_ms;       /* FC_DOUBLE_EXIT_AFTER_MS; -1: never */
	int exit_after_code;      /* 0 (guest reset), 1 with FC_DOUBLE_EXIT_ON_START */
};

enum fcd_vm_state { FCD_NOT_STARTED, FCD_RUNNING, FCD_PAUSED };

struct fcd_drive {
	char id[FCD_ID_MAX + 1];
	bool is_root;
};

struct fcd_iface {
	char id[FCD_ID_MAX + 1];
	char host_dev_name[32];
};

struct fcd_vsock; /* fcd_vsock.c */

/* The emulated VMM; every field is guarded by lock. */
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
	struct fcd_drive drives[FCD_MAX_DRIVES];
	size_t n_drives;
	struct fcd_iface ifaces[FCD_MAX_IFACES];
	size_t n_ifaces;
	struct fcd_vsock *vsock;
	int logger_fd;
	int metrics_fd;
};

/* What the connection does once the reply has been written. */
enum fcd_after {
	FCD_AFTER_NONE,
	FCD_AFTER_CTRL_ALT_DEL, /* guest "reboots": exit 0 after the delay */
	FCD_AFTER_CRASH,        /* FC_DOUBLE_EXIT_ON_START: exit 1 at once */
};

struct fcd_response {
	int status;       /* 200, 204 or 400 */
	char *body;       /* JSON text, malloc'd, or NULL */
	enum fcd_after after;
};

extern struct fcd_config fcd_cfg;
extern struct fcd_vm fcd_vm;

/* fcd_env.c */
/* FC_DOUBLE_VERSION ("X.Y.Z") or the default; NULL when malformed. Read
 * before the command line, which may ask for --version. */
const char *fcd_env_version(void);
int fcd_env_load(struct fcd_config *cfg, char *msg, size_t msg_len);
bool fcd_env_should_fail(const struct fcd_config *cfg, const char *method,
			 const char *path, const cJSON *body);
const char *fcd_env_vsock_route(const struct fcd_config *cfg, uint32_t port);

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

/* fcd_vsock.c */
int fcd_vsock_create(const char *uds_path, uint32_t guest_cid, struct fcd_vsock **ret_vsock,
		     char *msg, size_t msg_len);
struct fcd_vsock *fcd_vsock_destroy(struct fcd_vsock *vsock);

/* fcd_guest.c: the stand-in guest (FC_DOUBLE_STANDIN=1) */
void fcd_guest_observe(const char *method, const char *resource, const cJSON *body);

/* fcd_util.c */
void fcd_sleep_ms(long ms);
int fcd_write_all(int fd, const void *buf, size_t len);
bool fcd_id_valid(const char *id);
void fcd_record(const char *method, const char *path, const char *body, size_t body_len,
		int status);
void fcd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
