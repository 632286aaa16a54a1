/* banger image import / pull end to end: the real bangerd (no plugins, the
 * Firecracker double never started) driven through the real banger CLI.
 * Tarballs and bundles are written by the test with libarchive. */
#include "config.h"

#include "e2e.h"
#include "images_test_util.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct e2e T;

static char *ic_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ic_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
    va_end(ap);
    return s;
}

static void ic_setup(void)
{
    e2e_setup(&T, NULL, NULL);
    e2e_start_daemon(&T);
}

static void ic_teardown(void)
{
    e2e_teardown(&T);
}

/* Every entry of state_dir/images, hidden temp files included. */
static int ic_images_dir_entries(void)
{
    char *dir = ic_printf("%s/images", T.state_dir);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (d)
        closedir(d);
    free(dir);
    return n;
}

/* `banger image list` mentions `name`. */
static bool ic_listed(const char *name)
{
    char *out = NULL, *err = NULL;
    const char *const argv[] = { "image", "list", NULL };
    int status = e2e_cli(&T, &out, &err, argv);
    ck_assert_msg(status == 0, "image list: exit %d; stderr: %s", status, err);
    bool found = strstr(out, name) != NULL;
    free(out);
    free(err);
    return found;
}

START_TEST(test_import_registers_image)
{
    char *tar = ic_printf("%s/root.tar.zst", T.dir);
    const struct itest_entry e[] = {
        { "./", 'd', NULL, 0 },
        { "./etc/", 'd', NULL, 0 },
        { "./etc/hostname", 'f', "guest\n", 0 },
        { "./usr/", 'd', NULL, 0 },
        { "./usr/bin/", 'd', NULL, 0 },
        { "./usr/bin/hello", 'f', "#!/bin/sh\necho hello\n", 0 },
    };
    itest_write_tar(tar, true, e, sizeof(e) / sizeof(e[0]));
    char *out = NULL, *err = NULL;
    const char *const import[] = { "image", "import", "--name", "imported", "--from-tar", tar,
                                   "--kernel", T.kernel, NULL };
    int status = e2e_cli(&T, &out, &err, import);
    ck_assert_msg(status == 0, "image import: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(out, "imported") != NULL, "stdout: %s", out);
    /* No sshd and no init banger knows: said, not silently accepted. */
    ck_assert_msg(strstr(err, "warning: the image has no sshd"), "stderr: %s", err);
    ck_assert_msg(strstr(err, "warning: the image has neither systemd nor busybox init"),
                  "stderr: %s", err);
    free(out);
    free(err);
    ck_assert(ic_listed("imported"));
    const char *const show[] = { "image", "show", "imported", NULL };
    status = e2e_cli(&T, &out, &err, show);
    ck_assert_msg(status == 0, "image show: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(out, "imported") != NULL, "stdout: %s", out);
    free(out);
    free(err);
    ck_assert_int_eq(ic_images_dir_entries(), 1);
    free(tar);
}
END_TEST

START_TEST(test_import_dotdot_refused_leaves_nothing)
{
    char *tar = ic_printf("%s/evil.tar", T.dir);
    const struct itest_entry e[] = { { "./etc", 'd', NULL, 0 }, { "../evil", 'f', "x", 0 } };
    itest_write_tar(tar, false, e, 2);
    char *out = NULL, *err = NULL;
    const char *const import[] = { "image", "import", "--name", "evil", "--from-tar", tar,
                                   "--kernel", T.kernel, NULL };
    int status = e2e_cli(&T, &out, &err, import);
    ck_assert_msg(status == 1, "image import: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "'../evil'") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    ck_assert(!ic_listed("evil"));
    char *escaped = ic_printf("%s/evil", T.state_dir);
    ck_assert_int_ne(access(escaped, F_OK), 0);
    free(escaped);
    free(tar);
}
END_TEST

static char *ic_bundle(const char *name, char hex[65])
{
    char *bundle = ic_printf("%s/bundle.tar.zst", T.dir);
    itest_write_bundle(bundle, name, false);
    size_t len = 0;
    char *data = itest_read(bundle, &len);
    itest_sha256_hex(data, len, hex);
    free(data);
    return bundle;
}

START_TEST(test_pull_local_bundle_registers)
{
    char hex[65];
    char *bundle = ic_bundle("from-bundle", hex);
    char *out = NULL, *err = NULL;
    const char *const pull[] = { "image", "pull", bundle, "--sha256", hex, NULL };
    int status = e2e_cli(&T, &out, &err, pull);
    ck_assert_msg(status == 0, "image pull: exit %d; stderr: %s", status, err);
    free(out);
    free(err);
    ck_assert(ic_listed("from-bundle"));
    const char *const show[] = { "image", "show", "from-bundle", NULL };
    ck_assert_int_eq(e2e_cli(&T, NULL, NULL, show), 0);
    ck_assert_int_eq(ic_images_dir_entries(), 1);
    free(bundle);
}
END_TEST

START_TEST(test_pull_wrong_sha256_leaves_nothing)
{
    char hex[65];
    char *bundle = ic_bundle("wrong-sum", hex);
    hex[0] = hex[0] == '0' ? '1' : '0';
    char *out = NULL, *err = NULL;
    const char *const pull[] = { "image", "pull", bundle, "--sha256", hex, NULL };
    int status = e2e_cli(&T, &out, &err, pull);
    ck_assert_msg(status == 1, "image pull: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "sha256") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    ck_assert(!ic_listed("wrong-sum"));
    free(bundle);
}
END_TEST

/* ---- paths named by a client are opened as that client ------------------ */

#define IC_NOBODY 65534
/* Marks the root-only file, to look for copies of it. */
#define IC_SECRET "070701-banger-root-only-marker"

static char *ic_secret, *ic_link, *ic_readable;

/* The daemon grants nogroup (65534), so uid 65534 with that group is a
 * member; the test tree is made reachable for it. */
static void ic_member_setup(void)
{
    e2e_setup(&T, "socket_group = \"nogroup\";\n", NULL);
    e2e_start_daemon(&T);
    ck_assert_int_eq(chmod(T.dir, 0755), 0);
    ck_assert_int_eq(chmod(T.runtime_dir, 0755), 0);
    ic_secret = ic_printf("%s/secret", T.dir);
    ic_link = ic_printf("%s/secret-link", T.dir);
    ic_readable = ic_printf("%s/initrd-ok.img", T.dir);
    int fd = open(ic_secret, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, IC_SECRET, strlen(IC_SECRET)), (ssize_t)strlen(IC_SECRET));
    close(fd);
    ck_assert_int_eq(symlink(ic_secret, ic_link), 0);
    fd = open(ic_readable, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "070701", 6), 6);
    close(fd);
}

static void ic_member_teardown(void)
{
    free(ic_secret);
    free(ic_link);
    free(ic_readable);
    ic_secret = ic_link = ic_readable = NULL;
    e2e_teardown(&T);
}

/* The CLI as uid/gid 65534 with only that group, like a socket_group member. */
static int ic_cli_as_member(char **err, const char *const *argv)
{
    int pe[2];
    ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        gid_t g = IC_NOBODY;
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(pe[1], 2);
        if (setgroups(1, &g) < 0 || setgid(IC_NOBODY) < 0 || setuid(IC_NOBODY) < 0)
            _exit(126);
        const char *args[32];
        size_t n = 0;
        args[n++] = "banger";
        args[n++] = "--socket";
        args[n++] = T.socket;
        for (size_t i = 0; argv[i] && n < 31; i++)
            args[n++] = argv[i];
        args[n] = NULL;
        execv(BANGER_CLI, (char *const *)args);
        _exit(127);
    }
    close(pe[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(pe[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(pe[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    *err = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool ic_found_secret;

static int ic_look_for_secret(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(sb->st_mode))
        return 0;
    size_t len = 0;
    char *data = itest_read(path, &len);
    if (memmem(data, len, IC_SECRET, strlen(IC_SECRET)))
        ic_found_secret = true;
    free(data);
    return 0;
}

/* Nothing under the state dir holds the root-only file's bytes. */
static void ic_assert_secret_not_copied(void)
{
    ic_found_secret = false;
    ck_assert_int_eq(nftw(T.state_dir, ic_look_for_secret, 16, FTW_PHYS), 0);
    ck_assert_msg(!ic_found_secret, "the root-only file was copied under %s", T.state_dir);
}

static void ic_member_register_refused(const char *initrd, const char *needle)
{
    char *err = NULL;
    const char *const argv[] = { "image", "register", "--name", "stolen", "--rootfs", T.rootfs,
                                 "--kernel", T.kernel, "--initrd", initrd, NULL };
    int status = ic_cli_as_member(&err, argv);
    ck_assert_msg(status == 1, "image register as a member: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, needle) != NULL, "stderr lacks '%s': %s", needle, err);
    free(err);
    ck_assert(!ic_listed("stolen"));
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    ic_assert_secret_not_copied();
}

START_TEST(test_member_cannot_register_root_only_initrd)
{
    ic_member_register_refused(ic_secret, "Permission denied (opened as uid 65534)");
    char *msg = ic_printf("initrd %s", ic_secret);
    ic_member_register_refused(ic_secret, msg);
    free(msg);
}
END_TEST

START_TEST(test_member_cannot_register_through_symlink)
{
    ic_member_register_refused(ic_link, "secret-link");
}
END_TEST

START_TEST(test_member_registers_readable_files)
{
    char *err = NULL;
    const char *const argv[] = { "image", "register", "--name", "mine", "--rootfs", T.rootfs,
                                 "--kernel", T.kernel, "--initrd", ic_readable, NULL };
    int status = ic_cli_as_member(&err, argv);
    ck_assert_msg(status == 0, "image register as a member: exit %d; stderr: %s", status, err);
    free(err);
    ck_assert(ic_listed("mine"));
}
END_TEST

START_TEST(test_root_registers_root_only_initrd)
{
    char *out = NULL, *err = NULL;
    const char *const argv[] = { "image", "register", "--name", "roots", "--rootfs", T.rootfs,
                                 "--kernel", T.kernel, "--initrd", ic_secret, NULL };
    int status = e2e_cli(&T, &out, &err, argv);
    ck_assert_msg(status == 0, "image register as root: exit %d; stderr: %s", status, err);
    free(out);
    free(err);
    ck_assert(ic_listed("roots"));
}
END_TEST

START_TEST(test_register_refuses_non_initrd)
{
    char *bogus = ic_printf("%s/bogus-initrd", T.dir);
    int fd = open(bogus, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "not an initrd\n", 14), 14);
    close(fd);
    char *out = NULL, *err = NULL;
    const char *const argv[] = { "image", "register", "--name", "bogus", "--rootfs", T.rootfs,
                                 "--kernel", T.kernel, "--initrd", bogus, NULL };
    int status = e2e_cli(&T, &out, &err, argv);
    ck_assert_msg(status == 1, "image register: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "is not an initrd") != NULL, "stderr: %s", err);
    free(out);
    free(err);
    ck_assert(!ic_listed("bogus"));
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    free(bogus);
}
END_TEST

/* import's tarball and pull's local bundle: also opened as the member. */
START_TEST(test_member_cannot_import_or_pull_root_only_files)
{
    char *tar = ic_printf("%s/root-only.tar", T.dir);
    const struct itest_entry e[] = { { "./", 'd', NULL, 0 }, { "./etc/", 'd', NULL, 0 } };
    itest_write_tar(tar, false, e, 2);
    ck_assert_int_eq(chmod(tar, 0600), 0);
    char *err = NULL;
    const char *const import[] = { "image", "import", "--name", "imp", "--from-tar", tar,
                                   "--kernel", T.kernel, NULL };
    int status = ic_cli_as_member(&err, import);
    ck_assert_msg(status == 1, "image import as a member: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "Permission denied (opened as uid 65534)"), "stderr: %s", err);
    free(err);
    const char *const import_secret_kernel[] = { "image", "import", "--name", "imp",
                                                 "--from-tar", tar, "--kernel", ic_secret, NULL };
    ck_assert_int_eq(chmod(tar, 0644), 0);
    status = ic_cli_as_member(&err, import_secret_kernel);
    ck_assert_msg(status == 1, "image import as a member: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "Permission denied (opened as uid 65534)"), "stderr: %s", err);
    free(err);

    char hex[65];
    char *bundle = ic_bundle("pulled", hex);
    ck_assert_int_eq(chmod(bundle, 0600), 0);
    const char *const pull[] = { "image", "pull", bundle, NULL };
    status = ic_cli_as_member(&err, pull);
    ck_assert_msg(status == 1, "image pull as a member: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "Permission denied (opened as uid 65534)"), "stderr: %s", err);
    free(err);
    ck_assert(!ic_listed("imp"));
    ck_assert(!ic_listed("pulled"));
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    ic_assert_secret_not_copied();
    free(bundle);
    free(tar);
}
END_TEST

/* ---- bounded inputs through the daemon ------------------------------------ */

static long long ic_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait (at most `ms`) until `done` says so; a bound on waiting, not a
 * timing assertion. */
static bool ic_wait_for(bool (*done)(void *), void *ctx, int ms)
{
    long long end = ic_now_ms() + ms;
    while (!done(ctx)) {
        if (ic_now_ms() > end)
            return false;
        usleep(50000);
    }
    return true;
}

/* A client that sends `line` and reads until the daemon reports `stage`;
 * returns the connection. */
static int ic_request_until(const char *line, const char *stage)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", T.socket);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ck_assert_int_eq(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
    char buf[8192];
    size_t have = 0;
    long long end = ic_now_ms() + 30000;
    while (have < sizeof(buf) - 1 && ic_now_ms() < end) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 500) <= 0)
            continue;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        ck_assert_msg(n > 0, "the daemon closed the connection: %.*s", (int)have, buf);
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, stage))
            break;
    }
    ck_assert_msg(strstr(buf, stage), "no '%s' progress: %s", stage, buf);
    return fd;
}

static bool ic_download_closed(void *h) { return ((struct itest_http *)h)->peer_closed; }
static bool ic_download_running(void *h) { return ((struct itest_http *)h)->sent >= (1u << 20); }
static bool ic_images_dir_empty(void *unused)
{
    (void)unused;
    return ic_images_dir_entries() == 0;
}

/* The client of a pull from an endless, slow server goes away: the daemon
 * stops downloading and removes what it had. */
START_TEST(test_pull_stops_when_client_leaves)
{
    struct itest_http h = { .endless = true, .trickle_ms = 20 };
    itest_http_start(&h, NULL);
    char *line = ic_printf("{\"v\":1,\"method\":\"image.pull\",\"params\":{\"source\":"
                           "\"http://127.0.0.1:%d/slow\",\"name\":\"slow\",\"sha256\":"
                           "\"%064d\"}}\n", h.port, 0);
    int fd = ic_request_until(line, "\"download\"");
    ck_assert_msg(ic_wait_for(ic_download_running, &h, 30000), "the download did not start");
    close(fd);   /* the client gives up */
    ck_assert_msg(ic_wait_for(ic_download_closed, &h, 30000),
                  "the daemon still downloads 30 s after its client left");
    ck_assert_msg(ic_wait_for(ic_images_dir_empty, NULL, 30000),
                  "%d entries left in state_dir/images", ic_images_dir_entries());
    itest_http_stop(&h);
    ck_assert(!ic_listed("slow"));
    free(line);
}
END_TEST

/* A member of socket_group names a file: mirror: refused, nothing runs. */
START_TEST(test_member_file_mirror_refused)
{
    char *err = NULL;
    const char *const argv[] = { "image", "build-default", "--name", "evil", "--mirror",
                                 "file:/tmp/x", NULL };
    int status = ic_cli_as_member(&err, argv);
    ck_assert_msg(status == 1, "build-default as a member: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "mirror 'file:/tmp/x' refused"), "stderr: %s", err);
    free(err);
    ck_assert(!ic_listed("evil"));
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    char *log = NULL;
    size_t len = 0;
    log = itest_read(T.log, &len);
    ck_assert_msg(!strstr(log, "debootstrap"), "debootstrap ran: %s", log);
    free(log);
}
END_TEST

static void ic_capped_setup(void)
{
    e2e_setup(&T, "images = { max_rootfs_bytes = \"2K\"; };\n", NULL);
    e2e_start_daemon(&T);
}

/* The daemon's images.max_rootfs_bytes reaches the pull. */
START_TEST(test_configured_cap_refuses_bundle)
{
    char hex[65];
    char *bundle = ic_bundle("capped", hex);
    char *out = NULL, *err = NULL;
    const char *const pull[] = { "image", "pull", bundle, NULL };
    int status = e2e_cli(&T, &out, &err, pull);
    ck_assert_msg(status == 1, "image pull: exit %d; stderr: %s", status, err);
    ck_assert_msg(strstr(err, "over the 2048-byte cap (images.max_rootfs_bytes)"), "stderr: %s",
                  err);
    free(out);
    free(err);
    ck_assert_int_eq(ic_images_dir_entries(), 0);
    free(bundle);
}
END_TEST

int main(void)
{
    /* The daemon inherits these: the built agent and this tree's guest files. */
    setenv("BANGER_AGENT_PATH", AGENT_BUILD_PATH, 1);
    setenv("BANGER_GUEST_DIR", GUEST_SRC_DIR, 1);
    Suite *s = suite_create("images-cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, ic_setup, ic_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_import_registers_image);
    tcase_add_test(tc, test_import_dotdot_refused_leaves_nothing);
    tcase_add_test(tc, test_pull_local_bundle_registers);
    tcase_add_test(tc, test_pull_wrong_sha256_leaves_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("bounded");
    tcase_add_checked_fixture(tc, ic_setup, ic_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pull_stops_when_client_leaves);
    suite_add_tcase(s, tc);
    tc = tcase_create("capped");
    tcase_add_checked_fixture(tc, ic_capped_setup, ic_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_configured_cap_refuses_bundle);
    suite_add_tcase(s, tc);
    tc = tcase_create("caller paths");
    tcase_add_checked_fixture(tc, ic_member_setup, ic_member_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_member_cannot_register_root_only_initrd);
    tcase_add_test(tc, test_member_cannot_register_through_symlink);
    tcase_add_test(tc, test_member_registers_readable_files);
    tcase_add_test(tc, test_root_registers_root_only_initrd);
    tcase_add_test(tc, test_register_refuses_non_initrd);
    tcase_add_test(tc, test_member_cannot_import_or_pull_root_only_files);
    tcase_add_test(tc, test_member_file_mirror_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    e2e_run_begin();
    srunner_run_all(sr, CK_NORMAL);
    e2e_run_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
