/**
 * A streaming tar reader (USTAR, PAX extended headers, GNU long names) and writer. The reader
 * is push-based and synchronous: feed it chunks as they arrive, it calls back with each
 * entry's header and then slices of its data, never copying file contents.
 * @module
 */

/** The kind of a tar entry. */
export type TarEntryType =
  | "file"
  | "hardlink"
  | "symlink"
  | "char"
  | "block"
  | "dir"
  | "fifo";

/** One entry's header, after PAX and GNU extensions are merged in. */
export interface TarEntry {
  /** The member name exactly as archived (may hold `./`, a trailing `/`, even `..`). */
  name: string;
  /** Entry type. */
  type: TarEntryType;
  /** Permission bits, setuid/setgid/sticky included. */
  mode: number;
  /** Owner id. */
  uid: number;
  /** Group id. */
  gid: number;
  /** Data size in bytes (0 for anything but files). */
  size: number;
  /** Modification time in ms since the epoch. */
  mtimeMs: number;
  /** Link target of a symlink or hard link ("" otherwise). */
  linkname: string;
  /** Device major number. */
  devMajor: number;
  /** Device minor number. */
  devMinor: number;
  /** Owner name. */
  uname: string;
  /** Group name. */
  gname: string;
  /** Extended attributes from PAX `SCHILY.xattr.*` records. */
  xattrs: Record<string, Uint8Array>;
}

/** What a `TarReader` calls as it parses. */
export interface TarSink {
  /** A new entry starts; its data (if any) follows through `data`. */
  entry(entry: TarEntry): void;
  /** A slice of the current entry's data (valid only during the call). */
  data(chunk: Uint8Array): void;
  /** The current entry's data is complete. */
  end(): void;
}

/**
 * A malformed or unsupported archive.
 *
 * @example A truncated archive
 * ```ts
 * import { TarFormatError, TarReader } from "denobox/image";
 * const r = new TarReader({ entry() {}, data() {}, end() {} });
 * r.push(new Uint8Array(100));
 * try {
 *   r.finish();
 * } catch (e) {
 *   console.log(e instanceof TarFormatError); // true
 * }
 * ```
 */
export class TarFormatError extends Error {
  /** Always `"TarFormatError"`: the class name survives logging and structured cloning. */
  override name = "TarFormatError";
}

const BLOCK = 512;
const MAX_META = 1 << 20;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function cString(b: Uint8Array, off: number, len: number): string {
  let end = off;
  const stop = off + len;
  while (end < stop && b[end] !== 0) end++;
  return decoder.decode(b.subarray(off, end));
}

function numeric(
  b: Uint8Array,
  off: number,
  len: number,
  what: string,
): number {
  // GNU base-256: high bit of the first byte set.
  if (b[off]! & 0x80) {
    if (b[off] === 0xff) {
      throw new TarFormatError(`Cannot read tar header: negative ${what}`);
    }
    let v = b[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    if (!Number.isSafeInteger(v)) {
      throw new TarFormatError(`Cannot read tar header: ${what} too large`);
    }
    return v;
  }
  let v = 0;
  let seen = false;
  for (let i = off; i < off + len; i++) {
    const c = b[i]!;
    if (c === 0 || c === 0x20) {
      if (seen) break;
      continue;
    }
    if (c < 0x30 || c > 0x37) {
      throw new TarFormatError(`Cannot read tar header: invalid octal ${what}`);
    }
    v = v * 8 + (c - 0x30);
    seen = true;
  }
  return v;
}

function checksumOk(b: Uint8Array, off: number): boolean {
  const want = numeric(b, off + 148, 8, "checksum");
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) {
    sum += i >= 148 && i < 156 ? 0x20 : b[off + i]!;
  }
  return sum === want;
}

function isZero(b: Uint8Array, off: number): boolean {
  for (let i = off; i < off + BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

interface Pax {
  [key: string]: Uint8Array;
}

function parsePax(data: Uint8Array, into: Pax): void {
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break;
    let sp = off;
    while (sp < data.length && data[sp] !== 0x20) sp++;
    const len = Number(decoder.decode(data.subarray(off, sp)));
    if (!Number.isInteger(len) || len <= sp - off || off + len > data.length) {
      throw new TarFormatError("Cannot read PAX header: bad record length");
    }
    const rec = data.subarray(sp + 1, off + len - 1); // drop the trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq < 0) {
      throw new TarFormatError("Cannot read PAX header: record without '='");
    }
    into[decoder.decode(rec.subarray(0, eq))] = rec.slice(eq + 1);
    off += len;
  }
}

