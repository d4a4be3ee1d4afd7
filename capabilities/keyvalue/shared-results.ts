/**
 * Results of the shared table's list and set reads, copied out as bytes while the lock is held
 * and turned into strings after it is released: a copy costs a few nanoseconds per item, a
 * string several hundred, and only the copy holds up the other threads. A result may not grow
 * past the table's result cap (`maxResultBytes`), so no read holds the lock for longer than
 * copying that much takes.
 */
import { backendError } from './store.ts';

/** What one string costs in a msgpack reply beyond its bytes (the largest str header). */
const ITEM_OVERHEAD = 5;

export class Gathered {
  #buf = new Uint8Array(4096);
  #at = 0;
  #count = 0;
  /** Estimated reply bytes so far (item bytes and a header each). */
  #cost = 0;
  #limit = 0;
  #op = '';

  /** Starts a result of `op` that may cost up to `limit` reply bytes. */
  begin(op: string, limit: number): this {
    this.#at = 0;
    this.#count = 0;
    this.#cost = 0;
    this.#limit = limit;
    this.#op = op;
    return this;
  }

  get count(): number {
    return this.#count;
  }

  /** Adds the `len` bytes at `off` of `src`; throws BACKEND_ERROR when the result would pass its cap. */
  add(src: Uint8Array, off: number, len: number): void {
    this.#cost += len + ITEM_OVERHEAD;
    if (this.#cost > this.#limit) {
      throw backendError(this.#op, `the result is larger than ${this.#limit} bytes, the most one call may return from the shared-memory backend; ask for less (a smaller range)`);
    }
    const need = this.#at + 4 + len;
    if (need > this.#buf.length) {
      let size = this.#buf.length * 2;
      while (size < need) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#buf.subarray(0, this.#at));
      this.#buf = grown;
    }
    const buf = this.#buf;
    let at = this.#at;
    buf[at] = len & 0xff;
    buf[at + 1] = (len >>> 8) & 0xff;
    buf[at + 2] = (len >>> 16) & 0xff;
    buf[at + 3] = len >>> 24;
    at += 4;
    if (len < 64) for (let i = 0; i < len; i++) buf[at + i] = src[off + i] as number;
    else buf.set(src.subarray(off, off + len), at);
    this.#at = at + len;
    this.#count++;
  }

  /** The items as strings (call after the lock is released). */
  strings(): string[] {
    const out: string[] = new Array(this.#count);
    const buf = this.#buf;
    const view = Buffer.from(buf.buffer, buf.byteOffset, this.#at);
    let at = 0;
    for (let n = 0; n < this.#count; n++) {
      const len = (buf[at] as number) | ((buf[at + 1] as number) << 8) | ((buf[at + 2] as number) << 16) | ((buf[at + 3] as number) << 24);
      at += 4;
      out[n] = view.toString('utf8', at, at + len);
      at += len;
    }
    return out;
  }
}
