/**
 * The one place that loads libc. Every symbol carries its C prototype and man page; nothing
 * outside `libc/` imports this file.
 *
 * Rules kept here:
 * - errno is thread-local, so an errno-setting symbol is never `nonblocking`; the few
 *   nonblocking entries (`*_nb`) are only used where the result alone says what happened.
 * - variadic C functions (`syscall`, `prctl`, `fcntl`, `ioctl`) get fixed-arity aliases
 *   through `name:`.
 * @module
 */

/**
 * A CPU architecture denobox runs on (and has syscall tables for): `"x86_64"` or `"aarch64"`.
 * Loading denobox on any other one fails at import, before a wrong syscall number can run.
 */
export type SupportedArch = "x86_64" | "aarch64";

const SUPPORTED_ARCHES: readonly SupportedArch[] = ["x86_64", "aarch64"];

/** The architecture this process runs on, checked once at import. */
export const ARCH: SupportedArch = (() => {
  const arch = Deno.build.arch as string;
  if (Deno.build.os !== "linux") {
    throw new Error(
      `Cannot load denobox: Linux is required, this is ${Deno.build.os}`,
    );
  }
  if (!(SUPPORTED_ARCHES as readonly string[]).includes(arch)) {
    throw new Error(
      `Cannot load denobox: unsupported architecture ${arch} (supported: ${
        SUPPORTED_ARCHES.join(", ")
      })`,
    );
  }
  return arch as SupportedArch;
})();

const sys = (n: number) =>
  ({
    name: "syscall",
    parameters: Array(n + 1).fill("i64") as "i64"[],
    result: "i64",
  }) as const;

