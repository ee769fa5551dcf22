/**
 * One epoll set for every fd the spawn engine waits on (pidfds, control pipes), and one wait
 * loop on Deno's blocking pool. The loop runs only while something is awaited: when the last
 * waiter goes, an eventfd wakes the pending epoll_wait and the loop stops, so an idle process
 * can exit.
 */
import {
  Epoll,
  eventfd,
  eventfdDrain,
  eventfdSignal,
  type OwnedFd,
} from "denobox/libc";

const WAKE = 0;

class Reactor {
  #epoll: Epoll | null = null;
  #wake: OwnedFd | null = null;
  #waiters = new Map<number, { fd: number; resolve: () => void }>();
  #next = 1;
  #running = false;

  /** Resolves once `fd` is readable (or hung up). One-shot. */
  readable(fd: number): Promise<void> {
    return this.#watch(fd, false);
  }

  /** Resolves once `fd` is writable (or hung up). One-shot. */
  writable(fd: number): Promise<void> {
    return this.#watch(fd, true);
  }

  #watch(fd: number, write: boolean): Promise<void> {
    if (!this.#epoll) {
      this.#epoll = new Epoll();
      this.#wake = eventfd();
      this.#epoll.add(this.#wake.fd, WAKE);
    }
    const tag = this.#next++;
    if (this.#next > 0x7fffffff) this.#next = 1;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.set(tag, { fd, resolve });
    this.#epoll.add(fd, tag, { write });
    if (!this.#running) this.#run();
    return promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    const ep = this.#epoll!;
    try {
      while (this.#waiters.size > 0) {
        // what is ready already costs no trip to the blocking pool (a pipe's end of file and
        // the pidfd of the same exit often come a moment apart)
        let tags = ep.ready();
        if (tags.length === 0) tags = await ep.wait();
        for (const tag of tags) {
          if (tag === WAKE) {
            eventfdDrain(this.#wake!.fd);
            continue;
          }
          const w = this.#waiters.get(tag);
          if (!w) continue;
          this.#waiters.delete(tag);
          ep.delete(w.fd);
          w.resolve();
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /** Stops waiting for `fd` (before closing it); its promise never resolves. */
  forget(fd: number): void {
    for (const [tag, w] of this.#waiters) {
      if (w.fd !== fd) continue;
      this.#waiters.delete(tag);
      this.#epoll?.delete(fd);
    }
    if (this.#waiters.size === 0 && this.#running) {
      eventfdSignal(this.#wake!.fd);
    }
  }
}

/** The process-wide reactor. */
export const reactor: Reactor = new Reactor();
