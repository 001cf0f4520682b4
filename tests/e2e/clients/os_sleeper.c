/* POLLIN sleepers: right after connect() answered EINPROGRESS, wait for the fd to become READABLE
 * (not writable) with no timeout at all, then read the banner. The kernel wakes such a sleeper
 * when the banner arrives (or the connect fails: POLLERR, then the read says why).
 *   poll    poll({fd, POLLIN}, 1, -1)
 *   select  select(fd + 1, {fd}, NULL, NULL, NULL)
 *   ppoll   ppoll({fd, POLLIN}, 1, NULL, NULL)
 * Only the hard timeout (and the harness) bound the wait. usage: os_sleeper NAME PORT MODE [T_S] */
#include "os_common.h"
#include <sys/select.h>

static void sleep_readable(const char *mode, int fd) {
    for (int i = 0; i < 100; i++) {
        int n;
        if (strcmp(mode, "poll") == 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            n = poll(&p, 1, -1);
            if (n > 0) os_trace("poll woke: revents 0x%x", p.revents);
        } else if (strcmp(mode, "select") == 0) {
            fd_set r;
            FD_ZERO(&r);
            FD_SET(fd, &r);
            n = select(fd + 1, &r, NULL, NULL, NULL);
            if (n > 0) os_trace("select woke: readable %d", FD_ISSET(fd, &r) ? 1 : 0);
        } else if (strcmp(mode, "ppoll") == 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            n = ppoll(&p, 1, NULL, NULL);
            if (n > 0) os_trace("ppoll woke: revents 0x%x", p.revents);
        } else {
            os_fail(EINVAL, "MODE: poll select ppoll");
            return;
        }
        if (n > 0) return;
        if (n < 0 && errno != EINTR) os_fail(errno, mode);
    }
    os_fail(EINTR, "sleep_readable: 100 interruptions");
}

int main(int argc, char **argv) {
    const char *mode;
    struct addrinfo *ai = os_start(argc, argv, &mode);
    int fd = os_socket(ai, SOCK_NONBLOCK);
    os_connect_nb(fd, ai);
    char line[256];
    size_t len = 0;
    for (int i = 0; i < 16 && len < sizeof line - 1; i++) {
        sleep_readable(mode, fd);
        ssize_t r = read(fd, line + len, sizeof line - 1 - len);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r < 0) os_fail(errno, "read");
        if (r == 0) break;
        len += (size_t)r;
        if (memchr(line, '\n', len)) break;
    }
    line[len] = 0;
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (len == 0) os_fail(ENODATA, "read: EOF");
    printf("GOT %s\n", line);
    return 0;
}
