/* Stock C client: gethostbyname(), connect() to h_addr_list[0] only, read the banner. */
#include "common.h"

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s NAME PORT\n", argv[0]); return 2; }
    struct hostent *h = gethostbyname(argv[1]);
    if (!h || !h->h_addr_list[0]) { printf("ERR HOST_NOT_FOUND\n"); return 1; }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    memcpy(&sa.sin_addr, h->h_addr_list[0], sizeof sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { printf("ERR %s (socket)\n", errname(errno)); return 1; }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { printf("ERR %s\n", errname(errno)); return 1; }
    int rc = print_banner(fd);
    close(fd);
    return rc;
}
