/* libfcapi: small helpers shared by the modules. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fcapi.h"

void fcd_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	if (ms <= 0)
		return;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int fcd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fcd_stream_connect(const struct sockaddr *addr, socklen_t addr_len)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, addr, addr_len) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* Firecracker's checked_id: non-empty, alphanumerics and '_' only. */
bool fcd_id_valid(const char *id)
{
	if (id[0] == '\0')
		return false;
	for (const char *p = id; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '_';
		if (!ok)
			return false;
	}
	return true;
}

/* Firecracker's --id: 1..64 characters, alphanumerics and '-'. */
bool fcd_instance_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return false;
	for (const char *p = id; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '-';
		if (!ok)
			return false;
	}
	return true;
}

static pthread_mutex_t fcd_record_lock = PTHREAD_MUTEX_INITIALIZER;

/* One JSON line per request; a single O_APPEND write keeps lines whole even when
 * several processes share the file. */
void fcd_record(const char *method, const char *path, const char *body, size_t body_len,
		int status)
{
	cJSON *line = NULL;
	cJSON *parsed = NULL;
	char *text = NULL;
	char *raw = NULL;

	if (fcd_cfg.record_fd < 0)
		return;
	line = cJSON_CreateObject();
	if (!line)
		goto cleanup;
	cJSON_AddStringToObject(line, "method", method);
	cJSON_AddStringToObject(line, "path", path);
	if (body_len == 0) {
		cJSON_AddNullToObject(line, "body");
	} else {
		parsed = cJSON_ParseWithLength(body, body_len);
		if (parsed) {
			cJSON_AddItemToObject(line, "body", parsed);
		} else {
			raw = strndup(body, body_len);
			if (!raw)
				goto cleanup;
			cJSON_AddStringToObject(line, "body", raw);
		}
	}
	cJSON_AddNumberToObject(line, "status", status);
	text = cJSON_PrintUnformatted(line);
	if (!text)
		goto cleanup;
	size_t len = strlen(text);
	char *nl = realloc(text, len + 2);
	if (!nl)
		goto cleanup;
	text = nl;
	text[len] = '\n';
	text[len + 1] = '\0';
	pthread_mutex_lock(&fcd_record_lock);
	(void)fcd_write_all(fcd_cfg.record_fd, text, len + 1);
	pthread_mutex_unlock(&fcd_record_lock);
cleanup:
	free(raw);
	free(text);
	cJSON_Delete(line);
}

void fcd_log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "%s[%s]: ",
		     fcd_hooks && fcd_hooks->log_name ? fcd_hooks->log_name : "fcapi", fcd_cfg.id);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = strlen(buf);
	buf[len++] = '\n';
	(void)fcd_write_all(STDERR_FILENO, buf, len);
}