const SYMBOLS = {
  // int *__errno_location(void);  errno(3)
  __errno_location: { parameters: [], result: "pointer" },
  // long syscall(long number, ...);  syscall(2): fixed-arity aliases
  syscall0: sys(0),
  syscall1: sys(1),
  syscall2: sys(2),
  syscall3: sys(3),
  syscall4: sys(4),
  syscall5: sys(5),
  syscall6: sys(6),

  // int close(int fd);  close(2)
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);  read(2)
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);  write(2)
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t read(int fd, void *buf, size_t count) on a blocking thread;  read(2)
  read_nb: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  // int pipe2(int pipefd[2], int flags);  pipe(2)
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // int dup(int oldfd);  dup(2)
  dup: { parameters: ["i32"], result: "i32" },
  // int dup3(int oldfd, int newfd, int flags);  dup(2)
  dup3: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int openat(int dirfd, const char *pathname, int flags, mode_t mode);  open(2)
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  // int fcntl(int fd, int cmd, long arg);  fcntl(2)
  fcntl: { parameters: ["i32", "i32", "i64"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *argp);  ioctl(2)
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // int ioctl(int fd, unsigned long request, unsigned long arg);  ioctl(2)
  ioctl_int: {
    name: "ioctl",
    parameters: ["i32", "u64", "u64"],
    result: "i32",
  },
  // int mknodat(int dirfd, const char *pathname, mode_t mode, dev_t dev);  mknod(2)
  mknodat: { parameters: ["i32", "buffer", "u32", "u64"], result: "i32" },
  // int fchownat(int dirfd, const char *path, uid_t owner, gid_t group, int flags);  chown(2)
  fchownat: {
    parameters: ["i32", "buffer", "u32", "u32", "i32"],
    result: "i32",
  },
  // int fchmodat(int dirfd, const char *path, mode_t mode, int flags);  chmod(2)
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  // int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags);
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int symlinkat(const char *target, int newdirfd, const char *linkpath);  symlink(2)
  symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  // int linkat(int olddirfd, const char *old, int newdirfd, const char *new, int flags);
  linkat: {
    parameters: ["i32", "buffer", "i32", "buffer", "i32"],
    result: "i32",
  },
  // int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags);
  lsetxattr: {
    parameters: ["buffer", "buffer", "buffer", "usize", "i32"],
    result: "i32",
  },
  // ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size);
  lgetxattr: {
    parameters: ["buffer", "buffer", "buffer", "usize"],
    result: "isize",
  },
  // ssize_t llistxattr(const char *path, char *list, size_t size);  listxattr(2)
  llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  // int chdir(const char *path);  chdir(2)
  chdir: { parameters: ["buffer"], result: "i32" },
  // int fchdir(int fd);  chdir(2)
  fchdir: { parameters: ["i32"], result: "i32" },
  // int chroot(const char *path);  chroot(2)
  chroot: { parameters: ["buffer"], result: "i32" },
  // int mkdirat(int dirfd, const char *pathname, mode_t mode);  mkdir(2)
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int unlinkat(int dirfd, const char *pathname, int flags);  unlink(2)
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int fchown(int fd, uid_t owner, gid_t group);  chown(2)
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  // int fchmod(int fd, mode_t mode);  chmod(2)
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // int futimens(int fd, const struct timespec times[2]);  utimensat(2)
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  // int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);  setxattr(2)
  fsetxattr: {
    parameters: ["i32", "buffer", "buffer", "usize", "i32"],
    result: "i32",
  },
  // int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf);  statx(2)
  statx: {
    parameters: ["i32", "buffer", "i32", "u32", "buffer"],
    result: "i32",
  },
  // ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size);  readlink(2)
  readlinkat: {
    parameters: ["i32", "buffer", "buffer", "usize"],
    result: "isize",
  },

  // int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data);
  mount: {
    parameters: ["buffer", "buffer", "buffer", "u64", "buffer"],
    result: "i32",
  },
  // int umount2(const char *target, int flags);  umount(2)
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  // int sethostname(const char *name, size_t len);  gethostname(2)
  sethostname: { parameters: ["buffer", "usize"], result: "i32" },
  // int setdomainname(const char *name, size_t len);  getdomainname(2)
  setdomainname: { parameters: ["buffer", "usize"], result: "i32" },
  // int unshare(int flags);  unshare(2)
  unshare: { parameters: ["i32"], result: "i32" },
  // int setns(int fd, int nstype);  setns(2)
  setns: { parameters: ["i32", "i32"], result: "i32" },
  // int prctl(int option, unsigned long arg2, arg3, arg4, arg5);  prctl(2)
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  // int prlimit(pid_t pid, int resource, const struct rlimit *new, struct rlimit *old);  getrlimit(2)
  prlimit: { parameters: ["i32", "i32", "buffer", "buffer"], result: "i32" },

  // pid_t getpid(void); pid_t getppid(void); pid_t gettid(void);  getpid(2), gettid(2)
  getpid: { parameters: [], result: "i32" },
  getppid: { parameters: [], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  // uid_t getuid(void); uid_t geteuid(void); gid_t getgid(void); gid_t getegid(void);
  getuid: { parameters: [], result: "u32" },
  geteuid: { parameters: [], result: "u32" },
  getgid: { parameters: [], result: "u32" },
  getegid: { parameters: [], result: "u32" },
  // int kill(pid_t pid, int sig);  kill(2)
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // int pthread_sigmask(int how, const sigset_t *set, sigset_t *oldset);  pthread_sigmask(3)
  pthread_sigmask: {
    parameters: ["i32", "buffer", "buffer"],
    result: "i32",
  },
  // int waitid(idtype_t idtype, id_t id, siginfo_t *infop, int options);  wait(2)
  waitid: { parameters: ["i32", "i32", "buffer", "i32"], result: "i32" },
  // pid_t wait4(pid_t pid, int *wstatus, int options, struct rusage *rusage);  wait4(2)
  wait4: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },

  // void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);  mmap(2)
  mmap: {
    parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    result: "pointer",
  },
  // int munmap(void *addr, size_t len);  munmap(2)
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // int mprotect(void *addr, size_t len, int prot);  mprotect(2)
  mprotect: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  // int clone(int (*fn)(void *), void *stack, int flags, void *arg, pid_t *parent_tid, void *tls, pid_t *child_tid);
  clone: {
    parameters: [
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },

  // int socket(int domain, int type, int protocol);  socket(2)
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int bind(int fd, const struct sockaddr *addr, socklen_t len);  bind(2)
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int connect(int fd, const struct sockaddr *addr, socklen_t len);  connect(2)
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int getsockname(int fd, struct sockaddr *addr, socklen_t *len);  getsockname(2)
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen);
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  // ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen);
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "isize",
  },
  // int setsockopt(int fd, int level, int name, const void *val, socklen_t len);  setsockopt(2)
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
  // int getsockopt(int fd, int level, int name, void *val, socklen_t *len);  getsockopt(2)
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },

  // int epoll_create1(int flags);  epoll_create(2)
  epoll_create1: { parameters: ["i32"], result: "i32" },
  // int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);  epoll_ctl(2)
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout) on a blocking thread;
  // the result alone is used (errno would be the other thread's).
  epoll_wait_nb: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // the same, on this thread: for a zero timeout (a look at what is ready, never a wait)
  epoll_wait: {
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  // int eventfd(unsigned int initval, int flags);  eventfd(2)
  eventfd: { parameters: ["u32", "i32"], result: "i32" },

  // int posix_openpt(int flags);  posix_openpt(3)
  posix_openpt: { parameters: ["i32"], result: "i32" },
  // int grantpt(int fd);  grantpt(3)
  grantpt: { parameters: ["i32"], result: "i32" },
  // int unlockpt(int fd);  unlockpt(3)
  unlockpt: { parameters: ["i32"], result: "i32" },
  // int ptsname_r(int fd, char *buf, size_t buflen);  ptsname(3)
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // int tcgetattr(int fd, struct termios *t);  termios(3)
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  // int tcsetattr(int fd, int when, const struct termios *t);  termios(3)
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // void cfmakeraw(struct termios *t);  termios(3)
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  // int isatty(int fd);  isatty(3)
  isatty: { parameters: ["i32"], result: "i32" },
  // int flock(int fd, int operation);  flock(2)
  flock: { parameters: ["i32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

function loadError(e: unknown): Error {
  if (e instanceof Deno.errors.NotCapable) return e;
  return new Error(
    "Cannot load denobox: libc.so.6 (glibc) could not be opened; denobox needs a glibc-based Linux and --allow-ffi",
    { cause: e },
  );
}

/** `name` bound by Deno.dlopen: a fast-call trampoline is compiled for it (unless nonblocking). */
function open<K extends keyof typeof SYMBOLS>(
  name: K,
): Symbols[K] {
  try {
    const one = { [name]: SYMBOLS[name] } as Pick<typeof SYMBOLS, K>;
    return Deno.dlopen("libc.so.6", one).symbols[name] as Symbols[K];
  } catch (e) {
    throw loadError(e);
  }
}

// dlopen(3) and dlsym(3), to find a symbol's address without binding it. Their result is
// declared as a struct of one pointer, which both supported ABIs return exactly as a pointer
// (in rax on x86_64, x0 on aarch64): Deno compiles no fast-call trampoline for a symbol with
// a struct in its signature, so a process that only calls through addresses never starts
// the compiler (about 0.4 ms the first time).
const LOADER = {
  // void *dlopen(const char *filename, int flags);  dlopen(3)
  dlopen: { parameters: ["buffer", "i32"], result: { struct: ["pointer"] } },
  // void *dlsym(void *handle, const char *symbol);  dlsym(3)
  dlsym: { parameters: ["pointer", "buffer"], result: { struct: ["pointer"] } },
  // the nonblocking symbols get no trampoline either: bound in this same library, so a
  // process loads libc through Deno once (each Deno.dlopen costs ~0.2 ms in a fresh process)
  read_nb: SYMBOLS.read_nb,
  epoll_wait_nb: SYMBOLS.epoll_wait_nb,
} as const satisfies Deno.ForeignLibraryInterface;
type Nonblocking = "read_nb" | "epoll_wait_nb";
const RTLD_NOW = 2;
let loader: {
  lib: Deno.DynamicLibrary<typeof LOADER>["symbols"];
  handle: Deno.PointerObject;
} | null = null;
const encoder = new TextEncoder();
const cString = (s: string) => encoder.encode(s + "\0");
/** The pointer a `{ struct: ["pointer"] }` result holds (both supported CPUs are little-endian). */
const pointerIn = (b: Uint8Array) =>
  Deno.UnsafePointer.create(
    new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true),
  );

/** The loader library (dlopen, dlsym and the nonblocking symbols), opened once. */
function loaderLib(): NonNullable<typeof loader> {
  if (!loader) {
    let lib;
    try {
      lib = Deno.dlopen("libc.so.6", LOADER).symbols;
    } catch (e) {
      throw loadError(e);
    }
    // a second reference to the libc Deno already has loaded; never closed
    const handle = pointerIn(lib.dlopen(cString("libc.so.6"), RTLD_NOW));
    if (handle === null) throw loadError(new Error("dlopen(libc.so.6) failed"));
    loader = { lib, handle };
  }
  return loader;
}

/** The address of libc's function `name` (from libc.so.6 itself, never an interposed one). */
function address(name: string): Deno.PointerObject {
  const { lib, handle } = loaderLib();
  const p = pointerIn(lib.dlsym(handle, cString(name)));
  if (p === null) {
    throw loadError(new Error(`libc.so.6 has no symbol ${name}`));
  }
  return p;
}

/**
 * Calls after which a symbol is bound for real (with its fast-call trampoline): a process
 * that keeps calling it (a grader running many sandboxes) gets V8's fast calls, while a short
 * CLI process, which calls each symbol a few times, never compiles one.
 */
const BIND_AFTER = 64;

/**
 * `name` as a call through its address (`Deno.UnsafeFnPointer`): nothing is compiled. A call
 * goes through libffi, as every call from code V8 has not optimized does anyway, whatever
 * the binding; errno is the calling thread's as with a bound symbol. On the
 * `BIND_AFTER`th call the symbol is bound with Deno.dlopen and replaces this one in `table`.
 */
function byAddress<K extends keyof typeof SYMBOLS>(
  table: Symbols,
  name: K,
): Symbols[K] {
  const def: Deno.ForeignFunction = SYMBOLS[name];
  const fn = new Deno.UnsafeFnPointer(
    address(def.name ?? name) as Deno.PointerObject<Deno.ForeignFunction>,
    def,
  );
  const call = fn.call.bind(fn) as (...args: unknown[]) => unknown;
  let calls = 0;
  let bound: ((...args: unknown[]) => unknown) | null = null;
  return ((...args: unknown[]) => {
    if (bound) return bound(...args);
    if (++calls < BIND_AFTER) return call(...args);
    bound = open(name) as unknown as (...args: unknown[]) => unknown;
    (table as Record<K, unknown>)[name] = bound;
    return bound(...args);
  }) as unknown as Symbols[K];
}

/**
 * The raw libc symbols. Private to `libc/`.
 *
 * Each symbol is bound on first use, and a short-lived CLI process uses a fraction of the
 * table. Binding with Deno.dlopen compiles a fast-call trampoline per symbol (about 0.1 ms
 * each in a fresh process, ~20 symbols on a container's start path, plus ~0.4 ms to start
 * the compiler), so a synchronous symbol first calls through its address (`byAddress`, about
 * 0.03 ms to set up) and is bound for real once it has been called often. Nonblocking
 * symbols get no trampoline: bound at once, in the loader's library (`LOADER`).
 * Every entry starts as a stub that resolves the symbol on its first call and stores the
 * result in its own (writable data) property: an assignment keeps the table's shape, where
 * turning an accessor into a data property (a getter replacing itself) rebuilt the shape
 * of this ~100-property object on each first use.
 */
export const libc: Symbols = (() => {
  const table = {} as Record<keyof typeof SYMBOLS, unknown>;
  for (const name of Object.keys(SYMBOLS) as (keyof typeof SYMBOLS)[]) {
    let fn: ((...args: unknown[]) => unknown) | null = null;
    table[name] = (...args: unknown[]) => {
      if (fn === null) {
        const def = SYMBOLS[name];
        fn = ("nonblocking" in def
          ? (loaderLib().lib[name as Nonblocking] ?? open(name))
          : byAddress(table as Symbols, name)) as unknown as (
            ...args: unknown[]
          ) => unknown;
        table[name] = fn;
      }
      return fn(...args);
    };
  }
  return table as Symbols;
})();

const errnoPtr = libc.__errno_location()!;
const errnoView = new Deno.UnsafePointerView(errnoPtr);

/** The calling (JS main) thread's errno. Read it right after the failing call. */
export function errno(): number {
  return errnoView.getInt32();
}
