/* libfcapi: hybrid vsock, host-initiated side. The device listens on uds_path; a host
 * client sends "CONNECT <port>\n"; fcd_hooks->vsock_connect reaches the guest port (a
 * Unix socket in fc-double, AF_VSOCK in banger-vmm-qemu). If it connects, the server
 * answers "OK <hostport>\n" and relays bytes both ways; otherwise it closes the
 * connection without a word, as Firecracker does when nothing listens in the guest. */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcapi.h"

#define FCD_VSOCK_LINE_MAX 32
#define FCD_VSOCK_FIRST_HOST_PORT 1073741824u /* 2^30, Firecracker's first local port */

struct fcd_vsock {
	int listen_fd;
	char *path;
	uint32_t guest_cid;
	pthread_t acceptor;
};

struct fcd_vsock_pipe {
	int from;
	int to;
};

static atomic_uint fcd_vsock_next_port = FCD_VSOCK_FIRST_HOST_PORT;

static int fcd_vsock_unix_addr(const char *path, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr->sun_path))
		return -ENAMETOOLONG;
	strcpy(addr->sun_path, path);
	return 0;
}

/* Copies one direction until EOF, then half-closes the other side. */
static void *fcd_vsock_pump(void *arg)
{
	struct fcd_vsock_pipe *p = arg;
	char buf[16384];

	for (;;) {
		ssize_t n = read(p->from, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (fcd_write_all(p->to, buf, (size_t)n) < 0)
			break;
	}
	shutdown(p->to, SHUT_WR);
	shutdown(p->from, SHUT_RD);
	return NULL;
}

/* Reads "CONNECT <port>\n" one byte at a time so no payload byte is swallowed. */
static int fcd_vsock_read_port(int fd, uint32_t *ret_port)
{
	char line[FCD_VSOCK_LINE_MAX + 1];
	size_t len = 0;
	char *end = NULL;
	unsigned long port;

	while (len < FCD_VSOCK_LINE_MAX) {
		ssize_t n = read(fd, &line[len], 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		if (line[len++] == '\n')
			break;
	}
	if (len == 0 || line[len - 1] != '\n')
		return -EPROTO;
	line[len - 1] = '\0';
	if (strncasecmp(line, "CONNECT ", 8) != 0)
		return -EPROTO;
	errno = 0;
	port = strtoul(line + 8, &end, 10);
	if (errno || end == line + 8 || *end || port > UINT32_MAX)
		return -EPROTO;
	*ret_port = (uint32_t)port;
	return 0;
}

int fcd_unix_connect(const char *path)
{
	struct sockaddr_un addr;

	if (!path || fcd_vsock_unix_addr(path, &addr) < 0)
		return -ECONNREFUSED;
	return fcd_stream_connect((struct sockaddr *)&addr, sizeof(addr));
}

static void *fcd_vsock_connection(void *arg)
{
	int host_fd = (int)(intptr_t)arg;
	int guest_fd = -1;
	uint32_t port;
	uint32_t cid;
	char ok[32];
	pthread_t reverse;
	struct fcd_vsock_pipe up, down;

	if (fcd_vsock_read_port(host_fd, &port) < 0)
		goto cleanup;
	/* The guest side only exists once the VM runs. */
	pthread_mutex_lock(&fcd_vm.lock);
	while (fcd_vm.state != FCD_RUNNING)
		pthread_cond_wait(&fcd_vm.state_changed, &fcd_vm.lock);
	cid = fcd_vm.vsock_cid;
	pthread_mutex_unlock(&fcd_vm.lock);

	guest_fd = fcd_hooks && fcd_hooks->vsock_connect ?
			   fcd_hooks->vsock_connect(cid, port) : -ECONNREFUSED;
	if (guest_fd < 0)
		goto cleanup;
	int n = snprintf(ok, sizeof(ok), "OK %u\n", atomic_fetch_add(&fcd_vsock_next_port, 1));
	if (fcd_write_all(host_fd, ok, (size_t)n) < 0)
		goto cleanup;
	up = (struct fcd_vsock_pipe){ .from = host_fd, .to = guest_fd };
	down = (struct fcd_vsock_pipe){ .from = guest_fd, .to = host_fd };
	if (pthread_create(&reverse, NULL, fcd_vsock_pump, &down) != 0)
		goto cleanup;
	fcd_vsock_pump(&up);
	pthread_join(reverse, NULL);
cleanup:
	if (guest_fd >= 0)
		close(guest_fd);
	close(host_fd);
	return NULL;
}

static void *fcd_vsock_acceptor(void *arg)
{
	struct fcd_vsock *vsock = arg;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		pthread_t thread;
		int fd = accept4(vsock->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE)
				continue;
			break; /* EINVAL after shutdown(): the device is being replaced */
		}
		if (pthread_create(&thread, &attr, fcd_vsock_connection, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

int fcd_vsock_create(const char *uds_path, uint32_t guest_cid, struct fcd_vsock **ret_vsock,
		     char *msg, size_t msg_len)
{
	struct fcd_vsock *vsock = NULL;
	struct sockaddr_un addr;
	int r;

	r = fcd_vsock_unix_addr(uds_path, &addr);
	if (r < 0) {
		snprintf(msg, msg_len, "UnixBind(path too long: %s)", uds_path);
		return r;
	}
	vsock = calloc(1, sizeof(*vsock));
	if (!vsock)
		return -ENOMEM;
	vsock->guest_cid = guest_cid;
	vsock->path = strdup(uds_path);
	vsock->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!vsock->path || vsock->listen_fd < 0) {
		r = vsock->path ? -errno : -ENOMEM;
		snprintf(msg, msg_len, "UnixBind(%s)", strerror(-r));
		goto cleanup;
	}
	/* No unlink first: a leftover file makes this fail, as with Firecracker. */
	if (bind(vsock->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(vsock->listen_fd, 128) < 0) {
		r = -errno;
		snprintf(msg, msg_len, "UnixBind(Os { code: %d, message: \"%s\" })", -r,
			 strerror(-r));
		goto cleanup;
	}
	r = -pthread_create(&vsock->acceptor, NULL, fcd_vsock_acceptor, vsock);
	if (r < 0) {
		unlink(uds_path);
		snprintf(msg, msg_len, "cannot start the vsock thread: %s", strerror(-r));
		goto cleanup;
	}
	*ret_vsock = vsock;
	return 0;
cleanup:
	if (vsock->listen_fd >= 0)
		close(vsock->listen_fd);
	free(vsock->path);
	free(vsock);
	return r;
}

struct fcd_vsock *fcd_vsock_destroy(struct fcd_vsock *vsock)
{
	if (!vsock)
		return NULL;
	shutdown(vsock->listen_fd, SHUT_RDWR);
	pthread_join(vsock->acceptor, NULL);
	close(vsock->listen_fd);
	unlink(vsock->path);
	free(vsock->path);
	free(vsock);
	return NULL;
}
