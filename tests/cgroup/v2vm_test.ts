/**
 * The cgroup v2 lane: boots Debian's stock kernel under qemu with cgroup v2 only
 * (tests/v2vm/run-in-v2vm.sh) and runs the cgroup suites that need real v2 controllers (and
 * the grader's figures, which come from them) inside
 * it, with `deno test --no-check` (this process's `deno test` has type-checked them already;
 * JIT code runs ~35x slower under software emulation). Each in-VM test becomes a step here,
 * under its own `[cgroup v2]` name.
 */
import { join } from "node:path";
import { assert, CACHE, hasCommand, REPO } from "../_helpers.ts";
import { ensureCgHelper, IN_V2VM } from "./_helpers.ts";

/** The test files run inside the VM (relative to the repository). */
export const V2VM_SUITE: readonly string[] = [
  "tests/cgroup/cgroup_test.ts",
  "tests/cgroup/delegation_test.ts",
  "tests/cgroup/spawn_test.ts",
  "tests/grader/cpuclock_test.ts",
  "tests/grader/figures_test.ts",
];

const SCRIPT = join(REPO, "tests", "v2vm", "run-in-v2vm.sh");
const skip = Deno.build.os !== "linux" || Deno.build.arch !== "x86_64"
  ? "the lane boots an x86_64 Linux kernel"
  : IN_V2VM
  ? "already inside the VM"
  : !hasCommand("qemu-system-x86_64")
  ? "qemu-system-x86_64 is not installed; tests/setup.ts installs qemu-system-x86"
  : null;

interface CaseResult {
  name: string;
  file: string;
  skipped: boolean;
  failure: string | null;
}

function unescapeXml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">").replace(/&#10;/g, "\n").replace(/&amp;/g, "&");
}

/** The test cases of a `deno test --junit-path` report. */
export function parseJunit(xml: string): CaseResult[] {
  const out: CaseResult[] = [];
  const suites = xml.split(/<testsuite\s/).slice(1);
  for (const suite of suites) {
    const file = unescapeXml(/name="([^"]*)"/.exec(suite)?.[1] ?? "");
    const re = /<testcase\s+name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
    for (const m of suite.matchAll(re)) {
      const body = m[3] ?? "";
      const fail =
        /<failure[^>]*?(?:message="([^"]*)")?[^>]*>([\s\S]*?)<\/failure>/.exec(
          body,
        ) ??
          /<failure[^>]*?message="([^"]*)"[^>]*\/>/.exec(body);
      out.push({
        name: unescapeXml(m[1]!),
        file,
        skipped: /<skipped/.test(body),
        failure: fail
          ? unescapeXml(`${fail[1] ?? ""}\n${fail[2] ?? ""}`.trim())
          : null,
      });
    }
  }
  return out;
}

Deno.test({
  name:
    `[cgroup v2] the cgroup suites inside a qemu VM with cgroup v2 only (tests/v2vm)${
      skip ? ` (skipped: ${skip})` : ""
    }`,
  ignore: skip !== null,
  async fn(t) {
    await ensureCgHelper();
    const suite = V2VM_SUITE.filter((f) => {
      try {
        return Deno.statSync(join(REPO, f)).isFile;
      } catch {
        return false;
      }
    });
    const runDir = join(CACHE, "v2vm");
    await Deno.mkdir(runDir, { recursive: true });
    const junit = join(runDir, `junit-${Deno.pid}-${Date.now()}.xml`);
    const started = performance.now();
    const out = await new Deno.Command(SCRIPT, {
      args: [
        REPO,
        "--",
        join(REPO, "tools", "deno"),
        "test",
        "-A",
        "--no-check",
        `--junit-path=${junit}`,
        ...suite,
      ],
      env: {
        V2VM_TIMEOUT: Deno.env.get("V2VM_TIMEOUT") ?? "600",
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const dec = new TextDecoder();
    const log = `${dec.decode(out.stdout)}\n${dec.decode(out.stderr)}`;
    let cases: CaseResult[] = [];
    try {
      cases = parseJunit(await Deno.readTextFile(junit));
    } catch {
      /* no report: the VM failed before the tests ran; the log says why */
    } finally {
      await Deno.remove(junit).catch(() => {});
    }
    for (const c of cases) {
      await t.step({
        name: c.name,
        ignore: c.skipped,
        fn() {
          if (c.failure !== null) throw new Error(`${c.file}: ${c.failure}`);
        },
      });
    }
    assert(
      out.code === 0,
      `run-in-v2vm.sh exited with ${out.code} after ${seconds} s (125: VM failure, 124: timeout):\n${log}`,
    );
    const ran = cases.filter((c) => !c.skipped);
    assert(ran.length >= 14, `only ${ran.length} tests ran in the VM:\n${log}`);
    assert(
      ran.every((c) => c.name.includes("[cgroup v2]")),
      "a test in the VM did not run on v2",
    );
    console.log(`v2vm lane: ${ran.length} tests on cgroup v2 in ${seconds} s`);
  },
});
