/* Shared bits of the ev_* event-loop test clients (non-blocking connect to the FIRST address of
 * a name, wait in the client's own readiness mechanism, read the `HELLO <ip>` banner).
 *
 * Output contract (stdout): `GOT <banner>` and exit 0, or `ERR <errno name> (<where>)` and exit 1.
 * Diagnostics (stderr): one `ev <ms> <what>` line per step, times from process start.
 * Every client has a hard timeout (SIGALRM, default 10 s; third argument overrides, in seconds). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long ev_t0;

static inline const char *ev_errname(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "UNKNOWN_ERRNO";
}

static inline long ev_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline void ev_trace(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ev %ld ", ev_now_ms() - ev_t0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void ev_on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "ERR ETIMEDOUT (client hard timeout)\n";
    ssize_t r = write(1, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

/* Arguments, hard timeout, and the first getaddrinfo(AF_UNSPEC, SOCK_STREAM) result. */
static inline struct addrinfo *ev_start(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    ev_t0 = ev_now_ms();
    if (argc < 3) {
        fprintf(stderr, "usage: %s NAME PORT [TIMEOUT_S]\n", argv[0]);
        exit(2);
    }
    signal(SIGALRM, ev_on_alarm);
    alarm(argc > 3 ? (unsigned)atoi(argv[3]) : 10);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int g = getaddrinfo(argv[1], argv[2], &hints, &res);
    if (g != 0) {
        printf("ERR %s (getaddrinfo)\n", gai_strerror(g));
        exit(1);
    }
    return res;
}

static inline const char *ev_addr_str(const struct sockaddr *sa, char *buf, size_t n) {
    const void *a = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
        snprintf(buf, n, "family-%d", sa->sa_family);
        return buf;
    }
    inet_ntop(sa->sa_family, a, buf, (socklen_t)n);
    return buf;
}

/* Fatal error: print `ERR <errno> (<where>)`, exit 1. */
static inline void ev_fail(int e, const char *where) {
    printf("ERR %s (%s)\n", ev_errname(e), where);
    ev_trace("fail %s %s", ev_errname(e), where);
    exit(1);
}

/* Start the non-blocking connect on fd (already O_NONBLOCK): returns 1 if it completed at once. */
static inline int ev_connect(int fd, const struct addrinfo *ai) {
    char b[64];
    ev_trace("connect %s", ev_addr_str(ai->ai_addr, b, sizeof b));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        ev_trace("connect returned 0");
        return 1;
    }
    if (errno != EINPROGRESS) ev_fail(errno, "connect");
    ev_trace("connect EINPROGRESS");
    return 0;
}

/* SO_ERROR after the connect event: anything but 0 is fatal. Also logs the peer. */
static inline void ev_check_connected(int fd) {
    int err = -1;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) ev_fail(errno, "getsockopt");
    ev_trace("SO_ERROR %d (%s)", err, err ? ev_errname(err) : "0");
    if (err != 0) ev_fail(err, "SO_ERROR");
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char b[64];
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) ev_fail(errno, "getpeername");
    ev_trace("peer %s", ev_addr_str((struct sockaddr *)&ss, b, sizeof b));
}

/* Read the banner line without blocking: wait_readable(ctx) is the client's own mechanism,
 * called whenever read() says EAGAIN. Prints GOT/ERR and returns the exit code. */
static inline int ev_read_banner(int fd, void (*wait_readable)(int fd, void *ctx), void *ctx) {
    char buf[256];
    size_t len = 0;
    for (int i = 0; i < 64 && len < sizeof buf - 1; i++) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                ev_trace("read EAGAIN: wait");
                wait_readable(fd, ctx);
                continue;
            }
            ev_fail(errno, "read");
        }
        if (n == 0) break;
        len += (size_t)n;
        if (memchr(buf, '\n', len)) break;
    }
    buf[len] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    if (len == 0) {
        printf("ERR EOF (read)\n");
        return 1;
    }
    ev_trace("banner read");
    printf("GOT %s\n", buf);
    return 0;
}
