/* libfcapi: request body schemas of the v1.16.1 swagger, checked with the strictness
 * of Firecracker's serde structs (deny_unknown_fields): a missing required field, an
 * unknown or duplicate field, a wrong JSON type, an out-of-range integer or an unknown
 * enum variant is refused with a serde-like message. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fcapi.h"

#define FCD_U8 UINT8_MAX
#define FCD_U16 UINT16_MAX
#define FCD_U32 UINT32_MAX
#define FCD_U64 UINT64_MAX
#define FCD_N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const fcd_huge_pages[] = { "None", "2M", NULL };
static const char *const fcd_cpu_templates[] = { "C3", "T2", "T2S", "T2CL", "T2A",
						 "V1N1", "None", NULL };
static const char *const fcd_cache_types[] = { "Unsafe", "Writeback", NULL };
static const char *const fcd_io_engines[] = { "Sync", "Async", NULL };
static const char *const fcd_action_types[] = { "FlushMetrics", "InstanceStart",
						"SendCtrlAltDel", NULL };
static const char *const fcd_vm_states[] = { "Paused", "Resumed", NULL };
static const char *const fcd_log_levels[] = { "Error", "Warning", "Info", "Debug",
					      "Trace", "Off", NULL };

static const struct fcd_field fcd_token_bucket_fields[] = {
	{ .name = "size", .type = FCD_T_UINT, .required = true, .max = FCD_U64 },
	{ .name = "one_time_burst", .type = FCD_T_UINT, .max = FCD_U64 },
	{ .name = "refill_time", .type = FCD_T_UINT, .required = true, .max = FCD_U64 },
};
static const struct fcd_schema fcd_schema_token_bucket = {
	"TokenBucket", fcd_token_bucket_fields, FCD_N(fcd_token_bucket_fields)
};

static const struct fcd_field fcd_rate_limiter_fields[] = {
	{ .name = "bandwidth", .type = FCD_T_OBJECT, .object = &fcd_schema_token_bucket },
	{ .name = "ops", .type = FCD_T_OBJECT, .object = &fcd_schema_token_bucket },
};
static const struct fcd_schema fcd_schema_rate_limiter = {
	"RateLimiterConfig", fcd_rate_limiter_fields, FCD_N(fcd_rate_limiter_fields)
};

static const struct fcd_field fcd_machine_config_fields[] = {
	{ .name = "vcpu_count", .type = FCD_T_UINT, .required = true, .max = FCD_U8 },
	{ .name = "mem_size_mib", .type = FCD_T_UINT, .required = true, .max = FCD_U64 },
	{ .name = "smt", .type = FCD_T_BOOL },
	{ .name = "cpu_template", .type = FCD_T_ENUM, .variants = fcd_cpu_templates },
	{ .name = "track_dirty_pages", .type = FCD_T_BOOL },
	{ .name = "huge_pages", .type = FCD_T_ENUM, .variants = fcd_huge_pages },
};
const struct fcd_schema fcd_schema_machine_config = {
	"MachineConfig", fcd_machine_config_fields, FCD_N(fcd_machine_config_fields)
};

static const struct fcd_field fcd_machine_config_patch_fields[] = {
	{ .name = "vcpu_count", .type = FCD_T_UINT, .max = FCD_U8 },
	{ .name = "mem_size_mib", .type = FCD_T_UINT, .max = FCD_U64 },
	{ .name = "smt", .type = FCD_T_BOOL },
	{ .name = "cpu_template", .type = FCD_T_ENUM, .variants = fcd_cpu_templates },
	{ .name = "track_dirty_pages", .type = FCD_T_BOOL },
	{ .name = "huge_pages", .type = FCD_T_ENUM, .variants = fcd_huge_pages },
};
const struct fcd_schema fcd_schema_machine_config_patch = {
	"MachineConfigUpdate", fcd_machine_config_patch_fields,
	FCD_N(fcd_machine_config_patch_fields)
};

static const struct fcd_field fcd_boot_source_fields[] = {
	{ .name = "kernel_image_path", .type = FCD_T_STRING, .required = true },
	{ .name = "initrd_path", .type = FCD_T_STRING },
	{ .name = "boot_args", .type = FCD_T_STRING },
};
const struct fcd_schema fcd_schema_boot_source = {
	"BootSourceConfig", fcd_boot_source_fields, FCD_N(fcd_boot_source_fields)
};

static const struct fcd_field fcd_drive_fields[] = {
	{ .name = "drive_id", .type = FCD_T_STRING, .required = true },
	{ .name = "partuuid", .type = FCD_T_STRING },
	{ .name = "is_root_device", .type = FCD_T_BOOL, .required = true },
	{ .name = "cache_type", .type = FCD_T_ENUM, .variants = fcd_cache_types },
	{ .name = "is_read_only", .type = FCD_T_BOOL },
	{ .name = "path_on_host", .type = FCD_T_STRING },
	{ .name = "rate_limiter", .type = FCD_T_OBJECT, .object = &fcd_schema_rate_limiter },
	{ .name = "io_engine", .type = FCD_T_ENUM, .variants = fcd_io_engines },
	{ .name = "socket", .type = FCD_T_STRING },
};
const struct fcd_schema fcd_schema_drive = { "BlockDeviceConfig", fcd_drive_fields,
					     FCD_N(fcd_drive_fields) };

static const struct fcd_field fcd_network_interface_fields[] = {
	{ .name = "iface_id", .type = FCD_T_STRING, .required = true },
	{ .name = "host_dev_name", .type = FCD_T_STRING, .required = true },
	{ .name = "guest_mac", .type = FCD_T_STRING },
	{ .name = "mtu", .type = FCD_T_UINT, .max = FCD_U16 },
	{ .name = "rx_rate_limiter", .type = FCD_T_OBJECT, .object = &fcd_schema_rate_limiter },
	{ .name = "tx_rate_limiter", .type = FCD_T_OBJECT, .object = &fcd_schema_rate_limiter },
};
const struct fcd_schema fcd_schema_network_interface = {
	"NetworkInterfaceConfig", fcd_network_interface_fields,
	FCD_N(fcd_network_interface_fields)
};

static const struct fcd_field fcd_vsock_fields[] = {
	{ .name = "vsock_id", .type = FCD_T_STRING },
	{ .name = "guest_cid", .type = FCD_T_UINT, .required = true, .max = FCD_U32 },
	{ .name = "uds_path", .type = FCD_T_STRING, .required = true },
};
const struct fcd_schema fcd_schema_vsock = { "VsockDeviceConfig", fcd_vsock_fields,
					     FCD_N(fcd_vsock_fields) };

static const struct fcd_field fcd_action_fields[] = {
	{ .name = "action_type", .type = FCD_T_ENUM, .required = true,
	  .variants = fcd_action_types },
};
const struct fcd_schema fcd_schema_action = { "ActionBody", fcd_action_fields,
					      FCD_N(fcd_action_fields) };

static const struct fcd_field fcd_vm_fields[] = {
	{ .name = "state", .type = FCD_T_ENUM, .required = true, .variants = fcd_vm_states },
};
const struct fcd_schema fcd_schema_vm = { "Vm", fcd_vm_fields, FCD_N(fcd_vm_fields) };

static const struct fcd_field fcd_logger_fields[] = {
	{ .name = "log_path", .type = FCD_T_STRING },
	{ .name = "level", .type = FCD_T_ENUM, .variants = fcd_log_levels,
	  .variants_nocase = true },
	{ .name = "show_level", .type = FCD_T_BOOL },
	{ .name = "show_log_origin", .type = FCD_T_BOOL },
	{ .name = "module", .type = FCD_T_STRING },
};
const struct fcd_schema fcd_schema_logger = { "LoggerConfig", fcd_logger_fields,
					      FCD_N(fcd_logger_fields) };

static const struct fcd_field fcd_metrics_fields[] = {
	{ .name = "metrics_path", .type = FCD_T_STRING, .required = true },
};
const struct fcd_schema fcd_schema_metrics = { "MetricsConfig", fcd_metrics_fields,
					       FCD_N(fcd_metrics_fields) };

/* serde's "unexpected" wording for a JSON value. */
static void fcd_schema_describe(const cJSON *v, char *buf, size_t len)
{
	if (cJSON_IsString(v))
		snprintf(buf, len, "string \"%.64s\"", v->valuestring);
	else if (cJSON_IsBool(v))
		snprintf(buf, len, "boolean `%s`", cJSON_IsTrue(v) ? "true" : "false");
	else if (cJSON_IsNull(v))
		snprintf(buf, len, "null");
	else if (cJSON_IsArray(v))
		snprintf(buf, len, "sequence");
	else if (cJSON_IsObject(v))
		snprintf(buf, len, "map");
	else if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble)
		snprintf(buf, len, "integer `%lld`", (long long)v->valuedouble);
	else if (cJSON_IsNumber(v))
		snprintf(buf, len, "floating point `%g`", v->valuedouble);
	else
		snprintf(buf, len, "value");
}

