/* Control-plane cost of bangerd, measured with the Firecracker double at
 * 0 ms boot and no capability modules, so the figures are the daemon's own
 * work plus spawning one process per VM:
 *   - create+start, stop, delete cycles: median and p90 over N cycles;
 *   - 100 concurrent creates: VMs per second;
 *   - bangerd's resident memory with 100 running VMs.
 * Prints figures; asserts nothing. Needs root (like bangerd). */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char base[64], sock_path[100];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One request; returns 0 when the final line carries a result. */
static int rpc(const char *method, const char *params, char *id_out, size_t id_len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req), "{\"v\":1,\"method\":\"%s\",\"params\":%s}\n", method,
                     params ? params : "{}");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static __thread char buf[1 << 16];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    char *last = buf, *nl;
    while ((nl = strchr(last, '\n')) && nl[1])
        last = nl + 1;
    cJSON *j = cJSON_Parse(last);
    const cJSON *res = cJSON_GetObjectItem(j, "result");
    int ok = res ? 0 : -1;
    if (!res)
        fprintf(stderr, "bench_daemon: %s: %s\n", method, last);
    if (res && id_out) {
        const cJSON *id = cJSON_GetObjectItem(res, "id");
        snprintf(id_out, id_len, "%s", cJSON_IsString(id) ? id->valuestring : "");
    }
    cJSON_Delete(j);
    return ok;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *create_one(void *arg)
{
    char params[64];
    snprintf(params, sizeof(params), "{\"name\":\"c%d\"}", (int)(long)arg);
    rpc("vm.create", params, NULL, 0);
    return NULL;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static void write_file(const char *path, const void *data, size_t len, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || pwrite(fd, data, len, at) != (ssize_t)len) {
        perror(path);
        exit(1);
    }
    close(fd);
}

int main(int argc, char **argv)
{
    int cycles = argc > 1 ? atoi(argv[1]) : 200;
    snprintf(base, sizeof(base), "/tmp/bgb-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    char conf[256], plugins[128], rootfs[128], kernel[128], text[1024];
    snprintf(conf, sizeof(conf), "%s/banger.conf", base);
    snprintf(plugins, sizeof(plugins), "%s/plugins", base);
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs.ext4", base);
    snprintf(kernel, sizeof(kernel), "%s/vmlinux", base);
    snprintf(sock_path, sizeof(sock_path), "%s/run/bangerd.sock", base);
    mkdir(plugins, 0755);
    write_file(rootfs, "\x53\xef", 2, 1024 + 56);
    write_file(kernel, "\177ELF", 4, 0);
    snprintf(text, sizeof(text),
             "state_dir = \"%s/state\";\nruntime_dir = \"%s/run\";\nplugin_dir = \"%s\";\n"
             "plugins = ( );\nfirecracker_bin = \"%s\";\nlog_level = \"warning\";\n",
             base, base, plugins, BUILDDIR "/tests/fcdouble/fc-double");
    write_file(conf, text, strlen(text), 0);

    pid_t d = fork();
    if (d == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        setenv("BANGER_CONSOLE_LOG", BUILDDIR "/core/console/banger-console-log", 0);
        execl(BUILDDIR "/core/bangerd", "bangerd", "--config", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && rpc("daemon.status", NULL, NULL, 0) < 0; i++)
        usleep(10000);
    char params[512];
    snprintf(params, sizeof(params), "{\"name\":\"default\",\"rootfs\":\"%s\",\"kernel\":\"%s\"}",
             rootfs, kernel);
    if (rpc("image.register", params, NULL, 0) < 0)
        goto out;

    /* 1. Sequential lifecycle cycles. */
    double *t_create = calloc((size_t)cycles, sizeof(double));
    double *t_cycle = calloc((size_t)cycles, sizeof(double));
    for (int i = 0; i < cycles; i++) {
        char id[32];
        double a = now_ms();
        if (rpc("vm.create", "{\"name\":\"cycle\"}", id, sizeof(id)) < 0)
            goto out;
        double b = now_ms();
        snprintf(params, sizeof(params), "{\"vm\":\"%s\"}", id);
        rpc("vm.stop", params, NULL, 0);
        rpc("vm.delete", params, NULL, 0);
        t_create[i] = b - a;
        t_cycle[i] = now_ms() - a;
    }
    qsort(t_create, (size_t)cycles, sizeof(double), cmp_double);
    qsort(t_cycle, (size_t)cycles, sizeof(double), cmp_double);
    printf("bench_daemon: %d cycles of create+start, stop, delete (double, 0 ms boot, no plugins)\n", cycles);
    printf("  create+start  median %.2f ms  p90 %.2f ms\n", t_create[cycles / 2], t_create[cycles * 9 / 10]);
    printf("  full cycle    median %.2f ms  p90 %.2f ms\n", t_cycle[cycles / 2], t_cycle[cycles * 9 / 10]);

    /* 2. 100 concurrent creates. */
    enum { N = 100 };
    pthread_t th[N];
    double a = now_ms();
    for (long i = 0; i < N; i++)
        pthread_create(&th[i], NULL, create_one, (void *)i);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    double elapsed = now_ms() - a;
    printf("  %d concurrent creates: %.0f ms, %.0f VMs/s\n", N, elapsed, N * 1000.0 / elapsed);

    /* 3. Memory with 100 running VMs. */
    printf("  bangerd RSS with %d running VMs: %.1f MiB\n", N, (double)rss_kib(d) / 1024.0);
    for (int i = 0; i < N; i++) {
        snprintf(params, sizeof(params), "{\"vm\":\"c%d\"}", i);
        rpc("vm.delete", params, NULL, 0);
    }
    free(t_create);
    free(t_cycle);
out:
    kill(d, SIGTERM);
    waitpid(d, NULL, 0);
    pid_t rm = fork();
    if (rm == 0) {
        execlp("rm", "rm", "-rf", base, (char *)NULL);
        _exit(127);
    }
    waitpid(rm, NULL, 0);
    return 0;
}
