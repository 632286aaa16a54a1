/* Unit tests of banger-vmm-qemu's QEMU command line (vmm_argv.c): a pure function of the
 * API state, so every flag that matters is asserted exactly. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcapi.h"
#include "vmm_argv.h"
#include "vmm_host.h"

static struct fcd_vm t_vm;

static void t_setup(void)
{
	memset(&t_vm, 0, sizeof(t_vm));
	t_vm.vcpu_count = 2;
	t_vm.mem_size_mib = 256;
	snprintf(t_vm.kernel_path, sizeof(t_vm.kernel_path), "/k/vmlinux");
	snprintf(t_vm.initrd_path, sizeof(t_vm.initrd_path), "/k/initrd.img");
	snprintf(t_vm.boot_args, sizeof(t_vm.boot_args), "console=ttyS0 reboot=k");
	t_vm.boot_args_set = true;
	t_vm.boot_source_set = true;
}

static void t_drive(const char *id, const char *path, bool root, bool ro, const char *cache)
{
	struct fcd_drive *d = &t_vm.drives[t_vm.n_drives++];

	snprintf(d->id, sizeof(d->id), "%s", id);
	snprintf(d->path, sizeof(d->path), "%s", path);
	snprintf(d->cache_type, sizeof(d->cache_type), "%s", cache);
	d->is_root = root;
	d->read_only = ro;
}

/* The whole argv joined by '|', for exact comparisons of the parts. */
static char *t_joined(const struct vmm_qemu_opts *opts)
{
	char **argv = NULL;
	char msg[FCD_MSG_MAX];
	size_t len = 1;
	char *s;

	ck_assert_int_eq(vmm_qemu_argv(&t_vm, opts, &argv, msg, sizeof(msg)), 0);
	for (char **p = argv; *p; p++)
		len += strlen(*p) + 1;
	s = calloc(1, len);
	ck_assert_ptr_nonnull(s);
	for (char **p = argv; *p; p++) {
		strcat(s, *p);
		strcat(s, "|");
	}
	vmm_argv_free(argv);
	return s;
}

static const struct vmm_qemu_opts t_tcg = { .qemu = "qemu-system-x86_64", .host_mhz = 2600,
					    .qmp_fd = 3 };

START_TEST(test_argv_tcg_machine)
{
	char *s = t_joined(&t_tcg);

	ck_assert_ptr_nonnull(strstr(s, "qemu-system-x86_64|-M|microvm,accel=tcg,acpi=on,pit=on,"
					"pic=on,rtc=on|-cpu|max|-smp|2|-m|256M|-nodefaults|"
					"-no-user-config|-nographic|-no-reboot|"));
	ck_assert_ptr_nonnull(strstr(s, "|-serial|chardev:console|"));
	ck_assert_ptr_nonnull(strstr(s, "|-device|i8042|"));
	ck_assert_ptr_nonnull(strstr(s, "|-chardev|socket,id=qmp,fd=3|-mon|chardev=qmp,mode=control|"));
	ck_assert_ptr_nonnull(strstr(s, "|-kernel|/k/vmlinux|-initrd|/k/initrd.img|"));
	/* TCG: the guest is told the clock rate so it skips calibration. */
	ck_assert_ptr_nonnull(strstr(s, "|-append|console=ttyS0 reboot=k tsc_early_khz=2600000 "
					"lpj=10400000|"));
	free(s);
}
END_TEST

START_TEST(test_argv_kvm_has_no_tcg_timing)
{
	struct vmm_qemu_opts kvm = t_tcg;
	char *s;

	kvm.kvm = true;
	s = t_joined(&kvm);
	ck_assert_ptr_nonnull(strstr(s, "|-M|microvm,accel=kvm,acpi=on,pit=on,pic=on,rtc=on|-cpu|host|"));
	ck_assert_ptr_null(strstr(s, "tsc_early_khz"));
	ck_assert_ptr_nonnull(strstr(s, "|-append|console=ttyS0 reboot=k|"));
	free(s);
}
END_TEST

