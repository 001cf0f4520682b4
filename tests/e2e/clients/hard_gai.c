/* The lookup contract (issue 5 item 7).
 *   hard_gai contract NAME PORT   first fails over once on NAME (so dnsfo reorders later
 *       answers: winner first), then prints one `Q <label> rc=<rc> head_canon=<..> other_canon=<n>
 *       set=<sorted nodes>` line per getaddrinfo query, and `FIRST <label> <addr>`.
 *   hard_gai ghbnr NAME           gethostbyname_r and gethostbyname2_r(AF_INET, AF_INET6) with
 *       every buffer length 1..4096 (canary after the buffer): one line per length and call.
 *   hard_gai loop NAME PORT ROUNDS   ROUNDS x (getaddrinfo + freeaddrinfo, gethostbyname_r,
 *       gethostbyname, connect+close on the first address): for valgrind / heap growth. */
#include "hard_common.h"
#include <malloc.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void query(const char *label, const char *node, const char *service, int family, int socktype, int flags, int hints_null) {
    struct addrinfo hints = { .ai_family = family, .ai_socktype = socktype, .ai_flags = flags }, *res = NULL;
    int rc = getaddrinfo(node, service, hints_null ? NULL : &hints, &res);
    char *items[512]; int n = 0, other_canon = 0;
    const char *head_canon = "-";
    char first[128] = "-";
    for (struct addrinfo *p = res; rc == 0 && p && n < 512; p = p->ai_next) {
        char ip[64] = "?", buf[160];
        int port = 0;
        ip_of(p->ai_addr, ip, sizeof ip);
        if (p->ai_family == AF_INET) port = ntohs(((struct sockaddr_in *)p->ai_addr)->sin_port);
        if (p->ai_family == AF_INET6) port = ntohs(((struct sockaddr_in6 *)p->ai_addr)->sin6_port);
        snprintf(buf, sizeof buf, "%d/%d/%d/%s/%d/%u", p->ai_family, p->ai_socktype, p->ai_protocol, ip, port, p->ai_addrlen);
        if (p == res) { head_canon = p->ai_canonname ? p->ai_canonname : "-"; snprintf(first, sizeof first, "%s", ip); }
        else if (p->ai_canonname) other_canon++;
        items[n++] = strdup(buf);
    }
    qsort(items, (size_t)n, sizeof items[0], cmp_str);
    printf("Q %s rc=%d head_canon=%s other_canon=%d n=%d set=", label, rc, head_canon, other_canon, n);
    for (int i = 0; i < n; i++) { printf("%s%s", i ? "," : "", items[i]); free(items[i]); }
    printf("\nFIRST %s %s\n", label, first);
    if (rc == 0) freeaddrinfo(res);
}

static void contract(const char *name, const char *port) {
    char b[256];
    int e = fetch(name, port, 0, b, sizeof b);
    printf("FAILOVER %s %s\n", ename(e), b);
    query("null_node_passive", NULL, port, AF_UNSPEC, SOCK_STREAM, AI_PASSIVE, 0);
    query("null_node", NULL, port, AF_UNSPEC, SOCK_STREAM, 0, 0);
    query("null_both", NULL, NULL, AF_UNSPEC, 0, 0, 0);
    query("empty_node", "", port, AF_UNSPEC, SOCK_STREAM, 0, 0);
    query("empty_node_passive", "", port, AF_UNSPEC, SOCK_STREAM, AI_PASSIVE, 0);
    query("numeric_v4", "127.0.0.2", port, AF_UNSPEC, SOCK_STREAM, 0, 0);
    query("numeric_v6", "::1", port, AF_UNSPEC, SOCK_STREAM, 0, 0);
    query("numeric_v4_numerichost", "127.0.0.2", port, AF_UNSPEC, 0, AI_NUMERICHOST, 0);
    query("name_numerichost", name, port, AF_UNSPEC, SOCK_STREAM, AI_NUMERICHOST, 0);
    query("service_only_name", NULL, "http", AF_INET, SOCK_STREAM, 0, 0);
    query("bad_service", name, "no-such-service-x", AF_UNSPEC, SOCK_STREAM, 0, 0);
    query("name", name, port, AF_UNSPEC, SOCK_STREAM, 0, 0);
    query("name_hints_null", name, port, 0, 0, 0, 1);
    query("name_no_service", name, NULL, AF_UNSPEC, SOCK_STREAM, 0, 0);
    query("name_inet", name, port, AF_INET, SOCK_STREAM, 0, 0);
    query("name_inet6", name, port, AF_INET6, SOCK_STREAM, 0, 0);
    query("name_v4mapped", name, port, AF_INET6, SOCK_STREAM, AI_V4MAPPED | AI_ALL, 0);
    query("name_passive", name, port, AF_UNSPEC, SOCK_STREAM, AI_PASSIVE, 0);
    query("name_addrconfig", name, port, AF_UNSPEC, SOCK_STREAM, AI_ADDRCONFIG, 0);
    query("name_canon", name, port, AF_UNSPEC, SOCK_STREAM, AI_CANONNAME, 0);
    query("name_canon_inet", name, port, AF_INET, SOCK_STREAM, AI_CANONNAME, 0);
    query("name_canon_any_socktype", name, port, AF_UNSPEC, 0, AI_CANONNAME, 0);
    query("name_upper_canon", "SVC", port, AF_INET, SOCK_STREAM, AI_CANONNAME, 0);
    query("name_dgram", name, port, AF_INET, SOCK_DGRAM, 0, 0);
    query("unknown_name", "no-such-name.invalid", port, AF_UNSPEC, SOCK_STREAM, 0, 0);
}

