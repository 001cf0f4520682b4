/* "Never slower" client (tests/e2e/neverslower.py): getaddrinfo(NAME, AF_INET, SOCK_STREAM),
 * then a connect to the FIRST address, timed around the connect call alone.
 *
 * Usage: ns_connect [OPTIONS] NAME PORT
 *   --sndtimeo MS      SO_SNDTIMEO on the (blocking) socket
 *   --sndtimeo-new US  SO_SNDTIMEO_NEW (67, struct { int64 sec, usec; }) on the socket, and after
 *                      the connect print getsockopt(SOL_SOCKET, SO_SNDTIMEO) (and _NEW)
 *   --poll MS          non-blocking socket; connect, then poll(POLLOUT) up to MS and read SO_ERROR
 *   --twice            connect twice, each time on a new socket
 *   --regai            before the second connect, getaddrinfo again (if that fails, connect to
 *                      the first answer's address, which is kept allocated)
 *
 * Output, per connect i (1, 2):
 *   GAIi <ip...> | GAIi ERR <gai error>, with GAIi_MS <n>
 *   Ci ms=<n> GOT <banner> | Ci ms=<n> ERR <ERRNO> | Ci ms=<n> PENDING   (ms: the connect alone;
 *                         with --poll, connect + poll until it settled)
 *   Ci_RC <what connect() itself returned>  (--poll, --sndtimeo-new)
 *   Ci_SNDTIMEO sec=<s> usec=<us>, Ci_SNDTIMEO_NEW sec=<s> usec=<us>  (--sndtimeo-new)
 *   Ci_LATER ms=<n> GOT <banner> | ERR <ERRNO> | PENDING  (after EINPROGRESS from a blocking
 *                         connect with a send timeout: poll up to 1500 ms for its outcome)
 */
#include "common.h"
#include <poll.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#ifndef SO_SNDTIMEO_NEW
#define SO_SNDTIMEO_NEW 67
#endif

struct ts64 {
    int64_t sec;
    int64_t usec;
};

static long sndtimeo_ms = -1, sndtimeo_new_us = -1, poll_ms = -1;

static struct addrinfo *resolve(int i, const char *name, const char *port) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    long t0 = now_ms();
    int r = getaddrinfo(name, port, &hints, &res);
    long el = now_ms() - t0;
    if (r != 0) {
        printf("GAI%d ERR %s\n", i, r == EAI_AGAIN ? "EAI_AGAIN" : gai_strerror(r));
        printf("GAI%d_MS %ld\n", i, el);
        return NULL;
    }
    printf("GAI%d", i);
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        char buf[64];
        const struct sockaddr_in *sin = (const struct sockaddr_in *)a->ai_addr;
        if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf))
            printf(" %s", buf);
    }
    printf("\nGAI%d_MS %ld\n", i, el);
    return res;
}

/* Wait up to ms for fd to settle; print "<tag> ms=<n> <outcome>" (n counted from t0). */
static int settle(const char *tag, int fd, long t0, long ms) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    long deadline = now_ms() + ms;
    int r;
    for (;;) {
        long left = deadline - now_ms();
        r = poll(&p, 1, left > 0 ? (int)left : 0);
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    long el = now_ms() - t0;
    if (r == 0) {
        printf("%s ms=%ld PENDING\n", tag, el);
        return 1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        printf("%s ms=%ld ERR %s\n", tag, el, errname(err));
        return 1;
    }
    printf("%s ms=%ld ", tag, el);
    fflush(stdout);
    /* print_banner reads with the socket as it is: make it blocking for the read */
    struct timeval rtv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rtv, sizeof rtv);
    struct pollfd q = {.fd = fd, .events = POLLIN};
    poll(&q, 1, 5000);
    return print_banner(fd);
}

static void print_sndtimeo(int i, int fd) {
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) != 0)
        printf("C%d_SNDTIMEO ERR %s\n", i, errname(errno));
    else
        printf("C%d_SNDTIMEO sec=%ld usec=%ld\n", i, (long)tv.tv_sec, (long)tv.tv_usec);
    struct ts64 t = {0, 0};
    len = sizeof t;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO_NEW, &t, &len) != 0)
        printf("C%d_SNDTIMEO_NEW ERR %s\n", i, errname(errno));
    else
        printf("C%d_SNDTIMEO_NEW sec=%lld usec=%lld\n", i, (long long)t.sec, (long long)t.usec);
}

