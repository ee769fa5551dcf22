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

/**
 * The libc symbols, each under its C prototype and man page: `"(parameters) result"`,
 * `"cname(...) ..."` for an alias of the C function `cname`, and a trailing ` nonblocking`
 * for a call that runs on a blocking thread and returns a promise. One string per symbol,
 * not an object of arrays: ~100 nested definitions were deserialized and built at every
 * import, while a CLI process binds a fraction of them. A symbol's `Deno.ForeignFunction` is
 * made when it is first bound (`definition`); the TypeScript types are read from the same
 * strings (`Defs`), and `deno check` rejects a malformed one (`_CheckSymbols`).
 */
const SYMBOLS = {
  // long syscall(long number, ...);  syscall(2): fixed-arity aliases
  syscall0: "syscall(i64) i64",
  syscall1: "syscall(i64 i64) i64",
  syscall2: "syscall(i64 i64 i64) i64",
  syscall3: "syscall(i64 i64 i64 i64) i64",
  syscall4: "syscall(i64 i64 i64 i64 i64) i64",
  syscall5: "syscall(i64 i64 i64 i64 i64 i64) i64",
  syscall6: "syscall(i64 i64 i64 i64 i64 i64 i64) i64",

  // int close(int fd);  close(2)
  close: "(i32) i32",
  // ssize_t read(int fd, void *buf, size_t count);  read(2)
  read: "(i32 buffer usize) isize",
  // ssize_t write(int fd, const void *buf, size_t count);  write(2)
  write: "(i32 buffer usize) isize",
  // ssize_t read(int fd, void *buf, size_t count) on a blocking thread;  read(2)
  read_nb: "read(i32 buffer usize) isize nonblocking",
  // int pipe2(int pipefd[2], int flags);  pipe(2)
  pipe2: "(buffer i32) i32",
  // int dup(int oldfd);  dup(2)
  dup: "(i32) i32",
  // int dup3(int oldfd, int newfd, int flags);  dup(2)
  dup3: "(i32 i32 i32) i32",
  // int openat(int dirfd, const char *pathname, int flags, mode_t mode);  open(2)
  openat: "(i32 buffer i32 u32) i32",
  // int fcntl(int fd, int cmd, long arg);  fcntl(2)
  fcntl: "(i32 i32 i64) i32",
  // int ioctl(int fd, unsigned long request, void *argp);  ioctl(2)
  ioctl: "(i32 u64 buffer) i32",
  // int ioctl(int fd, unsigned long request, unsigned long arg);  ioctl(2)
  ioctl_int: "ioctl(i32 u64 u64) i32",
  // int mknodat(int dirfd, const char *pathname, mode_t mode, dev_t dev);  mknod(2)
  mknodat: "(i32 buffer u32 u64) i32",
  // int fchownat(int dirfd, const char *path, uid_t owner, gid_t group, int flags);  chown(2)
  fchownat: "(i32 buffer u32 u32 i32) i32",
  // int fchmodat(int dirfd, const char *path, mode_t mode, int flags);  chmod(2)
  fchmodat: "(i32 buffer u32 i32) i32",
  // int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags);
  utimensat: "(i32 buffer buffer i32) i32",
  // int symlinkat(const char *target, int newdirfd, const char *linkpath);  symlink(2)
  symlinkat: "(buffer i32 buffer) i32",
  // int linkat(int olddirfd, const char *old, int newdirfd, const char *new, int flags);
  linkat: "(i32 buffer i32 buffer i32) i32",
  // int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags);
  lsetxattr: "(buffer buffer buffer usize i32) i32",
  // ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size);
  lgetxattr: "(buffer buffer buffer usize) isize",
  // ssize_t llistxattr(const char *path, char *list, size_t size);  listxattr(2)
  llistxattr: "(buffer buffer usize) isize",
  // int chdir(const char *path);  chdir(2)
  chdir: "(buffer) i32",
  // int fchdir(int fd);  chdir(2)
  fchdir: "(i32) i32",
  // int chroot(const char *path);  chroot(2)
  chroot: "(buffer) i32",
  // int mkdirat(int dirfd, const char *pathname, mode_t mode);  mkdir(2)
  mkdirat: "(i32 buffer u32) i32",
  // int unlinkat(int dirfd, const char *pathname, int flags);  unlink(2)
  unlinkat: "(i32 buffer i32) i32",
  // int fchown(int fd, uid_t owner, gid_t group);  chown(2)
  fchown: "(i32 u32 u32) i32",
  // int fchmod(int fd, mode_t mode);  chmod(2)
  fchmod: "(i32 u32) i32",
  // int futimens(int fd, const struct timespec times[2]);  utimensat(2)
  futimens: "(i32 buffer) i32",
  // int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags);  setxattr(2)
  fsetxattr: "(i32 buffer buffer usize i32) i32",
  // int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf);  statx(2)
  statx: "(i32 buffer i32 u32 buffer) i32",
  // ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size);  readlink(2)
  readlinkat: "(i32 buffer buffer usize) isize",

  // int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data);
  mount: "(buffer buffer buffer u64 buffer) i32",
  // int umount2(const char *target, int flags);  umount(2)
  umount2: "(buffer i32) i32",
  // int sethostname(const char *name, size_t len);  gethostname(2)
  sethostname: "(buffer usize) i32",
  // int setdomainname(const char *name, size_t len);  getdomainname(2)
  setdomainname: "(buffer usize) i32",
  // int unshare(int flags);  unshare(2)
  unshare: "(i32) i32",
  // int setns(int fd, int nstype);  setns(2)
  setns: "(i32 i32) i32",
  // int prctl(int option, unsigned long arg2, arg3, arg4, arg5);  prctl(2)
  prctl: "(i32 u64 u64 u64 u64) i32",
  // int prlimit(pid_t pid, int resource, const struct rlimit *new, struct rlimit *old);  getrlimit(2)
  prlimit: "(i32 i32 buffer buffer) i32",

  // pid_t getpid(void); pid_t getppid(void); pid_t gettid(void);  getpid(2), gettid(2)
  getpid: "() i32",
  getppid: "() i32",
  gettid: "() i32",
  // uid_t getuid(void); uid_t geteuid(void); gid_t getgid(void); gid_t getegid(void);
  getuid: "() u32",
  geteuid: "() u32",
  getgid: "() u32",
  getegid: "() u32",
  // int kill(pid_t pid, int sig);  kill(2)
  kill: "(i32 i32) i32",
  // int pthread_sigmask(int how, const sigset_t *set, sigset_t *oldset);  pthread_sigmask(3)
  pthread_sigmask: "(i32 buffer buffer) i32",
  // int waitid(idtype_t idtype, id_t id, siginfo_t *infop, int options);  wait(2)
  waitid: "(i32 i32 buffer i32) i32",
  // pid_t wait4(pid_t pid, int *wstatus, int options, struct rusage *rusage);  wait4(2)
  wait4: "(i32 buffer i32 buffer) i32",

  // void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);  mmap(2)
  mmap: "(pointer usize i32 i32 i32 i64) pointer",
  // int munmap(void *addr, size_t len);  munmap(2)
  munmap: "(pointer usize) i32",
  // int mprotect(void *addr, size_t len, int prot);  mprotect(2)
  mprotect: "(pointer usize i32) i32",
  // int clone(int (*fn)(void *), void *stack, int flags, void *arg, pid_t *parent_tid, void *tls, pid_t *child_tid);
  clone: "(pointer pointer i32 pointer pointer pointer pointer) i32",

  // int socket(int domain, int type, int protocol);  socket(2)
  socket: "(i32 i32 i32) i32",
  // int bind(int fd, const struct sockaddr *addr, socklen_t len);  bind(2)
  bind: "(i32 buffer u32) i32",
  // int connect(int fd, const struct sockaddr *addr, socklen_t len);  connect(2)
  connect: "(i32 buffer u32) i32",
  // int getsockname(int fd, struct sockaddr *addr, socklen_t *len);  getsockname(2)
  getsockname: "(i32 buffer buffer) i32",
  // ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen);
  sendto: "(i32 buffer usize i32 buffer u32) isize",
  // ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen);
  recvfrom: "(i32 buffer usize i32 buffer buffer) isize",
  // int setsockopt(int fd, int level, int name, const void *val, socklen_t len);  setsockopt(2)
  setsockopt: "(i32 i32 i32 buffer u32) i32",
  // int getsockopt(int fd, int level, int name, void *val, socklen_t *len);  getsockopt(2)
  getsockopt: "(i32 i32 i32 buffer buffer) i32",

  // int epoll_create1(int flags);  epoll_create(2)
  epoll_create1: "(i32) i32",
  // int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);  epoll_ctl(2)
  epoll_ctl: "(i32 i32 i32 buffer) i32",
  // int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout) on a blocking thread;
  // the result alone is used (errno would be the other thread's).
  epoll_wait_nb: "epoll_wait(i32 buffer i32 i32) i32 nonblocking",
  // the same, on this thread: for a zero timeout (a look at what is ready, never a wait)
  epoll_wait: "(i32 buffer i32 i32) i32",
  // int eventfd(unsigned int initval, int flags);  eventfd(2)
  eventfd: "(u32 i32) i32",

  // int posix_openpt(int flags);  posix_openpt(3)
  posix_openpt: "(i32) i32",
  // int grantpt(int fd);  grantpt(3)
  grantpt: "(i32) i32",
  // int unlockpt(int fd);  unlockpt(3)
  unlockpt: "(i32) i32",
  // int ptsname_r(int fd, char *buf, size_t buflen);  ptsname(3)
  ptsname_r: "(i32 buffer usize) i32",
  // int tcgetattr(int fd, struct termios *t);  termios(3)
  tcgetattr: "(i32 buffer) i32",
  // int tcsetattr(int fd, int when, const struct termios *t);  termios(3)
  tcsetattr: "(i32 i32 buffer) i32",
  // void cfmakeraw(struct termios *t);  termios(3)
  cfmakeraw: "(buffer) void",
  // int isatty(int fd);  isatty(3)
  isatty: "(i32) i32",
  // int flock(int fd, int operation);  flock(2)
  flock: "(i32 i32) i32",
} as const;

