/* An epoll fd closed and its number reused mid-failover: right after connect() answered
 * EINPROGRESS the fd is registered in epoll fd E (EPOLLIN|EPOLLOUT, data 0xDEAD0001), E is
 * closed, and a new epoll fd is made: it gets E's number. MODE empty: nothing is registered in
 * it; MODE other: only the read end of a pipe nothing is ever written to (data 0x0BEE). A wait on
 * the new epoll fd for 700 ms (past dnsfo's 250 ms attempt delay) must report no event at all:
 * the kernel dropped E's registration with E. Then the banner is read with poll().
 * A stale event: `ERR ESTALE (event data 0x... on the new epoll fd)`.
 * usage: os_epoll_reuse NAME PORT empty|other [TIMEOUT_S] */
#include "os_common.h"
#include <sys/epoll.h>

#define STALE 0xDEAD0001ULL
#define OTHER 0x0BEEULL

int main(int argc, char **argv) {
    const char *mode;
    struct addrinfo *ai = os_start(argc, argv, &mode);
    int other = strcmp(mode, "other") == 0;
    if (!other && strcmp(mode, "empty") != 0) os_fail(EINVAL, "MODE: empty other");
    int p[2] = {-1, -1};
    if (other && pipe2(p, O_NONBLOCK) < 0) os_fail(errno, "pipe2");
    int fd = os_socket(ai, SOCK_NONBLOCK);
    os_connect_nb(fd, ai);

    int e1 = epoll_create1(EPOLL_CLOEXEC);
    if (e1 < 0) os_fail(errno, "epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = STALE};
    if (epoll_ctl(e1, EPOLL_CTL_ADD, fd, &ev) < 0) os_fail(errno, "epoll_ctl ADD fd");
    if (close(e1) < 0) os_fail(errno, "close epoll fd");
    int e2 = epoll_create1(EPOLL_CLOEXEC);
    if (e2 < 0) os_fail(errno, "epoll_create1 (2)");
    os_trace("epoll fd %d closed, new epoll fd %d", e1, e2);
    if (e2 != e1) os_fail(EBADF, "the new epoll fd did not get the old number");
    if (other) {
        struct epoll_event ev2 = {.events = EPOLLIN, .data.u64 = OTHER};
        if (epoll_ctl(e2, EPOLL_CTL_ADD, p[0], &ev2) < 0) os_fail(errno, "epoll_ctl ADD pipe");
    }
    long end = os_now_ms() + 700;
    for (int i = 0; i < 100; i++) {
        long left = end - os_now_ms();
        if (left <= 0) break;
        struct epoll_event got[8];
        int n = epoll_wait(e2, got, 8, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) os_fail(errno, "epoll_wait");
        for (int k = 0; k < n; k++) {
            char where[96];
            snprintf(where, sizeof where, "event data 0x%llx events 0x%x on the new epoll fd",
                     (unsigned long long)got[k].data.u64, got[k].events);
            os_fail(ESTALE, where);
        }
    }
    os_trace("no event on the new epoll fd in 700 ms");
    return os_finish(fd);
}
