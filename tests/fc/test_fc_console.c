/* The console summary (core/fc/fc_console.c) on realistic console texts,
 * the version checks that do not need a VMM, and doctor's architecture row. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "fc/fc.h"
#include "host/host.h"
#include "host/vm.h"

static char summary[1024];

static const char *t_summarize(const char *text)
{
    fc_console_summarize(text, strlen(text), summary, sizeof(summary));
    return summary;
}

/* Firecracker's own lines when the guest resets (reboot=k, panic=1). */
#define T_FC_RESET                                                                          \
    "2026-11-28T20:00:01.123456789 [vm1:fc_vcpu 0] Received KVM_EXIT_SHUTDOWN signal\n"    \
    "2026-11-28T20:00:01.124000000 [vm1:main] Vmm is stopping.\n"                          \
    "2026-11-28T20:00:01.130000000 [vm1:main] Firecracker exiting successfully. exit_code=0\n"

START_TEST(test_debian_kernel_panic)
{
    static const char text[] =
        "2026-11-28T20:00:00.010000000 [vm1:main] Running Firecracker v1.16.1\n"
        "[    0.000000] Linux version 6.1.0-27-amd64 (debian-kernel@lists.debian.org) #1 SMP "
        "PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)\r\n"
        "[    0.000000] Command line: console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw\r\n"
        "[    0.612345] VFS: Cannot open root device \"vda\" or unknown-block(0,0): error -6\r\n"
        "[    0.613000] Please append a correct \"root=\" boot option; here are the available "
        "partitions:\r\n"
        "[    0.614000] List of all bdev filesystems:\r\n"
        "[    0.614100]  ext3\r\n"
        "[    0.614200]  ext2\r\n"
        "[    0.614300]  ext4\r\n"
        "[    0.614400] \r\n"
        "[    0.615000] Kernel panic - not syncing: VFS: Unable to mount root fs on "
        "unknown-block(0,0)\r\n"
        "[    0.616000] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-27-amd64 #1  Debian "
        "6.1.115-1\r\n"
        "[    0.617000] Call Trace:\r\n"
        "[    0.617100]  <TASK>\r\n"
        "[    0.617200]  dump_stack_lvl+0x44/0x5c\r\n"
        "[    0.617300]  panic+0x118/0x2ed\r\n"
        "[    0.618000]  </TASK>\r\n"
        "[    0.620000] Rebooting in 1 seconds..\r\n"
        "[    0.620100] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on "
        "unknown-block(0,0) ]---\r\n"
        T_FC_RESET;
    ck_assert_str_eq(t_summarize(text),
                     "Kernel panic - not syncing: VFS: Unable to mount root fs on "
                     "unknown-block(0,0) (console before it: Please append a correct \"root=\" "
                     "boot option; here are the available partitions: | List of all bdev "
                     "filesystems: | ext3 | ext2 | ext4)");
}
END_TEST

START_TEST(test_initrd_message_beats_init_death_panic)
{
    static const char text[] =
        "[    0.400000] Run /init as init process\n"
        "banger-initrd: loading virtio_blk\n"
        "banger-initrd: waiting 5 s for /dev/vda\n"
        "banger-initrd: no root device /dev/vda\n"
        "[    5.500000] Kernel panic - not syncing: Attempted to kill init! "
        "exitcode=0x00000100\n"
        "[    5.500100] Rebooting in 1 seconds..\n"
        T_FC_RESET;
    ck_assert_str_eq(t_summarize(text),
                     "banger-initrd: no root device /dev/vda (console before it: Run /init as "
                     "init process | banger-initrd: loading virtio_blk | banger-initrd: waiting "
                     "5 s for /dev/vda)");
}
END_TEST