/** The space-separated words of `S`. */
type Words<S extends string, Acc extends string[] = []> = S extends "" ? Acc
  : S extends `${infer W} ${infer R}` ? Words<R, [...Acc, W]>
  : [...Acc, S];
/** The result type of a definition's tail (`isize` or `isize nonblocking`). */
type ResultOf<R extends string> = R extends `${infer X} nonblocking` ? X : R;
/** The `Deno.ForeignFunction` a definition string stands for. */
type DefOf<D extends string> = D extends `${string}(${infer P}) ${infer R}` ? {
    parameters: Words<P> extends infer W extends Deno.NativeType[] ? W : never;
    result: ResultOf<R> extends infer X extends Deno.NativeResultType ? X
      : never;
    nonblocking: R extends `${string} nonblocking` ? true : false;
  }
  : never;
/** The symbols whose definition does not parse or names an unknown type. */
type Malformed = {
  [K in keyof typeof SYMBOLS]: typeof SYMBOLS[K] extends
    `${string}(${infer P}) ${infer R}`
    ? Words<P> extends Deno.NativeType[]
      ? ResultOf<R> extends Deno.NativeResultType ? never : K
    : K
    : K;
}[keyof typeof SYMBOLS];
/** `deno check` fails here, naming the symbol, when a definition in `SYMBOLS` is malformed. */
type _CheckSymbols<T extends never = Malformed> = T;
/** `SYMBOLS` as a `Deno.ForeignLibraryInterface`. */
type Defs = { [K in keyof typeof SYMBOLS]: DefOf<typeof SYMBOLS[K]> };
type Symbols = Deno.DynamicLibrary<Defs>["symbols"];
type SymbolName = keyof Defs;

