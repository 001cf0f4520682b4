/* Allocation failure inside a hook (issue 5 item 3: never an abort in the host program).
 *   hard_oom NAME PORT
 * Resolves NAME (dnsfo learns it), lowers RLIMIT_AS and fills the heap until malloc fails, then
 * connects a blocking socket to NAME's first (dead) address, which libc does without allocating.
 * Prints `CONNECT <errno>` and `SURVIVED`; a C program handles malloc failure, dnsfo must too. */
#include "hard_common.h"

static void *blocks[200000];

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    struct sockaddr_storage ss; socklen_t len;
    if (resolve_first(argv[1], argv[2], AF_INET, &ss, &len)) { printf("resolve failed\n"); return 1; }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    /* the limit: what is mapped now plus 32 MiB */
    FILE *f = fopen("/proc/self/statm", "r"); unsigned long pages = 0;
    if (!f || fscanf(f, "%lu", &pages) != 1) return 3;
    fclose(f);
    struct rlimit rl = { pages * 4096UL + (32UL << 20), pages * 4096UL + (32UL << 20) };
    setrlimit(RLIMIT_AS, &rl);
    int n = 0;
    size_t sizes[] = { 1 << 20, 1 << 16, 1 << 12, 1 << 8, 32, 16 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        while (n < 200000) { void *p = malloc(sizes[s]); if (!p) break; memset(p, 1, sizes[s] < 64 ? sizes[s] : 64); blocks[n++] = p; }
    printf("FILLED blocks=%d\n", n);
    fflush(stdout);
    int r = connect(fd, (struct sockaddr *)&ss, len);
    int e = r ? errno : 0;
    for (int i = 0; i < n; i++) free(blocks[i]);
    printf("CONNECT %s\nSURVIVED\n", ename(e));
    return 0;
}
