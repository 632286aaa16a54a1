/* banger-vmm-qemu: builds QEMU's microvm command line from the Firecracker API state. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_argv.h"

struct vmm_argv {
	char **items;
	size_t n;
	size_t cap;
	int error; /* first failure; later additions are ignored */
};

static void vmm_argv_add(struct vmm_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void vmm_argv_add(struct vmm_argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	if (a->error)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **items = realloc(a->items, cap * sizeof(*items));
		if (!items) {
			a->error = -ENOMEM;
			return;
		}
		a->items = items;
		a->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s) {
		a->error = -ENOMEM;
		return;
	}
	a->items[a->n++] = s;
	a->items[a->n] = NULL;
}

/* QEMU's option syntax separates with ',' and escapes it as ",,". */
static char *vmm_argv_escape(const char *s)
{
	size_t commas = 0;
	char *out, *o;

	for (const char *p = s; *p; p++)
		commas += *p == ',';
	out = malloc(strlen(s) + commas + 1);
	if (!out)
		return NULL;
	o = out;
	for (const char *p = s; *p; p++) {
		*o++ = *p;
		if (*p == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

static void vmm_argv_drive(struct vmm_argv *a, const struct fcd_drive *d)
{
	char *file = vmm_argv_escape(d->path);
	/* Firecracker's Unsafe ignores guest flushes; Writeback makes them reach the file. */
	const char *cache = strcmp(d->cache_type, "Writeback") == 0 ? "writeback" : "unsafe";

	if (!file) {
		a->error = -ENOMEM;
		return;
	}
	vmm_argv_add(a, "-drive");
	vmm_argv_add(a, "if=none,id=blk_%s,file=%s,format=raw,cache=%s%s", d->id, file, cache,
		     d->read_only ? ",readonly=on" : "");
	vmm_argv_add(a, "-device");
	vmm_argv_add(a, "virtio-blk-device,drive=blk_%s", d->id);
	free(file);
}

static char *vmm_argv_cmdline(const struct fcd_vm *vm, const struct vmm_qemu_opts *opts)
{
	const char *base = vm->boot_args_set ? vm->boot_args : VMM_DEFAULT_BOOT_ARGS;
	const struct fcd_drive *root = NULL;
	char *s = NULL;
	char root_arg[32] = "";
	char tcg_arg[80] = "";

	for (size_t i = 0; i < vm->n_drives; i++)
		if (vm->drives[i].is_root)
			root = &vm->drives[i];
	/* Firecracker appends the root device (always the first, /dev/vda). */
	if (root)
		snprintf(root_arg, sizeof(root_arg), " root=/dev/vda %s", root->read_only ? "ro" : "rw");
	/* Under TCG on a busy host the kernel's TSC and delay-loop calibration can hang;
	 * telling it the host's rate skips both. */
	if (!opts->kvm && opts->host_mhz)
		snprintf(tcg_arg, sizeof(tcg_arg), " tsc_early_khz=%u lpj=%u", opts->host_mhz * 1000,
			 opts->host_mhz * 4000);
	if (asprintf(&s, "%s%s%s", base, root_arg, tcg_arg) < 0)
		return NULL;
	return s;
}

int vmm_qemu_argv(const struct fcd_vm *vm, const struct vmm_qemu_opts *opts, char ***ret_argv,
		  char *msg, size_t msg_len)
{
	struct vmm_argv a = { 0 };
	char *cmdline = NULL;
	int r;

	for (size_t i = 0; i < vm->n_drives; i++) {
		if (!vm->drives[i].path[0]) {
			snprintf(msg, msg_len, "drive %s: vhost-user block devices (\"socket\") are "
				 "not supported by banger-vmm-qemu", vm->drives[i].id);
			return -EINVAL;
		}
	}
	cmdline = vmm_argv_cmdline(vm, opts);
	if (!cmdline) {
		r = -ENOMEM;
		goto cleanup;
	}
	vmm_argv_add(&a, "%s", opts->qemu);
	vmm_argv_add(&a, "-M");
	/* ACPI stays on: Debian's kernel finds virtio-mmio devices through it. The i8042 is
	 * Firecracker's reset and Ctrl-Alt-Del path. */
	if (opts->kvm)
		vmm_argv_add(&a, "microvm,accel=kvm,acpi=on,pit=on,pic=on,rtc=on");
	else
		vmm_argv_add(&a, "microvm,accel=tcg,acpi=on,pit=on,pic=on,rtc=on");
	vmm_argv_add(&a, "-cpu");
	vmm_argv_add(&a, opts->kvm ? "host" : "max");
	vmm_argv_add(&a, "-smp");
	vmm_argv_add(&a, "%u", vm->vcpu_count);
	vmm_argv_add(&a, "-m");
	vmm_argv_add(&a, "%lluM", (unsigned long long)vm->mem_size_mib);
	vmm_argv_add(&a, "-nodefaults");
	vmm_argv_add(&a, "-no-user-config");
	vmm_argv_add(&a, "-nographic");
	/* A guest reset ends QEMU, as it ends Firecracker. */
	vmm_argv_add(&a, "-no-reboot");
	/* The serial console is the VMM's stdout; signal=off: Ctrl-C is the guest's. */
	vmm_argv_add(&a, "-chardev");
	vmm_argv_add(&a, "stdio,id=console,signal=off");
	vmm_argv_add(&a, "-serial");
	vmm_argv_add(&a, "chardev:console");
	vmm_argv_add(&a, "-device");
	vmm_argv_add(&a, "i8042");
	vmm_argv_add(&a, "-chardev");
	vmm_argv_add(&a, "socket,id=qmp,fd=%d", opts->qmp_fd);
	vmm_argv_add(&a, "-mon");
	vmm_argv_add(&a, "chardev=qmp,mode=control");
	vmm_argv_add(&a, "-kernel");
	vmm_argv_add(&a, "%s", vm->kernel_path);
	if (vm->initrd_path[0]) {
		vmm_argv_add(&a, "-initrd");
		vmm_argv_add(&a, "%s", vm->initrd_path);
	}
	vmm_argv_add(&a, "-append");
	vmm_argv_add(&a, "%s", cmdline);
	/* Firecracker's order: the root device first, then the others as they were PUT. */
	for (size_t i = 0; i < vm->n_drives; i++)
		if (vm->drives[i].is_root)
			vmm_argv_drive(&a, &vm->drives[i]);
	for (size_t i = 0; i < vm->n_drives; i++)
		if (!vm->drives[i].is_root)
			vmm_argv_drive(&a, &vm->drives[i]);
	for (size_t i = 0; i < vm->n_ifaces; i++) {
		const struct fcd_iface *f = &vm->ifaces[i];
		/* vnet_hdr=on: QEMU opens the TAP with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, as
		 * Firecracker does, and fails when the TAP was made with other flags. */
		vmm_argv_add(&a, "-netdev");
		vmm_argv_add(&a, "tap,id=net_%s,ifname=%s,script=no,downscript=no,vnet_hdr=on",
			     f->id, f->host_dev_name);
		vmm_argv_add(&a, "-device");
		if (f->guest_mac[0])
			vmm_argv_add(&a, "virtio-net-device,netdev=net_%s,mac=%s", f->id,
				     f->guest_mac);
		else
			vmm_argv_add(&a, "virtio-net-device,netdev=net_%s", f->id);
	}
	if (vm->vsock && opts->vhost_vsock) {
		vmm_argv_add(&a, "-device");
		vmm_argv_add(&a, "vhost-vsock-device,guest-cid=%u", vm->vsock_cid);
	}
	r = a.error;
	if (r < 0)
		goto cleanup;
	*ret_argv = a.items;
	a.items = NULL;
cleanup:
	vmm_argv_free(a.items);
	free(cmdline);
	return r;
}

void vmm_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}
