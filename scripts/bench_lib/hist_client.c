/* hist_client: the "RTT history" client of scripts/bench. A process that first makes healthy
 * connects (so that dnsfo learns the round trip of the name), then one timed connect.
 *
 *   hist_client seq NAME PORT WARM_IP K TIMED_IP
 *
 * With K > 0: getaddrinfo(NAME, AF_INET) and K blocking connects to WARM_IP (untimed, each must
 * succeed: these are the history). Then a fresh getaddrinfo(NAME) (timed) and one blocking
 * connect (timed) to TIMED_IP. Both IPs must be addresses of NAME; they are given by value, not
 * by their place in the answer, because dnsfo may reorder the answer once it knows which
 * address is live (that order is printed). TIMED_IP "first": the answer's first address, as a
 * program would. Prints
 *   "OK <lookup_us> <connect_us> <peer> <rtt_us> <rttvar_us> <warm_rtt_us> <warm_rttvar_us>
 *       <first address>"
 * where rtt/rttvar are the kernel's tcpi_rtt/tcpi_rttvar of the timed connect's socket and
 * warm_rtt_us/warm_rttvar_us those of the last warm-up connect (0 when K = 0). With K = 0 it is a process's first
 * lookup + connect. Exit 0; 1 with "ERR ..." when a connect fails. Figures are taken inside the
 * process with clock_gettime(CLOCK_MONOTONIC). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char first[64]; /* the first address of the last lookup */

/* getaddrinfo(name, AF_INET); returns ip if it is one of the addresses ("first": the first
 * one); exits on failure */
static struct sockaddr_in lookup(const char *name, int port, const char *ip) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res, *p;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        printf("ERR getaddrinfo %s: %s\n", name, gai_strerror(rc));
        exit(1);
    }
    inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, first, sizeof first);
    for (p = res; p; p = p->ai_next) {
        char a[64];
        inet_ntop(AF_INET, &((struct sockaddr_in *)p->ai_addr)->sin_addr, a, sizeof a);
        if (!strcmp(ip, "first") || !strcmp(a, ip)) break;
    }
    if (!p) {
        printf("ERR %s has no address %s\n", name, ip);
        exit(1);
    }
    struct sockaddr_in sa = *(struct sockaddr_in *)p->ai_addr;
    sa.sin_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return sa;
}

/* one blocking connect; 0 or errno; peer and the socket's RTT figures noted */
static int one(const struct sockaddr_in *sa, char *peer, size_t plen, unsigned *rtt,
               unsigned *rttvar, long long *t_end) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return errno;
    int r = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
    int e = r == 0 ? 0 : errno;
    if (t_end) *t_end = now_ns();
    snprintf(peer, plen, "-");
    *rtt = *rttvar = 0;
    if (e == 0) {
        struct sockaddr_in pa;
        socklen_t len = sizeof pa;
        if (getpeername(fd, (struct sockaddr *)&pa, &len) == 0)
            inet_ntop(AF_INET, &pa.sin_addr, peer, (socklen_t)plen);
        struct tcp_info ti;
        len = sizeof ti;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
            *rtt = ti.tcpi_rtt;
            *rttvar = ti.tcpi_rttvar;
        }
    }
    close(fd);
    return e;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 7 || strcmp(argv[1], "seq") != 0) {
        fprintf(stderr, "usage: hist_client seq NAME PORT WARM_IP K TIMED_IP|first\n");
        return 2;
    }
    const char *name = argv[2];
    int port = atoi(argv[3]);
    const char *warm_ip = argv[4], *timed_ip = argv[6];
    long k = atol(argv[5]);
    if (k < 0) k = 0;
    if (k > 1000) k = 1000;
    char peer[64];
    unsigned rtt = 0, rttvar = 0, warm_rtt = 0, warm_var = 0;
    if (k > 0) {
        struct sockaddr_in w = lookup(name, port, warm_ip);
        for (long i = 0; i < k; i++) {
            int e = one(&w, peer, sizeof peer, &warm_rtt, &warm_var, NULL);
            if (e) {
                printf("ERR warm-up connect %ld: %s\n", i, strerrorname_np(e));
                return 1;
            }
        }
    }
    long long t0 = now_ns();
    struct sockaddr_in sa = lookup(name, port, timed_ip);
    long long t1 = now_ns(), t2 = 0;
    int e = one(&sa, peer, sizeof peer, &rtt, &rttvar, &t2);
    if (e) {
        printf("ERR connect %s\n", strerrorname_np(e));
        return 1;
    }
    printf("OK %.1f %.1f %s %u %u %u %u %s\n", (t1 - t0) / 1e3, (t2 - t1) / 1e3, peer, rtt, rttvar,
           warm_rtt, warm_var, first);
    return 0;
}
