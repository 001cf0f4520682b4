/* Shared bits of the stock-style C test clients: errno names and reading the banner line. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline const char *errname(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "UNKNOWN_ERRNO";
}

static inline long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Read one line from fd (at most 255 bytes, at most 64 reads) and print "GOT <line>". */
static inline int print_banner(int fd) {
    char buf[256];
    size_t len = 0;
    for (int i = 0; i < 64 && len < sizeof buf - 1; i++) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            printf("ERR %s (read)\n", errname(errno));
            return 1;
        }
        if (n == 0) break;
        len += (size_t)n;
        if (memchr(buf, '\n', len)) break;
    }
    buf[len] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    if (len == 0) {
        printf("ERR EOF\n");
        return 1;
    }
    printf("GOT %s\n", buf);
    return 0;
}