START_TEST(test_argv_drives_root_first_ro_cache)
{
	char *s;

	t_drive("scratch", "/d/scratch.img", false, false, "Writeback");
	t_drive("rootfs", "/d/root,1.ext4", true, true, "Unsafe");
	t_drive("seed", "/d/seed.img", false, true, "Unsafe");
	s = t_joined(&t_tcg);
	/* Root first (so it is /dev/vda), then PUT order; commas escaped for QEMU. */
	ck_assert_ptr_nonnull(strstr(s,
		"|-drive|if=none,id=blk_rootfs,file=/d/root,,1.ext4,format=raw,cache=unsafe,readonly=on|"
		"-device|virtio-blk-device,drive=blk_rootfs|"
		"-drive|if=none,id=blk_scratch,file=/d/scratch.img,format=raw,cache=writeback|"
		"-device|virtio-blk-device,drive=blk_scratch|"
		"-drive|if=none,id=blk_seed,file=/d/seed.img,format=raw,cache=unsafe,readonly=on|"
		"-device|virtio-blk-device,drive=blk_seed|"));
	/* Firecracker names the root device on the command line. */
	ck_assert_ptr_nonnull(strstr(s, "reboot=k root=/dev/vda ro tsc_early_khz"));
	free(s);
}
END_TEST

START_TEST(test_argv_tap_and_mac)
{
	char *s;

	snprintf(t_vm.ifaces[0].id, sizeof(t_vm.ifaces[0].id), "eth0");
	snprintf(t_vm.ifaces[0].host_dev_name, sizeof(t_vm.ifaces[0].host_dev_name), "tap-bg7");
	snprintf(t_vm.ifaces[0].guest_mac, sizeof(t_vm.ifaces[0].guest_mac), "06:00:ac:10:00:02");
	t_vm.n_ifaces = 1;
	s = t_joined(&t_tcg);
	ck_assert_ptr_nonnull(strstr(s, "|-netdev|tap,id=net_eth0,ifname=tap-bg7,script=no,"
					"downscript=no,vnet_hdr=on|-device|virtio-net-device,"
					"netdev=net_eth0,mac=06:00:ac:10:00:02|"));
	free(s);
}
END_TEST

START_TEST(test_argv_default_boot_args_and_no_initrd)
{
	char *s;

	t_vm.boot_args_set = false;
	t_vm.boot_args[0] = '\0';
	t_vm.initrd_path[0] = '\0';
	s = t_joined(&(struct vmm_qemu_opts){ .qemu = "q", .qmp_fd = 3 });
	ck_assert_ptr_null(strstr(s, "-initrd"));
	ck_assert_ptr_nonnull(strstr(s, "|-append|" VMM_DEFAULT_BOOT_ARGS "|"));
	free(s);
}
END_TEST

START_TEST(test_argv_vhost_user_drive_refused)
{
	char **argv = NULL;
	char msg[FCD_MSG_MAX];

	t_drive("vu", "", false, false, "Unsafe");
	ck_assert_int_lt(vmm_qemu_argv(&t_vm, &t_tcg, &argv, msg, sizeof(msg)), 0);
	ck_assert_ptr_nonnull(strstr(msg, "vhost-user"));
	ck_assert_ptr_null(argv);
}
END_TEST

START_TEST(test_accel_override)
{
	char why[256];
	bool kvm = true;

	setenv("BANGER_VMM_ACCEL", "tcg", 1);
	ck_assert_int_eq(vmm_host_choose_accel(&kvm, why, sizeof(why)), 0);
	ck_assert(!kvm);
	ck_assert_str_eq(why, "BANGER_VMM_ACCEL=tcg");
	setenv("BANGER_VMM_ACCEL", "kvm", 1);
	ck_assert_int_eq(vmm_host_choose_accel(&kvm, why, sizeof(why)), 0);
	ck_assert(kvm);
	setenv("BANGER_VMM_ACCEL", "fast", 1);
	ck_assert_int_eq(vmm_host_choose_accel(&kvm, why, sizeof(why)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "'fast' is not kvm, tcg or auto"));
	/* auto decides from the host and always says why. */
	unsetenv("BANGER_VMM_ACCEL");
	ck_assert_int_eq(vmm_host_choose_accel(&kvm, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "auto: "));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmm-argv");
	TCase *tc = tcase_create("argv");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, t_setup, NULL);
	tcase_add_test(tc, test_argv_tcg_machine);
	tcase_add_test(tc, test_argv_kvm_has_no_tcg_timing);
	tcase_add_test(tc, test_argv_drives_root_first_ro_cache);
	tcase_add_test(tc, test_argv_tap_and_mac);
	tcase_add_test(tc, test_argv_default_boot_args_and_no_initrd);
	tcase_add_test(tc, test_argv_vhost_user_drive_refused);
	tcase_add_test(tc, test_accel_override);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
