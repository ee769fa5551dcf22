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
