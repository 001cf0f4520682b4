/* Close mid-race: a non-blocking connect to the FIRST address of NAME (a silent one), registered
 * in epoll; after ~50 ms (dnsfo still racing) the fd is given up and the same fd number is reused
 * at once for another socket. How the fd is given up (HOW, default close):
 *   close:    libc close(fd), then a new socket gets the lowest free number, the same one;
 *   sysclose: syscall(SYS_close, fd) -- what Go, io_uring or a static binary would do: libc's
 *             close (and any LD_PRELOAD hook on it) never sees it;
 *   dup2:     a new socket is dup2()'d onto the fd number (no close() of it at all).
 * The new socket is:
 *   mode tcp:  a non-blocking TCP connect to OTHER_IP:OTHER_PORT (an IP literal, another server);
 *   mode pair: one end of an AF_UNIX socketpair.
 * For ~1 s the new fd must keep its identity: same inode (fstat), same peer / family, no error;
 * then the tcp mode reads the other server's banner (`GOT HELLO <other ip>`), the pair mode
 * sends a line through the pair (`GOT PAIR-OK`). Any change: `ERR EXDEV (<what>)`, exit 1.
 * usage: ev_close_race NAME PORT OTHER_IP OTHER_PORT tcp|pair [close|sysclose|dup2] */
#include "ev_common.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

static void wait_in(int fd, void *ctx) {
    (void)ctx;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 5000) <= 0) ev_fail(ETIMEDOUT, "poll in");
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s NAME PORT OTHER_IP OTHER_PORT tcp|pair\n", argv[0]);
        return 2;
    }
    char *targv[] = {argv[0], argv[1], argv[2], NULL};
    struct addrinfo *ai = ev_start(3, targv);
    int tcp = strcmp(argv[5], "tcp") == 0;
    int ep = epoll_create1(0);
    if (ep < 0) ev_fail(errno, "epoll_create1");

    int fd1 = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd1 < 0) ev_fail(errno, "socket");
    if (ev_connect(fd1, ai)) ev_fail(EISCONN, "first connect completed at once (not silent?)");
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = 1};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd1, &ev) < 0) ev_fail(errno, "epoll_ctl ADD fd1");
    struct epoll_event got;
    int n = epoll_wait(ep, &got, 1, 50);
    ev_trace("epoll_wait 50 ms: %d event(s)%s", n, n > 0 ? " (connect finished early)" : "");
    const char *how = argc > 6 ? argv[6] : "close";
    if (strcmp(how, "close") == 0) {
        if (close(fd1) < 0) ev_fail(errno, "close fd1");
    } else if (strcmp(how, "sysclose") == 0) {
        if (syscall(SYS_close, fd1) < 0) ev_fail(errno, "SYS_close fd1");
    } else if (strcmp(how, "dup2") != 0) {
        ev_fail(EINVAL, "HOW: close, sysclose or dup2");
    }
    ev_trace("gave up fd %d mid-race (%s)", fd1, how);
    int dup2_mode = strcmp(how, "dup2") == 0;

    int fd2, peer_end = -1;
    struct sockaddr_in other = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[4]))};
    if (tcp) {
        if (inet_pton(AF_INET, argv[3], &other.sin_addr) != 1) ev_fail(EINVAL, "OTHER_IP");
        fd2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd2 < 0) ev_fail(errno, "socket 2");
    } else {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) ev_fail(errno, "socketpair");
        fd2 = sv[0];
        peer_end = sv[1];
    }
    if (dup2_mode) {
        ev_trace("dup2(%d, %d)", fd2, fd1);
        if (dup2(fd2, fd1) != fd1) ev_fail(errno, "dup2 onto fd1");
        close(fd2);
        fd2 = fd1;
    }
    ev_trace("new socket fd %d", fd2);
    if (fd2 != fd1) ev_fail(EBADF, "new socket did not reuse the fd number");
    struct stat st0;
    if (fstat(fd2, &st0) < 0) ev_fail(errno, "fstat");
    if (tcp) {
        if (connect(fd2, (struct sockaddr *)&other, sizeof other) < 0 && errno != EINPROGRESS)
            ev_fail(errno, "connect 2");
        struct pollfd p = {.fd = fd2, .events = POLLOUT};
        if (poll(&p, 1, 3000) <= 0) ev_fail(ETIMEDOUT, "poll connect 2");
        ev_check_connected(fd2);
    }
    /* ~1 s of watching: the dead name's race would have finished (attempt delay 250 ms) */
    long until = ev_now_ms() + 1000;
    int checks = 0;
    while (ev_now_ms() < until && checks < 200) {
        struct stat st;
        if (fstat(fd2, &st) < 0) ev_fail(errno, "fstat");
        if (st.st_ino != st0.st_ino || st.st_dev != st0.st_dev) ev_fail(EXDEV, "fd replaced: inode changed");
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (tcp) {
            if (getpeername(fd2, (struct sockaddr *)&ss, &sl) < 0) ev_fail(errno, "getpeername");
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            if (ss.ss_family != AF_INET || sin->sin_addr.s_addr != other.sin_addr.s_addr ||
                sin->sin_port != other.sin_port) {
                char b[64];
                ev_trace("foreign peer %s", ev_addr_str((struct sockaddr *)&ss, b, sizeof b));
                ev_fail(EXDEV, "peer changed");
            }
        } else {
            if (getsockname(fd2, (struct sockaddr *)&ss, &sl) < 0) ev_fail(errno, "getsockname");
            if (ss.ss_family != AF_UNIX) {
                char b[64];
                ev_trace("getsockname on the socketpair fd: %s", ev_addr_str((struct sockaddr *)&ss, b, sizeof b));
                ev_fail(EXDEV, "family changed");
            }
        }
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd2, SOL_SOCKET, SO_ERROR, &err, &el) < 0) ev_fail(errno, "getsockopt");
        if (err) ev_fail(err, "SO_ERROR on the new fd");
        checks++;
        usleep(20000);
    }
    ev_trace("%d checks over 1 s: fd kept its identity", checks);
    if (tcp) {
        int fl = fcntl(fd2, F_GETFL);
        fcntl(fd2, F_SETFL, fl & ~O_NONBLOCK); /* keep it simple: blocking read, bounded by alarm */
        return ev_read_banner(fd2, wait_in, NULL);
    }
    if (write(peer_end, "PAIR-OK\n", 8) != 8) ev_fail(errno, "write pair");
    return ev_read_banner(fd2, wait_in, NULL);
}
