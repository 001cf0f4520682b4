/* io_uring bypasses libc (issue 5): dnsfo cannot see it, but must do no harm.  hard_uring NAME PORT
 * 1. `FIRST <ip>`: getaddrinfo(NAME), first address (AF_INET);
 * 2. socket() (through libc, so dnsfo may see it), then IORING_OP_CONNECT to that address and
 *    IORING_OP_RECV of the banner, each bounded by a 3 s timeout: `URING GOT <banner>` or
 *    `URING ERR <errno name>` (`URING SETUP ERR <name>` when io_uring itself is unavailable);
 *    the socket is closed with plain close();
 * 3. in the same process, a plain libc connect() to NAME's first address (which dnsfo fails over)
 *    and read(): `LIBC GOT <banner>` or `LIBC ERR <errno name>`.
 * Exit 0 when it ran (whatever the outcomes), 3 when io_uring could not be set up. */
#include "hard_common.h"
#include <liburing.h>

/* Submit one prepared SQE and wait (at most 3 s) for its completion; the CQE's res. */
static int submit_wait(struct io_uring *ring) {
    struct __kernel_timespec ts = { .tv_sec = 3 };
    int r = io_uring_submit(ring);
    if (r < 0) return r;
    struct io_uring_cqe *cqe;
    r = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
    if (r < 0) return r == -ETIME ? -(ETIMEDOUT + 10000) : r;
    int res = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    return res;
}

static int uring_fetch(struct io_uring *ring, const struct sockaddr *sa, socklen_t len,
                       char *out, size_t n) {
    out[0] = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return errno;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_connect(sqe, fd, sa, len);
    int r = submit_wait(ring);
    int e = r < 0 ? -r : 0;
    size_t got = 0;
    for (int i = 0; e == 0 && i < 64 && got < n - 1; i++) {
        sqe = io_uring_get_sqe(ring);
        io_uring_prep_recv(sqe, fd, out + got, n - 1 - got, 0);
        r = submit_wait(ring);
        if (r < 0) { e = -r; break; }
        if (r == 0) break;
        got += (size_t)r;
        if (memchr(out, '\n', got)) break;
    }
    out[got] = 0;
    char *nl = strchr(out, '\n');
    if (nl) *nl = 0;
    if (e == 0 && !got) e = EPIPE;
    close(fd);
    return e;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *name = argv[1], *port = argv[2];
    struct sockaddr_storage ss; socklen_t len; char ip[64];
    int g = resolve_first(name, port, AF_INET, &ss, &len);
    if (g) { printf("FIRST ERR %s\n", gai_strerror(g)); return 1; }
    printf("FIRST %s\n", ip_of((struct sockaddr *)&ss, ip, sizeof ip));

    struct io_uring ring;
    int r = io_uring_queue_init(8, &ring, 0);
    if (r < 0) { printf("URING SETUP ERR %s\n", errname(-r)); return 3; }
    char b[256];
    int e = uring_fetch(&ring, (struct sockaddr *)&ss, len, b, sizeof b);
    if (e) printf("URING ERR %s\n", ename(e)); else printf("URING GOT %s\n", b);
    io_uring_queue_exit(&ring);

    e = fetch(name, port, 0, b, sizeof b);
    if (e) printf("LIBC ERR %s\n", ename(e)); else printf("LIBC GOT %s\n", b);
    return 0;
}
