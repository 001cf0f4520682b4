/* fork/exec/spawn (issue 5 item 5).
 *   hard_fork fork NAME PORT CHILDREN BUSY closeall|keep
 *       BUSY threads resolve, set options, connect (blocking and non-blocking) and close in a loop;
 *       meanwhile CHILDREN children are forked one after the other; each child (alarm 5 s)
 *       optionally closes fds 3..1023 (daemon style), then resolves NAME and connects to its
 *       first address. Prints `FORK ok=N fail=N killed=N maxms=N detail=...`.
 *   hard_fork spawn NAME PORT BUSY CMD...   posix_spawn(CMD) and system(CMD) with busy threads;
 *       prints `SPAWN posix=<status> system=<status>` and passes the children's output through.
 *   hard_fork fds NAME PORT LISTCMD    starts a non-blocking connect on NAME (race in flight),
 *       then fork+exec LISTCMD (prints its fds), waits for the connect, execs LISTCMD again, and
 *       forks a child that lists its own fds without exec: lines `DURING ...`, `AFTER ...`, `FORKED ...`.
 *   hard_fork stale NAME1 NAME2 PORT   races NAME1 non-blocking (starts dnsfo's reactor), forks;
 *       the child closes every fd >= 3, opens /dev/null until the reactor's old fd numbers are
 *       taken, races NAME2 non-blocking, and reports whether its own fds are still open:
 *       `STALE lost=N of=M`. */
#include "hard_common.h"
#include <spawn.h>
#include <stdatomic.h>

extern char **environ;
static const char *name, *port;
static atomic_int stop;

/* Busy threads resolve once, then loop on socket/setsockopt/connect/close against the dead
 * first address (blocking and non-blocking: dnsfo's locks, fd table and reactor are in use at
 * every fork). They do not call getaddrinfo in the loop: glibc's own getaddrinfo locks
 * (__check_pf) are not fork-safe, with or without dnsfo. */
static void *busy(void *arg) {
    long id = (long)arg;
    struct sockaddr_storage ss; socklen_t len;
    if (resolve_first(name, port, AF_INET, &ss, &len)) return NULL;
    for (int i = 0; i < 200000 && !atomic_load(&stop); i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) continue;
        int one = 1;
        for (int k = 0; k < 4; k++) setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        if ((id + i) & 1) connect_nb(s, (struct sockaddr *)&ss, len, 2000);
        else connect_block(s, (struct sockaddr *)&ss, len);
        close(s);
    }
    return NULL;
}

static int start_busy(int n, pthread_t *t) {
    for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, busy, (void *)i);
    usleep(100 * 1000);
    return n;
}

static void stop_busy(int n, pthread_t *t) {
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

static int child_main(int closeall) {
    alarm(5);
    if (closeall) for (int fd = 3; fd < 1024; fd++) close(fd);
    char b[256];
    int e = fetch(name, port, 0, b, sizeof b);
    if (e) { fprintf(stderr, "child %d: %s\n", getpid(), ename(e)); return 1; }
    return strncmp(b, "HELLO", 5) == 0 ? 0 : 1;
}

static int mode_fork(int children, int nbusy, int closeall) {
    pthread_t t[32];
    start_busy(nbusy, t);
    int ok = 0, failed = 0, killed = 0; long maxms = 0;
    char detail[1024] = "";
    for (int i = 0; i < children; i++) {
        long t0 = now_ms();
        pid_t p = fork();
        if (p == 0) _exit(child_main(closeall));
        if (p < 0) { failed++; continue; }
        int st = 0;
        waitpid(p, &st, 0);
        long el = now_ms() - t0;
        if (el > maxms) maxms = el;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
        else if (WIFSIGNALED(st)) {
            killed++;
            size_t l = strlen(detail);
            snprintf(detail + l, sizeof detail - l, "child%d:signal%d:%ldms ", i, WTERMSIG(st), el);
        } else {
            failed++;
            size_t l = strlen(detail);
            snprintf(detail + l, sizeof detail - l, "child%d:exit%d ", i, WEXITSTATUS(st));
        }
    }
    stop_busy(nbusy, t);
    printf("FORK ok=%d fail=%d killed=%d maxms=%ld detail=%s\n", ok, failed, killed, maxms, detail[0] ? detail : "-");
    return ok == children ? 0 : 1;
}

static int mode_spawn(int nbusy, char **cmd) {
    pthread_t t[32];
    start_busy(nbusy, t);
    pid_t p; int st1 = -1, st2;
    fflush(stdout);
    if (posix_spawnp(&p, cmd[0], NULL, NULL, cmd, environ) == 0) waitpid(p, &st1, 0);
    char line[4096] = ""; size_t l = 0;
    for (int i = 0; cmd[i]; i++) l += (size_t)snprintf(line + l, sizeof line - l, "%s'%s'", i ? " " : "", cmd[i]);
    fflush(stdout);
    st2 = system(line);
    stop_busy(nbusy, t);
    printf("SPAWN posix=%d system=%d\n", st1, st2);
    return st1 == 0 && st2 == 0 ? 0 : 1;
}

static void run_list(const char *label, const char *listcmd) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        printf("%s ", label);
        fflush(stdout);
        execl(listcmd, listcmd, "list", (char *)NULL);
        _exit(127);
    }
    int st; waitpid(p, &st, 0);
}

