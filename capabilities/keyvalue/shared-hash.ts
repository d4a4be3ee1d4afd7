/**
 * Hash tables inside a SharedHeap, used for the keyspace and for each set's members. A table is
 * described by three words somewhere in the heap: its slots block, capacity (a power of two) and
 * count. Slots are (hash, block) pairs, probed linearly and deleted by backward shift (no
 * tombstones); a table doubles past 3/4 load. Keys are UTF-8 bytes inside the blocks, at an
 * offset the caller names, with their byte length in a word at another. Call with the lock held.
 */
import type { SharedHeap } from './shared-heap.ts';

/** FNV-1a over the bytes, then murmur3's finaliser so the low bits (the probe start) mix well. */
export function hashBytes(bytes: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off, end = off + len; i < end; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function bytesEqual(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** Makes an empty table of `cap` slots (a power of two) at `desc`; false when memory is full. */
export function tableInit(heap: SharedHeap, desc: number, cap: number): boolean {
  const slots = heap.alloc(cap * 8);
  if (slots === 0) return false;
  heap.u32.fill(0, slots >>> 2, (slots >>> 2) + cap * 2);
  const d = desc >>> 2;
  heap.u32[d] = slots;
  heap.u32[d + 1] = cap;
  heap.u32[d + 2] = 0;
  return true;
}

/**
 * The slot holding the key `src[off, off+len)` with `hash`, or -1. Keys in blocks are `len`
 * bytes at block+`bytesAt` with their length word at block+`lenAt`.
 */
export function tableFind(heap: SharedHeap, desc: number, hash: number, src: Uint8Array, off: number, len: number, lenAt: number, bytesAt: number): number {
  const w = heap.u32;
  const base = (w[desc >>> 2] as number) >>> 2;
  const mask = (w[(desc >>> 2) + 1] as number) - 1;
  for (let i = hash & mask; ; i = (i + 1) & mask) {
    const p = w[base + i * 2 + 1] as number;
    if (p === 0) return -1;
    if (w[base + i * 2] === hash && w[(p + lenAt) >>> 2] === len && bytesEqual(heap.u8, p + bytesAt, src, off, len)) return i;
  }
}

/** The slot holding block `ptr` (which is in the table under `hash`). */
export function tableSlotOf(heap: SharedHeap, desc: number, hash: number, ptr: number): number {
  const w = heap.u32;
  const base = (w[desc >>> 2] as number) >>> 2;
  const mask = (w[(desc >>> 2) + 1] as number) - 1;
  let i = hash & mask;
  while (w[base + i * 2 + 1] !== ptr) i = (i + 1) & mask;
  return i;
}

/** The block in `slot`. */
export function tableAt(heap: SharedHeap, desc: number, slot: number): number {
  return heap.u32[((heap.u32[desc >>> 2] as number) >>> 2) + slot * 2 + 1] as number;
}

export function tableSetAt(heap: SharedHeap, desc: number, slot: number, ptr: number): void {
  heap.u32[((heap.u32[desc >>> 2] as number) >>> 2) + slot * 2 + 1] = ptr;
}

export function tableCount(heap: SharedHeap, desc: number): number {
  return heap.u32[(desc >>> 2) + 2] as number;
}

/** Adds `ptr` (not in the table yet) under `hash`; call `tableReserve` first. */
export function tableInsert(heap: SharedHeap, desc: number, hash: number, ptr: number): void {
  const w = heap.u32;
  const d = desc >>> 2;
  const base = (w[d] as number) >>> 2;
  const mask = (w[d + 1] as number) - 1;
  let i = hash & mask;
  while (w[base + i * 2 + 1] !== 0) i = (i + 1) & mask;
  w[base + i * 2] = hash;
  w[base + i * 2 + 1] = ptr;
  w[d + 2] = (w[d + 2] as number) + 1;
}

/** Empties `slot`, shifting later entries of its probe run back so lookups need no tombstones. */
export function tableRemoveAt(heap: SharedHeap, desc: number, slot: number): void {
  const w = heap.u32;
  const d = desc >>> 2;
  const base = (w[d] as number) >>> 2;
  const mask = (w[d + 1] as number) - 1;
  let hole = slot;
  for (let j = (hole + 1) & mask; w[base + j * 2 + 1] !== 0; j = (j + 1) & mask) {
    const home = (w[base + j * 2] as number) & mask;
    // The entry at j may move back to the hole unless its home lies cyclically in (hole, j].
    const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
    if (stays) continue;
    w[base + hole * 2] = w[base + j * 2] as number;
    w[base + hole * 2 + 1] = w[base + j * 2 + 1] as number;
    hole = j;
  }
  w[base + hole * 2] = 0;
  w[base + hole * 2 + 1] = 0;
  w[d + 2] = (w[d + 2] as number) - 1;
}

/**
 * Makes room for one more entry, doubling the table past 3/4 load. False only when the table
 * is full and memory cannot hold a bigger one (a table short of memory keeps working fuller).
 */
export function tableReserve(heap: SharedHeap, desc: number): boolean {
  const w = heap.u32;
  const d = desc >>> 2;
  const cap = w[d + 1] as number;
  const count = w[d + 2] as number;
  if ((count + 1) * 4 <= cap * 3) return true;
  const old = w[d] as number;
  const slots = cap * 2 <= 0x8000000 ? heap.alloc(cap * 16) : 0;
  if (slots === 0) return count + 2 <= cap;
  const mask = cap * 2 - 1;
  w.fill(0, slots >>> 2, (slots >>> 2) + cap * 4);
  for (let i = 0; i < cap; i++) {
    const p = w[(old >>> 2) + i * 2 + 1] as number;
    if (p === 0) continue;
    const hash = w[(old >>> 2) + i * 2] as number;
    let j = hash & mask;
    while (w[(slots >>> 2) + j * 2 + 1] !== 0) j = (j + 1) & mask;
    w[(slots >>> 2) + j * 2] = hash;
    w[(slots >>> 2) + j * 2 + 1] = p;
  }
  w[d] = slots;
  w[d + 1] = cap * 2;
  heap.free(old);
  return true;
}
