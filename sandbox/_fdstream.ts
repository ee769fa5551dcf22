/**
 * Web streams over a raw fd that Deno cannot reopen (a pty master: opening /proc/self/fd/N of
 * it would make a new pty). Nonblocking I/O driven by the shared epoll reactor.
 */
import {
  type OwnedFd,
  readNonblocking,
  setNonblocking,
  writeNonblocking,
} from "denobox/libc";
import { reactor } from "./_reactor.ts";

/** Readable and writable streams on `fd` (owned; closed when both sides are done). */
export function fdStreams(
  fd: OwnedFd,
): {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
} {
  setNonblocking(fd.fd);
  let open = 2;
  const done = () => {
    if (--open === 0) {
      reactor.forget(fd.fd);
      fd.close();
    }
  };
  const readable = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      for (;;) {
        if (!fd.open) return ctrl.close();
        let data: Uint8Array | null;
        try {
          data = readNonblocking(fd.fd, 65536);
        } catch (e) {
          // EIO: a pty master whose slave side is all closed
          if ((e as { code?: string }).code === "EIO") data = new Uint8Array(0);
          else throw e;
        }
        if (data === null) {
          await reactor.readable(fd.fd);
          continue;
        }
        if (data.length === 0) {
          ctrl.close();
          done();
          return;
        }
        ctrl.enqueue(data);
        return;
      }
    },
    cancel() {
      done();
    },
  });
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      let off = 0;
      while (off < chunk.length) {
        const n = writeNonblocking(fd.fd, chunk.slice(off));
        if (n === null) await reactor.writable(fd.fd);
        else off += n;
      }
    },
    close() {
      done();
    },
    abort() {
      done();
    },
  });
  return { readable, writable };
}

/**
 * A ReadableStream over our end of a pipe (owned: closed at EOF, on cancel, or by `close`),
 * nonblocking and driven by the shared reactor, so a sandbox's output and its exit wake the
 * same epoll wait (no thread of Deno's blocking pool per read).
 */
export function pipeReadable(fd: OwnedFd): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      const data = await readChunk(fd);
      if (data === null) ctrl.close();
      else ctrl.enqueue(data);
    },
    cancel() {
      if (!fd.open) return;
      reactor.forget(fd.fd);
      fd.close();
    },
  });
}

const nonblocking = new WeakSet<OwnedFd>();

/**
 * The next chunk from our end of a pipe (owned: closed at EOF), or null at EOF or once closed.
 * The fd is made nonblocking on first use; waits go through the shared reactor.
 */
export async function readChunk(fd: OwnedFd): Promise<Uint8Array | null> {
  if (fd.open && !nonblocking.has(fd)) {
    setNonblocking(fd.fd);
    nonblocking.add(fd);
  }
  for (;;) {
    if (!fd.open) return null;
    const data = readNonblocking(fd.fd, 65536);
    if (data === null) {
      await reactor.readable(fd.fd);
      continue;
    }
    if (data.length === 0) {
      reactor.forget(fd.fd);
      fd.close();
      return null;
    }
    return data;
  }
}

/** A WritableStream over our end of a pipe (owned: closed on close or abort), as above. */
export function pipeWritable(fd: OwnedFd): WritableStream<Uint8Array> {
  setNonblocking(fd.fd);
  const done = () => {
    if (!fd.open) return;
    reactor.forget(fd.fd);
    fd.close();
  };
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      let off = 0;
      while (off < chunk.length) {
        if (!fd.open) throw new Deno.errors.BrokenPipe("Stream closed");
        const n = writeNonblocking(fd.fd, chunk.slice(off));
        if (n === null) await reactor.writable(fd.fd);
        else off += n;
      }
    },
    close: done,
    abort: done,
  });
}
