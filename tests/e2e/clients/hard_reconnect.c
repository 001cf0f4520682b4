/* Repeated connects and odd addresses (issue 5 item 8): every case prints
 * `C <case> <step>=<rc>/<errno> ...`; tests/hardening/lookup.rs compares dnsfo's lines with libc's.
 *   hard_reconnect NAME_UP NAME_DEAD PORT
 * NAME_UP: first address up (both with and without dnsfo connect there); NAME_DEAD: every address
 * refused. Both are resolved first, so dnsfo knows every address used below. */
#include "hard_common.h"
#include <sys/un.h>

static char line[2048];
static void step(const char *label, int r) {
    size_t l = strlen(line);
    snprintf(line + l, sizeof line - l, " %s=%d/%s", label, r, r < 0 ? errname(errno) : "-");
}
static void flush_case(const char *c) { printf("C %s%s\n", c, line); line[0] = 0; fflush(stdout); }

static int wait_out(int fd, int ms) {
    struct pollfd p = { .fd = fd, .events = POLLOUT }; return poll(&p, 1, ms);
}
static int so_error(int fd) { int e = -1; socklen_t l = sizeof e; getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l); return e; }

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    const char *up = argv[1], *dead = argv[2], *port = argv[3];
    struct sockaddr_storage a_up, a_dead, a_up2; socklen_t l_up, l_dead, l_up2;
    if (resolve_first(up, port, AF_INET, &a_up, &l_up) || resolve_first(dead, port, AF_INET, &a_dead, &l_dead)) { printf("resolve failed\n"); return 1; }
    /* the second address of NAME_UP */
    { struct addrinfo h = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *r; getaddrinfo(up, port, &h, &r);
      memcpy(&a_up2, r->ai_next ? r->ai_next->ai_addr : r->ai_addr, r->ai_addrlen); l_up2 = r->ai_addrlen; freeaddrinfo(r); }
    struct sockaddr *up_sa = (struct sockaddr *)&a_up, *dead_sa = (struct sockaddr *)&a_dead, *up2_sa = (struct sockaddr *)&a_up2;
    int fd;

    /* blocking: success, then again (EISCONN), then another address of the name (EISCONN) */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    step("first", connect(fd, up_sa, l_up)); step("again", connect(fd, up_sa, l_up)); step("other", connect(fd, up2_sa, l_up2));
    close(fd); flush_case("blocking_up");

    /* blocking, all refused: refused, and refused again on the same socket */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    step("first", connect(fd, dead_sa, l_dead)); step("again", connect(fd, dead_sa, l_dead));
    close(fd); flush_case("blocking_dead");

    /* non-blocking: EINPROGRESS, at once again (EALREADY), wait, again (0: completion), again (EISCONN) */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(fd, up_sa, l_up); step("first", r);
    if (r < 0 && errno == EINPROGRESS) step("at_once", connect(fd, up_sa, l_up));
    wait_out(fd, 3000);
    step("after_wait", connect(fd, up_sa, l_up)); step("again", connect(fd, up_sa, l_up));
    close(fd); flush_case("nonblocking_up");

    /* non-blocking, all refused: the error, SO_ERROR, then connect again (twice) */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(fd, dead_sa, l_dead); step("first", r);
    wait_out(fd, 3000);
    { size_t l = strlen(line); snprintf(line + l, sizeof line - l, " so_error=%s", errname(so_error(fd))); }
    step("retry1", connect(fd, dead_sa, l_dead));
    wait_out(fd, 3000);
    step("retry2", connect(fd, dead_sa, l_dead));
    close(fd); flush_case("nonblocking_dead");

    /* UDP to an address of the name */
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    step("udp", connect(fd, dead_sa, l_dead)); step("udp_again", connect(fd, up_sa, l_up));
    close(fd); flush_case("udp");

    /* AF_UNIX: a missing path, and a stream socket pair's peer address */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX }; strcpy(un.sun_path, "/nonexistent/dnsfo-test.sock");
    step("unix_missing", connect(fd, (struct sockaddr *)&un, sizeof un));
    close(fd); flush_case("unix");

    /* AF_UNSPEC dissolves a connected TCP socket; then connect again */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    step("up", connect(fd, up_sa, l_up));
    struct sockaddr unspec = { .sa_family = AF_UNSPEC };
    step("unspec", connect(fd, &unspec, sizeof unspec));
    step("reconnect", connect(fd, up_sa, l_up));
    close(fd); flush_case("af_unspec");

    /* short, NULL and zero-length addresses to a known address */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    step("short8", connect(fd, dead_sa, 8));
    step("len2", connect(fd, dead_sa, 2));
    step("len0", connect(fd, dead_sa, 0));
    step("null", connect(fd, NULL, l_dead));
    step("null0", connect(fd, NULL, 0));
    close(fd); flush_case("short_null");

    /* family mismatch: an AF_INET address on an AF_INET6 socket, and ::ffff:a.b.c.d on AF_INET */
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    step("v4addr_on_v6sock", connect(fd, dead_sa, l_dead));
    step("v4addr_on_v6sock_up", connect(fd, up_sa, l_up));
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in6 m = { .sin6_family = AF_INET6, .sin6_port = ((struct sockaddr_in *)dead_sa)->sin_port };
    m.sin6_addr.s6_addr[10] = 0xff; m.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&m.sin6_addr.s6_addr[12], &((struct sockaddr_in *)dead_sa)->sin_addr, 4);
    step("mapped_on_v4sock", connect(fd, (struct sockaddr *)&m, sizeof m));
    close(fd);
    /* an AF_INET6 sockaddr that is too short for sockaddr_in6 */
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    step("mapped_short", connect(fd, (struct sockaddr *)&m, 16));
    close(fd); flush_case("family_mismatch");

    /* a bad fd and a non-socket fd with a known address */
    step("ebadf", connect(999, dead_sa, l_dead));
    int pfd[2]; pipe(pfd);
    step("pipe", connect(pfd[0], dead_sa, l_dead));
    close(pfd[0]); close(pfd[1]); flush_case("not_a_socket");
    return 0;
}
