/* libfcapi: the HTTP/1.1 side of the API socket. One thread per connection, keep-alive,
 * Content-Length bodies only. A request that cannot be framed gets a 400 and the
 * connection is closed; the server itself keeps serving. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcapi.h"

#define FCD_HTTP_HEAD_MAX 8192

struct fcd_http_conn {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
};

struct fcd_http_request {
	char method[16];
	char path[1024];
	size_t content_length;
	size_t head_len;
	bool close_after;
	bool expect_continue;
};

static const char *fcd_http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 413:
		return "Payload Too Large";
	default:
		return "Bad Request";
	}
}

static int fcd_http_send(int fd, const struct fcd_response *resp, bool close_after)
{
	size_t body_len = resp->body ? strlen(resp->body) : 0;
	size_t cap = 256 + body_len;
	char *out = malloc(cap);
	int n;
	int r = 0;

	if (!out)
		return -ENOMEM;
	if (resp->status == 204)
		n = snprintf(out, cap,
			     "HTTP/1.1 204 No Content\r\nServer: Firecracker API\r\n"
			     "Connection: %s\r\n\r\n", close_after ? "close" : "keep-alive");
	else
		n = snprintf(out, cap,
			     "HTTP/1.1 %d %s\r\nServer: Firecracker API\r\nConnection: %s\r\n"
			     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     resp->status, fcd_http_reason(resp->status),
			     close_after ? "close" : "keep-alive", body_len,
			     resp->body ? resp->body : "");
	/* One buffer, so a reply never reaches the client in two pieces by our doing. */
	for (size_t off = 0; off < (size_t)n;) {
		ssize_t w = send(fd, out + off, (size_t)n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = -EPIPE;
			break;
		}
		off += (size_t)w;
	}
	free(out);
	return r;
}

/* Reads more bytes; returns 0 on EOF, negative errno on error. */
static ssize_t fcd_http_fill(struct fcd_http_conn *c, size_t want)
{
	if (c->cap < want + 1) {
		char *nb = realloc(c->buf, want + 1);
		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->cap = want + 1;
	}
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->len, c->cap - 1 - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		return n;
	}
}

/* The request target may be absolute ("http://localhost/x"); keep only the path. */
static int fcd_http_target(const char *target, char *path, size_t path_len)
{
	const char *p = target;
	size_t n;

	if (strncasecmp(p, "http://", 7) == 0) {
		p = strchr(p + 7, '/');
		if (!p)
			p = "/";
	}
	if (*p != '/')
		return -EINVAL;
	n = strcspn(p, "?#");
	if (n >= path_len)
		return -ENAMETOOLONG;
	memcpy(path, p, n);
	path[n] = '\0';
	return 0;
}

static int fcd_http_parse_head(char *head, struct fcd_http_request *req, char *msg,
			       size_t msg_len)
{
	char *save = NULL;
	char *line = strtok_r(head, "\n", &save);
	char target[1024];
	char version[16];
	bool have_length = false;

	if (!line || sscanf(line, "%15s %1023s %15s", req->method, target, version) != 3) {
		snprintf(msg, msg_len, "Invalid request line.");
		return -EINVAL;
	}
	if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0) {
		snprintf(msg, msg_len, "Unsupported HTTP version.");
		return -EINVAL;
	}
	req->close_after = strcmp(version, "HTTP/1.0") == 0;
	for (const char *m = req->method; *m; m++) {
		if (!isupper((unsigned char)*m)) {
			snprintf(msg, msg_len, "Unsupported HTTP method.");
			return -EINVAL;
		}
	}
	if (fcd_http_target(target, req->path, sizeof(req->path)) < 0) {
		snprintf(msg, msg_len, "Invalid URI.");
		return -EINVAL;
	}
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *colon = strchr(line, ':');
		char *value;
		size_t vlen;

		line[strcspn(line, "\r")] = '\0';
		if (line[0] == '\0')
			break;
		if (!colon) {
			snprintf(msg, msg_len, "Invalid header.");
			return -EINVAL;
		}
		*colon = '\0';
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		vlen = strlen(value);
		while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
			value[--vlen] = '\0';
		if (strcasecmp(line, "Content-Length") == 0) {
			char *end = NULL;
			errno = 0;
			unsigned long long v = strtoull(value, &end, 10);
			if (have_length || errno || end == value || *end || value[0] == '-') {
				snprintf(msg, msg_len, "Invalid value. Key:Content-Length; Value: %.32s",
					 value);
				return -EINVAL;
			}
			have_length = true;
			req->content_length = (size_t)v;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			snprintf(msg, msg_len, "Transfer-Encoding is not supported.");
			return -EINVAL;
		} else if (strcasecmp(line, "Expect") == 0) {
			req->expect_continue = strcasecmp(value, "100-continue") == 0;
		} else if (strcasecmp(line, "Connection") == 0) {
			if (strcasecmp(value, "close") == 0)
				req->close_after = true;
			else if (strcasecmp(value, "keep-alive") == 0)
				req->close_after = false;
		}
	}
	return 0;
}

