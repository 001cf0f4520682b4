/* pthread_cancel of a thread inside a BLOCKING connect() to the first address of NAME.
 *   deferred-pending  (deferred type) the cancel is made pending before the thread calls
 *                     connect() (cancel state disabled until then), so it is acted on at the
 *                     first cancellation point inside connect(): deterministic on any name
 *   deferred-blocked  (deferred type) cancelled 50 ms into connect() (a silent first address:
 *                     the thread is asleep in it)
 *   async-blocked     PTHREAD_CANCEL_ASYNCHRONOUS, cancelled 50 ms into connect()
 *   async-timed       PTHREAD_CANCEL_ASYNCHRONOUS, cancelled the moment the thread enters
 *                     connect() (a healthy name: the connect is short, it may land anywhere in it)
 * Async type is on only around connect(); afterwards the thread is deferred again and waits in
 * sem_wait() (a cancellation point) until the cancel was sent, so it is cancelled in every mode.
 * A cleanup handler closes the thread's socket. Round 0 is a warm-up, then rounds 1 to R-1 (R = 3,
 * async-timed 20); open fds (/proc/self/fd) are counted after round 0 ("before"), after round R-2
 * and after round R-1; then another thread makes a blocking connect to the first address and
 * reads the banner. Output:
 *   `GOT <banner>` (the later connect) or `ERR ...`
 *   `FDS before=N after1=N after2=N warmup=+N`
 *   `CANCELLED k/R INCONNECT n` (k rounds whose thread ended PTHREAD_CANCELED; n cancelled inside
 *   connect(), which then never returned)
 * The process must keep running throughout. usage: os_cancel NAME PORT MODE [TIMEOUT_S] */
#include "os_common.h"
#include <dirent.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

static struct addrinfo *ai;
static const char *mode;
static sem_t ready, sent, done;
static atomic_int in_connect, connect_returned;
static int inside; /* rounds cancelled inside connect() (it never returned) */

static void close_fd(void *arg) {
    int *fd = arg;
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void *victim(void *arg) {
    (void)arg;
    int pending = strcmp(mode, "deferred-pending") == 0;
    int async = strncmp(mode, "async", 5) == 0;
    int old;
    if (pending) pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0) return (void *)(long)errno;
    pthread_cleanup_push(close_fd, &fd);
    if (pending) {
        sem_post(&ready);
        while (sem_wait(&sent) < 0 && errno == EINTR) {
        }
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old); /* not a cancellation point */
    }
    if (async) pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    atomic_store(&in_connect, 1);
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (async) pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &old);
    int e = errno;
    atomic_store(&connect_returned, 1);
    os_trace("victim: connect returned %d %s (not cancelled inside it)", r, r ? os_errname(e) : "");
    while (sem_wait(&done) < 0 && errno == EINTR) { /* a cancellation point: the cancel is */
    }                                                /* acted on here if not inside connect */
    pthread_testcancel();
    pthread_cleanup_pop(1);
    return NULL;
}

static int count_fds(const char *label) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) os_fail(errno, "opendir /proc/self/fd");
    int dfd = dirfd(d), n = 0;
    struct dirent *de;
    for (int i = 0; i < 4096 && (de = readdir(d)); i++) {
        if (de->d_name[0] == '.' || atoi(de->d_name) == dfd) continue;
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t l = readlink(path, target, sizeof target - 1);
        target[l > 0 ? l : 0] = 0;
        os_trace("fds %s: %s -> %s", label, de->d_name, target);
        n++;
    }
    closedir(d);
    return n;
}

/* One round: start the victim, cancel it per MODE, join it. 1 if it ended PTHREAD_CANCELED. */
static int round_once(int round) {
    atomic_store(&in_connect, 0);
    atomic_store(&connect_returned, 0);
    sem_init(&ready, 0, 0);
    sem_init(&sent, 0, 0);
    sem_init(&done, 0, 0);
    pthread_t t;
    int e = pthread_create(&t, NULL, victim, NULL);
    if (e) os_fail(e, "pthread_create");
    if (strcmp(mode, "deferred-pending") == 0) {
        while (sem_wait(&ready) < 0 && errno == EINTR) {
        }
        pthread_cancel(t);
    } else if (strcmp(mode, "async-timed") == 0) {
        long end = os_now_ms() + 2000;
        for (long i = 0; i < 2000000000L && !atomic_load(&in_connect) && os_now_ms() < end; i++) {
        }
        pthread_cancel(t);
    } else {
        os_sleep_ms(50);
        os_trace("round %d: cancel at 50 ms, connect returned: %d", round,
                 atomic_load(&connect_returned));
        pthread_cancel(t);
    }
    sem_post(&sent);
    sem_post(&done);
    void *res = NULL;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    e = pthread_timedjoin_np(t, &res, &until);
    if (e) os_fail(e, "pthread_timedjoin_np (the cancelled thread did not end)");
    os_trace("round %d: victim ended %s, connect returned: %d", round,
             res == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "normally",
             atomic_load(&connect_returned));
    if (!atomic_load(&connect_returned)) inside++;
    return res == PTHREAD_CANCELED;
}

static char later_line[300];

static void *later(void *arg) {
    (void)arg;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        snprintf(later_line, sizeof later_line, "ERR %s (later connect)", os_errname(errno));
        return NULL;
    }
    char line[256];
    int e = os_read_line(fd, line, sizeof line);
    if (e)
        snprintf(later_line, sizeof later_line, "ERR %s (later read)", os_errname(e));
    else
        snprintf(later_line, sizeof later_line, "GOT %s", line);
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    ai = os_start(argc, argv, &mode);
    if (strcmp(mode, "deferred-pending") && strcmp(mode, "deferred-blocked") &&
        strcmp(mode, "async-blocked") && strcmp(mode, "async-timed"))
        os_fail(EINVAL, "MODE: deferred-pending deferred-blocked async-blocked async-timed");
    /* async-timed: where in connect() the cancel lands is luck, so more rounds */
    int rounds = strcmp(mode, "async-timed") == 0 ? 20 : 3;
    int initial = count_fds("initial");
    int cancelled = round_once(0);
    int before = count_fds("before"), after1 = before;
    for (int i = 1; i < rounds; i++) {
        cancelled += round_once(i);
        if (i == rounds - 2) after1 = count_fds("after1");
    }
    int after2 = count_fds("after2");
    pthread_t t;
    int e = pthread_create(&t, NULL, later, NULL);
    if (e) os_fail(e, "pthread_create later");
    pthread_join(t, NULL);
    printf("%s\n", later_line);
    printf("FDS before=%d after1=%d after2=%d warmup=%+d\n", before, after1, after2,
           before - initial);
    printf("CANCELLED %d/%d INCONNECT %d\n", cancelled, rounds, inside);
    return strncmp(later_line, "GOT ", 4) == 0 ? 0 : 1;
}