static int mode_fds(const char *listcmd) {
    struct sockaddr_storage ss; socklen_t len;
    if (resolve_first(name, port, AF_INET, &ss, &len)) { printf("resolve failed\n"); return 1; }
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* not close-on-exec: the program's own choice */
    fcntl(fd, F_SETFL, O_NONBLOCK);
    int r = connect(fd, (struct sockaddr *)&ss, len);
    printf("CONNECT %s\n", r == 0 ? "OK" : errname(errno));
    run_list("DURING", listcmd);
    struct pollfd pf = { .fd = fd, .events = POLLOUT };
    poll(&pf, 1, 4000);
    usleep(100 * 1000);
    run_list("AFTER", listcmd);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char buf[16384]; list_fds(buf, sizeof buf, NULL);
        printf("FORKED %s\n", buf);
        fflush(stdout);
        _exit(0);
    }
    int st; waitpid(p, &st, 0);
    close(fd);
    return 0;
}

static int mode_stale(const char *name2) {
    char b[256];
    int e = fetch(name, port, 1, b, sizeof b);
    printf("PARENT %s %s\n", ename(e), b);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        alarm(10);
        int maxfd = 2;
        char buf[16384]; list_fds(buf, sizeof buf, NULL);
        /* the numbers of dnsfo's inherited epoll/eventfd (if any) */
        for (char *s = buf; (s = strstr(s, "anon_inode:")); s++) {
            char *q = s; while (q > buf && q[-1] != ' ') q--;
            int fd = atoi(q); if (fd > maxfd) maxfd = fd;
        }
        printf("CHILD-INHERITED %s\n", buf);
        for (int fd = 3; fd < 1024; fd++) close(fd);
        int mine[64], n = 0;
        while (n < 64) { int f = open("/dev/null", O_RDONLY); if (f < 0) break; mine[n++] = f; if (f >= maxfd + 2) break; }
        int e2 = fetch(name2, port, 1, b, sizeof b);
        usleep(200 * 1000);
        int lost = 0;
        for (int i = 0; i < n; i++) {
            /* still the program's /dev/null? (not closed, not replaced by someone else's fd) */
            char path[64], tgt[256];
            snprintf(path, sizeof path, "/proc/self/fd/%d", mine[i]);
            ssize_t l = readlink(path, tgt, sizeof tgt - 1);
            tgt[l > 0 ? l : 0] = 0;
            if (strcmp(tgt, "/dev/null") != 0) { lost++; printf("LOST fd %d now %s\n", mine[i], tgt[0] ? tgt : "closed"); }
        }
        printf("STALE lost=%d of=%d child_connect=%s %s\n", lost, n, ename(e2), b);
        fflush(stdout);
        _exit(lost ? 1 : 0);
    }
    int st; waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "list")) {
        char buf[16384]; list_fds(buf, sizeof buf, NULL); printf("%s\n", buf); return 0;
    }
    if (argc < 4) { fprintf(stderr, "usage: see source\n"); return 2; }
    name = argv[2]; port = argv[3];
    if (!strcmp(argv[1], "fork") && argc >= 7) return mode_fork(atoi(argv[4]), atoi(argv[5]), !strcmp(argv[6], "closeall"));
    if (!strcmp(argv[1], "spawn") && argc >= 6) return mode_spawn(atoi(argv[4]), argv + 5);
    if (!strcmp(argv[1], "fds") && argc >= 5) return mode_fds(argv[4]);
    if (!strcmp(argv[1], "stale") && argc >= 5) { const char *n2 = argv[3]; port = argv[4]; return mode_stale(n2); }
    return 2;
}
