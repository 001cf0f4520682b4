/* Socket semantics right after connect() answered EINPROGRESS (while dnsfo may fail over):
 *   clear-nonblock  fcntl(F_SETFL, flags & ~O_NONBLOCK), then a blocking read() of the banner:
 *                   the kernel's blocking read waits through the handshake for the data
 *   fionbio         the same with ioctl(FIONBIO, 0)
 *   connect-again   clear O_NONBLOCK, then connect() again to the same address to wait for the
 *                   attempt: the kernel waits for the handshake and answers 0 (also when it had
 *                   already completed: the first connect() left the socket "connecting"), then a
 *                   blocking read() of the banner
 *   shutdown        shutdown(SHUT_RDWR) mid-connect
 *   unspec          connect({AF_UNSPEC}) mid-connect (aborts the attempt)
 * shutdown/unspec then wait 600 ms (well past dnsfo's 250 ms attempt delay: a connection dnsfo
 * let land would be there by then) and report, in this order and without blocking:
 *   line 1  `ERR <errno> (getpeername after MODE)` or `PEER <ip> (connected after MODE)`
 *   line 2  `STATE op=<0|errno> revents=<poll bits> so_error=<0|errno> read=<DATA text|EOF|errno>
 *           so_error2=<0|errno>`
 * usage: os_mode NAME PORT MODE [TIMEOUT_S] */
#include "os_common.h"
#include <sys/ioctl.h>

static int blocking_banner(int fd, const char *how) {
    char line[256];
    size_t len = 0;
    for (int i = 0; i < 64 && len < sizeof line - 1; i++) {
        ssize_t r = read(fd, line + len, sizeof line - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            char where[96];
            snprintf(where, sizeof where, "blocking read after %s", how);
            os_fail(errno, where);
        }
        if (r == 0) break;
        len += (size_t)r;
        if (memchr(line, '\n', len)) break;
    }
    line[len] = 0;
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (len == 0) os_fail(ENODATA, "blocking read: EOF");
    printf("GOT %s\n", line);
    return 0;
}

static void clear_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) os_fail(errno, "fcntl F_SETFL");
    fl = fcntl(fd, F_GETFL);
    if (fl & O_NONBLOCK) os_fail(EINVAL, "O_NONBLOCK still set");
}

static const char *err_or_0(int e, char *buf, size_t n) {
    snprintf(buf, n, "%s", e ? os_errname(e) : "0");
    return buf;
}

static void report(int fd, const char *mode, int op_errno) {
    os_sleep_ms(600);
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP | POLLPRI};
    int n = poll(&p, 1, 0);
    char rev[128] = "";
    static const struct {
        short bit;
        const char *name;
    } bits[] = {{POLLIN, "IN"}, {POLLPRI, "PRI"}, {POLLOUT, "OUT"}, {POLLERR, "ERR"},
                {POLLHUP, "HUP"}, {POLLRDHUP, "RDHUP"}, {POLLNVAL, "NVAL"}};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (n > 0 && (p.revents & bits[i].bit)) {
            if (rev[0]) strcat(rev, "|");
            strcat(rev, bits[i].name);
        }
    if (!rev[0]) strcpy(rev, n < 0 ? os_errname(errno) : "none");

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char peer[64];
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        printf("ERR %s (getpeername after %s)\n", os_errname(errno), mode);
    else
        printf("PEER %s (connected after %s)\n",
               os_addr_str((struct sockaddr *)&ss, peer, sizeof peer), mode);

    int soe = -1;
    socklen_t el = sizeof soe;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soe, &el) < 0) soe = errno;
    char buf[128];
    char rd[160];
    ssize_t r = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (r > 0) {
        buf[r] = 0;
        char *nl = strchr(buf, '\n');
        if (nl) *nl = 0;
        snprintf(rd, sizeof rd, "DATA %s", buf);
    } else {
        snprintf(rd, sizeof rd, "%s", r == 0 ? "EOF" : os_errname(errno));
    }
    int soe2 = -1;
    el = sizeof soe2;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soe2, &el) < 0) soe2 = errno;
    char a[32], b[32], c[32];
    printf("STATE op=%s revents=%s so_error=%s read=%s so_error2=%s\n", err_or_0(op_errno, a, 32),
           rev, err_or_0(soe, b, 32), rd, err_or_0(soe2, c, 32));
}

int main(int argc, char **argv) {
    const char *mode;
    struct addrinfo *ai = os_start(argc, argv, &mode);
    int fd = os_socket(ai, SOCK_NONBLOCK);
    os_connect_nb(fd, ai);

    if (strcmp(mode, "clear-nonblock") == 0) {
        clear_nonblock(fd);
        return blocking_banner(fd, "clearing O_NONBLOCK");
    }
    if (strcmp(mode, "fionbio") == 0) {
        int off = 0;
        if (ioctl(fd, FIONBIO, &off) < 0) os_fail(errno, "ioctl FIONBIO");
        return blocking_banner(fd, "FIONBIO 0");
    }
    if (strcmp(mode, "connect-again") == 0) {
        clear_nonblock(fd);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) os_fail(errno, "second connect");
        os_trace("second (blocking) connect returned 0");
        return blocking_banner(fd, "the second connect");
    }
    if (strcmp(mode, "shutdown") == 0) {
        int r = shutdown(fd, SHUT_RDWR);
        int e = r < 0 ? errno : 0;
        os_trace("shutdown(SHUT_RDWR): %s", e ? os_errname(e) : "0");
        report(fd, mode, e);
        return 0;
    }
    if (strcmp(mode, "unspec") == 0) {
        struct sockaddr sa = {.sa_family = AF_UNSPEC};
        int r = connect(fd, &sa, sizeof sa);
        int e = r < 0 ? errno : 0;
        os_trace("connect(AF_UNSPEC): %s", e ? os_errname(e) : "0");
        report(fd, mode, e);
        return 0;
    }
    os_fail(EINVAL, "MODE: clear-nonblock fionbio connect-again shutdown unspec");
    return 2;
}
