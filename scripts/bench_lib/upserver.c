/* upserver: the benchmark's "up" servers, fast enough for tens of thousands of connects.
 *
 *   upserver LIFETIME_S IP:PORT [IP:PORT...]
 *
 * One listener per address (backlog 4096), one epoll thread each. A connection is accepted and
 * watched; when the client closes (EOF) the server closes too, with SO_LINGER 0, so neither side
 * keeps a TIME_WAIT socket: a run makes ~100k connects to a few addresses, and TIME_WAIT sockets
 * would fill the ephemeral port range and make connect() slower as the run goes on. When the
 * client sends data instead (curl's request) the server closes at once (the client has its
 * connect time already). Never an RST before the client's close: a connect can never see an
 * error after the handshake.
 * Prints "READY" once every listener is bound. Stops by itself after LIFETIME_S seconds (alarm),
 * or as soon as its stdin reaches EOF (the bench finished or died). 127.0.0.0/8 addresses only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void drop(int ep, int c) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL);
    close(c);
}

static void *serve(void *arg) {
    int lfd = (int)(long)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("upserver: epoll");
        exit(2);
    }
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno != EINTR) {
            perror("upserver: epoll_wait");
            exit(2);
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (int k = 0; k < 64; k++) { /* drain the accept queue, bounded per wake-up */
                    int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                    if (c < 0) break;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) close(c);
                }
            } else {
                /* EOF, data or error: done with it either way */
                drop(ep, fd);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: upserver LIFETIME_S IP:PORT...\n");
        return 2;
    }
    int lifetime = atoi(argv[1]);
    if (lifetime <= 0 || lifetime > 3600) lifetime = 300;
    alarm((unsigned)lifetime); /* default action: terminate */
    for (int i = 2; i < argc; i++) {
        char ip[64];
        const char *colon = strrchr(argv[i], ':');
        if (!colon || (size_t)(colon - argv[i]) >= sizeof ip) return 2;
        memcpy(ip, argv[i], (size_t)(colon - argv[i]));
        ip[colon - argv[i]] = 0;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
        if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
            fprintf(stderr, "upserver: %s: only 127.0.0.0/8 addresses\n", argv[i]);
            return 2;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
            fprintf(stderr, "upserver: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(long)fd) != 0) return 2;
        pthread_detach(t);
    }
    printf("READY\n");
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
}
