/* A shared library whose constructor resolves and connects (issue 5 item 2): linked into
 * hard_reentry, so it runs before the program's main and before anything else touched dnsfo. */
#include "hard_common.h"

__attribute__((constructor)) static void hard_lib_ctor(void) {
    const char *name = getenv("HARD_NAME"), *port = getenv("HARD_PORT");
    if (!name || !port) return;
    char b[256];
    int e = fetch(name, port, 0, b, sizeof b);
    printf("LIBCTOR %s %s\n", ename(e), b);
    fflush(stdout);
}
