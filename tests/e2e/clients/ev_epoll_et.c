/* Edge-triggered epoll client, nginx style: socket(SOCK_NONBLOCK), connect to the FIRST
 * getaddrinfo result, one registration EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET added after
 * EINPROGRESS, wait for the EPOLLOUT edge, SO_ERROR must be 0, then read on EPOLLIN edges. */
#include "ev_common.h"
#include <sys/epoll.h>

static int ep;

static unsigned wait_edge(int fd) {
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
    ev_fail(ELOOP, "epoll_wait loop");
    return 0;
}

static void wait_in(int fd, void *ctx) {
    (void)ctx;
    for (int i = 0; i < 100; i++)
        if (wait_edge(fd) & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) return;
}

int main(int argc, char **argv) {
    struct addrinfo *ai = ev_start(argc, argv);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) ev_fail(errno, "socket");
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) ev_fail(errno, "epoll_create1");
    int done = ev_connect(fd, ai);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) ev_fail(errno, "epoll_ctl ADD");
    if (!done) {
        for (int i = 0; i < 100; i++)
            if (wait_edge(fd) & (EPOLLOUT | EPOLLERR | EPOLLHUP)) break;
    }
    ev_check_connected(fd);
    return ev_read_banner(fd, wait_in, NULL);
}
