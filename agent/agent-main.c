/* banger-vsock-agent: the guest side of banger's vsock channel. */
#include "config.h"

#include "agent-info.h"
#include "agent-proto.h"
#include "agent-server.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define AGENT_MAX_CLIENTS 256
#define AGENT_IDLE_TIMEOUT_MS 60000

struct agent_listen {
    int vsock;                  /* 1: AF_VSOCK port; 0: Unix socket path */
    unsigned port;
    const char *path;
};

static void agent_usage(FILE *f)
{
    fprintf(f,
            "usage: " AGENT_NAME " [--listen vsock:PORT | --listen unix:PATH] [--port PORT] [PORT]\n"
            "Answers banger's health and ports requests (default vsock port %u).\n",
            AGENT_DEFAULT_PORT);
}

static int agent_parse_port(const char *s, unsigned *port)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    /* VMADDR_PORT_ANY (2^32-1) is not a port one can listen on by number. */
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v >= VMADDR_PORT_ANY)
        return -EINVAL;
    *port = (unsigned)v;
    return 0;
}

static int agent_parse_listen(const char *spec, struct agent_listen *l)
{
    if (strncmp(spec, "vsock:", 6) == 0) {
        l->vsock = 1;
        return agent_parse_port(spec + 6, &l->port);
    }
    if (strncmp(spec, "unix:", 5) == 0 && spec[5] != '\0') {
        l->vsock = 0;
        l->path = spec + 5;
        return 0;
    }
    return -EINVAL;
}

static int agent_open_listener(const struct agent_listen *l, char *why, size_t why_len)
{
    int fd = -1, r;

    if (l->vsock) {
        struct sockaddr_vm sa = {
            .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = l->port};

        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            r = -errno;
            snprintf(why, why_len, "vsock socket: %s (is the virtio-vsock driver loaded?)",
                     strerror(errno));
            goto cleanup;
        }
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            r = -errno;
            snprintf(why, why_len, "bind vsock port %u: %s", l->port, strerror(errno));
            goto cleanup;
        }
    } else {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (strlen(l->path) >= sizeof(sa.sun_path)) {
            r = -ENAMETOOLONG;
            snprintf(why, why_len, "unix socket path too long: %s", l->path);
            goto cleanup;
        }
        strcpy(sa.sun_path, l->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            r = -errno;
            snprintf(why, why_len, "bind %s: %s", l->path, strerror(errno));
            goto cleanup;
        }
    }
    if (listen(fd, 128) < 0) {
        r = -errno;
        snprintf(why, why_len, "listen: %s", strerror(errno));
        goto cleanup;
    }
    return fd;
cleanup:
    if (fd >= 0)
        close(fd);
    return r;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"port", required_argument, NULL, 'p'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct agent_listen l = {.vsock = 1, .port = AGENT_DEFAULT_PORT};
    struct agent_server_opts opts = {
        .listen_fd = -1, .stop_fd = -1, .proc_root = "/proc",
        .max_clients = AGENT_MAX_CLIENTS, .idle_timeout_ms = AGENT_IDLE_TIMEOUT_MS};
    char why[PATH_MAX + 128] = "";
    sigset_t stop_signals;
    int opt, r, status = EXIT_FAILURE;

    while ((opt = getopt_long(argc, argv, "l:p:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (agent_parse_listen(optarg, &l) < 0) {
                fprintf(stderr, AGENT_NAME ": bad --listen '%s' (want vsock:PORT or unix:PATH)\n",
                        optarg);
                return EXIT_FAILURE;
            }
            break;
        case 'p':
            l.vsock = 1;
            if (agent_parse_port(optarg, &l.port) < 0) {
                fprintf(stderr, AGENT_NAME ": bad port '%s'\n", optarg);
                return EXIT_FAILURE;
            }
            break;
        case 'V':
            printf(AGENT_NAME " %s (protocol %d)\n", PACKAGE_VERSION, AGENT_PROTO_VERSION);
            return EXIT_SUCCESS;
        case 'h':
            agent_usage(stdout);
            return EXIT_SUCCESS;
        default:
            agent_usage(stderr);
            return EXIT_FAILURE;
        }
    }
    if (optind < argc) {
        l.vsock = 1;
        if (optind + 1 != argc || agent_parse_port(argv[optind], &l.port) < 0) {
            agent_usage(stderr);
            return EXIT_FAILURE;
        }
    }

    /* Stop cleanly on SIGTERM/SIGINT; a vanished peer must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_signals, NULL) < 0 ||
        (opts.stop_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        fprintf(stderr, AGENT_NAME ": signalfd: %s\n", strerror(errno));
        goto cleanup;
    }
    opts.listen_fd = agent_open_listener(&l, why, sizeof(why));
    if (opts.listen_fd < 0) {
        fprintf(stderr, AGENT_NAME ": %s\n", why);
        goto cleanup;
    }
    if (l.vsock)
        fprintf(stderr, AGENT_NAME ": listening on vsock port %u\n", l.port);
    else
        fprintf(stderr, AGENT_NAME ": listening on %s\n", l.path);

    r = agent_server_run(&opts, why, sizeof(why));
    if (r < 0) {
        fprintf(stderr, AGENT_NAME ": %s\n", why);
        goto cleanup;
    }
    status = EXIT_SUCCESS;
cleanup:
    if (opts.listen_fd >= 0) {
        close(opts.listen_fd);
        if (!l.vsock)
            unlink(l.path);
    }
    if (opts.stop_fd >= 0)
        close(opts.stop_fd);
    return status;
}
