/* The public key into the work disk, without mounting it: debugfs -w with a
 * command script on stdin, then a read-back, since debugfs exits 0 even
 * when one of its commands failed. */
#include "config.h"

#include "guest/guest.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* debugfs splits its command lines on blanks and quotes. */
static bool guest_debugfs_safe(const char *path)
{
    return path[0] == '/' && !strpbrk(path, " \t\n\"'\\");
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

int guest_inject_key(const char *disk, const char *pubkeys, const char *scratch_dir,
                     struct banger_error *err)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    char *tmp = fs_join(scratch_dir, "authorized_keys.tmp");
    char *script = NULL;
    char *line = NULL;
    int r;

    if (!guest_debugfs_safe(tmp) || !guest_debugfs_safe(disk)) {
        r = bg_fail(err, -EINVAL, "path unsuitable for debugfs: %s", guest_debugfs_safe(tmp) ?
                    disk : tmp);
        goto cleanup;
    }
    line = guest_key_lines(pubkeys);
    if (!line) {
        r = bg_fail(err, -EINVAL, "no ssh public key to write into %s", disk);
        goto cleanup;
    }
    r = fs_write_atomic(tmp, line, strlen(line), 0600, err);
    if (r < 0)
        goto cleanup;
    /* debugfs's mkdir on an existing name leaves an orphaned inode behind:
     * look first. */
    const char *const stat_argv[] = { "debugfs", "-R", "stat /.ssh", disk, NULL };
    struct banger_run_opts sopts = { .struct_size = sizeof(sopts), .timeout_ms = 30000 };
    r = runner_run(stat_argv, &sopts, &res, err);
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
                       "write %s /.ssh/authorized_keys\n"
                       "sif /.ssh/authorized_keys mode 0100600\n"
                       "sif /.ssh/authorized_keys uid 0\n"
                       "sif /.ssh/authorized_keys gid 0\n",
                       have_dir ? "" : "mkdir /.ssh\n", tmp);
    const char *const write_argv[] = { "debugfs", "-w", "-f", "-", disk, NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .timeout_ms = 30000,
                                    .stdin_data = script, .stdin_len = strlen(script) };
    r = runner_run(write_argv, &opts, &res, err);
    runner_result_clear(&res);
    if (r < 0)
        goto cleanup;
    const char *const read_argv[] = { "debugfs", "-R", "cat /.ssh/authorized_keys", disk, NULL };
    struct banger_run_opts ropts = { .struct_size = sizeof(ropts), .timeout_ms = 30000 };
    r = runner_run(read_argv, &ropts, &res, err);
    if (r < 0)
        goto cleanup;
    if (!res.out || strcmp(res.out, line) != 0)
        r = bg_fail(err, -EIO, "debugfs did not write /.ssh/authorized_keys into %s%s%s", disk,
                    res.err && res.err[0] ? ": " : "", res.err ? res.err : "");
cleanup:
    runner_result_clear(&res);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(script);
    free(line);
    return r;
}
