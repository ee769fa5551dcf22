/*
 * Test payloads for the cgroup tests, built statically by the tests (gcc -static):
 *   cghelper alloc MB        touch MB MiB, 1 MiB at a time; prints "allocated MB" at the end
 *   cghelper bomb            a bounded fork bomb (fan-out 4, depth 4: at most 341 processes even
 *                            with no limit); prints the first fork() error ("fork: EAGAIN") or
 *                            "fork: no failure", leaves the bombers paused in the group
 *   cghelper spin            busy loop forever
 *   cghelper count FILE      increments a 64-bit counter in FILE (mmap, shared) forever
 *   cghelper sleepers N      forks N children that pause(), prints "ready", then pauses
 *   cghelper cgroup          prints /proc/self/cgroup (the payload's first action)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int usage(void) {
    fprintf(stderr, "usage: cghelper alloc MB | bomb | spin | count FILE | sleepers N | cgroup\n");
    return 2;
}

static int alloc(long mb) {
    for (long i = 0; i < mb; i++) {
        char *p = malloc(1 << 20);
        if (!p) { printf("malloc failed after %ld MiB\n", i); return 1; }
        memset(p, 0x5a, 1 << 20);
    }
    printf("allocated %ld\n", mb);
    return 0;
}

static void quiet(void) {
    int fd = open("/dev/null", O_RDWR);
    dup2(fd, 0); dup2(fd, 1); dup2(fd, 2);
    if (fd > 2) close(fd);
}

static int bomb(void) {
    int report[2];
    if (pipe(report) < 0) { perror("pipe"); return 1; }
    fflush(stdout);
    pid_t first = fork();
    if (first < 0) { printf("fork: %s\n", strerror(errno)); return 0; }
    if (first == 0) {
        quiet();
        close(report[0]);
        signal(SIGPIPE, SIG_IGN); /* the reader leaves after the first report */
        int depth = 0;
        for (int i = 0; i < 4 && depth < 4; i++) {
            pid_t pid = fork();
            if (pid == 0) { depth++; i = -1; continue; }
            if (pid < 0) {
                unsigned char e = (unsigned char)errno;
                /* EPIPE once the reader is gone: stay anyway, as a bomb would */
                ssize_t ignored = write(report[1], &e, 1);
                (void)ignored;
                break;
            }
        }
        for (;;) pause();
    }
    close(report[1]);
    struct pollfd pfd = { .fd = report[0], .events = POLLIN };
    unsigned char e;
    if (poll(&pfd, 1, 20000) == 1 && read(report[0], &e, 1) == 1) {
        printf("fork: %s\n", e == EAGAIN ? "EAGAIN" : strerror(e));
    } else {
        printf("fork: no failure\n");
    }
    return 0;
}

static int count(const char *file) {
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 8) < 0) { perror(file); return 1; }
    volatile uint64_t *n = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (n == MAP_FAILED) { perror("mmap"); return 1; }
    for (;;) (*n)++;
}

static int sleepers(long n) {
    fflush(stdout);
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) { printf("fork: %s\n", strerror(errno)); return 1; }
        if (pid == 0) { quiet(); for (;;) pause(); }
    }
    printf("ready\n");
    fflush(stdout);
    quiet();
    for (;;) pause();
}

static int cgroup(void) {
    char buf[4096];
    int fd = open("/proc/self/cgroup", O_RDONLY);
    ssize_t r;
    while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0) {
        if (write(1, buf, (size_t)r) < 0) return 1;
    }
    return fd < 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *m = argv[1];
    if (!strcmp(m, "alloc") && argc == 3) return alloc(atol(argv[2]));
    if (!strcmp(m, "bomb")) return bomb();
    if (!strcmp(m, "spin")) for (volatile unsigned long i = 0;; i++) {}
    if (!strcmp(m, "count") && argc == 3) return count(argv[2]);
    if (!strcmp(m, "sleepers") && argc == 3) return sleepers(atol(argv[2]));
    if (!strcmp(m, "cgroup")) return cgroup();
    return usage();
}
