/* Copies of the fd made right after connect() answered EINPROGRESS (while dnsfo fails over), then
 * used to wait for the connect and read the banner. The kernel's answer: a copy is the same socket,
 * so every copy reaches the server the connect reaches (`GOT HELLO <live ip>`).
 *   dup          c = dup(fd); wait and read through c
 *   dupfd        c = fcntl(fd, F_DUPFD, 100); wait and read through c
 *   fork-child   fork(); the child waits and reads through its copy, the parent waits for it
 *   fork-parent  fork(); the child waits for the connect through its copy (and exits 0 if it
 *                connected), the parent waits and reads through its own fd; both must succeed
 *   exec         fork(); the child execs os_exec_helper with the fd inherited (no CLOEXEC), which
 *                waits and reads; the parent keeps its fd and waits for the child
 *   scm          a child forked BEFORE the connect receives the fd over a socketpair (SCM_RIGHTS)
 *                right after EINPROGRESS and waits and reads through it; the parent keeps its fd
 *   vfork        vfork(); the child closes its copy and _exit()s; the parent waits and reads
 * The original fd stays open in every mode. usage: os_copy NAME PORT MODE [TIMEOUT_S] */
#include "os_common.h"
#include <libgen.h>
#include <sys/un.h>

static int child_status_line(int code, const char *who) {
    if (code == 0) return 0;
    char where[96];
    snprintf(where, sizeof where, "%s exit %d", who, code);
    printf("ERR %s (%s)\n", os_errname(ECHILD), where);
    return 1;
}

int main(int argc, char **argv) {
    const char *mode;
    struct addrinfo *ai = os_start(argc, argv, &mode);
    unsigned timeout = argc > 4 ? (unsigned)atoi(argv[4]) : 5;

    int sv[2] = {-1, -1};
    pid_t receiver = -1;
    if (strcmp(mode, "scm") == 0) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) os_fail(errno, "socketpair");
        receiver = fork();
        if (receiver < 0) os_fail(errno, "fork");
        if (receiver == 0) {
            alarm(timeout);
            close(sv[0]);
            char byte;
            struct iovec iov = {.iov_base = &byte, .iov_len = 1};
            union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
            } u;
            struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                               .msg_controllen = sizeof u.buf};
            ssize_t r = recvmsg(sv[1], &m, 0);
            if (r < 0) os_fail(errno, "recvmsg");
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            if (r != 1 || !c || c->cmsg_type != SCM_RIGHTS) os_fail(EPROTO, "no SCM_RIGHTS");
            int got;
            memcpy(&got, CMSG_DATA(c), sizeof got);
            os_trace("child received fd %d over SCM_RIGHTS", got);
            _exit(os_finish(got));
        }
        close(sv[1]);
    }

    int fd = os_socket(ai, SOCK_NONBLOCK);
    if (os_connect_nb(fd, ai)) os_trace("(connected at once)");

    if (strcmp(mode, "dup") == 0 || strcmp(mode, "dupfd") == 0) {
        int c = mode[3] == 0 ? dup(fd) : fcntl(fd, F_DUPFD, 100);
        if (c < 0) os_fail(errno, mode);
        os_trace("%s: copy %d of fd %d", mode, c, fd);
        return os_finish(c);
    }
    if (strcmp(mode, "fork-child") == 0) {
        pid_t pid = fork();
        if (pid < 0) os_fail(errno, "fork");
        if (pid == 0) {
            alarm(timeout);
            _exit(os_finish(fd));
        }
        return child_status_line(os_wait_child(pid), "reading child");
    }
    if (strcmp(mode, "fork-parent") == 0) {
        pid_t pid = fork();
        if (pid < 0) os_fail(errno, "fork");
        if (pid == 0) {
            alarm(timeout);
            dup2(2, 1); /* the child's own ERR lines go to stderr; its exit code tells */
            char peer[64];
            os_wait_connected(fd, peer, sizeof peer);
            os_trace("child: its copy connected to %s", peer);
            _exit(0);
        }
        char peer[64], line[256];
        os_wait_connected(fd, peer, sizeof peer);
        int e = os_read_line(fd, line, sizeof line);
        int code = os_wait_child(pid);
        if (e != 0) os_fail(e, "read");
        if (child_status_line(code, "connecting child")) return 1;
        printf("GOT %s\n", line);
        return 0;
    }
    if (strcmp(mode, "exec") == 0) {
        char helper[4096], self[4096], fdarg[16], targ[16];
        snprintf(self, sizeof self, "%s", argv[0]);
        snprintf(helper, sizeof helper, "%s/os_exec_helper", dirname(self));
        snprintf(fdarg, sizeof fdarg, "%d", fd);
        snprintf(targ, sizeof targ, "%u", timeout);
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0 || (fl & FD_CLOEXEC)) os_fail(fl < 0 ? errno : EINVAL, "fd is CLOEXEC");
        pid_t pid = fork();
        if (pid < 0) os_fail(errno, "fork");
        if (pid == 0) {
            execl(helper, helper, fdarg, targ, (char *)NULL);
            os_fail(errno, "execl os_exec_helper");
        }
        int code = os_wait_child(pid);
        return code == 0 ? 0 : (code >= 128 ? child_status_line(code, "exec'd helper") : code);
    }
    if (strcmp(mode, "scm") == 0) {
        char byte = 'F';
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } u;
        memset(&u, 0, sizeof u);
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                           .msg_controllen = sizeof u.buf};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        if (sendmsg(sv[0], &m, 0) != 1) os_fail(errno, "sendmsg SCM_RIGHTS");
        os_trace("sent fd %d over SCM_RIGHTS", fd);
        int code = os_wait_child(receiver);
        return code == 0 ? 0 : (code >= 128 ? child_status_line(code, "receiving child") : code);
    }
    if (strcmp(mode, "vfork") == 0) {
        pid_t pid = vfork();
        if (pid < 0) os_fail(errno, "vfork");
        if (pid == 0) {
            close(fd);
            _exit(0);
        }
        if (os_wait_child(pid) != 0) os_fail(ECHILD, "vfork child");
        os_trace("vfork child closed its copy and exited");
        return os_finish(fd);
    }
    os_fail(EINVAL, "MODE: dup dupfd fork-child fork-parent exec scm vfork");
    return 2;
}
