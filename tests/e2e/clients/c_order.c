/* Stock C client that shows the order lookups return: getaddrinfo (AF_INET, AI_CANONNAME) and
 * gethostbyname, before and after one blocking connect to the first address.
 *   GAI1 <ip> <ip> ... canon=<head's ai_canonname>
 *   CONNECT ok|ERR <errno>
 *   GAI2 ...   (after the connect)
 *   GHBN <ip> <ip> ...
 * Every list is freed with freeaddrinfo, as a stock program does. */
#include "common.h"

static struct addrinfo *lookup(const char *name, const char *port, const char *label) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    int rc = getaddrinfo(name, port, &hints, &res);
    if (rc != 0) {
        printf("%s ERR %s\n", label, gai_strerror(rc));
        exit(1);
    }
    printf("%s", label);
    for (struct addrinfo *p = res; p; p = p->ai_next) {
        char ip[64];
        inet_ntop(AF_INET, &((struct sockaddr_in *)p->ai_addr)->sin_addr, ip, sizeof ip);
        printf(" %s", ip);
    }
    printf(" canon=%s\n", res->ai_canonname ? res->ai_canonname : "(null)");
    return res;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: c_order NAME PORT\n");
        return 2;
    }
    struct addrinfo *res = lookup(argv[1], argv[2], "GAI1");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, res->ai_addr, res->ai_addrlen) == 0)
        printf("CONNECT ok\n");
    else
        printf("CONNECT ERR %s\n", errno == ECONNREFUSED ? "ECONNREFUSED" : strerror(errno));
    close(fd);
    freeaddrinfo(res);
    freeaddrinfo(lookup(argv[1], argv[2], "GAI2"));
    struct hostent *h = gethostbyname(argv[1]);
    printf("GHBN");
    for (char **a = h ? h->h_addr_list : NULL; a && *a; a++) {
        char ip[64];
        inet_ntop(AF_INET, *a, ip, sizeof ip);
        printf(" %s", ip);
    }
    printf("\n");
    return 0;
}
