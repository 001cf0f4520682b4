/* EPOLLONESHOT client: ADD EPOLLOUT|EPOLLONESHOT, wait, SO_ERROR must be 0, then re-arm with
 * EPOLL_CTL_MOD EPOLLIN|EPOLLONESHOT before every read wait (each MOD must succeed). */
#include "ev_common.h"
#include <sys/epoll.h>

static int ep;

static unsigned wait_one(int fd) {
    struct epoll_event ev;
    for (int i = 0; i < 1000; i++) {
        int n = epoll_wait(ep, &ev, 1, 10000);
        if (n < 0) {
            if (errno == EINTR) continue;
            ev_fail(errno, "epoll_wait");
        }
        if (n == 0) ev_fail(ETIMEDOUT, "epoll_wait");
        if (ev.data.fd != fd) ev_fail(EBADF, "epoll data");
        ev_trace("epoll event 0x%x", ev.events);
        return ev.events;
    }
    return 0;
}

static void wait_in(int fd, void *ctx) {
    (void)ctx;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) ev_fail(errno, "epoll_ctl MOD");
    ev_trace("epoll_ctl MOD EPOLLIN|EPOLLONESHOT ok");
    wait_one(fd);
}

int main(int argc, char **argv) {
    struct addrinfo *ai = ev_start(argc, argv);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) ev_fail(errno, "socket");
    ep = epoll_create1(0);
    if (ep < 0) ev_fail(errno, "epoll_create1");
    int done = ev_connect(fd, ai);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) ev_fail(errno, "epoll_ctl ADD");
    if (!done) wait_one(fd);
    ev_check_connected(fd);
    return ev_read_banner(fd, wait_in, NULL);
}