static long cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int attempt(int i, const struct sockaddr *sa, socklen_t salen) {
    char tag[8];
    snprintf(tag, sizeof tag, "C%d", i);
    int fd = socket(AF_INET, SOCK_STREAM | (poll_ms >= 0 ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        printf("%s ms=0 ERR socket %s\n", tag, errname(errno));
        return 1;
    }
    if (sndtimeo_ms >= 0) {
        struct timeval tv = {.tv_sec = sndtimeo_ms / 1000, .tv_usec = (sndtimeo_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (sndtimeo_new_us >= 0) {
        struct ts64 t = {.sec = sndtimeo_new_us / 1000000, .usec = sndtimeo_new_us % 1000000};
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO_NEW, &t, sizeof t) != 0)
            printf("%s_SETSOCKOPT ERR %s\n", tag, errname(errno));
    }
    long t0 = now_ms();
    long cpu0 = cpu_ms();
    int rc = connect(fd, sa, salen);
    int e = errno;
    long el = now_ms() - t0;
    /* CPU the process spent in the connect call: a wait must sleep, never spin. */
    printf("%s_CPU_MS %ld\n", tag, cpu_ms() - cpu0);
    int ret;
    if (poll_ms >= 0) {
        printf("%s_RC %s\n", tag, rc == 0 ? "0" : errname(e));
        if (rc == 0) {
            ret = settle(tag, fd, t0, poll_ms);
        } else if (e == EINPROGRESS) {
            ret = settle(tag, fd, t0, poll_ms);
        } else {
            printf("%s ms=%ld ERR %s\n", tag, el, errname(e));
            ret = 1;
        }
    } else if (rc != 0) {
        if (sndtimeo_new_us >= 0)
            printf("%s_RC %s\n", tag, errname(e));
        printf("%s ms=%ld ERR %s\n", tag, el, errname(e));
        ret = 1;
        if (sndtimeo_new_us >= 0)
            print_sndtimeo(i, fd);
        if (e == EINPROGRESS) {
            char later[16];
            snprintf(later, sizeof later, "%s_LATER", tag);
            settle(later, fd, t0, 1500);
        }
    } else {
        if (sndtimeo_new_us >= 0) {
            printf("%s_RC 0\n", tag);
            print_sndtimeo(i, fd);
        }
        printf("%s ms=%ld ", tag, el);
        fflush(stdout);
        ret = print_banner(fd);
    }
    close(fd);
    return ret;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int twice = 0, regai = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--sndtimeo") == 0 && i + 1 < argc)
            sndtimeo_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--sndtimeo-new") == 0 && i + 1 < argc)
            sndtimeo_new_us = atol(argv[++i]);
        else if (strcmp(argv[i], "--poll") == 0 && i + 1 < argc)
            poll_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--twice") == 0)
            twice = 1;
        else if (strcmp(argv[i], "--regai") == 0)
            regai = 1;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: %s [OPTIONS] NAME PORT\n", argv[0]);
        return 2;
    }
    const char *name = argv[i], *port = argv[i + 1];
    struct addrinfo *first = resolve(1, name, port);
    if (!first)
        return 3;
    int rc = attempt(1, first->ai_addr, first->ai_addrlen);
    if (twice) {
        struct addrinfo *again = regai ? resolve(2, name, port) : NULL;
        struct addrinfo *use = again ? again : first;
        char buf[64];
        inet_ntop(AF_INET, &((const struct sockaddr_in *)use->ai_addr)->sin_addr, buf,
                  sizeof buf);
        printf("C2_TARGET %s (from %s)\n", buf, again ? "GAI2" : "GAI1");
        rc = attempt(2, use->ai_addr, use->ai_addrlen);
        if (again)
            freeaddrinfo(again);
    }
    freeaddrinfo(first);
    return rc;
}