/** The names of the libc symbols (for tests: each binds on first access). */
export function symbolNames(): string[] {
  return Object.keys(SYMBOLS);
}

/** The definition of `name` from `SYMBOLS`, or undefined when there is no such symbol. */
function definition(name: string): Deno.ForeignFunction | undefined {
  if (!Object.hasOwn(SYMBOLS, name)) return undefined;
  const text: string = SYMBOLS[name as SymbolName];
  const open = text.indexOf("("), close = text.indexOf(")");
  const params = text.slice(open + 1, close);
  const tail = text.slice(close + 2);
  const blocking = !tail.endsWith(" nonblocking");
  const def: Deno.ForeignFunction = {
    parameters: (params === "" ? [] : params.split(" ")) as Deno.NativeType[],
    result: (blocking ? tail : tail.slice(0, -12)) as Deno.NativeResultType,
  };
  if (open > 0) def.name = text.slice(0, open);
  if (!blocking) def.nonblocking = true;
  return def;
}

function loadError(e: unknown): Error {
  if (e instanceof Deno.errors.NotCapable) return e;
  return new Error(
    "Cannot load denobox: libc.so.6 (glibc) could not be opened; denobox needs a glibc-based Linux and --allow-ffi",
    { cause: e },
  );
}

/** `name` bound by Deno.dlopen: a fast-call trampoline is compiled for it (unless nonblocking). */
function open(name: string, def: Deno.ForeignFunction): unknown {
  try {
    return Deno.dlopen("libc.so.6", { [name]: def }).symbols[name];
  } catch (e) {
    throw loadError(e);
  }
}

