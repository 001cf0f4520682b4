/* Built with -O2 -D_FORTIFY_SOURCE=2 (tests/e2e/onesocket.py), as distributions build programs:
 * every recv() below becomes __recv_chk, which glibc implements without going through the
 * exported recv (so a shim that wraps recv does not see it; the harness checks with nm that the
 * binary imports __recv_chk). Right after connect() answered EINPROGRESS, recv() must answer as a
 * connecting socket does (EAGAIN, or data once it is there); then the banner is read with recv.
 * usage: os_fortify NAME PORT recv [TIMEOUT_S] */
#include "os_common.h"

/* Not a compile-time constant, so the fortified recv calls __recv_chk. */
static volatile size_t chunk = 255;

int main(int argc, char **argv) {
    const char *mode;
    struct addrinfo *ai = os_start(argc, argv, &mode);
    int fd = os_socket(ai, SOCK_NONBLOCK);
    os_connect_nb(fd, ai);
    char buf[256];
    size_t len = 0;
    ssize_t r = recv(fd, buf, chunk, 0);
    os_trace("recv early: %zd %s", r, r < 0 ? os_errname(errno) : "");
    if (r < 0 && errno != EAGAIN) os_fail(errno, "recv early");
    if (r > 0) len = (size_t)r;
    for (int i = 0; i < 64 && !memchr(buf, '\n', len) && len < sizeof buf - 1; i++) {
        os_wait(fd, POLLIN, "poll POLLIN");
        char part[256];
        r = recv(fd, part, chunk - len, 0); /* part's size is known: __recv_chk */
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r < 0) os_fail(errno, "recv");
        if (r == 0) break;
        memcpy(buf + len, part, (size_t)r);
        len += (size_t)r;
    }
    buf[len] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    if (len == 0) os_fail(ENODATA, "recv: EOF");
    printf("GOT %s\n", buf);
    return 0;
}
