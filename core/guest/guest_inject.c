/* The public key into the work disk, without mounting it: debugfs -w with a
 * command script on stdin, then a read-back, since debugfs exits 0 even
 * when one of its commands failed.
 *
 * The disk is guest-writable, so debugfs parses hostile bytes: it runs as an
 * unprivileged uid with no groups and no_new_privs, and reaches the disk and
 * the key only through descriptors the daemon opened. Reopening
 * /proc/self/fd/N checks the inode's permissions, so the disk is lent to that
 * uid (fchown) while debugfs runs and given back afterwards; its directory
 * stays root-only, so the uid cannot find it by path. */
#include "config.h"

#include "guest/guest.h"
#include "runner/runner.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the passed descriptors appear in debugfs (runner.h). */
#define GUEST_DISK_FD_PATH "/proc/self/fd/4"
#define GUEST_KEY_FD_PATH "/proc/self/fd/5"

static int guest_key_memfd(const char *line, struct banger_error *err)
{
    int fd = memfd_create("banger-authorized-keys", MFD_CLOEXEC);
    if (fd < 0)
        return bg_fail_errno(err, -errno, "memfd for the public key");
    size_t len = strlen(line);
    if (write(fd, line, len) != (ssize_t)len) {
        int e = errno ? errno : EIO;
        close(fd);
        return bg_fail_errno(err, -e, "memfd for the public key: write");
    }
    return fd;
}

/* The non-empty lines of `keys`, each ended by one newline; NULL when none
 * is an ssh key. */
static char *guest_key_lines(const char *keys)
{
    char *out = xstrdup("");
    bool any = false;
    for (const char *p = keys; *p;) {
        size_t n = strcspn(p, "\n");
        if (n > 0 && strncmp(p, "ssh-", 4) == 0) {
            char *more = xasprintf("%s%.*s\n", out, (int)n, p);
            free(out);
            out = more;
            any = true;
        }
        p += n;
        if (*p == '\n')
            p++;
    }
    if (!any) {
        free(out);
        return NULL;
    }
    return out;
}

static int guest_debugfs(const struct guest_inject_as *as, const struct runner_child *child,
                         const char *const *args, const char *script,
                         struct banger_run_result *res, struct banger_error *err)
{
    const char *argv[8] = { as && as->debugfs ? as->debugfs : "debugfs" };
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 7; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .timeout_ms = 30000,
                                    .stdin_data = script,
                                    .stdin_len = script ? strlen(script) : 0 };
    return runner_run_child(argv, &opts, child, res, err);
}

int guest_inject_key(const char *disk, const char *pubkeys, const struct guest_inject_as *as,
                     struct banger_error *err)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    char *script = NULL;
    char *line = NULL;
    int disk_fd = -1, key_fd = -1;
    bool lent = false;
    struct stat st;
    int r;

    disk_fd = open(disk, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (disk_fd < 0) {
        r = bg_fail_errno(err, -errno, "%s", disk);
        goto cleanup;
    }
    if (fstat(disk_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = bg_fail(err, -EINVAL, "%s: not a regular file", disk);
        goto cleanup;
    }
    line = guest_key_lines(pubkeys);
    if (!line) {
        r = bg_fail(err, -EINVAL, "no ssh public key to write into %s", disk);
        goto cleanup;
    }
    key_fd = guest_key_memfd(line, err);
    if (key_fd < 0) {
        r = key_fd;
        goto cleanup;
    }
    const int pass[] = { disk_fd, key_fd };
    struct runner_child child = { .pass_fds = pass, .n_pass_fds = 2 };
    if (as && as->drop_privileges) {
        child.drop_privileges = true;
        child.uid = as->uid;
        child.gid = as->gid;
        if (fchown(disk_fd, as->uid, (gid_t)-1) < 0) {
            r = bg_fail_errno(err, -errno, "%s: lend to uid %u", disk, (unsigned)as->uid);
            goto cleanup;
        }
        lent = true;
    }

    /* debugfs's mkdir on an existing name leaves an orphaned inode behind:
     * look first. */
    r = guest_debugfs(as, &child, (const char *const[]){ "-R", "stat /.ssh", GUEST_DISK_FD_PATH,
                                                         NULL }, NULL, &res, err);
    if (r < 0)
        goto cleanup;
    bool have_dir = res.out && strstr(res.out, "Type: directory");
    if (!have_dir && res.out && strstr(res.out, "Type: ")) {
        r = bg_fail(err, -ENOTDIR, "/.ssh in %s is not a directory", disk);
        goto cleanup;
    }
    runner_result_clear(&res);
    /* The modes carry the file type bits or the inode becomes unusable. */
    script = xasprintf("%s"
                       "sif /.ssh mode 040700\n"
                       "sif /.ssh uid 0\n"
                       "sif /.ssh gid 0\n"
                       "rm /.ssh/authorized_keys\n"
                       "write " GUEST_KEY_FD_PATH " /.ssh/authorized_keys\n"
                       "sif /.ssh/authorized_keys mode 0100600\n"
                       "sif /.ssh/authorized_keys uid 0\n"
                       "sif /.ssh/authorized_keys gid 0\n",
                       have_dir ? "" : "mkdir /.ssh\n");
    r = guest_debugfs(as, &child, (const char *const[]){ "-w", "-f", "-", GUEST_DISK_FD_PATH,
                                                         NULL }, script, &res, err);
    runner_result_clear(&res);
    if (r < 0)
        goto cleanup;
    r = guest_debugfs(as, &child, (const char *const[]){ "-R", "cat /.ssh/authorized_keys",
                                                         GUEST_DISK_FD_PATH, NULL },
                      NULL, &res, err);
    if (r < 0)
        goto cleanup;
    if (!res.out || strcmp(res.out, line) != 0)
        r = bg_fail(err, -EIO, "debugfs did not write /.ssh/authorized_keys into %s%s%s", disk,
                    res.err && res.err[0] ? ": " : "", res.err ? res.err : "");
cleanup:
    runner_result_clear(&res);
    if (lent && fchown(disk_fd, st.st_uid, st.st_gid) < 0 && r == 0)
        r = bg_fail_errno(err, -errno, "%s: give back to uid %u", disk, (unsigned)st.st_uid);
    if (disk_fd >= 0)
        close(disk_fd);
    if (key_fd >= 0)
        close(key_fd);
    free(script);
    free(line);
    return r;
}