// dlopen(3), dlsym(3) and __errno_location(3), to find a symbol's address without binding it
// and to read errno. Their result is declared as a struct of one pointer, which both supported
// ABIs return exactly as a pointer (in rax on x86_64, x0 on aarch64): Deno compiles no
// fast-call trampoline for a symbol with a struct in its signature, so a process that only
// calls through addresses never starts the compiler (about 0.4 ms the first time).
const LOADER = {
  // void *dlopen(const char *filename, int flags);  dlopen(3)
  dlopen: { parameters: ["buffer", "i32"], result: { struct: ["pointer"] } },
  // void *dlsym(void *handle, const char *symbol);  dlsym(3)
  dlsym: { parameters: ["pointer", "buffer"], result: { struct: ["pointer"] } },
  // int *__errno_location(void);  errno(3)
  __errno_location: { parameters: [], result: { struct: ["pointer"] } },
} as const satisfies Deno.ForeignLibraryInterface;
// The nonblocking symbols get no trampoline either: bound in this same library, so a process
// loads libc through Deno once (each Deno.dlopen costs ~0.2 ms in a fresh process).
const NONBLOCKING = [
  "read_nb",
  "epoll_wait_nb",
] as const satisfies SymbolName[];
type Nonblocking = typeof NONBLOCKING[number];
const RTLD_NOW = 2;
interface Loader {
  lib:
    & Deno.DynamicLibrary<typeof LOADER>["symbols"]
    & Pick<Symbols, Nonblocking>;
  handle: Deno.PointerObject;
  errno: Deno.UnsafePointerView;
}
let loader: Loader | null = null;
const encoder = new TextEncoder();
const cString = (s: string) => encoder.encode(s + "\0");
/** The pointer a `{ struct: ["pointer"] }` result holds (both supported CPUs are little-endian). */
const pointerIn = (b: Uint8Array) =>
  Deno.UnsafePointer.create(
    new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true),
  );

/**
 * The loader library (dlopen, dlsym, __errno_location and the nonblocking symbols), opened
 * on the first call into libc rather than at import: a process that imports denobox without
 * calling libc pays nothing, and any call that can fail has come through here first, so
 * `errno()` always finds the pointer.
 */
function loaderLib(): Loader {
  if (!loader) {
    const defs: Deno.ForeignLibraryInterface = { ...LOADER };
    for (const name of NONBLOCKING) defs[name] = definition(name)!;
    let lib;
    try {
      lib = Deno.dlopen("libc.so.6", defs).symbols as Loader["lib"];
    } catch (e) {
      throw loadError(e);
    }
    // a second reference to the libc Deno already has loaded; never closed
    const handle = pointerIn(lib.dlopen(cString("libc.so.6"), RTLD_NOW));
    if (handle === null) throw loadError(new Error("dlopen(libc.so.6) failed"));
    // errno is thread-local: this is the JS main thread's, the only one that reads it
    const errno = new Deno.UnsafePointerView(
      pointerIn(lib.__errno_location())!,
    );
    loader = { lib, handle, errno };
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
function byAddress(
  table: Record<string, unknown>,
  name: string,
  def: Deno.ForeignFunction,
): (...args: unknown[]) => unknown {
  const fn = new Deno.UnsafeFnPointer(
    address(def.name ?? name) as Deno.PointerObject<Deno.ForeignFunction>,
    def,
  );
  const call = fn.call.bind(fn) as (...args: unknown[]) => unknown;
  let calls = 0;
  let bound: ((...args: unknown[]) => unknown) | null = null;
  return (...args: unknown[]) => {
    if (bound) return bound(...args);
    if (++calls < BIND_AFTER) return call(...args);
    bound = open(name, def) as (...args: unknown[]) => unknown;
    table[name] = bound;
    return bound(...args);
  };
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
 *
 * The table starts empty, nothing built at import: its prototype is a Proxy whose `get`
 * runs only for a symbol the table does not have yet, binds it and defines it as the
 * table's own (writable) property, so every later access is a plain property load and the
 * trap never runs again for that name.
 */
export const libc: Symbols = Object.create(
  new Proxy({}, {
    get(_target, name, table: Record<string, unknown>) {
      if (typeof name !== "string") return undefined;
      const def = definition(name);
      if (def === undefined) return undefined;
      const fn = def.nonblocking
        ? (loaderLib().lib[name as Nonblocking] ?? open(name, def))
        : byAddress(table, name, def);
      Object.defineProperty(table, name, {
        value: fn,
        writable: true,
        enumerable: true,
        configurable: true,
      });
      return fn;
    },
  }),
);

/** The calling (JS main) thread's errno. Read it right after the failing call. */
export function errno(): number {
  return loaderLib().errno.getInt32();
}
