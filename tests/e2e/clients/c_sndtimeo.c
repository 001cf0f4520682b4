/* Stock C client with a send timeout: SO_SNDTIMEO (ms, default 300) bounds a blocking connect().
 * Prints "GOT <banner>" or "ERR <errno name> elapsed_ms=<n>". Usage: c_sndtimeo NAME PORT [MS] */
#include "common.h"
#include <sys/time.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s NAME PORT [MS]\n", argv[0]); return 2; }
    long ms = argc > 3 ? atol(argv[3]) : 300;
    struct hostent *h = gethostbyname(argv[1]);
    if (!h || !h->h_addr_list[0]) { printf("ERR HOST_NOT_FOUND\n"); return 1; }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    memcpy(&sa.sin_addr, h->h_addr_list[0], sizeof sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    long t0 = now_ms();
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    long el = now_ms() - t0;
    if (rc < 0) { printf("ERR %s elapsed_ms=%ld\n", errname(e), el); return 1; }
    rc = print_banner(fd);
    close(fd);
    return rc;
}
