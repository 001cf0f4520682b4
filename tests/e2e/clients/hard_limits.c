/* Resources under `ulimit -n 64` (issue 5 item 6).
 *   hard_limits seq PREFIX COUNT PORT
 *       names PREFIX01..PREFIXnn (dead first, live second), one after the other, alternately
 *       blocking and non-blocking. `SEQ ok=N fail=N` and the fds before/after.
 *   hard_limits race PREFIX COUNT PORT FILLERS
 *       holds FILLERS extra fds, then connects COUNT non-blocking sockets (one per name) at once
 *       and polls them all (4 s). `RACE ok=N fail=N errs=...`, fds before/after, then
 *       `ORDER good=N bad=N`: after the race, is each name's live address (127.0.2.i) listed
 *       first by getaddrinfo, i.e. no live address was remembered as dead? */
#include "hard_common.h"

static void setlimit(void) {
    struct rlimit rl = { 64, 64 };
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) { perror("setrlimit"); exit(2); }
}

static void fds_line(const char *label) {
    char buf[16384]; int c; list_fds(buf, sizeof buf, &c);
    printf("%s count=%d %s\n", label, c, buf);
}

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    const char *mode = argv[1], *prefix = argv[2], *port = argv[4];
    int count = atoi(argv[3]);
    if (count < 1 || count > 60) return 2;
    setlimit();
    fds_line("BEFORE");
    if (!strcmp(mode, "seq")) {
        int ok = 0, fail = 0; char errs[2048] = "";
        for (int i = 1; i <= count; i++) {
            char name[64], b[256], want[64];
            snprintf(name, sizeof name, "%s%02d", prefix, i);
            snprintf(want, sizeof want, "HELLO 127.0.2.%d", i);
            int e = fetch(name, port, i & 1, b, sizeof b);
            if (e == 0 && !strcmp(b, want)) ok++;
            else { fail++; size_t l = strlen(errs); snprintf(errs + l, sizeof errs - l, "%s:%s:%s ", name, ename(e), b); }
        }
        usleep(300 * 1000);
        printf("SEQ ok=%d fail=%d errs=%s\n", ok, fail, errs[0] ? errs : "-");
        fds_line("AFTER");
        return fail ? 1 : 0;
    }
    int fillers = argc > 5 ? atoi(argv[5]) : 0, filler[64], nf = 0;
    /* How long the connects may take (ms); 0: only the lookups and the connect calls matter. */
    long wait_ms = argc > 6 ? atol(argv[6]) : 4000;
    for (int i = 0; i < fillers && i < 64; i++) { int f = open("/dev/null", O_RDONLY); if (f < 0) break; filler[nf++] = f; }
    int fd[64]; struct pollfd pf[64]; int res[64]; int n = 0;
    char errs[4096] = "";
    for (int i = 1; i <= count; i++) {
        char name[64]; struct sockaddr_storage ss; socklen_t len;
        snprintf(name, sizeof name, "%s%02d", prefix, i);
        res[n] = -1;
        fd[n] = -1;
        if (resolve_first(name, port, AF_INET, &ss, &len)) { res[n] = ENOENT; n++; continue; }
        fd[n] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd[n] < 0) { res[n] = errno; n++; continue; }
        int r = connect(fd[n], (struct sockaddr *)&ss, len);
        if (r == 0) res[n] = 0;
        else if (errno != EINPROGRESS) res[n] = errno;
        n++;
    }
    long t0 = now_ms();
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < n; i++) { pf[i].fd = res[i] == -1 ? fd[i] : -1; pf[i].events = POLLOUT; pf[i].revents = 0; waiting += res[i] == -1; }
        long left = wait_ms - (now_ms() - t0);
        if (!waiting || left <= 0) break;
        if (poll(pf, (nfds_t)n, (int)left) <= 0) continue;
        for (int i = 0; i < n; i++) if (pf[i].revents) {
            int soe = 0; socklen_t sl = sizeof soe;
            getsockopt(fd[i], SOL_SOCKET, SO_ERROR, &soe, &sl);
            res[i] = soe;
        }
    }
    int ok = 0, fail = 0;
    for (int i = 0; i < n; i++) {
        if (res[i] == 0) ok++;
        else { fail++; size_t l = strlen(errs); snprintf(errs + l, sizeof errs - l, "%s%02d:%s ", prefix, i + 1, res[i] == -1 ? "PENDING" : ename(res[i])); }
        if (fd[i] >= 0) close(fd[i]);
    }
    for (int i = 0; i < nf; i++) close(filler[i]);
    printf("RACE ok=%d fail=%d errs=%s\n", ok, fail, errs[0] ? errs : "-");
    usleep(300 * 1000);
    fds_line("AFTER");
    int good = 0, bad = 0; char badn[2048] = "";
    for (int i = 1; i <= count; i++) {
        char name[64], want[64], ip[64]; struct sockaddr_storage ss; socklen_t len;
        snprintf(name, sizeof name, "%s%02d", prefix, i);
        snprintf(want, sizeof want, "127.0.2.%d", i);
        if (resolve_first(name, port, AF_INET, &ss, &len)) { bad++; continue; }
        ip_of((struct sockaddr *)&ss, ip, sizeof ip);
        if (!strcmp(ip, want)) good++;
        else { bad++; size_t l = strlen(badn); snprintf(badn + l, sizeof badn - l, "%s:%s ", name, ip); }
    }
    printf("ORDER good=%d bad=%d first=%s\n", good, bad, badn[0] ? badn : "-");
    return 0;
}
