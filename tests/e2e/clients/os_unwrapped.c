/* Calls dnsfo does not wrap, made on the fd right after connect() answered EINPROGRESS ("early")
 * and, for the sending calls, once more after the connect completed ("late"); then the banner is
 * read as usual. What the kernel answers for a connecting TCP socket:
 *   fstat     S_ISSOCK
 *   sendfile  1 byte from a memfd: EAGAIN while the handshake runs (or 1 if it is already done);
 *             late: 1
 *   splice    1 byte from a pipe into the socket: EAGAIN or 1; late: 1
 *   sendmmsg  one 1-byte message: EAGAIN or 1; late: 1
 *   siocoutq  ioctl(SIOCOUTQ): 0 (nothing queued yet); late: succeeds
 *   fdopen    fdopen(fd, "r+") succeeds; the banner is then read with fgets
 * Any other answer: `ERR <errno> (<mode> early|late ...)`. The up servers read what they are sent
 * (tests/e2e/onesocket.py) so the bytes cost nothing. usage: os_unwrapped NAME PORT MODE [T_S] */
#include "os_common.h"
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>

/* One byte out through `mode`'s call: the call's result, errno kept. */
static ssize_t send_one(const char *mode, int fd) {
    if (strcmp(mode, "sendfile") == 0) {
        int m = memfd_create("os-sendfile", 0);
        if (m < 0 || write(m, "s", 1) != 1) os_fail(errno, "memfd");
        off_t off = 0;
        ssize_t r = sendfile(fd, m, &off, 1);
        int e = errno;
        close(m);
        errno = e;
        return r;
    }
    if (strcmp(mode, "splice") == 0) {
        int p[2];
        if (pipe(p) < 0 || write(p[1], "p", 1) != 1) os_fail(errno, "pipe");
        ssize_t r = splice(p[0], NULL, fd, NULL, 1, SPLICE_F_NONBLOCK);
        int e = errno;
        close(p[0]);
        close(p[1]);
        errno = e;
        return r;
    }
    /* sendmmsg */
    char byte = 'm';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct mmsghdr mm = {.msg_hdr = {.msg_iov = &iov, .msg_iovlen = 1}};
    return sendmmsg(fd, &mm, 1, MSG_DONTWAIT);
}

static void check_send(const char *mode, int fd, int late) {
    char where[64];
    ssize_t r = send_one(mode, fd);
    snprintf(where, sizeof where, "%s %s", mode, late ? "late" : "early");
    os_trace("%s: %zd %s", where, r, r < 0 ? os_errname(errno) : "");
    if (r == 1) return;
    if (r < 0 && errno == EAGAIN && !late) return;
    os_fail(r < 0 ? errno : EPROTO, where);
}

int main(int argc, char **argv) {
    const char *mode;
    struct addrinfo *ai = os_start(argc, argv, &mode);
    int fd = os_socket(ai, SOCK_NONBLOCK);
    os_connect_nb(fd, ai);
    char peer[64];

    if (strcmp(mode, "fstat") == 0) {
        struct stat st;
        if (fstat(fd, &st) < 0) os_fail(errno, "fstat");
        os_trace("fstat: mode 0%o", (unsigned)st.st_mode);
        if (!S_ISSOCK(st.st_mode))
            os_fail(ENOTSOCK, S_ISFIFO(st.st_mode) ? "fstat: a FIFO" : "fstat: not a socket");
        return os_finish(fd);
    }
    if (strcmp(mode, "sendfile") == 0 || strcmp(mode, "splice") == 0 ||
        strcmp(mode, "sendmmsg") == 0) {
        check_send(mode, fd, 0);
        os_wait_connected(fd, peer, sizeof peer);
        check_send(mode, fd, 1);
        return os_print_banner(fd);
    }
    if (strcmp(mode, "siocoutq") == 0) {
        int q = -1;
        if (ioctl(fd, SIOCOUTQ, &q) < 0) os_fail(errno, "ioctl SIOCOUTQ early");
        os_trace("SIOCOUTQ early: %d", q);
        if (q != 0) os_fail(EPROTO, "SIOCOUTQ early: bytes queued before any send");
        os_wait_connected(fd, peer, sizeof peer);
        if (ioctl(fd, SIOCOUTQ, &q) < 0) os_fail(errno, "ioctl SIOCOUTQ late");
        os_trace("SIOCOUTQ late: %d", q);
        return os_print_banner(fd);
    }
    if (strcmp(mode, "fdopen") == 0) {
        FILE *f = fdopen(fd, "r+");
        if (!f) os_fail(errno, "fdopen");
        os_wait_connected(fileno(f), peer, sizeof peer);
        char line[256];
        for (int i = 0; i < 16; i++) {
            os_wait(fileno(f), POLLIN, "poll POLLIN");
            if (fgets(line, sizeof line, f)) {
                char *nl = strchr(line, '\n');
                if (nl) *nl = 0;
                printf("GOT %s\n", line);
                return 0;
            }
            if (feof(f)) os_fail(ENODATA, "fgets: EOF");
            if (errno != EAGAIN) os_fail(errno, "fgets");
            clearerr(f);
        }
        os_fail(EAGAIN, "fgets: 16 tries");
    }
    os_fail(EINVAL, "MODE: fstat sendfile splice sendmmsg siocoutq fdopen");
    return 2;
}
