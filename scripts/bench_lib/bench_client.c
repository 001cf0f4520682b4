/* bench_client: the C side of scripts/bench. Every figure is measured inside this process with
 * clock_gettime(CLOCK_MONOTONIC), so process start-up never pollutes it.
 *
 *   bench_client first   NAME PORT                 getaddrinfo + one blocking connect to the
 *                                                  first address: "OK <lookup_us> <connect_us>
 *                                                  <peer address>"
 *   bench_client loop    TARGET PORT N ROUNDS      resolve once (TARGET: name, or IP literal =
 *                                                  no lookup at all), one untimed connect, then
 *                                                  ROUNDS x N socket/connect/close to the first
 *                                                  address: "ROUND <ns per connect> <CPU ns per
 *                                                  connect>" per round (wall, process CPU time)
 *   bench_client galoop  NAME PORT N ROUNDS        the same, each connect after its own lookup:
 *                                                  getaddrinfo, socket/connect/close to the
 *                                                  first address, freeaddrinfo
 *   bench_client threads TARGET PORT T N ROUNDS    same, T threads x N connects each per round:
 *                                                  "ROUND <connects per second> <CPU ns per
 *                                                  connect>"
 *   bench_client spawn   LIB N                     N pairs of posix_spawn+wait of /bin/true,
 *                                                  alternating without / with LD_PRELOAD=LIB:
 *                                                  "SPAWN <plain_us> <preload_us>" per pair
 *   bench_client rss     NAME PORT                 "RSS <idle_kB> <after_kB>": VmRSS at start,
 *                                                  and after a lookup + connect to NAME
 *                                                  (connected or not), then its outcome
 * Exit 0 on success; 1 with "ERR ..." when a connect fails. Every loop is bounded by its
 * arguments (N, ROUNDS, T each capped). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(void) { /* CPU time of the whole process (all threads) */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long cap(const char *s, long lo, long hi) {
    long v = atol(s);
    return v < lo ? lo : v > hi ? hi : v;
}

static struct sockaddr_in target;

static void resolve(const char *host, int port) {
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &target.sin_addr) == 1) return; /* literal: no lookup */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        printf("ERR getaddrinfo %s: %s\n", host, gai_strerror(rc));
        exit(1);
    }
    target.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
}

static char peer[64]; /* where the last connect of one_connect_peer() landed */

/* One socket/connect/close to `target`; 0 or errno. */
static int one_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return errno;
    int r = connect(fd, (struct sockaddr *)&target, sizeof target);
    int e = r == 0 ? 0 : errno;
    close(fd);
    return e;
}

/* The same, noting the peer address (outside the timed part). */
/* A non-blocking connect as event loops make it: EINPROGRESS, poll for POLLOUT, SO_ERROR. */
static int one_connect_nb(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return errno;
    int r = connect(fd, (struct sockaddr *)&target, sizeof target);
    int e = r == 0 ? 0 : errno;
    if (e == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        e = poll(&p, 1, 5000) == 1 ? 0 : ETIMEDOUT;
        socklen_t len = sizeof e;
        if (e == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) e = errno;
    }
    close(fd);
    return e;
}

static int nonblocking_loops; /* "nbloop": the loop connects with one_connect_nb */
static int lookup_loops;      /* "galoop": every connect after its own getaddrinfo */

/* getaddrinfo + one blocking connect to the first address + freeaddrinfo; 0 or errno. */
static int one_lookup_connect(const char *host, int port) {
    char svc[16];
    snprintf(svc, sizeof svc, "%d", port);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, svc, &hints, &res) != 0) return ENOENT;
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) {
        e = connect(fd, res->ai_addr, res->ai_addrlen) == 0 ? 0 : errno;
        close(fd);
    }
    freeaddrinfo(res);
    return e;
}

static int one_connect_peer(long long *connected_ns) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    *connected_ns = now_ns();
    if (fd < 0) return errno;
    int r = connect(fd, (struct sockaddr *)&target, sizeof target);
    int e = r == 0 ? 0 : errno;
    *connected_ns = now_ns();
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    strcpy(peer, "-");
    if (e == 0 && getpeername(fd, (struct sockaddr *)&sa, &len) == 0)
        inet_ntop(AF_INET, &sa.sin_addr, peer, sizeof peer);
    close(fd);
    return e;
}

static int mode_first(const char *name, int port) {
    long long t0 = now_ns();
    resolve(name, port);
    long long t1 = now_ns(), t2 = 0;
    int e = one_connect_peer(&t2);
    if (e) {
        printf("ERR connect %s\n", strerrorname_np(e));
        return 1;
    }
    printf("OK %.1f %.1f %s\n", (t1 - t0) / 1e3, (t2 - t1) / 1e3, peer);
    return 0;
}

