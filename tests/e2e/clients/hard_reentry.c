/* Re-entrancy and odd call sites (issue 5 items 1-2): a program whose malloc calls
 * close/connect/getaddrinfo, whose constructor and a library constructor resolve and connect,
 * and which resolves and connects again from atexit, a pthread key destructor and a C++-style
 * thread_local destructor (__cxa_thread_atexit_impl). Every stage prints `STAGE <errno> <banner>`.
 * Usage: hard_reentry NAME PORT (also HARD_NAME/HARD_PORT in the environment for the ctors). */
#include "hard_common.h"

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern int __cxa_thread_atexit_impl(void (*)(void *), void *, void *);
extern void *__dso_handle;

static __thread int in_malloc_hook;
static int hook_budget = 2000;   /* malloc calls that call into the socket API (bounded) */
static int gai_budget = 3;       /* of which a few also call getaddrinfo */
static int hooked_calls;

static void malloc_side_effects(void) {
    if (in_malloc_hook || hook_budget <= 0) return;
    in_malloc_hook = 1;
    hook_budget--;
    hooked_calls++;
    int saved = errno;
    close(-1);
    connect(-1, NULL, 0);
    const char *name = getenv("HARD_NAME"), *port = getenv("HARD_PORT");
    if (gai_budget > 0 && name && port) {
        gai_budget--;
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
        if (getaddrinfo(name, port, &hints, &res) == 0) {
            /* connect a socket to the first (dead) address from inside malloc */
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd >= 0) { connect(fd, res->ai_addr, res->ai_addrlen); close(fd); }
            freeaddrinfo(res);
        }
    }
    errno = saved;
    in_malloc_hook = 0;
}

void *malloc(size_t n) { malloc_side_effects(); return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t a, size_t b) { malloc_side_effects(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { malloc_side_effects(); return __libc_realloc(p, n); }

static const char *g_name, *g_port;

static void stage(const char *label) {
    char b[256];
    const char *name = g_name ? g_name : getenv("HARD_NAME");
    const char *port = g_port ? g_port : getenv("HARD_PORT");
    if (!name || !port) { printf("%s SKIP\n", label); fflush(stdout); return; }
    int e = fetch(name, port, 0, b, sizeof b);
    printf("%s %s %s\n", label, ename(e), b);
    fflush(stdout);
}

__attribute__((constructor)) static void exe_ctor(void) { stage("EXECTOR"); }

static void at_exit_handler(void) { stage("ATEXIT"); }

static pthread_key_t key;
static void key_dtor(void *p) { (void)p; stage("KEYDTOR"); }
static void tls_dtor(void *p) { (void)p; stage("TLSDTOR"); }

static void *thread_main(void *arg) {
    (void)arg;
    /* registered before this thread touches dnsfo: runs after dnsfo's own thread-locals died */
    __cxa_thread_atexit_impl(tls_dtor, NULL, &__dso_handle);
    pthread_setspecific(key, (void *)1);
    stage("THREAD");
    return NULL;
}

static void *thread_main2(void *arg) {
    (void)arg;
    stage("THREAD2");
    /* registered after dnsfo's thread-locals: runs before they die */
    __cxa_thread_atexit_impl(tls_dtor, NULL, &__dso_handle);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s NAME PORT\n", argv[0]); return 2; }
    g_name = argv[1]; g_port = argv[2];
    atexit(at_exit_handler);
    pthread_key_create(&key, key_dtor);
    stage("MAIN");
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, thread_main2, NULL);
    pthread_join(t, NULL);
    printf("MALLOCHOOK calls=%d\n", hooked_calls);
    fflush(stdout);
    return 0;
}
