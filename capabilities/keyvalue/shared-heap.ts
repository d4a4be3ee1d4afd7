/**
 * The memory under SharedKeyValueTable: one SharedArrayBuffer that every attached thread reads
 * and writes under one lock. It holds a header (magic, version, lock word, closed flag,
 * allocator state, a small root area for the table) followed by a heap of 8-byte-aligned blocks.
 *
 * Allocator: every block starts with two words, its size (low bit: in use) and the size of the
 * block physically before it, so a freed block merges with free neighbours in O(1). Free blocks
 * sit in segregated lists (32 per power of two, found through two levels of bitmaps, as in
 * TLSF), so allocation and freeing are O(1) and freed memory is reused whatever sizes come next.
 * Space never used yet is a bump region at the end; a free block touching it is given back to it.
 */
import { threadId } from 'node:worker_threads';
import { ProviderError } from '../errors.ts';
import { backendError } from './store.ts';

/** "WKV1": tells a table's buffer from any other SharedArrayBuffer. */
const MAGIC = 0x574b5631;
/** Bumped whenever the layout changes, so threads running different code never share one. */
const VERSION = 2;

// Header words (index into a Uint32Array of the buffer).
const W_MAGIC = 0;
const W_VERSION = 1;
const W_LOCK = 2;
const W_CLOSED = 3;
const W_BYTES = 4;
const W_TOP = 5; // first byte of the never-used region
const W_TOP_PREV = 6; // size of the block just before W_TOP (0 when none)
const W_FL_BITMAP = 7; // bit f: some list of first level f is non-empty
const W_SL_BITMAP = 8; // FL_COUNT words, bit s: list (f, s) is non-empty
const FL_COUNT = 25; // block sizes below 2^32
const W_HEADS = W_SL_BITMAP + FL_COUNT; // FL_COUNT * 32 list heads
/** Byte offset of 64 bytes the table keeps its own state in. */
export const ROOT = (W_HEADS + FL_COUNT * 32) * 4;
const HEAP_START = 4096;

const USED = 1;
/** Smallest block: two header words plus the two free-list links. */
const MIN_BLOCK = 16;

export const MIN_BYTES = 64 * 1024;
export const MAX_BYTES = 2 ** 31;
/** Spins on the lock word before sleeping: an operation holds the lock well under a microsecond. */
const SPIN = 400;
/** Lock word: the holder's tag in the low bits, and a bit saying that others may be asleep on it. */
const WAITERS = 0x40000000;
const OWNER = 0x3fffffff;
/** This thread's tag: its threadId + 1 (the main thread's threadId is 0), unique in the process. */
const SELF = (threadId + 1) & OWNER;

/** Free-list index of a block of `size` bytes: (first level << 5) | second level. */
function sizeClass(size: number): number {
  if (size < 256) return size >>> 3;
  const log = 31 - Math.clz32(size);
  return ((log - 7) << 5) | ((size >>> (log - 5)) & 31);
}

function lowestBit(bits: number): number {
  return 31 - Math.clz32(bits & -bits);
}

export function invalidOptions(message: string): ProviderError {
  return new ProviderError('OPTIONS_INVALID', `invalid shared key-value table options: ${message}`);
}

export class SharedHeap {
  readonly buffer: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  readonly i32: Int32Array;
  /** Usable size: the buffer's length rounded down to whole 8-byte words. */
  readonly bytes: number;
  readonly #lockTimeoutMs: number;
  readonly #decoder = new TextDecoder();

  private constructor(buffer: SharedArrayBuffer, lockTimeoutMs: number) {
    this.buffer = buffer;
    this.u8 = new Uint8Array(buffer);
    this.u32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    this.f64 = new Float64Array(buffer, 0, buffer.byteLength >>> 3);
    this.i32 = new Int32Array(buffer, 0, 16);
    this.bytes = buffer.byteLength & ~7;
    this.#lockTimeoutMs = lockTimeoutMs;
  }