static const char *fcd_schema_uint_name(uint64_t max)
{
	return max == FCD_U8 ? "u8" : max == FCD_U16 ? "u16" : max == FCD_U32 ? "u32" : "u64";
}

static void fcd_schema_expected_list(const char *const *names, size_t n, char *buf,
				     size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++) {
		int w = snprintf(buf + off, len - off, "%s`%s`", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

static int fcd_schema_check_value(const struct fcd_field *f, const cJSON *v, char *msg,
				  size_t msg_len)
{
	char got[96];
	char list[256];
	size_t n = 0;

	fcd_schema_describe(v, got, sizeof(got));
	switch (f->type) {
	case FCD_T_STRING:
		if (!cJSON_IsString(v)) {
			snprintf(msg, msg_len, "invalid type: %s, expected a string", got);
			return -EINVAL;
		}
		return 0;
	case FCD_T_BOOL:
		if (!cJSON_IsBool(v)) {
			snprintf(msg, msg_len, "invalid type: %s, expected a boolean", got);
			return -EINVAL;
		}
		return 0;
	case FCD_T_UINT: {
		const char *tn = fcd_schema_uint_name(f->max);
		if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble) {
			snprintf(msg, msg_len, "invalid type: %s, expected %s", got, tn);
			return -EINVAL;
		}
		if (v->valuedouble < 0 || v->valuedouble > (double)f->max) {
			snprintf(msg, msg_len, "invalid value: %s, expected %s", got, tn);
			return -EINVAL;
		}
		return 0;
	}
	case FCD_T_ENUM:
		while (f->variants[n])
			n++;
		if (!cJSON_IsString(v)) {
			snprintf(msg, msg_len, "invalid type: %s, expected a string", got);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			bool same = f->variants_nocase ?
					    strcasecmp(v->valuestring, f->variants[i]) == 0 :
					    strcmp(v->valuestring, f->variants[i]) == 0;
			if (same)
				return 0;
		}
		fcd_schema_expected_list(f->variants, n, list, sizeof(list));
		snprintf(msg, msg_len, "unknown variant `%.64s`, expected one of %s",
			 v->valuestring, list);
		return -EINVAL;
	case FCD_T_OBJECT:
		return fcd_schema_check(f->object, v, msg, msg_len);
	}
	return -EINVAL;
}

int fcd_schema_check(const struct fcd_schema *schema, const cJSON *obj, char *msg,
		     size_t msg_len)
{
	const char *names[16];
	char got[96];
	char list[512];
	const cJSON *item;
	int r;

	if (!cJSON_IsObject(obj)) {
		fcd_schema_describe(obj, got, sizeof(got));
		snprintf(msg, msg_len, "invalid type: %s, expected struct %s", got, schema->name);
		return -EINVAL;
	}
	cJSON_ArrayForEach(item, obj) {
		const struct fcd_field *f = NULL;

		for (size_t i = 0; i < schema->n_fields; i++)
			if (strcmp(item->string, schema->fields[i].name) == 0)
				f = &schema->fields[i];
		if (!f) {
			for (size_t i = 0; i < schema->n_fields && i < 16; i++)
				names[i] = schema->fields[i].name;
			fcd_schema_expected_list(names, schema->n_fields, list, sizeof(list));
			snprintf(msg, msg_len, "unknown field `%.64s`, expected one of %s",
				 item->string, list);
			return -EINVAL;
		}
		for (const cJSON *prev = obj->child; prev != item; prev = prev->next) {
			if (strcmp(prev->string, item->string) == 0) {
				snprintf(msg, msg_len, "duplicate field `%s`", f->name);
				return -EINVAL;
			}
		}
		/* serde's Option<T> accepts null for optional fields. */
		if (!f->required && cJSON_IsNull(item))
			continue;
		r = fcd_schema_check_value(f, item, msg, msg_len);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < schema->n_fields; i++) {
		if (schema->fields[i].required &&
		    !cJSON_GetObjectItemCaseSensitive(obj, schema->fields[i].name)) {
			snprintf(msg, msg_len, "missing field `%s`", schema->fields[i].name);
			return -EINVAL;
		}
	}
	return 0;
}
