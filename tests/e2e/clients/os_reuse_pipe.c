/* A blocking connect whose fd another thread closes and reuses mid-failover.
 * Thread A: blocking connect() of fd to the first address of NAME.
 * Thread B: 50 ms later close(fd), pipe2(O_NONBLOCK): the read end gets fd's number; then every
 * 20 ms for 1.5 s writes a byte into the pipe and reads it back through that number, checking it
 * is still the same FIFO (fstat: S_ISFIFO, same inode) with O_NONBLOCK still set on both ends.
 * SIGPIPE is left at its default: if the pipe's read end is replaced, B's next write kills the
 * process, and the test sees the signal. Output:
 *   `GOT PIPE-OK` or `ERR <errno> (<what changed>)`
 *   `A <connect result>` or `A still in connect` (informational)
 * usage: os_reuse_pipe NAME PORT close [TIMEOUT_S] */
#include "os_common.h"
#include <pthread.h>
#include <stdatomic.h>

static struct addrinfo *ai;
static int fd;
static atomic_int a_done, a_errno;
static char b_fail[160];

static void *thread_a(void *arg) {
    (void)arg;
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    atomic_store(&a_errno, r == 0 ? 0 : errno);
    atomic_store(&a_done, 1);
    os_trace("A: connect returned %d %s", r, r ? os_errname(errno) : "");
    return NULL;
}

static void *thread_b(void *arg) {
    (void)arg;
    os_sleep_ms(50);
    int was = fd;
    if (close(fd) < 0) {
        snprintf(b_fail, sizeof b_fail, "ERR %s (close)", os_errname(errno));
        return NULL;
    }
    int p[2];
    if (pipe2(p, O_NONBLOCK) < 0) {
        snprintf(b_fail, sizeof b_fail, "ERR %s (pipe2)", os_errname(errno));
        return NULL;
    }
    os_trace("B: closed fd %d; pipe read end %d, write end %d", was, p[0], p[1]);
    if (p[0] != was) {
        snprintf(b_fail, sizeof b_fail, "ERR EBADF (pipe got %d, not the closed %d)", p[0], was);
        return NULL;
    }
    struct stat st0;
    fstat(p[0], &st0);
    for (int i = 0; i < 75; i++) {
        os_sleep_ms(20);
        if (write(p[1], "x", 1) != 1) {
            snprintf(b_fail, sizeof b_fail, "ERR %s (write %d into the pipe)", os_errname(errno),
                     i);
            return NULL;
        }
        char c = 0;
        ssize_t r = read(p[0], &c, 1);
        struct stat st;
        int sr = fstat(p[0], &st);
        int fl0 = fcntl(p[0], F_GETFL), fl1 = fcntl(p[1], F_GETFL);
        const char *what = NULL;
        if (r != 1 || c != 'x') what = "read back from the pipe";
        else if (sr < 0 || !S_ISFIFO(st.st_mode)) what = "fstat: the read end is no FIFO any more";
        else if (st.st_ino != st0.st_ino) what = "fstat: another inode";
        else if (fl0 < 0 || !(fl0 & O_NONBLOCK) || fl1 < 0 || !(fl1 & O_NONBLOCK))
            what = "O_NONBLOCK changed on the pipe";
        if (what) {
            snprintf(b_fail, sizeof b_fail, "ERR %s (%s, round %d)",
                     os_errname(r < 0 ? errno : EXDEV), what, i);
            return NULL;
        }
    }
    os_trace("B: 75 rounds through the pipe");
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode;
    ai = os_start(argc, argv, &mode);
    if (strcmp(mode, "close")) os_fail(EINVAL, "MODE: close");
    fd = os_socket(ai, 0);
    pthread_t a, b;
    if (pthread_create(&a, NULL, thread_a, NULL) || pthread_create(&b, NULL, thread_b, NULL))
        os_fail(errno, "pthread_create");
    pthread_join(b, NULL);
    printf("%s\n", b_fail[0] ? b_fail : "GOT PIPE-OK");
    if (atomic_load(&a_done)) {
        int e = atomic_load(&a_errno);
        printf("A %s\n", e ? os_errname(e) : "0");
    } else {
        printf("A still in connect\n");
    }
    fflush(stdout);
    _exit(b_fail[0] ? 1 : 0); /* A may still be in connect(): do not wait for it */
}
