/**
 * The list and set operations of SharedKeyValueTable, as functions over its keyspace; the table
 * takes the lock and starts the operation (`Keyspace.begin`) before calling them. Lists and sets
 * that become empty are dropped, as Redis does; growth allocates before it changes anything.
 * Reads copy their items into `k.gathered` (capped at the table's result size); the table turns
 * them into strings once it has released the lock. A list or set holds at most `k.maxItems`
 * items, so no operation here visits more than a bounded number of them under the lock.
 */
import { backendError, emptyKeysError } from './store.ts';
import { bytesEqual, hashBytes, tableAt, tableCount, tableFind, tableInit, tableInsert, tableRemoveAt, tableReserve } from './shared-hash.ts';
import { E_CAP, E_ITEMS, E_LEN, E_MEMBERS, KEYS, LIST, M_BYTES, SET, type Keyspace } from './shared-keyspace.ts';

const INITIAL_MEMBERS = 4;
const INITIAL_ITEMS = 4;

/** The live sets at `keys`, in order, skipping missing keys; WRONGTYPE for any other kind. */
function liveSets(k: Keyspace, op: string, keys: string[]): number[] {
  const sets: number[] = [];
  for (const key of keys) {
    const e = k.entry(op, key, SET);
    if (e !== 0) sets.push(e);
  }
  return sets;
}

export function range(k: Keyspace, key: string, start: number, stop: number): void {
  const e = k.entry('Range', key, LIST);
  if (e === 0) return;
  const len = k.w[(e + E_LEN) >>> 2] as number;
  let from = start < 0 ? len + start : start;
  let to = stop < 0 ? len + stop : stop;
  if (from < 0) from = 0;
  if (from > to || from >= len) return;
  if (to >= len) to = len - 1;
  // Rounding as Array.prototype.slice did in the Map-based store.
  const end = Math.trunc(to + 1);
  const items = (k.w[(e + E_ITEMS) >>> 2] as number) >>> 2;
  for (let i = Math.trunc(from); i < end; i++) k.gather(k.w[items + i] as number);
}

export function push(k: Keyspace, key: string, value: string): number {
  const heap = k.heap;
  const w = k.w;
  const e = k.entry('Push', key, LIST);
  const vb = k.utf8(value, false);
  if (e === 0 && !tableReserve(heap, KEYS)) throw k.full('Push');
  const item = k.newItem(vb, k.n);
  if (item === 0) throw k.full('Push');
  if (e === 0) {
    const items = heap.alloc(INITIAL_ITEMS * 4);
    const n = items === 0 ? 0 : k.newEntry(LIST, 0);
    if (n === 0) {
      if (items !== 0) heap.free(items);
      heap.free(item);
      throw k.full('Push');
    }
    w[items >>> 2] = item;
    w[(n + E_ITEMS) >>> 2] = items;
    w[(n + E_LEN) >>> 2] = 1;
    w[(n + E_CAP) >>> 2] = INITIAL_ITEMS;
    tableInsert(heap, KEYS, k.kh, n);
    return 1;
  }
  const len = w[(e + E_LEN) >>> 2] as number;
  if (len >= k.maxItems) {
    heap.free(item);
    throw k.tooManyItems('Push', key, 'list');
  }
  const cap = w[(e + E_CAP) >>> 2] as number;
  let items = w[(e + E_ITEMS) >>> 2] as number;
  if (len === cap) {
    const grown = heap.alloc(cap * 8);
    if (grown === 0) {
      heap.free(item);
      throw k.full('Push');
    }
    w.copyWithin(grown >>> 2, items >>> 2, (items >>> 2) + len);
    heap.free(items);
    items = grown;
    w[(e + E_ITEMS) >>> 2] = grown;
    w[(e + E_CAP) >>> 2] = cap * 2;
  }
  w[(items >>> 2) + len] = item;
  w[(e + E_LEN) >>> 2] = len + 1;
  return len + 1;
}

export function listItemDelete(k: Keyspace, key: string, value: string): number {
  const e = k.entry('ListItemDelete', key, LIST);
  if (e === 0) return 0;
  const w = k.w;
  const vb = k.utf8(value, false);
  const vl = k.n;
  const items = (w[(e + E_ITEMS) >>> 2] as number) >>> 2;
  const len = w[(e + E_LEN) >>> 2] as number;
  let kept = 0;
  for (let i = 0; i < len; i++) {
    const p = w[items + i] as number;
    if (w[p >>> 2] === vl && bytesEqual(k.u8, p + M_BYTES, vb, 0, vl)) k.heap.free(p);
    else w[items + kept++] = p;
  }
  w[(e + E_LEN) >>> 2] = kept;
  if (kept === 0) k.removeAt(k.slot, e); // Redis drops empty lists
  return kept;
}