const enum State {
  Header,
  Data,
  Meta,
  Padding,
  Done,
}

/**
 * A push parser for tar streams. Checksums are verified; sparse and multi-volume members are
 * refused with a `TarFormatError`; a stream that ends inside a member is an error from
 * `finish()`.
 *
 * @example Count the members of an archive
 * ```ts
 * import { TarReader, TarWriter } from "denobox/image";
 * const w = new TarWriter();
 * w.add({ name: "hello.txt" }, new TextEncoder().encode("hi"));
 * const names: string[] = [];
 * const r = new TarReader({ entry: (e) => names.push(e.name), data() {}, end() {} });
 * r.push(w.finish());
 * r.finish();
 * console.log(names); // ["hello.txt"]
 * ```
 */
export class TarReader {
  #sink: TarSink;
  #state = State.Header;
  #hdr = new Uint8Array(BLOCK);
  #hdrFill = 0;
  #remaining = 0;
  #padding = 0;
  #meta: Uint8Array | null = null;
  #metaFill = 0;
  #metaType = "";
  #pax: Pax = {};
  #globalPax: Pax = {};
  #longName: string | null = null;
  #longLink: string | null = null;
  #zeroBlocks = 0;
  #entries = 0;

  /** Parses into `sink`. */
  constructor(sink: TarSink) {
    this.#sink = sink;
  }