/* Reads and parses one request head; 1 on success, 0 on clean EOF, <0 on a framing
 * error (a 400 was already sent) or an I/O error. */
static int fcd_http_read_head(struct fcd_http_conn *c, struct fcd_http_request *req)
{
	char msg[FCD_MSG_MAX];
	char *end;
	int r;

	for (;;) {
		end = c->len ? strstr(c->buf, "\r\n\r\n") : NULL;
		if (end)
			break;
		if (c->len >= FCD_HTTP_HEAD_MAX) {
			snprintf(msg, sizeof(msg), "Request headers are too long.");
			goto bad;
		}
		ssize_t n = fcd_http_fill(c, FCD_HTTP_HEAD_MAX);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return c->len ? -EPIPE : 0;
		if (memchr(c->buf, '\0', c->len)) {
			snprintf(msg, sizeof(msg), "Invalid request: NUL byte.");
			goto bad;
		}
	}
	memset(req, 0, sizeof(*req));
	req->head_len = (size_t)(end - c->buf) + 4;
	end[2] = '\0';
	r = fcd_http_parse_head(c->buf, req, msg, sizeof(msg));
	if (r < 0)
		goto bad;
	if (req->content_length > fcd_cfg.max_payload) {
		snprintf(msg, sizeof(msg),
			 "Request payload with size %zu is larger than the limit of %zu allowed "
			 "by server.", req->content_length, fcd_cfg.max_payload);
		goto bad;
	}
	return 1;
bad: {
	struct fcd_response resp = { 0 };
	fcd_response_fault(&resp, "%s", msg);
	(void)fcd_http_send(c->fd, &resp, true);
	free(resp.body);
	return -EBADMSG;
}
}

static void fcd_http_after(enum fcd_after after)
{
	if (after != FCD_AFTER_NONE && fcd_hooks && fcd_hooks->after_reply)
		fcd_hooks->after_reply(after);
}

void *fcd_http_connection(void *arg)
{
	struct fcd_http_conn c = { .fd = (int)(intptr_t)arg };
	struct fcd_http_request req;

	for (;;) {
		struct fcd_response resp = { 0 };
		int r = fcd_http_read_head(&c, &req);

		if (r <= 0)
			break;
		if (req.expect_continue && c.len < req.head_len + req.content_length) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (send(c.fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) < 0)
				break;
		}
		while (c.len < req.head_len + req.content_length) {
			ssize_t n = fcd_http_fill(&c, req.head_len + req.content_length);
			if (n <= 0)
				goto done; /* the client left mid-request */
		}
		fcd_api_handle(req.method, req.path, c.buf + req.head_len, req.content_length,
			       &resp);
		fcd_record(req.method, req.path, c.buf + req.head_len, req.content_length,
			   resp.status);
		r = fcd_http_send(c.fd, &resp, req.close_after);
		free(resp.body);
		fcd_http_after(resp.after);
		if (r < 0 || req.close_after)
			break;
		/* Keep pipelined bytes that follow this request. */
		size_t used = req.head_len + req.content_length;
		memmove(c.buf, c.buf + used, c.len - used);
		c.len -= used;
		c.buf[c.len] = '\0';
	}
done:
	close(c.fd);
	free(c.buf);
	return NULL;
}

int fcd_http_bind(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* No unlink first: an existing file means another VMM may own it. */
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int fcd_http_serve(int listen_fd)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		pthread_t thread;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				fcd_sleep_ms(10);
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE)
				continue;
			pthread_attr_destroy(&attr);
			return -errno;
		}
		if (pthread_create(&thread, &attr, fcd_http_connection, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
}
