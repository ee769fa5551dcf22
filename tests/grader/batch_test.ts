import {
  assert,
  assertEquals,
  assertRejects,
  assertThrows,
} from "../_helpers.ts";
import { jobFromJson, resultToJson, runBatch } from "../../grader/batch.ts";
import type { GradeOptions, GradeResult } from "../../grader/types.ts";

Deno.test("jobFromJson maps JSON fields to options", () => {
  const o = jobFromJson({
    id: 1,
    argv: ["a"],
    timeLimit: 2,
    stdin: { base64: btoa("\x00\xff") },
    files: [{ path: "x", base64: btoa("hi") }, {
      path: "y",
      data: "t",
      mode: 493,
    }, { path: "z", source: "/s" }],
  });
  assertEquals(o.argv, ["a"]);
  assertEquals(o.timeLimit, 2);
  assertEquals(o.stdin, new Uint8Array([0, 255]));
  assertEquals(o.files, [
    { path: "x", data: new TextEncoder().encode("hi") },
    { path: "y", data: "t", mode: 493 },
    { path: "z", source: "/s" },
  ]);
  assertEquals(jobFromJson({ argv: ["a"], stdin: "text" }).stdin, "text");
  assertEquals(jobFromJson({ argv: ["a"], stdin: { path: "/in" } }).stdin, {
    path: "/in",
  });
});

Deno.test("jobFromJson rejects unknown keys and bad shapes", () => {
  assertThrows(
    () => jobFromJson({ argv: ["a"], timelimit: 1 }),
    TypeError,
    "timelimit",
  );
  assertThrows(() => jobFromJson([1]), TypeError);
  assertThrows(
    () => jobFromJson({ argv: ["a"], stdin: 3 }),
    TypeError,
    "stdin",
  );
  assertThrows(
    () => jobFromJson({ argv: ["a"], stdin: { base64: "***" } }),
    TypeError,
    "base64",
  );
});

Deno.test("resultToJson: text stays text, other bytes become base64", () => {
  const r = {
    status: "OK",
    stdout: new TextEncoder().encode("héllo"),
    stderr: new Uint8Array([0xff, 0xfe]),
    files: {
      "a.txt": new TextEncoder().encode("A"),
      "b.bin": new Uint8Array([0xc3]),
    },
  } as unknown as GradeResult;
  const j = resultToJson(r, "x");
  assertEquals(Object.keys(j)[0], "id");
  assertEquals(j.stdout, "héllo");
  assertEquals(j.stderrBase64, btoa("\xff\xfe"));
  assertEquals(j.stderr, undefined);
  assertEquals(j.files, { "a.txt": "A" });
  assertEquals(j.filesBase64, { "b.bin": btoa("\xc3") });
});

function textStream(s: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      // split mid-line to exercise the line splitter
      const b = new TextEncoder().encode(s);
      c.enqueue(b.subarray(0, 7));
      c.enqueue(b.subarray(7));
      c.close();
    },
  });
}

Deno.test("runBatch: one result line per job, bad lines become XX, ids echoed", async () => {
  const out: string[] = [];
  const sink = new WritableStream<Uint8Array>({
    write: (c) => void out.push(new TextDecoder().decode(c)),
  });
  let maxAtOnce = 0, now = 0;
  const run = async (o: GradeOptions): Promise<GradeResult> => {
    now++;
    maxAtOnce = Math.max(maxAtOnce, now);
    await new Promise((r) => setTimeout(r, 5));
    now--;
    return {
      status: o.argv[0] === "ok" ? "OK" : "RE",
      stdout: null,
      stderr: null,
      files: {},
    } as unknown as GradeResult;
  };
  const input = [
    JSON.stringify({ id: "a", argv: ["ok"] }),
    "",
    "{not json",
    JSON.stringify({ argv: ["bad"] }),
    JSON.stringify({ id: 9, argv: ["ok"], nope: 1 }),
    JSON.stringify({ argv: ["ok"] }),
  ].join("\n");
  const summary = await runBatch(textStream(input), sink, run, { parallel: 2 });
  const lines = out.join("").trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines.length, 5);
  assertEquals(summary, { results: 5, notOk: 3 });
  const byId = new Map(lines.map((l) => [l.id, l]));
  assertEquals(byId.get("a").status, "OK");
  assertEquals(byId.get(3).status, "XX");
  assertEquals(byId.get(3).message.startsWith("Invalid job:"), true);
  assertEquals(byId.get(4).status, "RE");
  assertEquals(byId.get(9).message, 'Invalid job: unknown key "nope"');
  assertEquals(byId.get(6).status, "OK");
  assertEquals(maxAtOnce, 2);
});

Deno.test("runBatch: a closed output stops the batch with its error, after the runs under way", async () => {
  const sink = new WritableStream<Uint8Array>({
    write: () => Promise.reject(new Error("output closed")),
  });
  let started = 0;
  const run = async (): Promise<GradeResult> => {
    started++;
    await new Promise((r) => setTimeout(r, 20));
    return {
      status: "OK",
      stdout: null,
      stderr: null,
      files: {},
    } as unknown as GradeResult;
  };
  const input = Array.from(
    { length: 50 },
    () => JSON.stringify({ argv: ["ok"] }),
  )
    .join("\n");
  await assertRejects(
    () => runBatch(textStream(input), sink, run, { parallel: 1 }),
    Error,
    "output closed",
  );
  // the first result's write failed: hardly any job started after it
  assert(started < 5, `${started} jobs started`);
});