  /** True once the end-of-archive marker was read. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Feeds the next bytes of the archive. */
  push(chunk: Uint8Array): void {
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      switch (this.#state) {
        case State.Done:
          return;
        case State.Header: {
          if (this.#hdrFill === 0 && n - off >= BLOCK) {
            this.#header(chunk, off);
            off += BLOCK;
          } else {
            const take = Math.min(BLOCK - this.#hdrFill, n - off);
            this.#hdr.set(chunk.subarray(off, off + take), this.#hdrFill);
            this.#hdrFill += take;
            off += take;
            if (this.#hdrFill === BLOCK) {
              this.#hdrFill = 0;
              this.#header(this.#hdr, 0);
            }
          }
          break;
        }
        case State.Data: {
          const take = Math.min(this.#remaining, n - off);
          this.#sink.data(chunk.subarray(off, off + take));
          off += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#endData();
          break;
        }
        case State.Meta: {
          const take = Math.min(this.#remaining, n - off);
          this.#meta!.set(chunk.subarray(off, off + take), this.#metaFill);
          this.#metaFill += take;
          off += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#endMeta();
          break;
        }
        case State.Padding: {
          const take = Math.min(this.#padding, n - off);
          off += take;
          this.#padding -= take;
          if (this.#padding === 0) this.#state = State.Header;
          break;
        }
      }
    }
  }

  /**
   * Declares the end of input. Throws a `TarFormatError` when the stream stopped inside a
   * member (a truncated archive). A stream that ends on a member boundary without the
   * end-of-archive blocks is accepted, as GNU tar does.
   */
  finish(): void {
    if (this.#state === State.Done) return;
    if (
      this.#state === State.Padding && this.#padding > 0 &&
      this.#metaType === ""
    ) {
      // Unpadded last member: tolerated.
      this.#state = State.Done;
      return;
    }
    if (this.#state !== State.Header || this.#hdrFill !== 0) {
      throw new TarFormatError(
        `Cannot read tar archive: it is truncated (${this.#entries} entries read)`,
      );
    }
    if (this.#longName !== null || Object.keys(this.#pax).length > 0) {
      throw new TarFormatError(
        "Cannot read tar archive: it ends after an extended header",
      );
    }
    this.#state = State.Done;
  }

  #header(b: Uint8Array, off: number): void {
    if (isZero(b, off)) {
      if (++this.#zeroBlocks >= 2) this.#state = State.Done;
      return;
    }
    if (this.#zeroBlocks > 0) {
      // A single zero block followed by more members: keep reading, like GNU tar -i does not;
      // treat it as the end (what tar does without --ignore-zeros).
      this.#state = State.Done;
      return;
    }
    if (!checksumOk(b, off)) {
      throw new TarFormatError(
        `Cannot read tar header: checksum mismatch after ${this.#entries} entries`,
      );
    }
    const typeflag = String.fromCharCode(b[off + 156]!);
    const size = numeric(b, off + 124, 12, "size");
    if (
      typeflag === "x" || typeflag === "g" || typeflag === "L" ||
      typeflag === "K"
    ) {
      if (size > MAX_META) {
        throw new TarFormatError(
          `Cannot read tar header: extended header of ${size} bytes`,
        );
      }
      this.#metaType = typeflag;
      this.#meta = new Uint8Array(size);
      this.#metaFill = 0;
      this.#remaining = size;
      this.#padding = (BLOCK - (size % BLOCK)) % BLOCK;
      if (size === 0) this.#endMeta();
      else this.#state = State.Meta;
      return;
    }
    const type = TYPES[typeflag];
    if (type === undefined) {
      const what = typeflag === "S"
        ? "sparse files are not supported"
        : typeflag === "M"
        ? "multi-volume archives are not supported"
        : `unknown entry type ${JSON.stringify(typeflag)}`;
      throw new TarFormatError(
        `Cannot read tar entry ${cString(b, off, 100)}: ${what}`,
      );
    }
    const magic = cString(b, off + 257, 6);
    let name = cString(b, off, 100);
    if (magic === "ustar") {
      const prefix = cString(b, off + 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const pax = { ...this.#globalPax, ...this.#pax };
    const text = (k: string) =>
      pax[k] === undefined ? undefined : decoder.decode(pax[k]);
    const paxNum = (k: string) => {
      const v = text(k);
      if (v === undefined) return undefined;
      const x = Number(v);
      if (!Number.isFinite(x) || x < 0) {
        throw new TarFormatError(
          `Cannot read PAX header: invalid ${k} ${JSON.stringify(v)}`,
        );
      }
      return x;
    };
    name = text("path") ?? this.#longName ?? name;
    let linkname = cString(b, off + 157, 100);
    linkname = text("linkpath") ?? this.#longLink ?? linkname;
    const xattrs: Record<string, Uint8Array> = {};
    for (const [k, v] of Object.entries(pax)) {
      if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice(13)] = v;
    }
    const entry: TarEntry = {
      name,
      type,
      mode: numeric(b, off + 100, 8, "mode") & 0o7777,
      uid: paxNum("uid") ?? numeric(b, off + 108, 8, "uid"),
      gid: paxNum("gid") ?? numeric(b, off + 116, 8, "gid"),
      size: type === "file" ? paxNum("size") ?? size : 0,
      mtimeMs: (paxNum("mtime") ?? numeric(b, off + 136, 12, "mtime")) * 1000,
      linkname,
      devMajor: numeric(b, off + 329, 8, "devmajor"),
      devMinor: numeric(b, off + 337, 8, "devminor"),
      uname: text("uname") ?? cString(b, off + 265, 32),
      gname: text("gname") ?? cString(b, off + 297, 32),
      xattrs,
    };
    if (name.includes("\0") || linkname.includes("\0")) {
      throw new TarFormatError(`Cannot read tar entry: name holds a NUL byte`);
    }
    if (!Number.isSafeInteger(entry.size)) {
      throw new TarFormatError(`Cannot read tar entry ${name}: invalid size`);
    }
    this.#pax = {};
    this.#longName = null;
    this.#longLink = null;
    this.#entries++;
    // Hard links and others may carry a size field; their data (if any) is skipped.
    const dataSize = type === "file"
      ? entry.size
      : (typeflag === "1" ? 0 : size);
    this.#sink.entry(entry);
    this.#metaType = "";
    this.#remaining = type === "file" ? dataSize : 0;
    const skip = type === "file" ? 0 : dataSize;
    this.#padding = (BLOCK - (dataSize % BLOCK)) % BLOCK + skip;
    if (this.#remaining === 0) this.#endData();
    else this.#state = State.Data;
  }

  #endData(): void {
    this.#sink.end();
    this.#state = this.#padding > 0 ? State.Padding : State.Header;
  }

  #endMeta(): void {
    const data = this.#meta!;
    this.#meta = null;
    const t = this.#metaType;
    if (t === "x") parsePax(data, this.#pax);
    else if (t === "g") parsePax(data, this.#globalPax);
    else if (t === "L") this.#longName = cString(data, 0, data.length);
    else if (t === "K") this.#longLink = cString(data, 0, data.length);
    this.#metaType = "";
    this.#state = this.#padding > 0 ? State.Padding : State.Header;
  }
}

/** Header fields for `TarWriter.add`; everything but `name` has a default. */
export interface TarWriterEntry {
  /** Member name (a directory's gets a trailing `/`). */
  name: string;
  /** Default `"file"`. */
  type?: TarEntryType;
  /** Default 0o644 (0o755 for directories). */
  mode?: number;
  /** Default 0. */
  uid?: number;
  /** Default 0. */
  gid?: number;
  /** Default 0 (the epoch). */
  mtimeMs?: number;
  /** Link target. */
  linkname?: string;
  /** Device major number. */
  devMajor?: number;
  /** Device minor number. */
  devMinor?: number;
  /** File size; default the data's length. Set it when data comes later through `write`. */
  size?: number;
  /** Extended attributes (PAX `SCHILY.xattr.*`). */
  xattrs?: Record<string, Uint8Array>;
}

const TYPEFLAG: Record<TarEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

function putString(
  b: Uint8Array,
  off: number,
  len: number,
  s: Uint8Array,
): void {
  b.set(s.subarray(0, len), off);
}

function putOctal(b: Uint8Array, off: number, len: number, v: number): boolean {
  const s = Math.trunc(v).toString(8);
  if (s.length > len - 1 || v < 0) return false;
  putString(b, off, len, encoder.encode(s.padStart(len - 1, "0")));
  return true;
}

function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const k = encoder.encode(` ${key}=`);
  const body = k.length + value.length + 1;
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) {
    len = body + String(len).length;
  }
  const out = new Uint8Array(len);
  out.set(encoder.encode(String(len)));
  out.set(k, String(len).length);
  out.set(value, String(len).length + k.length);
  out[len - 1] = 0x0a;
  return out;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e) return false;
  return true;
}

/**
 * Builds a tar stream (USTAR, with a PAX header where a name, id, size or xattr does not fit).
 * `add` with the data at once, or `add` with a `size` then `write` the data; `take()` hands
 * over the bytes produced so far; `finish()` adds the end-of-archive blocks.
 *
 * @example A one-file archive
 * ```ts
 * import { TarWriter } from "denobox/image";
 * const w = new TarWriter();
 * w.add({ name: "etc/motd", mode: 0o644 }, new TextEncoder().encode("hello\n"));
 * console.log(w.finish().length); // 2048
 * ```
 */
export class TarWriter {
  #parts: Uint8Array[] = [];
  #pending = 0;
  #pad = 0;

  /** Appends a member; `data` is its whole content (or omit it and `write` `size` bytes). */
  add(entry: TarWriterEntry, data?: Uint8Array): void {
    if (this.#pending !== 0) {
      throw new TypeError(
        `Cannot add tar entry ${entry.name}: the previous entry's data is incomplete`,
      );
    }
    const type = entry.type ?? "file";
    const size = type === "file" ? entry.size ?? data?.length ?? 0 : 0;
    const pax: Uint8Array[] = [];
    const hdr = new Uint8Array(BLOCK);
    const name = type === "dir" && !entry.name.endsWith("/")
      ? `${entry.name}/`
      : entry.name;
    const nameBytes = encoder.encode(name);
    let prefixSplit = -1;
    if (nameBytes.length > 100 && nameBytes.length <= 256 && isAscii(name)) {
      // USTAR prefix: split at a "/" so that the rest fits in 100 bytes.
      for (
        let i = nameBytes.length - 101;
        i < nameBytes.length && i <= 155;
        i++
      ) {
        if (i > 0 && nameBytes[i] === 0x2f) {
          prefixSplit = i;
          break;
        }
      }
    }
    if (nameBytes.length <= 100 && isAscii(name)) {
      putString(hdr, 0, 100, nameBytes);
    } else if (prefixSplit > 0) {
      putString(hdr, 0, 100, nameBytes.subarray(prefixSplit + 1));
      putString(hdr, 345, 155, nameBytes.subarray(0, prefixSplit));
    } else {
      pax.push(paxRecord("path", nameBytes));
      putString(hdr, 0, 100, nameBytes.subarray(0, 100));
    }
    const mode = entry.mode ?? (type === "dir" ? 0o755 : 0o644);
    putOctal(hdr, 100, 8, mode & 0o7777);
    for (
      const [off, key, v] of [[108, "uid", entry.uid ?? 0], [
        116,
        "gid",
        entry.gid ?? 0,
      ]] as const
    ) {
      if (!putOctal(hdr, off, 8, v)) {
        pax.push(paxRecord(key, encoder.encode(String(v))));
        putOctal(hdr, off, 8, 0);
      }
    }
    if (!putOctal(hdr, 124, 12, size)) {
      pax.push(paxRecord("size", encoder.encode(String(size))));
      putOctal(hdr, 124, 12, 0);
    }
    const mtimeMs = entry.mtimeMs ?? 0;
    const mtime = Math.floor(mtimeMs / 1000);
    if (!putOctal(hdr, 136, 12, mtime)) {
      putOctal(hdr, 136, 12, 0);
    }
    if (mtimeMs % 1000 !== 0 && mtimeMs > 0) {
      pax.push(
        paxRecord(
          "mtime",
          encoder.encode((mtimeMs / 1000).toFixed(9).replace(/0+$/, "")),
        ),
      );
    }
    hdr[156] = TYPEFLAG[type].charCodeAt(0);
    const link = encoder.encode(entry.linkname ?? "");
    if (link.length > 100 || !isAscii(entry.linkname ?? "")) {
      pax.push(paxRecord("linkpath", link));
    } else putString(hdr, 157, 100, link);
    putString(hdr, 257, 8, encoder.encode("ustar\x0000"));
    putOctal(hdr, 329, 8, entry.devMajor ?? 0);
    putOctal(hdr, 337, 8, entry.devMinor ?? 0);
    for (const [k, v] of Object.entries(entry.xattrs ?? {})) {
      pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
    }
    if (pax.length > 0) {
      const body = concat(pax);
      const ph = new Uint8Array(BLOCK);
      putString(ph, 0, 100, encoder.encode("PaxHeader"));
      putOctal(ph, 100, 8, 0o644);
      putOctal(ph, 108, 8, 0);
      putOctal(ph, 116, 8, 0);
      putOctal(ph, 124, 12, body.length);
      putOctal(ph, 136, 12, 0);
      ph[156] = 0x78; // 'x'
      putString(ph, 257, 8, encoder.encode("ustar\x0000"));
      sealChecksum(ph);
      this.#parts.push(ph, body);
      const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
      if (pad) this.#parts.push(new Uint8Array(pad));
    }
    sealChecksum(hdr);
    this.#parts.push(hdr);
    this.#pending = size;
    this.#pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (data !== undefined && size > 0) this.write(data);
    else if (size === 0) this.#pending = 0;
  }

  /** Appends data of the current member. */
  write(data: Uint8Array): void {
    if (data.length > this.#pending) {
      throw new RangeError(
        `Cannot write tar data: ${data.length} bytes, ${this.#pending} expected`,
      );
    }
    this.#parts.push(data);
    this.#pending -= data.length;
    if (this.#pending === 0 && this.#pad > 0) {
      this.#parts.push(new Uint8Array(this.#pad));
      this.#pad = 0;
    }
  }

  /** Bytes queued since the last `take()`. */
  get buffered(): number {
    let n = 0;
    for (const p of this.#parts) n += p.length;
    return n;
  }

  /** Hands over the bytes produced so far (as one array). */
  take(): Uint8Array {
    const out = concat(this.#parts);
    this.#parts = [];
    return out;
  }

  /** Adds the end-of-archive blocks; returns the remaining bytes. */
  finish(): Uint8Array {
    if (this.#pending !== 0) {
      throw new TypeError(
        "Cannot finish tar archive: the last entry's data is incomplete",
      );
    }
    this.#parts.push(new Uint8Array(BLOCK * 2));
    return this.take();
  }
}

function sealChecksum(hdr: Uint8Array): void {
  hdr.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += hdr[i]!;
  putString(
    hdr,
    148,
    8,
    encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "),
  );
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
