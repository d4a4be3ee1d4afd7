/**
 * Call results from a worker to the main thread through shared memory, instead of one message per
 * call: the worker appends each result to a ring and rings a doorbell (one small message) only
 * when none is outstanding, at the end of the work it was sent or when a result has waited 1 ms.
 * The main thread clears the doorbell, then drains everything written so far. A structured-clone
 * message per call cost more than the call itself on a busy host; a drain costs a copy per result.
 *
 * The ring also keeps results safe when a worker is stopped: the main thread drains it before it
 * terminates a worker whose call overran, so calls that finished before it are answered.
 *
 * Layout: Int32 header [write, read, doorbell, 0], then CAPACITY bytes of entries
 * `[payload length: u32][call id: i32][extra length: u32][payload][extra][padding to 4 bytes]`,
 * `extra` being what the worker sends along (the guest's log lines of the call, encoded). `write` and `read` count
 * bytes since the start (modulo 2³²); an entry never straddles the end of the ring: a WRAP marker
 * sends the reader back to the start. Only the worker moves `write`, only the main thread `read`.
 */

export const RESULTS_CAPACITY = 256 * 1024;
/** Results larger than this go by message. */
export const RESULTS_MAX_PAYLOAD = 64 * 1024;
const HEADER_BYTES = 16;
const ENTRY_HEADER = 12;
const WRITE = 0;
const READ = 1;
const DOORBELL = 2;
const WRAP = 0xffffffff;
const MASK = RESULTS_CAPACITY - 1;

const align4 = (n: number) => (n + 3) & ~3;

export function resultsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + RESULTS_CAPACITY);
}

abstract class RingView {
  protected readonly header: Int32Array;
  protected readonly bytes: Uint8Array;
  protected readonly view: DataView;

  constructor(buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(buffer, HEADER_BYTES, RESULTS_CAPACITY);
    this.view = new DataView(buffer, HEADER_BYTES, RESULTS_CAPACITY);
  }
}

/** The worker's end. */
export class ResultsWriter extends RingView {
  /** Appends a result; false when it is too large or the ring is full (send it by message then). */
  write(id: number, payload: Uint8Array, extra?: Uint8Array): boolean {
    const len = payload.byteLength;
    const extraLen = extra?.byteLength ?? 0;
    if (len + extraLen > RESULTS_MAX_PAYLOAD) return false;
    const size = ENTRY_HEADER + align4(len + extraLen);
    const w = Atomics.load(this.header, WRITE) >>> 0;
    const used = (w - (Atomics.load(this.header, READ) >>> 0)) >>> 0;
    const off = w & MASK;
    const tail = RESULTS_CAPACITY - off;
    const skip = tail < size ? tail : 0;
    if (skip + size > RESULTS_CAPACITY - used) return false;
    if (skip > 0) this.view.setUint32(off, WRAP);
    const at = skip > 0 ? 0 : off;
    this.view.setUint32(at, len);
    this.view.setInt32(at + 4, id);
    this.view.setUint32(at + 8, extraLen);
    this.bytes.set(payload, at + ENTRY_HEADER);
    if (extra) this.bytes.set(extra, at + ENTRY_HEADER + len);
    // Publish the entry only once its bytes are in place.
    Atomics.store(this.header, WRITE, (w + skip + size) | 0);
    return true;
  }

  /** True when the caller must post a doorbell message (none is outstanding). */
  ring(): boolean {
    return Atomics.compareExchange(this.header, DOORBELL, 0, 1) === 0;
  }
}

/** The main thread's end. */
export class ResultsReader extends RingView {
  /** Call before draining in answer to a doorbell: a result written after this rings again. */
  clearDoorbell(): void {
    Atomics.store(this.header, DOORBELL, 0);
  }

  /** Copies out every result written so far, frees their space, then hands them to `each`. */
  drain(each: (id: number, payload: Uint8Array, extra: Uint8Array | undefined) => void): number {
    const w = Atomics.load(this.header, WRITE) >>> 0;
    let r = Atomics.load(this.header, READ) >>> 0;
    if (r === w) return 0;
    const ids: number[] = [];
    const payloads: Uint8Array[] = [];
    const extras: (Uint8Array | undefined)[] = [];
    while (r !== w) {
      const off = r & MASK;
      const len = this.view.getUint32(off);
      if (len === WRAP) {
        r = (r + RESULTS_CAPACITY - off) >>> 0;
        continue;
      }
      ids.push(this.view.getInt32(off + 4));
      const extraLen = this.view.getUint32(off + 8);
      // From Node's pool: results are small, and they are copied on (into replies) at once.
      const at = off + ENTRY_HEADER;
      const payload = Buffer.allocUnsafe(len);
      payload.set(this.bytes.subarray(at, at + len));
      payloads.push(payload);
      extras.push(extraLen > 0 ? this.bytes.slice(at + len, at + len + extraLen) : undefined);
      r = (r + ENTRY_HEADER + align4(len + extraLen)) >>> 0;
    }
    Atomics.store(this.header, READ, r | 0);
    for (let i = 0; i < ids.length; i++) each(ids[i]!, payloads[i]!, extras[i]);
    return ids.length;
  }
}
