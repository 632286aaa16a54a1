#include "fuzz-peer.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

int __real_socket(int domain, int type, int protocol);
int __real_connect(int fd, const struct sockaddr *addr, socklen_t len);
int __wrap_socket(int domain, int type, int protocol);
int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len);

static int fuzz_peer_fd = -1;    /* the far end: wrote the input, then SHUT_WR */
static int fuzz_ours_fd = -1;    /* handed out by the next socket() */
static int fuzz_handed_fd = -1;  /* handed out, now owned by the code under test */

int fuzz_peer_prepare(const uint8_t *data, size_t size)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    while (size > 0) {
        ssize_t w = send(sv[1], data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        data += w;
        size -= (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);
    fuzz_ours_fd = sv[0];
    fuzz_peer_fd = sv[1];
    fuzz_handed_fd = -1;
    return 0;
}

void fuzz_peer_done(void)
{
    if (fuzz_ours_fd >= 0)
        close(fuzz_ours_fd);
    if (fuzz_peer_fd >= 0)
        close(fuzz_peer_fd);
    fuzz_ours_fd = fuzz_peer_fd = fuzz_handed_fd = -1;
}

int __wrap_socket(int domain, int type, int protocol)
{
    if (domain != AF_UNIX || fuzz_ours_fd < 0)
        return __real_socket(domain, type, protocol);
    fuzz_handed_fd = fuzz_ours_fd;
    fuzz_ours_fd = -1;
    return fuzz_handed_fd;
}

int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fd >= 0 && fd == fuzz_handed_fd)
        return 0; /* already connected to the peer */
    return __real_connect(fd, addr, len);
}
