/* Nothing written to the program's fds (issue 5 item 11): fd 2 is a TCP socket (inetd style);
 * the program resolves and connects (refused-first blocking, silent-first non-blocking, all
 * refused, unknown name, gethostbyname), then counts the bytes that arrived at the other end.
 *   hard_quiet NAME_REFUSED_FIRST NAME_SILENT_FIRST NAME_DEAD PORT
 * stdout: `R <label> <result>` lines and `STDERR_BYTES <n>`. */
#include "hard_common.h"

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    const char *port = argv[4];
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al)) return 3;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) return 3;
    int peer = accept(l, NULL, NULL);
    if (peer < 0 || dup2(c, 2) != 2) return 3;
    close(c); close(l);
    char b[256];
    int e = fetch(argv[1], port, 0, b, sizeof b); printf("R refused_first %s %s\n", ename(e), b);
    e = fetch(argv[2], port, 1, b, sizeof b); printf("R silent_first %s %s\n", ename(e), b);
    e = fetch(argv[3], port, 0, b, sizeof b); printf("R all_refused %s %s\n", ename(e), b);
    e = fetch(argv[3], port, 1, b, sizeof b); printf("R all_refused_nb %s %s\n", ename(e), b);
    e = fetch("no-such-name.invalid", port, 0, b, sizeof b); printf("R unknown %s\n", ename(e));
    struct hostent *h = gethostbyname(argv[1]); printf("R ghbn %s\n", h ? "found" : "none");
    fflush(stdout);
    close(2);
    fcntl(peer, F_SETFL, O_NONBLOCK);
    usleep(200 * 1000);
    long total = 0; char buf[4096];
    for (int i = 0; i < 1000; i++) { ssize_t n = read(peer, buf, sizeof buf); if (n <= 0) break; total += n; }
    printf("STDERR_BYTES %ld\n", total);
    return 0;
}