START_TEST(test_firecracker_error_line)
{
    /* A bad kernel image: the guest never prints; main() logs the error,
     * prints its Debug form on stderr and exits with an error. */
    static const char text[] =
        "2026-11-28T20:00:00.010000000 [vm1:main] Running Firecracker v1.16.1\n"
        "2026-11-28T20:00:00.020000000 [vm1:fc_api] The API server received a Put request on "
        "\"/actions\" with body \"{\\\"action_type\\\":\\\"InstanceStart\\\"}\".\n"
        "2026-11-28T20:00:00.030000000 [vm1:main] Failed to open the API socket at: "
        "/run/banger/vms/vm1/api.sock. Check that it is not already used.\n"
        "Error: RunWithApi(FailedToBindSocket(\"/run/banger/vms/vm1/api.sock\"))\n"
        "2026-11-28T20:00:00.031000000 [vm1:main] Firecracker exiting with error. exit_code=1\n";
    ck_assert_str_eq(t_summarize(text),
                     "Failed to open the API socket at: /run/banger/vms/vm1/api.sock. Check that "
                     "it is not already used.");

    /* With show_level the level tags the error. */
    static const char leveled[] =
        "early guest line\n"
        "2026-11-28T20:00:00.020000000 [vm1:fc_vcpu 0:ERROR] Failure during vcpu run: "
        "Received error signaling kvm exit: Bad address (os error 14)\n"
        "2026-11-28T20:00:00.021000000 [vm1:main:INFO] Vmm is stopping.\n";
    ck_assert_str_eq(t_summarize(leveled),
                     "Failure during vcpu run: Received error signaling kvm exit: Bad address (os error 14) (console "
                     "before it: early guest line)");
}
END_TEST

START_TEST(test_clean_log_quotes_the_last_guest_lines)
{
    /* A guest that booted and then went quiet (or the agent never started):
     * no pattern, so the last guest line and those before it, without
     * Firecracker's own exit lines. */
    static const char text[] =
        "[    1.000000] EXT4-fs (vda): mounted filesystem with ordered data mode.\n"
        "[    1.100000] Run /sbin/init as init process\n"
        "Welcome to Debian GNU/Linux 12 (bookworm)!\n"
        "[  OK  ] Reached target basic.target - Basic System.\n"
        "         Starting banger-vsock-agent.service - banger guest agent...\n"
        T_FC_RESET;
    ck_assert_str_eq(t_summarize(text),
                     "Starting banger-vsock-agent.service - banger guest agent... (console "
                     "before it: EXT4-fs (vda): mounted filesystem with ordered data mode. | Run "
                     "/sbin/init as init process | Welcome to Debian GNU/Linux 12 (bookworm)! | "
                     "[  OK  ] Reached target basic.target - Basic System.)");

    /* Only Firecracker's own lines: the last one. */
    ck_assert_str_eq(t_summarize(T_FC_RESET),
                     "no output from the guest; firecracker: Firecracker exiting successfully. "
                     "exit_code=0");
    ck_assert_str_eq(t_summarize(""), "");
    ck_assert_str_eq(t_summarize("\n\r\n  \n"), "");
    /* One plain line, as a VMM that refused its arguments prints it. */
    ck_assert_str_eq(t_summarize("fc-double: bad --http-api-max-payload-size 'x'\n"),
                     "fc-double: bad --http-api-max-payload-size 'x'");
}
END_TEST

START_TEST(test_long_and_binary_lines_stay_bounded)
{
    char text[8192];
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    text[100] = '\x1b';
    text[200] = '\n';
    char small[64];
    fc_console_summarize(text, strlen(text), small, sizeof(small));
    ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
    fc_console_summarize(text, strlen(text), summary, sizeof(summary));
    ck_assert_ptr_null(strchr(summary, '\x1b'));
    ck_assert_uint_lt(strlen(summary), sizeof(summary));
}
END_TEST

