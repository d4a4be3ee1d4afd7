/**
 * A msgpack writer for the few shapes on the hot paths (an HTTP request for `HandleRequest`, a
 * lattice batch item): it writes them field by field into one exact-size buffer, without
 * walking objects the way a general encoder must (msgpackr spent ~5 µs per HTTP request on a
 * busy machine, most of it on the header map). What it writes decodes to the same values as
 * `encode()` (codec.ts) would write; `encode` stays the codec for everything else.
 *
 * Two passes: `size*` functions add up the bytes, then `write*` fill a buffer of that size.
 */

/** Bytes of a msgpack str holding `s` (header included). */
export function sizeStr(s: string): number {
  const n = utf8Length(s);
  return n + (n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);
}

/** Bytes of a msgpack bin of `length` bytes (header included). */
export function sizeBin(length: number): number {
  return length + (length < 0x100 ? 2 : length < 0x10000 ? 3 : 5);
}

/** Bytes of a msgpack map or array header for `count` entries. */
export function sizeHeader(count: number): number {
  return count < 16 ? 1 : count < 0x10000 ? 3 : 5;
}

/** Bytes of a msgpack number as `Writer.num` writes it. */
export function sizeNum(n: number): number {
  if (Number.isInteger(n) && n >= 0 && n <= 0xffffffff) return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  return 9;
}

/**
 * UTF-8 length of `s`. Node's native count, not a `charCodeAt` loop: the strings on these paths
 * come in many representations (from the HTTP parser, sliced, concatenated, constants), and a
 * per-character loop over them ran on V8's generic property-load path, ~14% of the HTTP
 * provider's CPU in a profile.
 */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Writes msgpack values into a buffer sized beforehand with the `size*` functions. */
export class Writer {
  readonly buf: Buffer;
  at = 0;

  /**
   * Small buffers are views into Node's shared allocation pool, as `encode()`'s are into
   * msgpackr's: a memory of their own would cost ~2 µs each on a busy machine, more than the
   * encoding. (Posting such a view to a worker copies the pool block, ≤ 8 KiB, once per message.)
   * `ownMemory` gives the bytes an exact-size buffer of their own instead, for bytes that are
   * posted between threads as they are.
   */
  constructor(size: number, ownMemory = false) {
    this.buf = ownMemory ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
  }

  mapHeader(count: number): this {
    return this.#header(count, 0x80, 0xde);
  }

  arrayHeader(count: number): this {
    return this.#header(count, 0x90, 0xdc);
  }

  #header(count: number, fix: number, code16: number): this {
    if (count < 16) this.buf[this.at++] = fix | count;
    else this.#wide(count, code16);
    return this;
  }

  str(s: string): this {
    const b = this.buf;
    const n = utf8Length(s);
    if (n < 32) b[this.at++] = 0xa0 | n;
    else this.#sized(n, 0xd9);
    if (this.at + n > b.length) throw new Error(`msgpack writer: sized ${b.length} bytes, wrote ${this.at + n}`);
    b.write(s, this.at, n, 'utf8'); // native, for the same reason as utf8Length
    this.at += n;
    return this;
  }

  bin(bytes: Uint8Array): this {
    const b = this.buf;
    const n = bytes.byteLength;
    this.#sized(n, 0xc4);
    b.set(bytes, this.at);
    this.at += n;
    return this;
  }

  /** A number: the smallest unsigned int for integers 0 … 2³²−1, else a float64 (exact for any JS number). */
  num(n: number): this {
    const b = this.buf;
    if (Number.isInteger(n) && n >= 0 && n <= 0xffffffff) {
      if (n < 0x80) b[this.at++] = n;
      else this.#sized(n, 0xcc);
      return this;
    }
    b[this.at++] = 0xcb;
    b.writeDoubleBE(n, this.at);
    this.at += 8;
    return this;
  }

  /** `n` as an 8-, 16- or 32-bit big-endian value after its type byte: `code8`, `code8 + 1` or `code8 + 2`. */
  #sized(n: number, code8: number): void {
    if (n < 0x100) {
      this.buf[this.at++] = code8;
      this.buf[this.at++] = n;
    } else this.#wide(n, code8 + 1);
  }

  /** `n` as a 16- or 32-bit big-endian value after its type byte: `code16` or `code16 + 1`. */
  #wide(n: number, code16: number): void {
    const b = this.buf;
    if (n < 0x10000) {
      b[this.at++] = code16;
      b.writeUInt16BE(n, this.at);
      this.at += 2;
    } else {
      b[this.at++] = code16 + 1;
      b.writeUInt32BE(n, this.at);
      this.at += 4;
    }
  }

  /** Bytes that are already msgpack (a value encoded elsewhere). */
  raw(bytes: Uint8Array): this {
    this.buf.set(bytes, this.at);
    this.at += bytes.byteLength;
    return this;
  }

  /** The written bytes; throws if the buffer was sized wrong (a bug in the caller). */
  done(): Buffer {
    if (this.at !== this.buf.length) throw new Error(`msgpack writer: sized ${this.buf.length} bytes, wrote ${this.at}`);
    return this.buf;
  }
}
