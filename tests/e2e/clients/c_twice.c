/* Stock C client that connects twice to the same name (two sockets, one after the other), each
 * to gethostbyname()'s first address, and reports how the namespace's TCP counters moved during
 * each connect: "FIRST ..." and "SECOND ..." lines with AttemptFails (a SYN answered by RST),
 * OutRsts (RSTs sent, e.g. by the refusing port), ListenOverflows/ListenDrops (SYNs dropped by a
 * blackhole). Only meaningful in a private network namespace with nothing else running. */
#include "common.h"

static const char *names[] = { "Tcp:AttemptFails", "Tcp:OutRsts", "TcpExt:ListenOverflows",
                               "TcpExt:ListenDrops" };
#define NC 4

/* Fill v[] from /proc/net/snmp and /proc/net/netstat ("Proto: k1 k2 ...\nProto: v1 v2 ..."). */
static void counters(long v[NC]) {
    const char *files[] = { "/proc/net/snmp", "/proc/net/netstat" };
    for (int i = 0; i < NC; i++) v[i] = -1;
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(files[f], "r");
        if (!fp) continue;
        static char keys[8192], vals[8192];
        while (fgets(keys, sizeof keys, fp) && fgets(vals, sizeof vals, fp)) {
            char *ks, *vs, *k = strtok_r(keys, " \n", &ks), *val = strtok_r(vals, " \n", &vs);
            char proto[64];
            snprintf(proto, sizeof proto, "%s", k ? k : "");
            while ((k = strtok_r(NULL, " \n", &ks)) && (val = strtok_r(NULL, " \n", &vs))) {
                char full[160];
                snprintf(full, sizeof full, "%s%s", proto, k);
                for (int i = 0; i < NC; i++)
                    if (!strcmp(full, names[i])) v[i] = atol(val);
            }
        }
        fclose(fp);
    }
}

static void report(const char *label, long a[NC], long b[NC]) {
    printf("%s", label);
    for (int i = 0; i < NC; i++) printf(" %s=%ld", strchr(names[i], ':') + 1, b[i] - a[i]);
    printf("\n");
}

static int connect_once(const char *name, int port) {
    struct hostent *h = gethostbyname(name);
    if (!h || !h->h_addr_list[0]) { printf("ERR HOST_NOT_FOUND\n"); return 1; }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    memcpy(&sa.sin_addr, h->h_addr_list[0], sizeof sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { printf("ERR %s\n", errname(errno)); return 1; }
    int rc = print_banner(fd);
    close(fd);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s NAME PORT\n", argv[0]); return 2; }
    long c0[NC], c1[NC], c2[NC];
    counters(c0);
    if (connect_once(argv[1], atoi(argv[2]))) return 1;
    usleep(200 * 1000); /* let the first connection finish closing */
    counters(c1);
    report("FIRST", c0, c1);
    fflush(stdout);
    if (connect_once(argv[1], atoi(argv[2]))) return 1;
    usleep(300 * 1000); /* catch late background attempts too */
    counters(c2);
    report("SECOND", c1, c2);
    return 0;
}