START_TEST(test_summary_of_a_vm_log_file)
{
    char dir[] = "/tmp/fc-console-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct banger_vm_info info = { .struct_size = sizeof(info), .id = "0123456789ab",
                                   .name = "web", .state_dir = dir, .runtime_dir = dir };
    struct banger_vm *vm = NULL;
    struct banger_error e = { 0 };
    ck_assert_int_eq(bg_vm_new(&info, &vm, &e), 0);

    fc_console_summary(vm, summary, sizeof(summary));
    ck_assert_str_eq(summary, ""); /* no log yet */

    char path[128];
    snprintf(path, sizeof(path), "%s/firecracker.log", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    /* More than the 64 KiB read: the panic near the end is still found. */
    for (int i = 0; i < 2000; i++)
        fprintf(f, "[    0.%06d] filler line number %d of the boot log\n", i, i);
    fputs("[    0.900000] Kernel panic - not syncing: No working init found.\n" T_FC_RESET, f);
    fclose(f);
    fc_console_summary(vm, summary, sizeof(summary));
    ck_assert_msg(strncmp(summary, "Kernel panic - not syncing: No working init found. (console "
                          "before it: filler line number 1995", 80) == 0, "%s", summary);
    /* Through the host API, as the vsock capability calls it. */
    const struct banger_host_api *h = bg_host_api();
    ck_assert(BANGER_HAS_FIELD(struct banger_host_api, h, vmm_console_summary));
    char via_host[1024];
    h->vmm_console_summary(vm, via_host, sizeof(via_host));
    ck_assert_str_eq(via_host, summary);

    /* The next boot of the same VM appends; only its own output counts. */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    vm->vmm_log_start = (long long)st.st_size;
    f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    fputs("[    0.100000] Linux version 6.1.0-27-amd64\n"
          "[    1.200000] Run /sbin/init as init process\n" T_FC_RESET, f);
    fclose(f);
    fc_console_summary(vm, summary, sizeof(summary));
    ck_assert_str_eq(summary, "Run /sbin/init as init process (console before it: Linux version "
                              "6.1.0-27-amd64)");

    unlink(path);
    rmdir(dir);
    bg_vm_free(vm);
}
END_TEST

START_TEST(test_minimum_version_and_refusal_text)
{
    struct banger_error e = { 0 };
    ck_assert_str_eq(FC_MIN_VERSION, "1.8.0");
    ck_assert(!fc_version_supported("1.7.0"));
    ck_assert(fc_version_supported("1.8.0"));
    ck_assert(fc_version_supported("1.16.1"));
    ck_assert_int_eq(fc_version_too_old("1.7.0", &e), -ENOTSUP);
    ck_assert_str_eq(bg_error_text(&e),
                     "firecracker 1.7.0 is older than 1.8.0, the first release that describes "
                     "virtio devices in ACPI, which the guest kernel needs to find its disks");
}
END_TEST

static const struct bg_doctor_row *t_row(const struct banger_doctor *d, const char *check)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->rows[i].check, check) == 0)
            return &d->rows[i];
    return NULL;
}

START_TEST(test_doctor_architecture)
{
    struct banger_doctor d;
    bg_doctor_init(&d);
    bangerd_doctor_arch(&d, "x86_64");
    bangerd_doctor_arch(&d, "aarch64");
    ck_assert_uint_eq(d.n, 2);
    ck_assert_int_eq(d.rows[0].status, BANGER_DOCTOR_PASS);
    ck_assert_int_eq(d.rows[1].status, BANGER_DOCTOR_FAIL);
    ck_assert_str_eq(d.rows[1].detail, "aarch64 host: banger runs x86_64 guests only: ELF vmlinux "
                                       "kernels and SendCtrlAltDel are x86-only in Firecracker");
    ck_assert_ptr_nonnull(t_row(&d, "architecture"));
    bg_doctor_done(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fc-console");
    TCase *tc = tcase_create("console");
    tcase_add_test(tc, test_debian_kernel_panic);
    tcase_add_test(tc, test_initrd_message_beats_init_death_panic);
    tcase_add_test(tc, test_firecracker_error_line);
    tcase_add_test(tc, test_clean_log_quotes_the_last_guest_lines);
    tcase_add_test(tc, test_long_and_binary_lines_stay_bounded);
    tcase_add_test(tc, test_summary_of_a_vm_log_file);
    tcase_add_test(tc, test_minimum_version_and_refusal_text);
    tcase_add_test(tc, test_doctor_architecture);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
