#include "config.h"

#include "config/config.h"
#include "fc/fc.h"
#include "host/host.h"
#include "runner/runner.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void host_log(int level, struct banger_vm *vm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bg_logv(level, vm ? vm->info.id : NULL, fmt, ap);
    va_end(ap);
}

static int host_fail(struct banger_error *err, int negative_errno, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = bg_failv(err, negative_errno, fmt, ap);
    va_end(ap);
    return r;
}

static const struct banger_vm_info *host_vm_info(struct banger_vm *vm) { return &vm->info; }

static char *host_strdup_checked(const char *s) { return s ? xstrdup(s) : NULL; }

static int host_add_drive(struct banger_vm *vm, const struct banger_drive *drive,
                          struct banger_error *err)
{
    struct bg_fc_contrib *c = &vm->contrib;
    if (!drive || !drive->drive_id || !drive->path_on_host)
        return bg_fail(err, -EINVAL, "drive needs drive_id and path_on_host");
    if (BANGER_HAS_FIELD(struct banger_drive, drive, cache) &&
        drive->cache != BANGER_DRIVE_CACHE_UNSAFE && drive->cache != BANGER_DRIVE_CACHE_WRITEBACK)
        return bg_fail(err, -EINVAL, "drive '%s': unknown cache mode %d", drive->drive_id,
                       (int)drive->cache);
    for (const char *p = drive->drive_id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return bg_fail(err, -EINVAL, "drive id '%s' may only hold letters, digits and '_'",
                           drive->drive_id);
    if (c->n_drives >= BG_VM_MAX_DRIVES)
        return bg_fail(err, -E2BIG, "too many drives (at most %d)", BG_VM_MAX_DRIVES);
    for (size_t i = 0; i < c->n_drives; i++) {
        if (strcmp(c->drives[i].drive_id, drive->drive_id) == 0)
            return bg_fail(err, -EEXIST, "drive '%s' was already added", drive->drive_id);
        if (drive->is_root_device && c->drives[i].is_root_device)
            return bg_fail(err, -EEXIST, "a root drive ('%s') was already added",
                           c->drives[i].drive_id);
    }
    struct banger_drive *d = &c->drives[c->n_drives++];
    *d = (struct banger_drive){
        .struct_size = sizeof(*d),
        .is_root_device = drive->is_root_device,
        .is_read_only = drive->is_read_only,
        .drive_id = xstrdup(drive->drive_id),
        .path_on_host = xstrdup(drive->path_on_host),
        .cache = BANGER_HAS_FIELD(struct banger_drive, drive, cache) ? drive->cache
                                                                     : BANGER_DRIVE_CACHE_UNSAFE,
    };
    return 0;
}

static int host_set_net_iface(struct banger_vm *vm, const struct banger_net_iface *iface,
                              struct banger_error *err)
{
    struct bg_fc_contrib *c = &vm->contrib;
    if (!iface || !iface->iface_id || !iface->host_dev_name)
        return bg_fail(err, -EINVAL, "network interface needs iface_id and host_dev_name");
    if (c->has_net)
        return bg_fail(err, -EEXIST, "a network interface ('%s') was already set",
                       c->net.host_dev_name);
    c->net = (struct banger_net_iface){
        .struct_size = sizeof(c->net),
        .iface_id = xstrdup(iface->iface_id),
        .host_dev_name = xstrdup(iface->host_dev_name),
        .guest_mac = host_strdup_checked(iface->guest_mac),
    };
    c->has_net = true;
    return 0;
}

static int host_set_vsock(struct banger_vm *vm, uint32_t guest_cid, const char *uds_path,
                          struct banger_error *err)
{
    struct bg_fc_contrib *c = &vm->contrib;
    if (guest_cid < 3 || !uds_path || !uds_path[0])
        return bg_fail(err, -EINVAL, "vsock needs a CID >= 3 and a socket path");
    if (strlen(uds_path) >= 100)
        return bg_fail(err, -ENAMETOOLONG, "vsock socket path '%s' is too long for sun_path",
                       uds_path);
    if (c->vsock_uds)
        return bg_fail(err, -EEXIST, "a vsock device was already set");
    c->vsock_cid = guest_cid;
    c->vsock_uds = xstrdup(uds_path);
    return 0;
}

static int host_add_kernel_arg(struct banger_vm *vm, const char *arg, struct banger_error *err)
{
    struct bg_fc_contrib *c = &vm->contrib;
    if (!arg || !arg[0] || strpbrk(arg, "\n\r"))
        return bg_fail(err, -EINVAL, "kernel argument must be one non-empty line");
    c->kernel_args = xrealloc(c->kernel_args, (c->n_kernel_args + 1) * sizeof(char *));
    c->kernel_args[c->n_kernel_args++] = xstrdup(arg);
    return 0;
}

static int host_vmm_pid(struct banger_vm *vm)
{
    int pid = vm->vmm_pid;
    /* A zombie nobody has reaped yet counts as gone, too. */
    if (pid > 0 && fc_pid_exited(pid))
        return 0;
    return pid > 0 ? pid : 0;
}

static void host_vmm_console_summary(struct banger_vm *vm, char *buf, size_t len)
{
    fc_console_summary(vm, buf, len);
}

bool bg_fault_enabled(const char *point)
{
    const char *list = getenv("BANGER_FAULTS");
    if (!list || !point)
        return false;
    size_t plen = strlen(point);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == plen && strncmp(p, point, len) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

static int host_fault_point(struct banger_vm *vm, const char *point, struct banger_error *err)
{
    if (!bg_fault_enabled(point))
        return 0;
    bg_log(BANGER_LOG_INFO, vm ? vm->info.id : NULL, "injecting fault at %s", point);
    return bg_fail(err, -EIO, "injected fault at %s", point);
}

static int host_set_handle(struct banger_vm *vm, const char *key, const char *value,
                           struct banger_error *err)
{
    return bg_vm_set_handle(vm, key, value, err);
}

static const char *host_get_handle(struct banger_vm *vm, const char *key)
{
    return bg_vm_get_handle(vm, key);
}

static int host_run(const char *const *argv, const struct banger_run_opts *opts,
                    struct banger_run_result *res, struct banger_error *err)
{
    return runner_run(argv, opts, res, err);
}

/* ---- doctor ------------------------------------------------------------- */

void bg_doctor_init(struct banger_doctor *d) { memset(d, 0, sizeof(*d)); }

void bg_doctor_done(struct banger_doctor *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->rows[i].check);
        free(d->rows[i].detail);
    }
    free(d->rows);
    memset(d, 0, sizeof(*d));
}