static int mode_loop(const char *host, int port, long n, long rounds) {
    resolve(host, port);
    if (one_connect()) {
        printf("ERR warm-up connect failed\n");
        return 1;
    }
    for (long r = 0; r < rounds; r++) {
        long long c0 = cpu_ns(), t0 = now_ns();
        for (long i = 0; i < n; i++) {
            int e = lookup_loops ? one_lookup_connect(host, port)
                    : nonblocking_loops ? one_connect_nb() : one_connect();
            if (e) {
                printf("ERR connect %ld: %s\n", i, strerrorname_np(e));
                return 1;
            }
        }
        long long t1 = now_ns(), c1 = cpu_ns();
        printf("ROUND %.1f %.1f\n", (double)(t1 - t0) / n, (double)(c1 - c0) / n);
    }
    return 0;
}

static pthread_barrier_t start_line;
static long per_thread;
static volatile int thread_failed;

static void *worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&start_line);
    for (long i = 0; i < per_thread; i++)
        if (one_connect()) {
            thread_failed = 1;
            break;
        }
    return NULL;
}

static int mode_threads(const char *host, int port, long t, long n, long rounds) {
    resolve(host, port);
    if (one_connect()) {
        printf("ERR warm-up connect failed\n");
        return 1;
    }
    per_thread = n;
    pthread_t th[64];
    for (long r = 0; r < rounds; r++) {
        pthread_barrier_init(&start_line, NULL, (unsigned)t + 1);
        for (long i = 0; i < t; i++) pthread_create(&th[i], NULL, worker, NULL);
        long long c0 = cpu_ns();
        pthread_barrier_wait(&start_line);
        long long t0 = now_ns();
        for (long i = 0; i < t; i++) pthread_join(th[i], NULL);
        long long dt = now_ns() - t0, dc = cpu_ns() - c0;
        pthread_barrier_destroy(&start_line);
        if (thread_failed) {
            printf("ERR a connect failed\n");
            return 1;
        }
        printf("ROUND %.1f %.1f\n", (double)(t * n) * 1e9 / dt, (double)dc / (t * n));
    }
    return 0;
}

static double spawn_true(char **envp) {
    char *argv[] = {"/bin/true", NULL};
    pid_t pid;
    long long t0 = now_ns();
    if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, envp) != 0) return -1;
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
    return (now_ns() - t0) / 1e3;
}

static int mode_spawn(const char *lib, long n) {
    size_t cnt = 0;
    while (environ[cnt]) cnt++;
    char **plain = calloc(cnt + 2, sizeof *plain), **pre = calloc(cnt + 2, sizeof *pre);
    size_t k = 0;
    for (size_t i = 0; i < cnt; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) plain[k] = pre[k] = environ[i], k++;
    char *ld = malloc(strlen(lib) + 16);
    sprintf(ld, "LD_PRELOAD=%s", lib);
    pre[k] = ld;
    for (long i = 0; i < n; i++) {
        double a = spawn_true(plain), b = spawn_true(pre);
        if (a < 0 || b < 0) {
            printf("ERR spawning /bin/true failed\n");
            return 1;
        }
        printf("SPAWN %.1f %.1f\n", a, b);
    }
    return 0;
}

static long vmrss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static int mode_rss(const char *name, int port) {
    long idle = vmrss_kb();
    resolve(name, port);
    int e = one_connect();
    long after = vmrss_kb();
    /* a refused connect is fine here: without dnsfo a refused-first name fails */
    printf("RSS %ld %ld %s\n", idle, after, e ? strerrorname_np(e) : "connected");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "first")) return mode_first(argv[2], atoi(argv[3]));
    if (argc >= 6 && !strcmp(argv[1], "loop"))
        return mode_loop(argv[2], atoi(argv[3]), cap(argv[4], 1, 1000000), cap(argv[5], 1, 100));
    if (argc >= 6 && !strcmp(argv[1], "nbloop")) {
        nonblocking_loops = 1;
        return mode_loop(argv[2], atoi(argv[3]), cap(argv[4], 1, 1000000), cap(argv[5], 1, 100));
    }
    if (argc >= 6 && !strcmp(argv[1], "galoop")) {
        lookup_loops = 1;
        return mode_loop(argv[2], atoi(argv[3]), cap(argv[4], 1, 1000000), cap(argv[5], 1, 100));
    }
    if (argc >= 7 && !strcmp(argv[1], "threads"))
        return mode_threads(argv[2], atoi(argv[3]), cap(argv[4], 1, 64), cap(argv[5], 1, 100000),
                            cap(argv[6], 1, 100));
    if (argc >= 4 && !strcmp(argv[1], "spawn")) return mode_spawn(argv[2], cap(argv[3], 1, 100000));
    if (argc >= 4 && !strcmp(argv[1], "rss")) return mode_rss(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: see the comment at the top of bench_client.c\n");
    return 2;
}
