/* banger-vmm-qemu: host facts. KVM is chosen automatically only when it is most likely to
 * work: /dev/kvm can create a VM and the host is not itself a guest. Nested KVM is where
 * guests hang or QEMU aborts (seen: a Linux guest stuck after "Probing EDD", "failed to
 * set MSR 0x10a"), and a VMM that hangs is worse than a slow one. BANGER_VMM_ACCEL=kvm
 * overrides. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "vmm_host.h"

static bool vmm_host_kvm_usable(char *why, size_t why_len)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm;

	if (kvm < 0) {
		snprintf(why, why_len, "/dev/kvm: %s", strerror(errno));
		return false;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		snprintf(why, why_len, "/dev/kvm cannot create a VM: %s", strerror(errno));
		close(kvm);
		return false;
	}
	close(vm);
	close(kvm);
	return true;
}

/* The CPUID "hypervisor" bit, as /proc/cpuinfo shows it. */
static bool vmm_host_is_guest(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (strncmp(line, "flags", 5) == 0)
			found = strstr(line, " hypervisor") != NULL;
	fclose(f);
	return found;
}

int vmm_host_choose_accel(bool *ret_kvm, char *why, size_t why_len)
{
	const char *v = getenv("BANGER_VMM_ACCEL");
	char reason[256];

	if (v && strcmp(v, "kvm") == 0) {
		*ret_kvm = true;
		snprintf(why, why_len, "BANGER_VMM_ACCEL=kvm");
		return 0;
	}
	if (v && strcmp(v, "tcg") == 0) {
		*ret_kvm = false;
		snprintf(why, why_len, "BANGER_VMM_ACCEL=tcg");
		return 0;
	}
	if (v && *v && strcmp(v, "auto") != 0) {
		snprintf(why, why_len, "BANGER_VMM_ACCEL='%s' is not kvm, tcg or auto", v);
		return -EINVAL;
	}
	if (!vmm_host_kvm_usable(reason, sizeof(reason))) {
		*ret_kvm = false;
		snprintf(why, why_len, "auto: %s", reason);
	} else if (vmm_host_is_guest()) {
		*ret_kvm = false;
		snprintf(why, why_len, "auto: the host is itself a virtual machine and nested KVM "
			 "often cannot run a guest (BANGER_VMM_ACCEL=kvm forces it)");
	} else {
		*ret_kvm = true;
		snprintf(why, why_len, "auto: /dev/kvm works on a bare-metal host");
	}
	return 0;
}

unsigned vmm_host_cpu_mhz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[512];
	double mhz = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "cpu MHz", 7) == 0 && sscanf(strchr(line, ':') ? strchr(line, ':') + 1 : "", "%lf", &mhz) == 1)
			break;
	fclose(f);
	return mhz > 0 && mhz < 100000 ? (unsigned)mhz : 0;
}

bool vmm_host_has_vhost_vsock(void)
{
	return access("/dev/vhost-vsock", F_OK) == 0;
}
