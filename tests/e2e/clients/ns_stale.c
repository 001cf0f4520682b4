/* "Never slower" interactive client (tests/e2e/neverslower.py): a long-running C program that
 * resolved once. getaddrinfo(NAME, AF_INET, SOCK_STREAM) at start (the answer is kept), a
 * blocking connect to the first address and its banner; READY; wait (at most 20 s) for a line on
 * stdin; then a blocking connect AGAIN, on a new socket, to the address resolved at start.
 *
 * Usage: ns_stale NAME PORT
 * Output: `GAI1 ip...`, `C1 ms=<n> GOT <banner>` | `C1 ms=<n> ERR <ERRNO>`, `READY`, then
 * `C2 ms=<n> GOT <banner>` | `C2 ms=<n> ERR <ERRNO>` (ms: the connect call alone).
 */
#include "common.h"
#include <poll.h>
#include <sys/time.h>

static int attempt(const char *tag, const struct sockaddr *sa, socklen_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        printf("%s ms=0 ERR socket %s\n", tag, errname(errno));
        return 1;
    }
    long t0 = now_ms();
    int rc = connect(fd, sa, len);
    int e = errno;
    long el = now_ms() - t0;
    if (rc != 0) {
        printf("%s ms=%ld ERR %s\n", tag, el, errname(e));
        close(fd);
        return 1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    printf("%s ms=%ld ", tag, el);
    fflush(stdout);
    rc = print_banner(fd);
    close(fd);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s NAME PORT\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int r = getaddrinfo(argv[1], argv[2], &hints, &res);
    if (r != 0) {
        printf("GAI1 ERR %s\n", gai_strerror(r));
        return 3;
    }
    char buf[64];
    inet_ntop(AF_INET, &((const struct sockaddr_in *)res->ai_addr)->sin_addr, buf, sizeof buf);
    printf("GAI1 %s\n", buf);
    attempt("C1", res->ai_addr, res->ai_addrlen);
    printf("READY\n");
    struct pollfd p = {.fd = 0, .events = POLLIN};
    char line[64];
    if (poll(&p, 1, 20000) != 1 || !fgets(line, sizeof line, stdin)) {
        printf("NO_GO\n");
        return 3;
    }
    int rc = attempt("C2", res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return rc;
}
