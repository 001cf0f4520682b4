/* Shared helpers of the hardening clients (tests/e2e/hardening/, issue 5). */
#ifndef HARD_COMMON_H
#define HARD_COMMON_H
#include "common.h"
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

/* First address of getaddrinfo(name, port, family, SOCK_STREAM). 0 or the EAI_ code. */
static inline int resolve_first(const char *name, const char *port, int family,
                                struct sockaddr_storage *ss, socklen_t *len) {
    struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM }, *res;
    int g = getaddrinfo(name, port, &hints, &res);
    if (g != 0) return g;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static inline const char *ip_of(const struct sockaddr *sa, char *buf, size_t n) {
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, n);
    else
        snprintf(buf, n, "family%d", sa->sa_family);
    return buf;
}

/* Non-blocking connect completed with poll (timeout_ms); 0 or an errno. */
static inline int connect_nb(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int r = connect(fd, sa, len);
    int e = r == 0 ? 0 : errno;
    if (r < 0 && e == EINPROGRESS) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n = poll(&p, 1, timeout_ms);
        if (n == 0) e = ETIMEDOUT + 10000; /* marker: the client's own bound expired */
        else if (n < 0) e = errno;
        else {
            int soe = 0; socklen_t sl = sizeof soe;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soe, &sl) < 0) e = errno; else e = soe;
        }
    }
    fcntl(fd, F_SETFL, fl);
    return e;
}

static inline int connect_block(int fd, const struct sockaddr *sa, socklen_t len) {
    return connect(fd, sa, len) == 0 ? 0 : errno;
}

/* Resolve NAME (AF_INET), connect to the first address, read the banner into out. 0 or errno. */
static inline int fetch(const char *name, const char *port, int nonblocking, char *out, size_t n) {
    struct sockaddr_storage ss; socklen_t len;
    out[0] = 0;
    if (resolve_first(name, port, AF_INET, &ss, &len) != 0) return ENOENT;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return errno;
    int e = nonblocking ? connect_nb(fd, (struct sockaddr *)&ss, len, 4000)
                        : connect_block(fd, (struct sockaddr *)&ss, len);
    if (e == 0) {
        size_t got = 0;
        for (int i = 0; i < 64 && got < n - 1; i++) {
            struct pollfd p = { .fd = fd, .events = POLLIN };
            if (poll(&p, 1, 3000) <= 0) break;
            ssize_t r = read(fd, out + got, n - 1 - got);
            if (r <= 0) break;
            got += (size_t)r;
            if (memchr(out, '\n', got)) break;
        }
        out[got] = 0;
        char *nl = strchr(out, '\n');
        if (nl) *nl = 0;
        if (!got) e = EPIPE;
    }
    close(fd);
    return e;
}

static inline const char *ename(int e) {
    if (e == ETIMEDOUT + 10000) return "CLIENT_TIMEOUT";
    return e ? errname(e) : "OK";
}

/* Open fds of this process, as "n:target" joined by spaces (targets of sockets/pipes shortened). */
static inline int list_fds(char *out, size_t n, int *count) {
    DIR *d = opendir("/proc/self/fd");
    int dfd = d ? dirfd(d) : -1, c = 0;
    size_t used = 0;
    out[0] = 0;
    int fds[4096]; int nf = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) && nf < 4096) {
        if (de->d_name[0] == '.') continue;
        int fd = atoi(de->d_name);
        if (fd == dfd) continue;
        fds[nf++] = fd;
    }
    /* sort */
    for (int i = 1; i < nf; i++) for (int j = i; j > 0 && fds[j-1] > fds[j]; j--) { int t = fds[j]; fds[j] = fds[j-1]; fds[j-1] = t; }
    for (int i = 0; i < nf; i++) {
        char path[64], tgt[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        ssize_t l = readlink(path, tgt, sizeof tgt - 1);
        tgt[l > 0 ? l : 0] = 0;
        char *br = strchr(tgt, '[');
        if (br && (!strncmp(tgt, "socket:", 7) || !strncmp(tgt, "pipe:", 5))) *br = 0;
        used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%d:%s", c ? " " : "", fds[i], tgt);
        c++;
    }
    if (d) closedir(d);
    if (count) *count = c;
    return c;
}

static inline int count_fds(void) { char buf[16384]; int c; list_fds(buf, sizeof buf, &c); return c; }
#endif
