/* TCP Fast Open (issue 5 item 9).  hard_tfo NAME PORT
 * 1. a plain failover connect to NAME's first (dead) address: dnsfo learns the live winner, and
 *    getaddrinfo lists it first (`ORDER0 <first>`);
 * 2. sendto(MSG_FASTOPEN) to the dead address, blocking (`SENDTO <rc>/<errno>`);
 * 3. TCP_FASTOPEN_CONNECT + connect + write to the dead address, blocking and non-blocking
 *    (`TFOC <connect> <write> ...`);
 * 4. `ORDER1 <first>`: the winner is still listed first (no dead address cached as a winner),
 *    and a plain connect to the dead address still reaches the live one (`AFTER <errno> <banner>`). */
#include "hard_common.h"
#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

static void order(const char *label, const char *name, const char *port) {
    struct sockaddr_storage ss; socklen_t len; char ip[64] = "-";
    if (resolve_first(name, port, AF_INET, &ss, &len) == 0) ip_of((struct sockaddr *)&ss, ip, sizeof ip);
    printf("%s %s\n", label, ip);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    signal(SIGPIPE, SIG_IGN);
    const char *name = argv[1], *port = argv[2];
    struct sockaddr_storage dead; socklen_t dl;
    if (resolve_first(name, port, AF_INET, &dead, &dl)) return 1;
    char b[256];
    int e = fetch(name, port, 0, b, sizeof b);
    printf("FIRST %s %s\n", ename(e), b);
    order("ORDER0", name, port);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t r = sendto(fd, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&dead, dl);
    printf("SENDTO %zd/%s\n", r, r < 0 ? errname(errno) : "-");
    close(fd);

    for (int nb = 0; nb < 2; nb++) {
        fd = socket(AF_INET, SOCK_STREAM | (nb ? SOCK_NONBLOCK : 0), 0);
        int one = 1;
        int so = setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one);
        int c = connect(fd, (struct sockaddr *)&dead, dl);
        int ce = c < 0 ? errno : 0;
        ssize_t w = write(fd, "x", 1);
        int we = w < 0 ? errno : 0;
        if (nb) { struct pollfd p = { .fd = fd, .events = POLLOUT }; poll(&p, 1, 2000); }
        int soe = 0; socklen_t sl = sizeof soe; getsockopt(fd, SOL_SOCKET, SO_ERROR, &soe, &sl);
        printf("TFOC%s setsockopt=%d connect=%d/%s write=%zd/%s so_error=%s\n", nb ? "_NB" : "", so, c,
               ce ? errname(ce) : "-", w, we ? errname(we) : "-", soe ? errname(soe) : "-");
        close(fd);
    }
    order("ORDER1", name, port);
    e = fetch(name, port, 0, b, sizeof b);
    printf("AFTER %s %s\n", ename(e), b);
    return 0;
}
