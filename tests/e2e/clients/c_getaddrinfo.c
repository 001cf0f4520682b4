/* Stock C client: getaddrinfo(AF_UNSPEC, SOCK_STREAM), connect() to the first result only. */
#include "common.h"

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s NAME PORT\n", argv[0]); return 2; }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
    int g = getaddrinfo(argv[1], argv[2], &hints, &res);
    if (g != 0) { printf("ERR %s\n", gai_strerror(g)); return 1; }
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0) { printf("ERR %s (socket)\n", errname(errno)); return 1; }
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) { printf("ERR %s\n", errname(errno)); return 1; }
    freeaddrinfo(res);
    int rc = print_banner(fd);
    close(fd);
    return rc;
}
