import { assert, assertEquals, assertRejects, IS_ROOT } from "../_helpers.ts";
import { WorkDir } from "../../grader/_workdir.ts";

const enc = new TextEncoder();

/** fds of this process on a tmpfs root owned by `uid`. */
function workDirFds(uid: number): string[] {
  return [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name).filter(
    (n) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${n}`) === "/" &&
          Deno.statSync(`/proc/self/fd/${n}`).uid === uid;
      } catch {
        return false;
      }
    },
  );
}

/** Runs a shell command inside a private mount namespace where the work dir is bound at `dir`. */
async function shellIn(work: WorkDir, script: string): Promise<string> {
  const out = await new Deno.Command("unshare", {
    args: [
      "-m",
      "--propagation",
      "private",
      "python3",
      "-c",
      `import ctypes,os,sys
libc=ctypes.CDLL(None,use_errno=True)
os.makedirs("/tmp/wd-test-mnt",exist_ok=True)
assert libc.mount(sys.argv[1].encode(),b"/tmp/wd-test-mnt",None,4096,None)==0, os.strerror(ctypes.get_errno())
os.execvp("sh",["sh","-c",sys.argv[2]])`,
      `/proc/${Deno.pid}/fd/${work.fd}`,
      script,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name:
    "[root] WorkDir: a detached tmpfs, files in and out, never through a symlink",
  ignore: !IS_ROOT,
  async fn() {
    const mountCount = () =>
      Deno.readTextFileSync("/proc/self/mountinfo").split("\n").length;
    const mountsBefore = mountCount();
    const src = await Deno.makeTempFile();
    await Deno.writeTextFile(src, "from host");
    const link = src + ".link";
    await Deno.symlink("/etc/passwd", link);
    try {
      {
        using work = new WorkDir(1 << 20, 61123, 61124);
        await work.copyIn([
          {
            path: "a.txt",
            data: enc.encode("hello"),
            source: null,
            mode: 0o640,
          },
          { path: "sub/dir/b", data: null, source: src, mode: 0o755 },
        ]);
        // never in this process's mount table
        assertEquals(mountCount(), mountsBefore);
        const listing = await shellIn(
          work,
          "cd /tmp/wd-test-mnt && stat -c '%n %a %u:%g' a.txt sub sub/dir sub/dir/b . && cat sub/dir/b && " +
            "ln -s /etc/passwd leak && mkfifo fifo && mkdir d && echo out > out.txt && ln -s /etc sub/esc",
        );
        assertEquals(listing.trim().split("\n"), [
          "a.txt 640 61123:61124",
          "sub 755 61123:61124",
          "sub/dir 755 61123:61124",
          "sub/dir/b 755 61123:61124",
          ". 755 61123:61124",
          "from host",
        ]);
        const got = await work.copyOut([
          "out.txt",
          "leak",
          "fifo",
          "d",
          "missing",
          "sub/esc/passwd",
          "a.txt",
        ]);
        assertEquals(Object.keys(got).sort(), ["a.txt", "out.txt"]);
        assertEquals(new TextDecoder().decode(got["out.txt"]), "out\n");
        // copy-in refuses a symlinked source
        await assertRejects(
          () =>
            work.copyIn([{ path: "x", data: null, source: link, mode: 0o644 }]),
          Error,
          "ELOOP",
        );
        // and a full tmpfs stops writes: the size limit holds
        const big = await shellIn(
          work,
          "dd if=/dev/zero of=/tmp/wd-test-mnt/big bs=64k count=64 2>&1; echo rc=$?",
        );
        assert(big.includes("No space left on device"), big);
      }
      // the tmpfs fd is closed (other test modules of this process may hold fds of their own)
      assertEquals(workDirFds(61123), []);
    } finally {
      await Deno.remove(src);
      await Deno.remove(link);
      await Deno.remove("/tmp/wd-test-mnt").catch(() => {});
    }
  },
});
