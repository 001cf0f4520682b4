/* Stock C client that bounds a blocking connect() with an alarm: SIGALRM handler installed
 * WITHOUT SA_RESTART, setitimer(ITIMER_REAL, MS ms, default 300). Prints "GOT <banner>" or
 * "ERR <errno name> elapsed_ms=<n>" (EINTR when the alarm cut the connect). */
#include "common.h"
#include <signal.h>
#include <sys/time.h>

static volatile sig_atomic_t fired;
static void on_alarm(int sig) { (void)sig; fired = 1; }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s NAME PORT [MS]\n", argv[0]); return 2; }
    long ms = argc > 3 ? atol(argv[3]) : 300;
    struct hostent *h = gethostbyname(argv[1]);
    if (!h || !h->h_addr_list[0]) { printf("ERR HOST_NOT_FOUND\n"); return 1; }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    memcpy(&sa.sin_addr, h->h_addr_list[0], sizeof sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sigaction act = { .sa_handler = on_alarm, .sa_flags = 0 }; /* no SA_RESTART */
    sigemptyset(&act.sa_mask);
    sigaction(SIGALRM, &act, NULL);
    struct itimerval it = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };
    long t0 = now_ms();
    setitimer(ITIMER_REAL, &it, NULL);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    long el = now_ms() - t0;
    struct itimerval off = { 0 };
    setitimer(ITIMER_REAL, &off, NULL);
    if (rc < 0) { printf("ERR %s elapsed_ms=%ld alarm=%d\n", errname(e), el, (int)fired); return 1; }
    rc = print_banner(fd);
    close(fd);
    return rc;
}
