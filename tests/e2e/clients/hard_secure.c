/* AT_SECURE (issue 5 item 10): linked against libdnsfo.so (a setuid program ignores LD_PRELOAD
 * paths, not its own DT_NEEDED). Prints `AT_SECURE <n>` and the outcome of a connect to the
 * first address of NAME.  hard_secure NAME PORT */
#include "hard_common.h"
#include <sys/auxv.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    printf("AT_SECURE %lu uid=%d euid=%d\n", getauxval(AT_SECURE), getuid(), geteuid());
    char b[256];
    int e = fetch(argv[1], argv[2], 0, b, sizeof b);
    printf("RESULT %s %s\n", ename(e), b);
    return e ? 1 : 0;
}