export function setAdd(k: Keyspace, key: string, value: string): number {
  const heap = k.heap;
  const e = k.entry('SetAdd', key, SET);
  const vb = k.utf8(value, false);
  const vl = k.n;
  const vh = hashBytes(vb, 0, vl);
  if (e === 0) {
    if (!tableReserve(heap, KEYS)) throw k.full('SetAdd');
    const member = k.newItem(vb, vl);
    const n = member === 0 ? 0 : k.newEntry(SET, 0);
    if (n === 0 || !tableInit(heap, n + E_MEMBERS, INITIAL_MEMBERS)) {
      if (n !== 0) heap.free(n);
      if (member !== 0) heap.free(member);
      throw k.full('SetAdd');
    }
    tableInsert(heap, n + E_MEMBERS, vh, member);
    tableInsert(heap, KEYS, k.kh, n);
    return 1;
  }
  if (tableFind(heap, e + E_MEMBERS, vh, vb, 0, vl, 0, M_BYTES) >= 0) return 0;
  if (tableCount(heap, e + E_MEMBERS) >= k.maxItems) throw k.tooManyItems('SetAdd', key, 'set');
  if (!tableReserve(heap, e + E_MEMBERS)) throw k.full('SetAdd');
  const member = k.newItem(vb, vl);
  if (member === 0) throw k.full('SetAdd');
  tableInsert(heap, e + E_MEMBERS, vh, member);
  return 1;
}

export function setRemove(k: Keyspace, key: string, value: string): number {
  const heap = k.heap;
  const e = k.entry('SetRemove', key, SET);
  if (e === 0) return 0;
  const vb = k.utf8(value, false);
  const slot = tableFind(heap, e + E_MEMBERS, hashBytes(vb, 0, k.n), vb, 0, k.n, 0, M_BYTES);
  if (slot < 0) return 0;
  const member = tableAt(heap, e + E_MEMBERS, slot);
  tableRemoveAt(heap, e + E_MEMBERS, slot);
  heap.free(member);
  if (tableCount(heap, e + E_MEMBERS) === 0) k.removeAt(k.slot, e); // Redis drops empty sets
  return 1;
}

/** Member probes one SetUnion or SetIntersection may make, in multiples of the most items a set holds. */
const PROBES = 4;

/** The number of probes `work` stands for, refused past the budget. */
function checkProbes(k: Keyspace, op: string, work: number): void {
  if (work > PROBES * k.maxItems) {
    throw backendError(op, `comparing ${work} set members is more work than one call may do in the shared-memory backend (at most ${PROBES * k.maxItems}); use fewer or smaller sets`);
  }
}

/** True when member `m` (stored under `hash`) is in one of the first `n` of `sets`. */
function inAny(k: Keyspace, sets: number[], n: number, m: number, hash: number): boolean {
  const len = k.w[m >>> 2] as number;
  for (let s = 0; s < n; s++) {
    if (tableFind(k.heap, (sets[s] as number) + E_MEMBERS, hash, k.u8, m + M_BYTES, len, 0, M_BYTES) >= 0) return true;
  }
  return false;
}

/** SUNION: each set's members not in an earlier one. */
export function setUnion(k: Keyspace, keys: string[]): void {
  if (keys.length === 0) throw emptyKeysError('SetUnion');
  const sets = liveSets(k, 'SetUnion', keys);
  const heap = k.heap;
  let work = 0;
  for (let i = 1; i < sets.length; i++) work += tableCount(heap, (sets[i] as number) + E_MEMBERS) * i;
  checkProbes(k, 'SetUnion', work);
  const w = k.w;
  for (let i = 0; i < sets.length; i++) {
    const desc = (sets[i] as number) + E_MEMBERS;
    const base = (w[desc >>> 2] as number) >>> 2;
    const cap = w[(desc >>> 2) + 1] as number;
    for (let j = 0; j < cap; j++) {
      const m = w[base + j * 2 + 1] as number;
      if (m !== 0 && (i === 0 || !inAny(k, sets, i, m, w[base + j * 2] as number))) k.gather(m);
    }
  }
}

export function setIntersection(k: Keyspace, keys: string[]): void {
  if (keys.length === 0) throw emptyKeysError('SetIntersection');
  const sets = liveSets(k, 'SetIntersection', keys);
  if (sets.length < keys.length) return;
  const heap = k.heap;
  const w = k.w;
  sets.sort((a, b) => tableCount(heap, a + E_MEMBERS) - tableCount(heap, b + E_MEMBERS));
  const smallest = (sets[0] as number) + E_MEMBERS;
  checkProbes(k, 'SetIntersection', tableCount(heap, smallest) * (sets.length - 1));
  const base = (w[smallest >>> 2] as number) >>> 2;
  const cap = w[(smallest >>> 2) + 1] as number;
  for (let i = 0; i < cap; i++) {
    const m = w[base + i * 2 + 1] as number;
    if (m === 0) continue;
    // Probe the other sets with the member's stored hash and its bytes in place.
    const hash = w[base + i * 2] as number;
    const len = w[m >>> 2] as number;
    let everywhere = true;
    for (let s = 1; s < sets.length && everywhere; s++) {
      everywhere = tableFind(heap, (sets[s] as number) + E_MEMBERS, hash, k.u8, m + M_BYTES, len, 0, M_BYTES) >= 0;
    }
    if (everywhere) k.gather(m);
  }
}

export function setQuery(k: Keyspace, key: string): void {
  const e = k.entry('SetQuery', key, SET);
  if (e !== 0) k.gatherMembers(e);
}
