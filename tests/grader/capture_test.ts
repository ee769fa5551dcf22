import { assertEquals } from "../_helpers.ts";
import { OutputCapture } from "../../grader/_capture.ts";

function streamOf(
  chunks: Uint8Array[],
): {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
  pulled: () => number;
} {
  let i = 0, cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (i < chunks.length) ctl.enqueue(chunks[i++]!);
      else ctl.close();
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, cancelled: () => cancelled, pulled: () => i };
}

const bytes = (n: number, v = 97) => new Uint8Array(n).fill(v);

Deno.test("OutputCapture keeps everything up to exactly the limit", async () => {
  const cap = new OutputCapture(10, { kind: "memory" });
  let overflow = 0;
  const s = streamOf([bytes(4), bytes(6, 98)]);
  await cap.pump(s.stream, () => overflow++);
  assertEquals(overflow, 0);
  assertEquals(cap.truncated, false);
  assertEquals(cap.kept, 10);
  assertEquals(cap.bytes(), new Uint8Array([...bytes(4), ...bytes(6, 98)]));
});

Deno.test("OutputCapture: one byte past the limit is an overflow, and exactly the limit is kept", async () => {
  const cap = new OutputCapture(10, { kind: "memory" });
  let overflow = 0;
  const s = streamOf([bytes(7), bytes(7, 98), bytes(100)]);
  await cap.pump(s.stream, () => overflow++);
  assertEquals(overflow, 1);
  assertEquals(cap.truncated, true);
  assertEquals(cap.bytes(), new Uint8Array([...bytes(7), ...bytes(3, 98)]));
  assertEquals(s.cancelled(), true);
  assertEquals(s.pulled(), 2); // stopped reading at the overflow
});

Deno.test("OutputCapture with a zero limit overflows on the first byte; discard keeps no bytes", async () => {
  const zero = new OutputCapture(0, { kind: "memory" });
  let overflow = 0;
  await zero.pump(streamOf([bytes(1)]).stream, () => overflow++);
  assertEquals([overflow, zero.kept, zero.bytes()!.length], [1, 0, 0]);
  const d = new OutputCapture(5, { kind: "discard" });
  await d.pump(streamOf([bytes(5)]).stream, () => overflow++);
  assertEquals([d.kept, d.truncated, d.bytes()], [5, false, null]);
});

Deno.test("OutputCapture writes to a file sink, cut at the limit", async () => {
  const path = await Deno.makeTempFile();
  try {
    const file = await Deno.open(path, { write: true });
    const cap = new OutputCapture(5, { kind: "file", file });
    await cap.pump(streamOf([bytes(3), bytes(3, 98)]).stream, () => {});
    file.close();
    assertEquals(await Deno.readTextFile(path), "aaabb");
    assertEquals(cap.truncated, true);
  } finally {
    await Deno.remove(path);
  }
});

/** A reader function over `chunks` (null at the end), counting its calls. */
function readerOf(
  chunks: Uint8Array[],
): { read: () => Promise<Uint8Array | null>; calls: () => number } {
  let i = 0, calls = 0;
  return {
    read: () => {
      calls++;
      return Promise.resolve(i < chunks.length ? chunks[i++]! : null);
    },
    calls: () => calls,
  };
}

Deno.test("OutputCapture reads a reader function (a sandbox's read()) to its end, or stops at the overflow", async () => {
  const all = new OutputCapture(10, { kind: "memory" });
  let overflow = 0;
  const r = readerOf([bytes(4), bytes(6, 98)]);
  await all.pump(r.read, () => overflow++);
  assertEquals([overflow, all.truncated, all.kept, r.calls()], [
    0,
    false,
    10,
    3,
  ]);
  assertEquals(all.bytes(), new Uint8Array([...bytes(4), ...bytes(6, 98)]));

  const cut = new OutputCapture(10, { kind: "memory" });
  const r2 = readerOf([bytes(7), bytes(7, 98), bytes(100)]);
  await cut.pump(r2.read, () => overflow++);
  assertEquals([overflow, cut.truncated, cut.kept], [1, true, 10]);
  assertEquals(cut.bytes(), new Uint8Array([...bytes(7), ...bytes(3, 98)]));
  assertEquals(r2.calls(), 2); // not called again after the overflow
});
