/**
 * A tiny judge: compiles a C solution with gcc inside the sandbox, then runs it and two Python
 * solutions (one correct, one too slow) against a few test cases, and prints a verdict table.
 *
 *   sudo tools/deno run -A examples/grader.ts
 *
 * Needs root (cgroups), gcc and python3 on the host: the box sees the host's root read-only.
 */
import { type GradeResult, GraderPool } from "denobox/grader";

// The problem: read n, then n numbers; print their sum.
const tests: { name: string; input: string; answer: string }[] = [
  { name: "small", input: "3\n1 2 3\n", answer: "6" },
  { name: "negative", input: "4\n-5 10 -20 7\n", answer: "-8" },
  {
    name: "large",
    input: `200000\n${
      Array.from({ length: 200000 }, (_, i) => i % 1000).join(" ")
    }\n`,
    answer: String(
      Array.from({ length: 200000 }, (_, i) => i % 1000).reduce(
        (a, b) => a + b,
        0,
      ),
    ),
  },
];

const solutions = {
  "sum.c": `#include <stdio.h>
int main(void) {
  int n; long long s = 0, x;
  if (scanf("%d", &n) != 1) return 1;
  for (int i = 0; i < n; i++) { scanf("%lld", &x); s += x; }
  printf("%lld\\n", s);
  return 0;
}
`,
  "sum.py": `import sys
data = sys.stdin.read().split()
print(sum(map(int, data[1:int(data[0]) + 1])))
`,
  // Quadratic: rebuilds the list for every number. Fine for small tests, too slow for large.
  "slow.py": `import sys
data = sys.stdin.read().split()
nums, total = [], 0
for tok in data[1:int(data[0]) + 1]:
    nums = nums + [int(tok)]
    total = sum(nums)
print(total)
`,
};

const limits = { timeLimit: 1, wallTimeLimit: 3, memoryLimit: "256m" } as const;

/** A judge's verdict on top of the grader's: the output is compared only when the run was OK. */
function verdict(r: GradeResult, answer: string): string {
  if (r.status !== "OK") {
    return ({
      RE: "RTE",
      SG: "RTE",
      TO: "TLE",
      ML: "MLE",
      OL: "OLE",
      XX: "ERR",
    } as const)[r.status];
  }
  return new TextDecoder().decode(r.stdout!).trim() === answer ? "AC" : "WA";
}

await using pool = new GraderPool({ concurrency: 2 });

// 1. Compile in the sandbox too: the compiler is untrusted input's first reader.
const compile = await pool.grade({
  argv: ["gcc", "-O2", "-o", "sum", "sum.c"],
  files: [{ path: "sum.c", data: solutions["sum.c"] }],
  copyOut: ["sum"],
  timeLimit: 10,
  wallTimeLimit: 20,
  memoryLimit: "512m",
  processLimit: 16,
});
if (compile.status !== "OK" || compile.files.sum === undefined) {
  console.error(`Compilation failed: ${compile.status} ${compile.message}`);
  console.error(new TextDecoder().decode(compile.stderr ?? new Uint8Array()));
  Deno.exit(1);
}
console.log(
  `compiled sum.c in ${compile.cpuTime.toFixed(3)} s CPU, peak ${
    (compile.memoryPeak / 2 ** 20).toFixed(1)
  } MiB`,
);

const programs: {
  name: string;
  argv: string[];
  file: { path: string; data: Uint8Array | string; mode?: number };
}[] = [
  {
    name: "sum.c",
    argv: ["./sum"],
    file: { path: "sum", data: compile.files.sum, mode: 0o755 },
  },
  {
    name: "sum.py",
    argv: ["python3", "sum.py"],
    file: { path: "sum.py", data: solutions["sum.py"] },
  },
  {
    name: "slow.py",
    argv: ["python3", "slow.py"],
    file: { path: "slow.py", data: solutions["slow.py"] },
  },
];

// 2. Every solution on every test, two at a time.
const jobs = programs.flatMap((p) =>
  tests.map(async (t) => ({
    program: p.name,
    test: t.name,
    result: await pool.grade({
      argv: p.argv,
      files: [p.file],
      stdin: t.input,
      ...limits,
    }),
    answer: t.answer,
  }))
);
const rows = await Promise.all(jobs);

const header = [
  "solution",
  "test",
  "verdict",
  "status",
  "cpu s",
  "wall s",
  "mem MiB",
];
const table = rows.map((r) => [
  r.program,
  r.test,
  verdict(r.result, r.answer),
  r.result.status + (r.result.timeout ? ` (${r.result.timeout})` : ""),
  r.result.cpuTime.toFixed(3),
  r.result.wallTime.toFixed(3),
  (r.result.memoryPeak / 2 ** 20).toFixed(1),
]);
const widths = header.map((h, i) =>
  Math.max(h.length, ...table.map((row) => row[i]!.length))
);
const line = (cells: string[]) =>
  cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const row of table) console.log(line(row));
