/* Threads (issue 5 item 4).
 *   hard_threads hammer NAME PORT THREADS ROUNDS UPIP
 *       resolve NAME once (AF_INET), then THREADS threads each connect ROUNDS times to its first
 *       (dead) address, alternately blocking and non-blocking; each connect must reach UPIP.
 *   hard_threads race NAME PORT0 THREADS ROUNDS UPIP
 *       per round (port PORT0+round: a fresh race, nothing remembered) all threads resolve NAME
 *       and connect to its first address at the same moment (barrier); even threads blocking,
 *       odd ones non-blocking; each must reach UPIP.
 * Prints `RESULT ok=N fail=N wrongpeer=N maxms=N errs=<errno:count,...>`. */
#include "hard_common.h"
#include <stdatomic.h>

static const char *mode, *name, *port0, *upip;
static int threads, rounds;
static struct sockaddr_storage dead; static socklen_t dead_len;
static pthread_barrier_t bar;
static atomic_int ok, fail, wrongpeer; static atomic_long maxms;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char errs[4096];

static void note_err(int e) {
    pthread_mutex_lock(&mu);
    size_t l = strlen(errs);
    if (l < sizeof errs - 64) snprintf(errs + l, sizeof errs - l, "%s%s", l ? "," : "", ename(e));
    pthread_mutex_unlock(&mu);
}

static void one(int nb, const struct sockaddr *sa, socklen_t len) {
    long t0 = now_ms();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { atomic_fetch_add(&fail, 1); note_err(errno); return; }
    int one_ = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_, sizeof one_);
    int e = nb ? connect_nb(fd, sa, len, 5000) : connect_block(fd, sa, len);
    long el = now_ms() - t0;
    long m = atomic_load(&maxms);
    while (el > m && !atomic_compare_exchange_weak(&maxms, &m, el)) {}
    if (e) { atomic_fetch_add(&fail, 1); note_err(e); close(fd); return; }
    struct sockaddr_storage peer; socklen_t pl = sizeof peer; char ip[64] = "?";
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) == 0) ip_of((struct sockaddr *)&peer, ip, sizeof ip);
    if (strcmp(ip, upip) != 0) { atomic_fetch_add(&wrongpeer, 1); note_err(EDOM); }
    else atomic_fetch_add(&ok, 1);
    close(fd);
}

static void *worker(void *arg) {
    long id = (long)arg;
    for (int r = 0; r < rounds; r++) {
        if (!strcmp(mode, "hammer")) {
            one((int)((id + r) & 1), (struct sockaddr *)&dead, dead_len);
        } else {
            char port[16];
            snprintf(port, sizeof port, "%d", atoi(port0) + r);
            struct sockaddr_storage ss; socklen_t len;
            pthread_barrier_wait(&bar);
            if (resolve_first(name, port, AF_INET, &ss, &len) != 0) { atomic_fetch_add(&fail, 1); note_err(ENOENT); }
            else one((int)(id & 1), (struct sockaddr *)&ss, len);
            pthread_barrier_wait(&bar);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: %s hammer|race NAME PORT THREADS ROUNDS UPIP\n", argv[0]); return 2; }
    mode = argv[1]; name = argv[2]; port0 = argv[3]; threads = atoi(argv[4]); rounds = atoi(argv[5]); upip = argv[6];
    if (threads < 1 || threads > 64) return 2;
    if (!strcmp(mode, "hammer") && resolve_first(name, port0, AF_INET, &dead, &dead_len) != 0) {
        printf("RESULT resolve-failed\n"); return 1;
    }
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    pthread_t t[64];
    long t0 = now_ms();
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("RESULT ok=%d fail=%d wrongpeer=%d maxms=%ld totalms=%ld errs=%s\n", atomic_load(&ok),
           atomic_load(&fail), atomic_load(&wrongpeer), atomic_load(&maxms), now_ms() - t0, errs[0] ? errs : "-");
    return atomic_load(&ok) == threads * rounds ? 0 : 1;
}