  /** A new, empty heap of `bytes` bytes (validated by the caller). */
  static create(bytes: number, lockTimeoutMs: number): SharedHeap {
    const heap = new SharedHeap(new SharedArrayBuffer(bytes), lockTimeoutMs);
    const w = heap.u32;
    w[W_BYTES] = heap.bytes;
    w[W_TOP] = HEAP_START;
    w[W_VERSION] = VERSION;
    // Written last: a buffer is only recognised once its header is complete.
    Atomics.store(w, W_MAGIC, MAGIC);
    return heap;
  }

  /** The heap in a buffer some other thread created; refuses anything else. */
  static attach(buffer: unknown, lockTimeoutMs: number): SharedHeap {
    const fail = (why: string) => new ProviderError('SHARED_BUFFER_INVALID', `cannot attach a shared key-value table: ${why}`);
    if (!(buffer instanceof SharedArrayBuffer)) throw fail('expected a SharedArrayBuffer');
    if (buffer.byteLength < MIN_BYTES || buffer.byteLength > MAX_BYTES) throw fail(`a buffer of ${buffer.byteLength} bytes is not one`);
    const w = new Uint32Array(buffer, 0, 8);
    if (Atomics.load(w, W_MAGIC) !== MAGIC) throw fail('the buffer does not hold one (bad magic number)');
    if (w[W_VERSION] !== VERSION) throw fail(`layout version ${w[W_VERSION]} is not the supported ${VERSION}`);
    if (w[W_BYTES] !== (buffer.byteLength & ~7)) throw fail('the recorded size does not match the buffer');
    return new SharedHeap(buffer, lockTimeoutMs);
  }

  // ---- lock: 0 free, else the holder's tag (its threadId + 1) and a waiters bit -------------

  /** Takes the lock or throws BACKEND_ERROR for `op` after the lock timeout. */
  lock(op: string): void {
    if (Atomics.compareExchange(this.i32, W_LOCK, 0, SELF) !== 0) this.#lockSlow(op);
  }

