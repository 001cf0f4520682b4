/* Strict level-triggered poll() client: fcntl(O_NONBLOCK), connect to the FIRST result,
 * poll(POLLOUT); POLLERR/POLLHUP or any SO_ERROR other than 0 is fatal (as curl judges a
 * connect); then poll(POLLIN) and read. */
#include "ev_common.h"
#include <poll.h>

static short wait_for(int fd, short what) {
    for (int i = 0; i < 1000; i++) {
        struct pollfd p = {.fd = fd, .events = what};
        int n = poll(&p, 1, 10000);
        if (n < 0) {
            if (errno == EINTR) continue;
            ev_fail(errno, "poll");
        }
        if (n == 0) ev_fail(ETIMEDOUT, "poll");
        ev_trace("poll revents 0x%x", p.revents);
        if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            ev_fail(err ? err : EIO, p.revents & POLLERR ? "POLLERR" : "POLLHUP");
        }
        return p.revents;
    }
    return 0;
}

static void wait_in(int fd, void *ctx) {
    (void)ctx;
    wait_for(fd, POLLIN);
}

int main(int argc, char **argv) {
    struct addrinfo *ai = ev_start(argc, argv);
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) ev_fail(errno, "socket");
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) ev_fail(errno, "fcntl");
    if (!ev_connect(fd, ai)) wait_for(fd, POLLOUT);
    ev_check_connected(fd);
    return ev_read_banner(fd, wait_in, NULL);
}
