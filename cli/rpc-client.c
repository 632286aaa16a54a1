#include "config.h"

#include "rpc-client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/xalloc.h"

struct rpc_linebuf {
    char *data;
    size_t len;
    size_t cap;
};

static int rpc_connect(const char *path, int *ret_fd, struct banger_error *err)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t path_len = strlen(path);
    int fd;
    int r;

    if (path_len == 0 || path_len >= sizeof(addr.sun_path))
        return bg_fail(err, -ENAMETOOLONG, "cannot reach bangerd at '%s': a socket path is 1 to %zu bytes",
                       path, sizeof(addr.sun_path) - 1);
    memcpy(addr.sun_path, path, path_len + 1);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return bg_fail_errno(err, -errno, "cannot create a Unix socket");
    if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0) {
        r = -errno;
        close(fd);
        if (r == -EACCES || r == -EPERM)
            return bg_fail(err, r, "permission denied on %s: you must be root or in the banger group",
                           path);
        return bg_fail(err, r, "cannot reach bangerd at %s: %s (is it running? sudo systemctl start bangerd)",
                       path, strerror(-r));
    }
    *ret_fd = fd;
    return 0;
}

static int rpc_write_all(int fd, const char *buf, size_t len, struct banger_error *err)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return bg_fail_errno(err, -errno, "cannot send the request to bangerd");
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int rpc_send_request(int fd, const char *method, cJSON *params, struct banger_error *err)
{
    cJSON *req = cJSON_CreateObject();
    char *text = NULL;
    char *line = NULL;
    int r;

    cJSON_AddNumberToObject(req, "v", RPC_PROTOCOL_VERSION);
    cJSON_AddStringToObject(req, "method", method);
    if (params)
        cJSON_AddItemToObject(req, "params", params);
    text = cJSON_PrintUnformatted(req);
    if (!text) {
        r = bg_fail(err, -ENOMEM, "cannot encode the request");
        goto cleanup;
    }
    if (strlen(text) + 1 > RPC_LINE_MAX) {
        r = bg_fail(err, -E2BIG, "the request is larger than 1 MiB");
        goto cleanup;
    }
    line = xasprintf("%s\n", text);
    r = rpc_write_all(fd, line, strlen(line), err);
cleanup:
    free(line);
    free(text);
    cJSON_Delete(req);
    return r;
}

/* Fills reply from a final line; takes doc. */
static int rpc_take_final(cJSON *doc, struct rpc_reply *reply, struct banger_error *err)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *op_id = cJSON_GetObjectItemCaseSensitive(doc, "op_id");

    reply->doc = doc;
    if (cJSON_IsObject(error)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(error, "message");

        op_id = cJSON_GetObjectItemCaseSensitive(error, "op_id");
        reply->failed = true;
        reply->code = cJSON_IsString(code) ? code->valuestring : "failed";
        reply->message = cJSON_IsString(message) ? message->valuestring : "bangerd gave no reason";
        reply->op_id = cJSON_IsString(op_id) && op_id->valuestring[0] ? op_id->valuestring : NULL;
        return 0;
    }
    if (!cJSON_HasObjectItem(doc, "result")) {
        reply->doc = NULL;
        cJSON_Delete(doc);
        return bg_fail(err, -EPROTO, "bangerd sent a reply with neither a result nor an error");
    }
    reply->result = cJSON_GetObjectItemCaseSensitive(doc, "result");
    reply->op_id = cJSON_IsString(op_id) && op_id->valuestring[0] ? op_id->valuestring : NULL;
    return 0;
}

/* Handles one line; returns 1 when it was the final one. */
static int rpc_handle_line(const char *line, size_t len, rpc_progress_fn on_progress, void *userdata,
                           struct rpc_reply *reply, struct banger_error *err)
{
    cJSON *doc = cJSON_ParseWithLength(line, len);
    const cJSON *progress;
    int r;

    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return bg_fail(err, -EPROTO, "bangerd sent a reply that is not a JSON object");
    }
    progress = cJSON_GetObjectItemCaseSensitive(doc, "progress");
    if (cJSON_IsObject(progress)) {
        const cJSON *stage = cJSON_GetObjectItemCaseSensitive(progress, "stage");
        const cJSON *elapsed = cJSON_GetObjectItemCaseSensitive(progress, "elapsed_ms");

        if (on_progress && cJSON_IsString(stage))
            on_progress(stage->valuestring, cJSON_IsNumber(elapsed) ? elapsed->valuedouble : 0,
                        userdata);
        cJSON_Delete(doc);
        return 0;
    }
    r = rpc_take_final(doc, reply, err);
    return r < 0 ? r : 1;
}

static int rpc_read_reply(int fd, rpc_progress_fn on_progress, void *userdata,
                          struct rpc_reply *reply, struct banger_error *err)
{
    struct rpc_linebuf buf = { 0 };
    int r;

    for (;;) {
        char *nl;
        ssize_t n;

        /* Whole lines first: there may be several in one read. */
        while (buf.len > 0 && (nl = memchr(buf.data, '\n', buf.len)) != NULL) {
            size_t line_len = (size_t)(nl - buf.data);

            r = rpc_handle_line(buf.data, line_len, on_progress, userdata, reply, err);
            if (r != 0)
                goto cleanup;
            memmove(buf.data, nl + 1, buf.len - line_len - 1);
            buf.len -= line_len + 1;
        }
        if (buf.len >= RPC_LINE_MAX) {
            r = bg_fail(err, -EMSGSIZE, "bangerd sent a reply line longer than 1 MiB");
            goto cleanup;
        }
        if (buf.cap - buf.len < 4096) {
            buf.cap = buf.cap ? buf.cap * 2 : 16384;
            if (buf.cap > RPC_LINE_MAX + 1)
                buf.cap = RPC_LINE_MAX + 1;
            buf.data = xrealloc(buf.data, buf.cap);
        }
        n = read(fd, buf.data + buf.len, buf.cap - buf.len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = bg_fail_errno(err, -errno, "cannot read the reply from bangerd");
            goto cleanup;
        }
        if (n == 0)
            break;
        buf.len += (size_t)n;
    }
    /* A last line without its newline still counts. */
    if (buf.len > 0) {
        r = rpc_handle_line(buf.data, buf.len, on_progress, userdata, reply, err);
        if (r != 0)
            goto cleanup;
    }
    r = bg_fail(err, -ECONNRESET, "bangerd closed the connection before answering");
cleanup:
    free(buf.data);
    return r < 0 ? r : 0;
}

int rpc_call(const char *socket_path, const char *method, cJSON *params,
             rpc_progress_fn on_progress, void *userdata, struct rpc_reply *reply,
             struct banger_error *err)
{
    int fd = -1;
    int r;

    memset(reply, 0, sizeof(*reply));
    r = rpc_connect(socket_path, &fd, err);
    if (r < 0) {
        cJSON_Delete(params);
        return r;
    }
    r = rpc_send_request(fd, method, params, err);
    if (r < 0)
        goto cleanup;
    r = rpc_read_reply(fd, on_progress, userdata, reply, err);
cleanup:
    close(fd);
    return r;
}

void rpc_reply_done(struct rpc_reply *reply)
{
    if (!reply)
        return;
    cJSON_Delete(reply->doc);
    memset(reply, 0, sizeof(*reply));
}
