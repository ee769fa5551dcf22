import { assert, assertEquals, assertRejects, IS_ROOT } from "../_helpers.ts";
import { WorkDir } from "../../grader/_workdir.ts";

const enc = new TextEncoder();

/** fds of this process on a work tmpfs (or its box/) whose box/ belongs to `uid`. */
function workDirFds(uid: number): string[] {
  return [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name).filter(
    (n) => {
      try {
        const fd = `/proc/self/fd/${n}`;
        const link = Deno.readLinkSync(fd);
        return (link === "/" || link === "/box") &&
          Deno.statSync(link === "/" ? `${fd}/box` : fd).uid === uid;
      } catch {
        return false;
      }
    },
  );
}

/**
 * Runs a shell command inside a private mount namespace where `source` (a path of this
 * process: the work dir, or the whole tmpfs) is bound at /tmp/wd-test-mnt.
 */
async function shellIn(
  work: WorkDir | string,
  script: string,
): Promise<string> {
  const source = typeof work === "string" ? work : work.source;
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
      source.replace("/proc/self/", `/proc/${Deno.pid}/`),
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

        // One tmpfs holds the box's /tmp, /dev/shm and the mask directory beside box/: all
        // share its limit (box/ is full above), named in mountinfo
        const whole = work.source.replace(/\/box$/, "");
        const layout = await shellIn(
          whole,
          "cd /tmp/wd-test-mnt && stat -c '%n %a %u:%g' box tmp shm empty && " +
            "dd if=/dev/zero of=tmp/f bs=4k count=1 2>&1 | head -1; grep -c ' /tmp/wd-test-mnt .* - tmpfs denobox-work ' /proc/self/mountinfo",
        );
        const lines = layout.trim().split("\n");
        assertEquals(lines.slice(0, 4), [
          "box 755 61123:61124",
          "tmp 1777 0:0",
          "shm 1777 0:0",
          "empty 555 0:0",
        ]);
        assert(
          lines[4]?.includes("No space left on device"),
          JSON.stringify(layout),
        );
        assertEquals(lines[5], "1");
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
