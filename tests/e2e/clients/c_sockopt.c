/* Stock C client that configures its socket before connecting (as curl/ssh do), then checks
 * that the connected fd still carries everything it set:
 *   socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC), TCP_NODELAY=1, SO_KEEPALIVE=1, SO_RCVBUF=65536,
 *   bind(BINDIP:0), connect() to gethostbyname()'s first address, read the banner.
 * Usage: c_sockopt NAME PORT BINDIP. Prints one "CHECK <what> ok|FAIL ..." line per check. */
#include "common.h"
#include <fcntl.h>

static int fails;
static void check(const char *what, int ok, const char *fmt, long a, long b) {
    printf("CHECK %s %s", what, ok ? "ok" : "FAIL");
    if (!ok) { printf(" "); printf(fmt, a, b); fails++; }
    printf("\n");
}

static int getint(int fd, int level, int opt) {
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, opt, &v, &l) < 0) return -1000 - errno;
    return v;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s NAME PORT BINDIP\n", argv[0]); return 2; }
    struct hostent *h = gethostbyname(argv[1]);
    if (!h || !h->h_addr_list[0]) { printf("ERR HOST_NOT_FOUND\n"); return 1; }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    memcpy(&sa.sin_addr, h->h_addr_list[0], sizeof sa.sin_addr);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { printf("ERR %s (socket)\n", errname(errno)); return 1; }
    int one = 1, rcv = 65536;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    int rcv_kernel = getint(fd, SOL_SOCKET, SO_RCVBUF); /* what the kernel made of 65536 */
    struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = 0 };
    if (inet_pton(AF_INET, argv[3], &src.sin_addr) != 1) { printf("ERR bad BINDIP\n"); return 2; }
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { printf("ERR %s (bind)\n", errname(errno)); return 1; }

    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { printf("ERR %s\n", errname(errno)); return 1; }
    printf("FD %d\n", fd);

    check("tcp_nodelay", getint(fd, IPPROTO_TCP, TCP_NODELAY) == 1, "got %ld want %ld",
          getint(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    check("so_keepalive", getint(fd, SOL_SOCKET, SO_KEEPALIVE) == 1, "got %ld want %ld",
          getint(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    check("so_rcvbuf", getint(fd, SOL_SOCKET, SO_RCVBUF) == rcv_kernel, "got %ld want %ld",
          getint(fd, SOL_SOCKET, SO_RCVBUF), rcv_kernel);
    int fdfl = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);
    check("fd_cloexec", fdfl >= 0 && (fdfl & FD_CLOEXEC), "F_GETFD %ld (%ld)", fdfl, 0);
    check("blocking", fl >= 0 && !(fl & O_NONBLOCK), "F_GETFL %#lx (%ld)", fl, 0);
    check("so_type", getint(fd, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, "SO_TYPE %ld want %ld",
          getint(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
    struct sockaddr_in local;
    socklen_t ll = sizeof local;
    int gs = getsockname(fd, (struct sockaddr *)&local, &ll);
    check("bound_ip", gs == 0 && local.sin_family == AF_INET &&
          local.sin_addr.s_addr == src.sin_addr.s_addr, "getsockname rc %ld addr %#lx",
          gs, (long)ntohl(local.sin_addr.s_addr));
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    char pbuf[INET_ADDRSTRLEN] = "?";
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0)
        inet_ntop(AF_INET, &peer.sin_addr, pbuf, sizeof pbuf);
    printf("PEER %s\n", pbuf);
    check("banner", print_banner(fd) == 0, "%ld%ld", 0, 0);
    close(fd);
    return fails ? 1 : 0;
}