static void bg_doctor_addv(struct banger_doctor *d, enum banger_doctor_status status,
                           const char *check, const char *fmt, va_list ap)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->rows = xrealloc(d->rows, d->cap * sizeof(*d->rows));
    }
    char *detail = NULL;
    if (vasprintf(&detail, fmt, ap) < 0)
        detail = xstrdup("");
    d->rows[d->n++] = (struct bg_doctor_row){
        .status = status,
        .check = d->source ? xasprintf("%s: %s", d->source, check) : xstrdup(check),
        .detail = detail,
    };
}

void bg_doctor_add(struct banger_doctor *d, enum banger_doctor_status status, const char *check,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bg_doctor_addv(d, status, check, fmt, ap);
    va_end(ap);
}

static void host_doctor_row(struct banger_doctor *d, enum banger_doctor_status status,
                            const char *check, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bg_doctor_addv(d, status, check, fmt, ap);
    va_end(ap);
}

static const struct banger_host_api host_api = {
    .struct_size = sizeof(struct banger_host_api),
    .abi_version = BANGER_CAPABILITY_ABI_VERSION,
    .log = host_log,
    .fail = host_fail,
    .run = host_run,
    .run_result_clear = runner_result_clear,
    .vm_info = host_vm_info,
    .set_handle = host_set_handle,
    .get_handle = host_get_handle,
    .add_drive = host_add_drive,
    .set_net_iface = host_set_net_iface,
    .set_vsock = host_set_vsock,
    .add_kernel_arg = host_add_kernel_arg,
    .vmm_pid = host_vmm_pid,
    .fault_point = host_fault_point,
    .cfg_get_int = bg_cfg_get_int,
    .cfg_get_bool = bg_cfg_get_bool,
    .cfg_get_string = bg_cfg_get_string,
    .cfg_get_size = bg_cfg_get_size,
    .cfg_check_keys = bg_cfg_check_keys,
    .cfg_fail = bg_cfg_fail,
    .cfg_group = bg_cfg_group_current,
    .doctor_row = host_doctor_row,
    .vmm_console_summary = host_vmm_console_summary,
};

const struct banger_host_api *bg_host_api(void) { return &host_api; }
