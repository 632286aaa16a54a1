/* libFuzzer target: ssh-keyscan's output as core/guest reads a guest's host
 * key from it (guest_host_scan, core/guest/guest_hosts.c) before pinning it
 * in known_hosts. The program is not run: the runner's test hook hands the
 * input back as its stdout. The first byte picks the exit status. */
#include "config.h"

#include <errno.h>

#include "fuzz-util.h"
#include "guest/guest.h"
#include "runner/runner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *fuzz_out;
static size_t fuzz_out_len;
static int fuzz_status;

static int fuzz_keyscan_hook(void *ctx, const char *const *argv, struct banger_run_result *res)
{
    (void)ctx;
    FUZZ_CHECK(strcmp(argv[0], "ssh-keyscan") == 0);
    res->out = fuzz_strndup(fuzz_out, fuzz_out_len);
    res->out_len = fuzz_out_len;
    res->exit_status = fuzz_status;
    return res->out ? 1 : -ENOMEM;
}

static const char fuzz_base64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct banger_error err = { 0 };
    char *key = NULL;
    int r;

    if (size < 1)
        return 0;
    fuzz_status = data[0] & 1;
    fuzz_out = data + 1;
    fuzz_out_len = size - 1;
    runner_set_hook(fuzz_keyscan_hook, NULL);
    r = guest_host_scan("172.29.0.2", &key, &err);
    runner_set_hook(NULL, NULL);
    if (r == 0) {
        /* What gets pinned is one key: "ssh-ed25519 <base64>", nothing else
         * a known_hosts line could be made to say. */
        FUZZ_CHECK(key != NULL);
        FUZZ_CHECK(strncmp(key, "ssh-ed25519 ", 12) == 0);
        FUZZ_CHECK(key[12] != '\0');
        FUZZ_CHECK(strspn(key + 12, fuzz_base64) == strlen(key + 12));
    } else {
        FUZZ_CHECK(r == -EAGAIN);
        FUZZ_CHECK(key == NULL);
        fuzz_check_message(bg_error_text(&err), sizeof(err.msg), 1);
    }
    free(key);
    return 0;
}
