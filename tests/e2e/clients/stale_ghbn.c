/* A long-running C program that resolved once with gethostbyname(): connect to h_addr_list[0] and
 * read the banner; print READY and wait (at most 20 s) for a line on stdin; then connect AGAIN,
 * on a new socket, to the address saved at start (a stale cached IP).
 *
 * Usage: stale_ghbn NAME PORT
 * Output: ADDRS ip...; FIRST_MS n; FIRST GOT <banner> | FIRST ERR <errno>; READY; SECOND_MS n;
 * SECOND_PEER ip; SECOND GOT <banner> | SECOND ERR <errno>. Exit 0 when the second got a banner. */
#include "common.h"
#include <poll.h>

static struct sockaddr_in saved;

static int attempt(const char *tag) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { printf("%s ERR %s (socket)\n", tag, errname(errno)); return 1; }
    long t0 = now_ms();
    int rc = connect(fd, (struct sockaddr *)&saved, sizeof saved);
    int e = errno;
    printf("%s_MS %ld\n", tag, now_ms() - t0);
    if (rc < 0) { printf("%s ERR %s\n", tag, errname(e)); close(fd); fflush(stdout); return 1; }
    struct sockaddr_in peer; socklen_t len = sizeof peer;
    char ip[INET_ADDRSTRLEN] = "?";
    if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0)
        inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    printf("%s_PEER %s\n%s ", tag, ip, tag);
    rc = print_banner(fd);
    close(fd);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s NAME PORT\n", argv[0]); return 2; }
    struct hostent *h = gethostbyname(argv[1]);
    if (!h || !h->h_addr_list[0]) { printf("ERR HOST_NOT_FOUND\n"); return 1; }
    printf("ADDRS");
    for (char **a = h->h_addr_list; *a; a++) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, *a, ip, sizeof ip);
        printf(" %s", ip);
    }
    printf("\n");
    saved.sin_family = AF_INET;
    saved.sin_port = htons(atoi(argv[2]));
    memcpy(&saved.sin_addr, h->h_addr_list[0], sizeof saved.sin_addr);
    attempt("FIRST");
    printf("READY\n");
    fflush(stdout);
    struct pollfd p = { .fd = 0, .events = POLLIN };
    char line[64];
    if (poll(&p, 1, 20000) != 1 || !fgets(line, sizeof line, stdin)) {
        printf("NO_GO\n");
        return 3;
    }
    return attempt("SECOND");
}
