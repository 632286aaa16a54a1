/* Host keys of guests: scanned on contact, pinned on first use in banger's
 * own known_hosts ("<ip>,<name>.vm ssh-ed25519 <key>" lines), refused when
 * they change, dropped when the VM is deleted. */
#include "config.h"

#include "guest/guest.h"
#include "runner/runner.h"
#include "util/fs.h"
#include "util/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUEST_HOSTS_MAX (4 * 1024 * 1024)
#define GUEST_KEY_TYPE "ssh-ed25519"
#define GUEST_BASE64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

/* One writer at a time for the known_hosts file. */
static pthread_mutex_t guest_hosts_mutex = PTHREAD_MUTEX_INITIALIZER;

int guest_host_scan(const char *ip, char **key, struct banger_error *err)
{
    struct banger_run_result res = { .struct_size = sizeof(res) };
    const char *const argv[] = { "ssh-keyscan", "-T", "2", "-t", "ed25519", ip, NULL };
    struct banger_run_opts opts = { .struct_size = sizeof(opts), .timeout_ms = 10000 };
    struct banger_error e = { 0 };
    int r = runner_run(argv, &opts, &res, &e);
    if (r < 0 && !res.out) {
        /* ssh-keyscan itself could not run. */
        r = bg_fail(err, r, "ssh-keyscan: %s", bg_error_text(&e));
        goto cleanup;
    }
    r = -EAGAIN;
    for (char *save = NULL, *l = res.out ? strtok_r(res.out, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == '#')
            continue;
        char *type = strchr(l, ' ');
        if (!type || strncmp(type + 1, GUEST_KEY_TYPE " ", strlen(GUEST_KEY_TYPE) + 1) != 0)
            continue;
        /* "ssh-ed25519 AAAA" without trailing blanks or comments. The key
         * goes into known_hosts: only a base64 blob, as ssh-keyscan prints
         * one, is taken. */
        const char *blob = type + 1 + strlen(GUEST_KEY_TYPE) + 1;
        size_t blob_len = strspn(blob, GUEST_BASE64);
        if (blob_len == 0 || (blob[blob_len] && blob[blob_len] != ' ' && blob[blob_len] != '\r'))
            continue;
        *key = xasprintf("%s %.*s", GUEST_KEY_TYPE, (int)blob_len, blob);
        r = 0;
        break;
    }
    if (r == -EAGAIN)
        bg_fail(err, r, "ssh on %s is not answering yet", ip);
cleanup:
    runner_result_clear(&res);
    return r;
}

bool guest_hosts_line_names(const char *line, const char *host)
{
    size_t hlen = strlen(host);
    size_t field = strcspn(line, " \t");
    const char *p = line;
    const char *end = line + field;
    if (line[0] == '#' || line[0] == '@')
        return false;
    while (p < end) {
        size_t n = strcspn(p, ",");
        if (p + n > end)
            n = (size_t)(end - p);
        if (n == hlen && strncmp(p, host, hlen) == 0)
            return true;
        p += n + 1;
    }
    return false;
}

/* The key ("type blob") of the line, or NULL. */
static char *guest_hosts_line_key(const char *line)
{
    const char *sp = line + strcspn(line, " \t");
    if (!*sp)
        return NULL;
    sp += strspn(sp, " \t");
    const char *blob = sp + strcspn(sp, " \t");
    if (!*blob)
        return NULL;
    blob += strspn(blob, " \t");
    size_t blen = strcspn(blob, " \t\r\n");
    return xasprintf("%.*s %.*s", (int)strcspn(sp, " \t"), sp, (int)blen, blob);
}

static int guest_hosts_read(const char *path, char **text, struct banger_error *err)
{
    size_t len = 0;
    int r = fs_read_all(path, GUEST_HOSTS_MAX, text, &len, err);
    if (r == -ENOENT) {
        bg_error_clear(err);
        *text = xstrdup("");
        r = 0;
    }
    return r;
}

int guest_host_pin(const char *state_dir, const char *name, const char *ip, const char *key,
                   bool *pinned_now, struct banger_error *err)
{
    char *path = guest_known_hosts_path(state_dir);
    char *alias = xasprintf("%s.vm", name);
    char *text = NULL;
    char *out = NULL;
    char *pinned = NULL;
    int r;

    *pinned_now = false;
    pthread_mutex_lock(&guest_hosts_mutex);
    r = guest_hosts_read(path, &text, err);
    if (r < 0)
        goto cleanup;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && !pinned;
         l = strtok_r(NULL, "\n", &save)) {
        if (!guest_hosts_line_names(l, ip) && !guest_hosts_line_names(l, alias))
            continue;
        char *k = guest_hosts_line_key(l);
        if (k && strncmp(k, GUEST_KEY_TYPE " ", strlen(GUEST_KEY_TYPE) + 1) == 0)
            pinned = k;
        else
            free(k);
    }
    if (pinned) {
        if (strcmp(pinned, key) != 0)
            r = bg_fail(err, -EKEYREJECTED,
                        "host key changed: VM '%s' (%s) now presents a different ssh host key "
                        "than the one pinned on first contact; refusing to connect", name, ip);
        goto cleanup;
    }
    /* Re-read: strtok_r cut the text up. */
    free(text);
    text = NULL;
    r = guest_hosts_read(path, &text, err);
    if (r < 0)
        goto cleanup;
    size_t tlen = strlen(text);
    out = xasprintf("%s%s%s,%s %s\n", text, tlen && text[tlen - 1] != '\n' ? "\n" : "", ip,
                    alias, key);
    r = fs_write_atomic(path, out, strlen(out), 0600, err);
    if (r == 0)
        *pinned_now = true;
cleanup:
    pthread_mutex_unlock(&guest_hosts_mutex);
    free(path);
    free(alias);
    free(text);
    free(out);
    free(pinned);
    return r;
}

int guest_host_forget(const char *state_dir, const char *name, const char *ip,
                      struct banger_error *err)
{
    char *path = guest_known_hosts_path(state_dir);
    char *alias = xasprintf("%s.vm", name);
    char *text = NULL;
    size_t len = 0, cap = 0;
    char *out = NULL;
    bool dropped = false;
    int r;

    pthread_mutex_lock(&guest_hosts_mutex);
    r = fs_read_all(path, GUEST_HOSTS_MAX, &text, &len, err);
    if (r == -ENOENT) {
        bg_error_clear(err);
        r = 0;
        goto cleanup;
    }
    if (r < 0)
        goto cleanup;
    cap = len + 2;
    out = xmalloc(cap);
    out[0] = '\0';
    len = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        if ((ip && guest_hosts_line_names(l, ip)) || guest_hosts_line_names(l, alias)) {
            dropped = true;
            continue;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s\n", l);
    }
    if (dropped)
        r = fs_write_atomic(path, out, len, 0600, err);
cleanup:
    pthread_mutex_unlock(&guest_hosts_mutex);
    free(path);
    free(alias);
    free(text);
    free(out);
    return r;
}
