/* Stress with flapping servers (issue 5 item 13).  hard_flap NAME PORT THREADS SECONDS
 * THREADS threads connect to the first address of NAME (resolved each time) for SECONDS,
 * even threads blocking, odd ones non-blocking (3 s bound each). Every connect must end in
 * success (peer one of NAME's addresses) or an errno a program could see from such servers.
 * `FLAP total=N ok=N refused=N other=N bad=N hung=N wrongpeer=N maxms=N errs=...`, fds before/after. */
#include "hard_common.h"
#include <stdatomic.h>

static const char *name, *port; static int seconds;
static atomic_int total, ok, refused, other, bad, hung, wrongpeer; static atomic_long maxms;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; static char errs[2048];

static void *worker(void *arg) {
    long id = (long)arg, end = now_ms() + seconds * 1000L;
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *all;
    if (getaddrinfo(name, port, &hints, &all)) return NULL;
    for (int i = 0; i < 100000 && now_ms() < end; i++) {
        struct sockaddr_storage ss; socklen_t len;
        if (resolve_first(name, port, AF_INET, &ss, &len)) { atomic_fetch_add(&bad, 1); continue; }
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) { atomic_fetch_add(&bad, 1); continue; }
        long t0 = now_ms();
        int e = (id & 1) ? connect_nb(fd, (struct sockaddr *)&ss, len, 3000) : connect_block(fd, (struct sockaddr *)&ss, len);
        long el = now_ms() - t0, m = atomic_load(&maxms);
        while (el > m && !atomic_compare_exchange_weak(&maxms, &m, el)) {}
        atomic_fetch_add(&total, 1);
        if (e == 0) {
            struct sockaddr_storage p; socklen_t pl = sizeof p; int known = 0;
            int gp = getpeername(fd, (struct sockaddr *)&p, &pl);
            if (gp < 0 && errno == ENOTCONN) { atomic_fetch_add(&other, 1); close(fd); continue; } /* reset by the flapping server already */
            if (gp == 0)
                for (struct addrinfo *a = all; a; a = a->ai_next)
                    if (!memcmp(&((struct sockaddr_in *)a->ai_addr)->sin_addr, &((struct sockaddr_in *)&p)->sin_addr, 4)) known = 1;
            if (known) atomic_fetch_add(&ok, 1); else atomic_fetch_add(&wrongpeer, 1);
        } else if (e == ECONNREFUSED) atomic_fetch_add(&refused, 1);
        else if (e == ECONNRESET || e == ECONNABORTED || e == ETIMEDOUT) atomic_fetch_add(&other, 1);
        else {
            if (e == ETIMEDOUT + 10000) atomic_fetch_add(&hung, 1); else atomic_fetch_add(&bad, 1);
            pthread_mutex_lock(&mu);
            size_t l = strlen(errs);
            if (l < sizeof errs - 40) snprintf(errs + l, sizeof errs - l, "%s%s", l ? "," : "", ename(e));
            pthread_mutex_unlock(&mu);
        }
        close(fd);
    }
    freeaddrinfo(all);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    name = argv[1]; port = argv[2]; int n = atoi(argv[3]); seconds = atoi(argv[4]);
    if (n < 1 || n > 32 || seconds < 1 || seconds > 30) return 2;
    int before = count_fds();
    pthread_t t[32];
    for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    usleep(300 * 1000);
    char buf[16384]; int after; list_fds(buf, sizeof buf, &after);
    printf("FLAP total=%d ok=%d refused=%d other=%d bad=%d hung=%d wrongpeer=%d maxms=%ld errs=%s\n",
           atomic_load(&total), atomic_load(&ok), atomic_load(&refused), atomic_load(&other), atomic_load(&bad),
           atomic_load(&hung), atomic_load(&wrongpeer), atomic_load(&maxms), errs[0] ? errs : "-");
    printf("FDS before=%d after=%d %s\n", before, after, buf);
    return 0;
}
