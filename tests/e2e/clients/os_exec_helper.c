/* Exec'd by os_copy (mode exec) with the connecting socket inherited: waits for the connect
 * through the inherited fd, reads and prints the banner. usage: os_exec_helper FD [TIMEOUT_S] */
#include "os_common.h"

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    os_t0 = os_now_ms();
    if (argc < 2) {
        fprintf(stderr, "usage: %s FD [TIMEOUT_S]\n", argv[0]);
        return 2;
    }
    signal(SIGALRM, os_on_alarm);
    alarm(argc > 2 ? (unsigned)atoi(argv[2]) : 5);
    int fd = atoi(argv[1]);
    struct stat st;
    if (fstat(fd, &st) < 0) os_fail(errno, "fstat inherited fd");
    os_trace("exec'd with fd %d (%s)", fd, S_ISSOCK(st.st_mode) ? "socket" : "NOT a socket");
    return os_finish(fd);
}
