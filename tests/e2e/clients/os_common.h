/* Shared bits of the os_* clients (issue 11, "one socket"; tests/e2e/onesocket.py and
 * tests/onesocket.rs).
 *
 * Every client: `os_<x> NAME PORT MODE [TIMEOUT_S]`. It resolves NAME with getaddrinfo(AF_UNSPEC,
 * SOCK_STREAM), connects a NON-BLOCKING TCP socket to the FIRST address only (os_cancel and
 * os_reuse_pipe: a blocking one), does the one thing MODE names right after connect() answered
 * EINPROGRESS (while dnsfo may still be failing over), then waits and reads the server's banner.
 *
 * Output contract (stdout, unbuffered): first line `GOT <banner line>` and exit 0, or
 * `ERR <errno name> (<where>)` and exit 1; some clients add lines after it (documented in each).
 * Diagnostics (stderr): `os <ms> <what>` lines, times from process start.
 * Hard timeout: SIGALRM after TIMEOUT_S (default 5) prints `ERR ETIMEDOUT (client hard timeout)`
 * and exits 1; the harness also kills the whole process group after its own timeout. Every wait
 * below is bounded in time, every loop in count. */
#ifndef OS_COMMON_H
#define OS_COMMON_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long one wait for readiness may take (the harness's scenarios need < 1 s). */
#define OS_WAIT_MS 4000

static long os_t0;

static inline const char *os_errname(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "UNKNOWN_ERRNO";
}

static inline long os_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline void os_trace(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "os %ld [%d] ", os_now_ms() - os_t0, (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void os_on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "ERR ETIMEDOUT (client hard timeout)\n";
    ssize_t r = write(1, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

static inline void os_sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Fatal error: print `ERR <errno> (<where>)`, exit 1. */
static inline void os_fail(int e, const char *where) {
    printf("ERR %s (%s)\n", os_errname(e), where);
    os_trace("fail %s %s", os_errname(e), where);
    exit(1);
}

static inline const char *os_addr_str(const struct sockaddr *sa, char *buf, size_t n) {
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)n);
    else
        snprintf(buf, n, "family-%d", sa->sa_family);
    return buf;
}

/* Arguments (NAME PORT MODE [TIMEOUT_S]), hard timeout, first getaddrinfo result. */
static inline struct addrinfo *os_start(int argc, char **argv, const char **mode) {
    setvbuf(stdout, NULL, _IONBF, 0);
    os_t0 = os_now_ms();
    if (argc < 4) {
        fprintf(stderr, "usage: %s NAME PORT MODE [TIMEOUT_S]\n", argv[0]);
        exit(2);
    }
    *mode = argv[3];
    signal(SIGALRM, os_on_alarm);
    alarm(argc > 4 ? (unsigned)atoi(argv[4]) : 5);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int g = getaddrinfo(argv[1], argv[2], &hints, &res);
    if (g != 0) {
        printf("ERR %s (getaddrinfo)\n", gai_strerror(g));
        exit(1);
    }
    char b[64];
    os_trace("first address %s", os_addr_str(res->ai_addr, b, sizeof b));
    return res;
}

/* A socket for the first address; `flags` e.g. SOCK_NONBLOCK. */
static inline int os_socket(const struct addrinfo *ai, int flags) {
    int fd = socket(ai->ai_family, SOCK_STREAM | flags, 0);
    if (fd < 0) os_fail(errno, "socket");
    return fd;
}

/* Non-blocking connect to the first address: 1 if it completed at once, 0 on EINPROGRESS. */
static inline int os_connect_nb(int fd, const struct addrinfo *ai) {
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        os_trace("connect returned 0");
        return 1;
    }
    if (errno != EINPROGRESS) os_fail(errno, "connect");
    os_trace("connect EINPROGRESS");
    return 0;
}

/* poll(fd, events) until something is reported, at most OS_WAIT_MS: the revents. */
static inline short os_wait(int fd, short events, const char *where) {
    long end = os_now_ms() + OS_WAIT_MS;
    for (int i = 0; i < 1000; i++) {
        long left = end - os_now_ms();
        if (left <= 0) break;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) os_fail(errno, where);
        if (n > 0) return p.revents;
    }
    os_fail(ETIMEDOUT, where);
    return 0;
}

/* Wait until fd's connect finished (POLLOUT), check SO_ERROR, return the peer's address. */
static inline void os_wait_connected(int fd, char *peer, size_t n) {
    short re = os_wait(fd, POLLOUT, "poll POLLOUT");
    int err = -1;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) os_fail(errno, "getsockopt SO_ERROR");
    os_trace("fd %d POLLOUT revents 0x%x SO_ERROR %s", fd, re, err ? os_errname(err) : "0");
    if (err != 0) os_fail(err, "SO_ERROR");
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) os_fail(errno, "getpeername");
    os_addr_str((struct sockaddr *)&ss, peer, n);
    os_trace("fd %d peer %s", fd, peer);
}

/* Read one line (the banner) from fd, waiting with poll whenever read() says EAGAIN. Returns
 * 0 and fills `line` (without the newline), or an errno (ENODATA for EOF before any byte). */
static inline int os_read_line(int fd, char *line, size_t n) {
    size_t len = 0;
    for (int i = 0; i < 64 && len < n - 1; i++) {
        ssize_t r = read(fd, line + len, n - 1 - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                os_wait(fd, POLLIN, "poll POLLIN");
                continue;
            }
            return errno;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (memchr(line, '\n', len)) break;
    }
    line[len] = 0;
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    return len == 0 ? ENODATA : 0;
}

/* Read the banner and print `GOT <banner>` (0) or `ERR ...` (1): the exit code. */
static inline int os_print_banner(int fd) {
    char line[256];
    int e = os_read_line(fd, line, sizeof line);
    if (e != 0) {
        printf("ERR %s (read)\n", os_errname(e));
        return 1;
    }
    os_trace("banner read from fd %d", fd);
    printf("GOT %s\n", line);
    return 0;
}

/* Wait for the connect on fd, then read and print the banner: the exit code. */
static inline int os_finish(int fd) {
    char peer[64];
    os_wait_connected(fd, peer, sizeof peer);
    return os_print_banner(fd);
}

/* Exit code of a child (bounded by the process's alarm); 128+signal if it was killed. */
static inline int os_wait_child(pid_t pid) {
    int st = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &st, 0) == pid) break;
        if (errno != EINTR) os_fail(errno, "waitpid");
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return 125;
}

#endif
