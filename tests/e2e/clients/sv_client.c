/* Static C client for the supervisor tests (issue 16), built with `cc -static` by
 * tests/e2e/supervise.py: LD_PRELOAD cannot reach it, only `dnsfo run --supervise` can.
 *
 *   sv_client first NAME PORT             getaddrinfo(AF_UNSPEC, SOCK_STREAM), one blocking
 *                                         connect() to the FIRST address only, then the banner
 *   sv_client steps PORT N NAME...        N steps, each one `first` connect per NAME; after
 *                                         step 0 it prints READY and waits for a line on stdin
 *   sv_client exit CODE                   exit(CODE)
 *   sv_client signal SIG                  kill(getpid(), SIG)
 *
 * `first` prints, one per line:
 *   PID <pid>
 *   ADDRS <ip> ...            getaddrinfo's answer, in order
 *   CONNECTING <ip>           just before connect()
 *   MS <ms>                   how long connect() took
 *   PEER <ip>                 getpeername() after a successful connect
 *   SAME inode=<0|1> dup=<0|1>  fstat: the connected fd is the socket() the client made, and a
 *                             dup() of it is the same socket (the banner is read through the dup)
 *   GOT <banner line>  |  ERR <errno name>      the outcome, always the last line
 * Exit 0 on GOT, 1 on ERR. `steps` prints `STEP <i> <name> GOT <banner>|ERR <errno>` lines, READY
 * after step 0, and DONE at the end (exit 0). Reads have a 5 s timeout (SO_RCVTIMEO).
 */
#include "common.h"

#include <signal.h>
#include <sys/stat.h>

static void ntop(const struct sockaddr *sa, char *buf, size_t len) {
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, a, buf, (socklen_t)len))
        snprintf(buf, len, "?");
}

/* One blocking connect to the first address of NAME. verbose: the `first` lines; else only the
 * outcome ("GOT ..." / "ERR ...") into out. Returns 0 on GOT. */
static int connect_first(const char *name, const char *port, int verbose, char *out, size_t outlen) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int g = getaddrinfo(name, port, &hints, &res);
    if (g != 0) {
        snprintf(out, outlen, "ERR getaddrinfo: %s", gai_strerror(g));
        return 1;
    }
    char ip[INET6_ADDRSTRLEN + 8];
    if (verbose) {
        printf("ADDRS");
        for (struct addrinfo *a = res; a; a = a->ai_next) {
            ntop(a->ai_addr, ip, sizeof ip);
            printf(" %s", ip);
        }
        printf("\n");
    }
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0) {
        snprintf(out, outlen, "ERR %s (socket)", errname(errno));
        freeaddrinfo(res);
        return 1;
    }
    struct stat before, after, copy;
    fstat(fd, &before);
    ntop(res->ai_addr, ip, sizeof ip);
    if (verbose)
        printf("CONNECTING %s\n", ip);
    long t0 = now_ms();
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    int e = errno;
    long t1 = now_ms();
    freeaddrinfo(res);
    if (verbose)
        printf("MS %ld\n", t1 - t0);
    if (rc < 0) {
        snprintf(out, outlen, "ERR %s", errname(e));
        close(fd);
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        ntop((struct sockaddr *)&ss, ip, sizeof ip);
    else
        snprintf(ip, sizeof ip, "getpeername:%s", errname(errno));
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int d = dup(fd);
    fstat(fd, &after);
    fstat(d, &copy);
    if (verbose) {
        printf("PEER %s\n", ip);
        printf("SAME inode=%d dup=%d\n", before.st_ino == after.st_ino && before.st_dev == after.st_dev,
               copy.st_ino == after.st_ino && copy.st_dev == after.st_dev);
    }
    /* the banner through the copy */
    char buf[256];
    size_t len = 0;
    for (int i = 0; i < 64 && len < sizeof buf - 1; i++) {
        ssize_t n = read(d, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(out, outlen, "ERR %s (read)", errname(errno));
            close(d);
            close(fd);
            return 1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len))
            break;
    }
    buf[len] = 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    close(d);
    close(fd);
    if (len == 0) {
        snprintf(out, outlen, "ERR EOF");
        return 1;
    }
    snprintf(out, outlen, "GOT %s", buf);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 4 && strcmp(argv[1], "first") == 0) {
        char out[320];
        printf("PID %d\n", (int)getpid());
        int rc = connect_first(argv[2], argv[3], 1, out, sizeof out);
        printf("%s\n", out);
        return rc;
    }
    if (argc >= 5 && strcmp(argv[1], "steps") == 0) {
        int n = atoi(argv[3]);
        if (n < 1 || n > 100) {
            fprintf(stderr, "steps: N out of 1..100\n");
            return 2;
        }
        printf("PID %d\n", (int)getpid());
        for (int i = 0; i < n; i++) {
            for (int k = 4; k < argc; k++) {
                char out[320];
                connect_first(argv[k], argv[2], 0, out, sizeof out);
                printf("STEP %d %s %s\n", i, argv[k], out);
            }
            if (i == 0) {
                char line[64];
                printf("READY\n");
                if (!fgets(line, sizeof line, stdin))
                    printf("EOF on stdin\n");
            }
        }
        printf("DONE\n");
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "exit") == 0)
        return atoi(argv[2]);
    if (argc == 3 && strcmp(argv[1], "signal") == 0) {
        kill(getpid(), atoi(argv[2]));
        pause();
        return 99;
    }
    fprintf(stderr, "usage: %s first NAME PORT | steps PORT N NAME... | exit CODE | signal SIG\n",
            argv[0]);
    return 2;
}