  #lockSlow(op: string): void {
    const i32 = this.i32;
    for (let i = 0; i < SPIN; i++) {
      if (Atomics.load(i32, W_LOCK) === 0 && Atomics.compareExchange(i32, W_LOCK, 0, SELF) === 0) return;
    }
    const deadline = performance.now() + this.#lockTimeoutMs;
    for (;;) {
      let cur = Atomics.load(i32, W_LOCK);
      if (cur === 0) {
        // Taken with the waiters bit set: others may be asleep, so the release wakes one.
        if (Atomics.compareExchange(i32, W_LOCK, 0, SELF | WAITERS) === 0) return;
        continue;
      }
      if ((cur & WAITERS) === 0) {
        if (Atomics.compareExchange(i32, W_LOCK, cur, cur | WAITERS) !== cur) continue;
        cur |= WAITERS;
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw backendError(op, `timed out after ${this.#lockTimeoutMs} ms waiting for the shared key-value table's lock (held by thread ${(cur & OWNER) - 1})`);
      }
      Atomics.wait(i32, W_LOCK, cur, left);
    }
  }

  /** Releases the lock if this thread holds it (after a takeover it no longer does). */
  unlock(): void {
    const i32 = this.i32;
    let cur = Atomics.load(i32, W_LOCK);
    while ((cur & OWNER) === SELF) {
      const seen = Atomics.compareExchange(i32, W_LOCK, cur, 0);
      if (seen === cur) {
        if ((cur & WAITERS) !== 0) Atomics.notify(i32, W_LOCK, 1);
        return;
      }
      cur = seen;
    }
  }

  /** The thread holding the lock (its threadId), or -1 when it is free. */
  get holder(): number {
    const cur = Atomics.load(this.i32, W_LOCK);
    return cur === 0 ? -1 : (cur & OWNER) - 1;
  }

  /**
   * Takes the lock over from thread `deadThreadId`, which must be gone for good (its worker
   * exited): true when that thread held it, and this one holds it now. Its operation may have
   * been cut short, so the caller checks (and repairs) the data before it unlocks.
   */
  takeOverFrom(deadThreadId: number): boolean {
    const tag = (deadThreadId + 1) & OWNER;
    const i32 = this.i32;
    for (;;) {
      const cur = Atomics.load(i32, W_LOCK);
      if ((cur & OWNER) !== tag || tag === SELF) return false;
      if (Atomics.compareExchange(i32, W_LOCK, cur, SELF | (cur & WAITERS)) === cur) return true;
    }
  }

  get closed(): boolean {
    return Atomics.load(this.u32, W_CLOSED) !== 0;
  }

  markClosed(): void {
    Atomics.store(this.u32, W_CLOSED, 1);
  }

  // ---- allocator (call with the lock held) ---------------------------------------------------

  /** A block with room for `payload` bytes, 8-byte aligned; 0 when memory is full. */
  alloc(payload: number): number {
    const w = this.u32;
    if (payload > this.bytes - HEAP_START) return 0;
    const size = Math.max(MIN_BLOCK, (payload + 15) & ~7);
    // Good fit: a list whose every block is large enough.
    let block = this.#firstFree(size >= 256 ? sizeClass(size + (1 << (26 - Math.clz32(size))) - 1) : sizeClass(size));
    if (block === 0) {
      const top = w[W_TOP] as number;
      if (top + size <= this.bytes) {
        w[top >>> 2] = size | USED;
        w[(top >>> 2) + 1] = w[W_TOP_PREV] as number;
        w[W_TOP] = top + size;
        w[W_TOP_PREV] = size;
        return top + 8;
      }
      // Nearly full: a block in the request's own list may still fit.
      for (let b = w[W_HEADS + sizeClass(size)] as number; b !== 0; b = w[(b >>> 2) + 2] as number) {
        if ((w[b >>> 2] as number) >= size) {
          block = b;
          break;
        }
      }
      if (block === 0) return 0;
    }
    const have = w[block >>> 2] as number;
    this.#unlinkFree(block, have);
    if (have - size >= MIN_BLOCK) {
      const rest = block + size;
      w[rest >>> 2] = have - size;
      w[(rest >>> 2) + 1] = size;
      this.#setPrevSize(block + have, have - size);
      this.#linkFree(rest, have - size);
      w[block >>> 2] = size | USED;
    } else {
      w[block >>> 2] = have | USED;
    }
    return block + 8;
  }

  /** Gives back a block `alloc` returned. */
  free(ptr: number): void {
    const w = this.u32;
    let block = ptr - 8;
    let size = (w[block >>> 2] as number) & ~USED;
    const next = block + size;
    if (next !== w[W_TOP]) {
      const nextWord = w[next >>> 2] as number;
      if ((nextWord & USED) === 0) {
        this.#unlinkFree(next, nextWord);
        size += nextWord;
      }
    }
    const prevSize = w[(block >>> 2) + 1] as number;
    if (prevSize !== 0 && ((w[(block - prevSize) >>> 2] as number) & USED) === 0) {
      block -= prevSize;
      this.#unlinkFree(block, prevSize);
      size += prevSize;
    }
    if (block + size === w[W_TOP]) {
      w[W_TOP] = block;
      w[W_TOP_PREV] = w[(block >>> 2) + 1] as number;
      return;
    }
    w[block >>> 2] = size;
    this.#setPrevSize(block + size, size);
    this.#linkFree(block, size);
  }

  /** Payload bytes of the block at `ptr` (at least what was asked for). */
  capacity(ptr: number): number {
    return ((this.u32[(ptr - 8) >>> 2] as number) & ~USED) - 8;
  }

  #setPrevSize(block: number, size: number): void {
    if (block !== this.u32[W_TOP]) this.u32[(block >>> 2) + 1] = size;
    else this.u32[W_TOP_PREV] = size;
  }

  #firstFree(cls: number): number {
    const w = this.u32;
    let fl = cls >>> 5;
    if (fl >= FL_COUNT) return 0;
    let bits = (w[W_SL_BITMAP + fl] as number) & (-1 << (cls & 31));
    if (bits === 0) {
      const fls = (w[W_FL_BITMAP] as number) & (-1 << (fl + 1));
      if (fls === 0) return 0;
      fl = lowestBit(fls);
      bits = w[W_SL_BITMAP + fl] as number;
    }
    return w[W_HEADS + (fl << 5) + lowestBit(bits)] as number;
  }

  #linkFree(block: number, size: number): void {
    const w = this.u32;
    const cls = sizeClass(size);
    const head = w[W_HEADS + cls] as number;
    w[(block >>> 2) + 2] = head;
    w[(block >>> 2) + 3] = 0;
    if (head !== 0) w[(head >>> 2) + 3] = block;
    w[W_HEADS + cls] = block;
    w[W_SL_BITMAP + (cls >>> 5)] = (w[W_SL_BITMAP + (cls >>> 5)] as number) | (1 << (cls & 31));
    w[W_FL_BITMAP] = (w[W_FL_BITMAP] as number) | (1 << (cls >>> 5));
  }

  #unlinkFree(block: number, size: number): void {
    const w = this.u32;
    const cls = sizeClass(size);
    const next = w[(block >>> 2) + 2] as number;
    const prev = w[(block >>> 2) + 3] as number;
    if (prev !== 0) w[(prev >>> 2) + 2] = next;
    else w[W_HEADS + cls] = next;
    if (next !== 0) w[(next >>> 2) + 3] = prev;
    if (w[W_HEADS + cls] === 0) {
      const sl = (w[W_SL_BITMAP + (cls >>> 5)] as number) & ~(1 << (cls & 31));
      w[W_SL_BITMAP + (cls >>> 5)] = sl;
      if (sl === 0) w[W_FL_BITMAP] = (w[W_FL_BITMAP] as number) & ~(1 << (cls >>> 5));
    }
  }

  /** Forgets every block: the heap is empty again (call with the lock held). */
  resetBlocks(): void {
    const w = this.u32;
    w.fill(0, W_FL_BITMAP, W_HEADS + FL_COUNT * 32);
    w[W_TOP] = HEAP_START;
    w[W_TOP_PREV] = 0;
  }

  /**
   * Rebuilds the allocator's bookkeeping from the blocks themselves, after an operation was cut
   * short: neighbouring free blocks merge, a free block at the end goes back to the unused region,
   * the free lists and bitmaps are made anew. False when the blocks do not tile the heap (then
   * nothing can be trusted and nothing was changed).
   */
  rebuildFreeLists(): boolean {
    const w = this.u32;
    const top = w[W_TOP] as number;
    for (let b = HEAP_START; b < top; ) {
      const size = (w[b >>> 2] as number) & ~USED;
      if (size < MIN_BLOCK || size % 8 !== 0 || b + size > top) return false;
      b += size;
    }
    w.fill(0, W_FL_BITMAP, W_HEADS + FL_COUNT * 32);
    let prevSize = 0;
    let b = HEAP_START;
    while (b < top) {
      let size = (w[b >>> 2] as number) & ~USED;
      const free = ((w[b >>> 2] as number) & USED) === 0;
      if (free) {
        while (b + size < top && ((w[(b + size) >>> 2] as number) & USED) === 0) size += (w[(b + size) >>> 2] as number) & ~USED;
        if (b + size === top) {
          w[W_TOP] = b;
          w[W_TOP_PREV] = prevSize;
          return true;
        }
        w[b >>> 2] = size;
      }
      w[(b >>> 2) + 1] = prevSize;
      if (free) this.#linkFree(b, size);
      prevSize = size;
      b += size;
    }
    w[W_TOP_PREV] = prevSize;
    return true;
  }

  /**
   * Checks the allocator's invariants, for tests (run it while no operation is under way):
   * blocks tile the heap and record their predecessor's size, no two free blocks touch, none
   * touches the unused end, and the free lists hold exactly the free blocks, each in its class.
   */
  verify(): { problems: string[]; usedBytes: number; freeBytes: number } {
    const w = this.u32;
    const problems: string[] = [];
    const top = w[W_TOP] as number;
    let usedBytes = 0;
    let freeBytes = 0;
    let freeBlocks = 0;
    let prevSize = 0;
    let prevFree = false;
    let b = HEAP_START;
    while (b < top) {
      const size = (w[b >>> 2] as number) & ~USED;
      const free = ((w[b >>> 2] as number) & USED) === 0;
      if (size < MIN_BLOCK || size % 8 !== 0 || b + size > top) {
        problems.push(`block ${b}: bad size ${size}`);
        return { problems, usedBytes, freeBytes };
      }
      if (w[(b >>> 2) + 1] !== prevSize) problems.push(`block ${b}: records previous size ${w[(b >>> 2) + 1]}, not ${prevSize}`);
      if (free && prevFree) problems.push(`block ${b}: free next to a free block`);
      if (free) {
        freeBytes += size;
        freeBlocks++;
      } else {
        usedBytes += size;
      }
      prevSize = size;
      prevFree = free;
      b += size;
    }
    if (b !== top) problems.push(`blocks end at ${b}, not at the unused region ${top}`);
    if (prevFree) problems.push('a free block touches the unused region');
    if (w[W_TOP_PREV] !== prevSize) problems.push(`the unused region records previous size ${w[W_TOP_PREV]}, not ${prevSize}`);
    let listed = 0;
    for (let cls = 0; cls < FL_COUNT * 32; cls++) {
      const head = w[W_HEADS + cls] as number;
      const bit = ((w[W_SL_BITMAP + (cls >>> 5)] as number) >>> (cls & 31)) & 1;
      if ((head !== 0) !== (bit === 1)) problems.push(`list ${cls}: bitmap says ${bit}, head is ${head}`);
      let prev = 0;
      for (let f = head; f !== 0; f = w[(f >>> 2) + 2] as number) {
        const word = w[f >>> 2] as number;
        if ((word & USED) !== 0 || sizeClass(word) !== cls) problems.push(`list ${cls}: block ${f} is in use or of another class`);
        if (w[(f >>> 2) + 3] !== prev) problems.push(`list ${cls}: block ${f} has a wrong back link`);
        prev = f;
        if (++listed > freeBlocks) {
          problems.push('free lists hold more blocks than are free (a cycle?)');
          return { problems, usedBytes, freeBytes };
        }
      }
    }
    if (listed !== freeBlocks) problems.push(`free lists hold ${listed} blocks, the heap has ${freeBlocks} free`);
    return { problems, usedBytes, freeBytes };
  }

  // ---- bytes and strings ---------------------------------------------------------------------

  /** Copies `len` bytes of `src` into the heap at `dst`. */
  copyIn(src: Uint8Array, len: number, dst: number): void {
    if (len < 64) {
      const u8 = this.u8;
      for (let i = 0; i < len; i++) u8[dst + i] = src[i] as number;
    } else {
      this.u8.set(src.subarray(0, len), dst);
    }
  }

  /** The UTF-8 text of `len` bytes at `ptr`. */
  text(ptr: number, len: number): string {
    if (len <= 32) {
      // Short ASCII, the common case, without a native call.
      const u8 = this.u8;
      let s = '';
      for (let i = ptr, end = ptr + len; i < end; i++) {
        const b = u8[i] as number;
        if (b >= 0x80) return this.#decoder.decode(u8.subarray(ptr, ptr + len));
        s += String.fromCharCode(b);
      }
      return s;
    }
    return this.#decoder.decode(this.u8.subarray(ptr, ptr + len));
  }
}
