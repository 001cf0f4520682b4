/* select() client, old-style: ioctl(FIONBIO) for non-blocking, connect to the FIRST result,
 * select() on writefds + exceptfds, SO_ERROR must be 0, then select() on readfds and read. */
#include "ev_common.h"
#include <sys/ioctl.h>
#include <sys/select.h>

static void wait_for(int fd, int want_write) {
    for (int i = 0; i < 1000; i++) {
        fd_set r, w, x;
        FD_ZERO(&r);
        FD_ZERO(&w);
        FD_ZERO(&x);
        FD_SET(fd, want_write ? &w : &r);
        FD_SET(fd, &x);
        struct timeval tv = {.tv_sec = 10};
        int n = select(fd + 1, &r, &w, &x, &tv);
        if (n < 0) {
            if (errno == EINTR) continue;
            ev_fail(errno, "select");
        }
        if (n == 0) ev_fail(ETIMEDOUT, "select");
        ev_trace("select r=%d w=%d x=%d", FD_ISSET(fd, &r), FD_ISSET(fd, &w), FD_ISSET(fd, &x));
        return;
    }
}

static void wait_in(int fd, void *ctx) {
    (void)ctx;
    wait_for(fd, 0);
}

int main(int argc, char **argv) {
    struct addrinfo *ai = ev_start(argc, argv);
    int fd = socket(ai->ai_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0) ev_fail(errno, "socket");
    if (fd >= FD_SETSIZE) ev_fail(EMFILE, "FD_SETSIZE");
    int on = 1;
    if (ioctl(fd, FIONBIO, &on) < 0) ev_fail(errno, "ioctl FIONBIO");
    if (!ev_connect(fd, ai)) wait_for(fd, 1);
    ev_check_connected(fd);
    return ev_read_banner(fd, wait_in, NULL);
}