static void hostent_line(const char *label, size_t len, int rc, int herr, struct hostent *r, const unsigned char *canary) {
    char *items[64]; int n = 0;
    if (rc == 0 && r) for (char **a = r->h_addr_list; *a && n < 64; a++) {
        char ip[64]; inet_ntop(r->h_addrtype, *a, ip, sizeof ip); items[n++] = strdup(ip);
    }
    qsort(items, (size_t)n, sizeof items[0], cmp_str);
    int canary_ok = 1;
    for (int i = 0; i < 64; i++) if (canary[i] != 0xA5) canary_ok = 0;
    printf("H %s len=%zu rc=%d herr=%d found=%d canary=%d name=%s addrs=", label, len, rc, herr,
           rc == 0 && r != NULL, canary_ok, rc == 0 && r ? r->h_name : "-");
    for (int i = 0; i < n; i++) { printf("%s%s", i ? "," : "", items[i]); free(items[i]); }
    printf("\n");
}

static void ghbnr(const char *name, const char *port) {
    char fb[256];
    int fe = fetch(name, port, 0, fb, sizeof fb); /* a winner and a dead address: dnsfo permutes */
    printf("FAILOVER %s %s\n", ename(fe), fb);
    unsigned char *mem = malloc(4096 + 64);
    for (size_t len = 1; len <= 4096; len++) {
        struct hostent h, *r; int herr;
        memset(mem, 0xA5, 4096 + 64);
        herr = -12345; r = (struct hostent *)1;
        int rc = gethostbyname_r(name, &h, (char *)mem, len, &r, &herr);
        hostent_line("r", len, rc, herr, r, mem + len);
        memset(mem, 0xA5, 4096 + 64);
        herr = -12345; r = (struct hostent *)1;
        rc = gethostbyname2_r(name, AF_INET, &h, (char *)mem, len, &r, &herr);
        hostent_line("r2_inet", len, rc, herr, r, mem + len);
        memset(mem, 0xA5, 4096 + 64);
        herr = -12345; r = (struct hostent *)1;
        rc = gethostbyname2_r(name, AF_INET6, &h, (char *)mem, len, &r, &herr);
        hostent_line("r2_inet6", len, rc, herr, r, mem + len);
    }
    struct hostent h, *r; int herr = 0; char small[4096];
    int rc = gethostbyname_r("no-such-name.invalid", &h, small, sizeof small, &r, &herr);
    printf("H missing rc=%d herr=%d found=%d\n", rc, herr, r != NULL);
    free(mem);
}

static void loop(const char *name, const char *port, int rounds) {
    struct mallinfo2 m0 = mallinfo2();
    size_t at100 = 0;
    for (int i = 0; i < rounds; i++) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME }, *res;
        if (getaddrinfo(name, port, &hints, &res) == 0) {
            if (i % 50 == 0) {
                int fd = socket(res->ai_family, SOCK_STREAM, 0);
                if (fd >= 0) { connect(fd, res->ai_addr, res->ai_addrlen); close(fd); }
            }
            freeaddrinfo(res);
        }
        struct hostent h, *r; int herr; char buf[2048];
        gethostbyname_r(name, &h, buf, sizeof buf, &r, &herr);
        gethostbyname(name);
        if (i == 100) at100 = mallinfo2().uordblks;
    }
    struct mallinfo2 m1 = mallinfo2();
    printf("LOOP rounds=%d heap_start=%zu heap_at100=%zu heap_end=%zu\n", rounds, m0.uordblks, at100, m1.uordblks);
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "contract")) { contract(argv[2], argv[3]); return 0; }
    if (argc >= 4 && !strcmp(argv[1], "ghbnr")) { ghbnr(argv[2], argv[3]); return 0; }
    if (argc >= 5 && !strcmp(argv[1], "loop")) { loop(argv[2], argv[3], atoi(argv[4])); return 0; }
    return 2;
}
