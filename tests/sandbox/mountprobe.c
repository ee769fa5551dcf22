/*
 * What a sandbox sees of its mounts, one line per call, for tests/sandbox/mounts_test.ts
 * (built statically by the test, run inside the sandbox):
 *   mountprobe create PATH   open(O_WRONLY|O_CREAT): "ok" or "err ENAME"
 *   mountprobe statfs PATH   "ok bytes=<f_blocks * f_bsize> mode=<octal>"
 *   mountprobe mq DIR        mq_open/send/receive a queue, which must show up as DIR/<name>
 *   mountprobe pty DIR       open DIR/ptmx: a new pty whose slave must show up as DIR/<n>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

static int fail(void) {
  printf("err %s\n", strerrorname_np(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  const char *cmd = argv[1], *path = argv[2];
  char buf[4096];
  if (!strcmp(cmd, "create")) {
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail();
    close(fd);
    puts("ok");
    return 0;
  }
  if (!strcmp(cmd, "statfs")) {
    struct statfs s;
    struct stat st;
    if (statfs(path, &s) || stat(path, &st)) return fail();
    printf("ok bytes=%llu mode=%o\n",
           (unsigned long long)s.f_blocks * (unsigned long long)s.f_bsize,
           st.st_mode & 07777);
    return 0;
  }
  if (!strcmp(cmd, "mq")) {
    struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 16};
    mqd_t q = mq_open("/denobox-probe", O_CREAT | O_EXCL | O_RDWR, 0600, &a);
    if (q == (mqd_t)-1) return fail();
    snprintf(buf, sizeof buf, "%s/denobox-probe", path);
    struct stat st;
    if (stat(buf, &st)) return fail();
    if (mq_send(q, "hi", 2, 0)) return fail();
    char msg[16];
    if (mq_receive(q, msg, sizeof msg, NULL) != 2) return fail();
    mq_unlink("/denobox-probe");
    printf("ok %s\n", buf);
    return 0;
  }
  if (!strcmp(cmd, "pty")) {
    snprintf(buf, sizeof buf, "%s/ptmx", path);
    int m = open(buf, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return fail();
    int n, unlock = 0;
    if (ioctl(m, TIOCSPTLCK, &unlock) || ioctl(m, TIOCGPTN, &n)) return fail();
    snprintf(buf, sizeof buf, "%s/%d", path, n);
    struct stat st;
    if (stat(buf, &st)) return fail();
    if (!S_ISCHR(st.st_mode)) {
      errno = ENOTTY;
      return fail();
    }
    printf("ok %s\n", buf);
    return 0;
  }
  return 2;
}
