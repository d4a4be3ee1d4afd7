/**
 * A key-value table in a SharedArrayBuffer, with the in-memory store's Redis semantics, usable
 * synchronously from any thread: the thread that creates it hands `buffer` to workers (through
 * postMessage or workerData) and each of them `attach`es to it. Every operation runs under one
 * lock in the buffer, so all threads see one consistent table. Methods are KeyValueStore's
 * (store.ts), synchronous, and throw the same OperationErrors.
 *
 * Expiry as in the Map-based store this replaced: lazy on access, plus a sweep of a few expiring
 * keys every 64 operations (counted over all threads). Operations allocate all they need before
 * changing anything, so running out of memory throws BACKEND_ERROR and leaves the table as it was.
 * Layout and shared internals: shared-keyspace.ts, shared-collections.ts (lists and sets),
 * shared-hash.ts, shared-heap.ts.
 */
import type { GetResult } from './store.ts';
import { NOT_INTEGER_MESSAGE, OVERFLOW_MESSAGE, WRONG_TYPE_MESSAGE, badRequest } from './store.ts';
import * as collections from './shared-collections.ts';
import { MAX_BYTES, MIN_BYTES, SharedHeap, invalidOptions } from './shared-heap.ts';
import { tableAt, tableInsert, tableReserve, tableSetAt } from './shared-hash.ts';
import { E_KEY, E_NUM, E_VALLEN, KEYS, KIND, Keyspace, NUM, STRING } from './shared-keyspace.ts';
import type { Gathered } from './shared-results.ts';

export interface SharedTableOptions {
  /**
   * Size of the shared buffer in bytes, from 64 KiB to 2 GiB. Default 64 MiB: the operating
   * system commits a page only when it is first touched, so an empty table costs a few pages
   * whatever its size; memory used grows with the data (and is reused, not returned, when data
   * is deleted). A small string key costs about 60 bytes plus its key and value bytes, and 8 to
   * 16 bytes of index: the default holds some 800,000 keys like `key:123456` = `123456`.
   */
  bytes?: number;
  /** Clock in ms since the epoch. Default `Date.now` (tests inject one). */
  now?: () => number;
  /** How long an operation waits for the lock before failing with BACKEND_ERROR. Default 2000 ms. */
  lockTimeoutMs?: number;
  /**
   * The most items one list or set holds; one more fails with BACKEND_ERROR. It bounds what any
   * one operation does under the lock (a whole-set read or union of sets this size holds it for a
   * few milliseconds). Default 16,384.
   */
  maxItems?: number;
  /**
   * The most one read returns, in reply bytes (each item's bytes plus 5); a read past it fails
   * with BACKEND_ERROR, after copying no more than that under the lock. Default 2 MiB (the host's
   * default cap on a host-call reply).
   */
  maxResultBytes?: number;
}

export type SharedTableAttachOptions = Pick<SharedTableOptions, 'now' | 'lockTimeoutMs'>;

export const DEFAULT_TABLE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_ITEMS = 16_384;
export const DEFAULT_MAX_RESULT_BYTES = 2 * 1024 * 1024;

const INITIAL_KEYS = 1024;

/** Redis's integer syntax: no sign on zero, no leading zeros, no spaces or `+`. */
const INTEGER = /^(?:0|-?[1-9][0-9]*)$/;

function parseInteger(text: string): number | undefined {
  if (text.length > 20 || !INTEGER.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

function checkAttachOptions(options: SharedTableAttachOptions): { now: () => number; lockTimeoutMs: number } {
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw invalidOptions('now must be a function');
  const lockTimeoutMs = options.lockTimeoutMs ?? 2000;
  if (typeof lockTimeoutMs !== 'number' || !(lockTimeoutMs > 0) || !Number.isFinite(lockTimeoutMs)) {
    throw invalidOptions(`lockTimeoutMs must be a positive number of ms, got ${String(lockTimeoutMs)}`);
  }
  return { now, lockTimeoutMs };
}

export class SharedKeyValueTable {
  readonly buffer: SharedArrayBuffer;
  readonly #heap: SharedHeap;
  readonly #k: Keyspace;

  private constructor(heap: SharedHeap, now: () => number) {
    this.buffer = heap.buffer;
    this.#heap = heap;
    this.#k = new Keyspace(heap, now);
  }

  /** A new, empty table in a buffer of its own. */
  static create(options: SharedTableOptions = {}): SharedKeyValueTable {
    const bytes = options.bytes ?? DEFAULT_TABLE_BYTES;
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < MIN_BYTES || bytes > MAX_BYTES) {
      throw invalidOptions(`bytes must be an integer from ${MIN_BYTES} (64 KiB) to ${MAX_BYTES} (2 GiB), got ${String(bytes)}`);
    }
    const { now, lockTimeoutMs } = checkAttachOptions(options);
    const maxItems = options.maxItems ?? DEFAULT_MAX_ITEMS;
    if (!Number.isSafeInteger(maxItems) || maxItems < 1 || maxItems > 2 ** 26) throw invalidOptions(`maxItems must be an integer from 1 to ${2 ** 26}, got ${String(maxItems)}`);
    const maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
    if (!Number.isSafeInteger(maxResultBytes) || maxResultBytes < 1024 || maxResultBytes > 2 ** 30) {
      throw invalidOptions(`maxResultBytes must be an integer from 1024 to ${2 ** 30}, got ${String(maxResultBytes)}`);
    }
    const heap = SharedHeap.create(bytes, lockTimeoutMs);
    const table = new SharedKeyValueTable(heap, now);
    table.#k.init(INITIAL_KEYS, maxItems, maxResultBytes); // always fits: MIN_BYTES leaves room
    return table;
  }

  /**
   * Recovers the lock of a thread that is gone (its worker exited) while it held it, e.g. in the
   * middle of an operation: the lock is taken over, the table checked (the allocator's
   * bookkeeping rebuilt from its blocks) or, when an operation was cut short where that cannot
   * mend it, emptied; then the lock is released. Never call it for a thread that may still run.
   * Returns what was done: `not-held` (the thread did not hold the lock), `repaired` or `reset`.
   */
  static recoverDeadThread(buffer: SharedArrayBuffer, deadThreadId: number): 'not-held' | 'repaired' | 'reset' {
    const table = SharedKeyValueTable.attach(buffer);
    const heap = table.#heap;
    if (!heap.takeOverFrom(deadThreadId)) return 'not-held';
    try {
      return table.#k.recover(INITIAL_KEYS);
    } finally {
      heap.unlock();
    }
  }

  /** Lock takeovers from dead threads, and how many emptied the table (diagnostics and tests). */
  get recoveries(): { recovered: number; resets: number } {
    return this.#k.recoveries;
  }

  /** The thread holding the lock (its threadId), or -1 (diagnostics and tests). */
  get lockHolder(): number {
    return this.#heap.holder;
  }

  /** The table another thread created in `buffer`; throws when the buffer holds none. */
  static attach(buffer: SharedArrayBuffer, options: SharedTableAttachOptions = {}): SharedKeyValueTable {
    const { now, lockTimeoutMs } = checkAttachOptions(options);
    return new SharedKeyValueTable(SharedHeap.attach(buffer, lockTimeoutMs), now);
  }

  /** Entries held, counting expired ones not dropped yet (diagnostics and tests). */
  get size(): number {
    return this.#k.size;
  }

  get(key: string): GetResult {
    const k = this.#enter('Get');
    try {
      k.begin('Get');
      const e = k.live(key);
      if (e === 0) return { value: '', exists: false };
      if (((k.w[e >>> 2] as number) & KIND) !== STRING) throw badRequest('Get', key, WRONG_TYPE_MESSAGE);
      return { value: k.stringValue(e), exists: true };
    } finally {
      this.#heap.unlock();
    }
  }

  set(key: string, value: string, expiresSeconds: number): void {
    const k = this.#enter('Set');
    try {
      k.begin('Set');
      const heap = this.#heap;
      const w = k.w;
      const e = k.live(key);
      const vb = k.utf8(value, false);
      const vl = k.n;
      const kl = k.kl;
      const exp = expiresSeconds > 0 ? k.clock() + expiresSeconds * 1000 : 0;
      if (e !== 0 && ((w[e >>> 2] as number) & KIND) === STRING) {
        // Overwrite in place when the block fits without wasting much of it.
        const need = E_KEY + kl + vl;
        const cap = heap.capacity(e);
        if (need <= cap && cap <= need * 2 + 64) {
          heap.copyIn(vb, vl, e + E_KEY + kl);
          w[e >>> 2] = STRING;
          w[(e + E_VALLEN) >>> 2] = vl;
          k.setExpiry(e, exp);
          return;
        }
      }
      if (e === 0 && !tableReserve(heap, KEYS)) throw k.full('Set');
      const n = k.newEntry(STRING, vl);
      if (n === 0) throw k.full('Set');
      heap.copyIn(vb, vl, n + E_KEY + kl);
      w[(n + E_VALLEN) >>> 2] = vl;
      if (e !== 0) {
        tableSetAt(heap, KEYS, k.slot, n);
        k.drop(e);
      } else {
        tableInsert(heap, KEYS, k.kh, n);
      }
      k.setExpiry(n, exp);
    } finally {
      this.#heap.unlock();
    }
  }

  del(key: string): boolean {
    const k = this.#enter('Del');
    try {
      k.begin('Del');
      const e = k.live(key);
      if (e === 0) return false;
      k.removeAt(k.slot, e);
      return true;
    } finally {
      this.#heap.unlock();
    }
  }

  /** INCRBY on a float64 kept beside the text, so counting never reparses. */
  add(key: string, delta: number): number {
    const k = this.#enter('Add');
    try {
      k.begin('Add');
      if (!Number.isSafeInteger(delta)) throw badRequest('Add', key, NOT_INTEGER_MESSAGE);
      const e = k.live(key);
      if (e === 0) {
        if (!tableReserve(this.#heap, KEYS)) throw k.full('Add');
        const n = k.newEntry(STRING | NUM, 0);
        if (n === 0) throw k.full('Add');
        k.f64[(n + E_NUM) >>> 3] = delta;
        tableInsert(this.#heap, KEYS, k.kh, n);
        return delta;
      }
      const meta = k.w[e >>> 2] as number;
      if ((meta & KIND) !== STRING) throw badRequest('Add', key, WRONG_TYPE_MESSAGE);
      let num: number;
      if ((meta & NUM) !== 0) {
        num = k.f64[(e + E_NUM) >>> 3] as number;
      } else {
        const parsed = parseInteger(k.stringValue(e));
        if (parsed === undefined) throw badRequest('Add', key, NOT_INTEGER_MESSAGE);
        num = parsed;
      }
      const next = num + delta;
      if (!Number.isSafeInteger(next)) throw badRequest('Add', key, OVERFLOW_MESSAGE);
      k.f64[(e + E_NUM) >>> 3] = next;
      k.w[e >>> 2] = STRING | NUM;
      return next;
    } finally {
      this.#heap.unlock();
    }
  }

  /** As waSCC's provider did, this is DEL (of whatever the key holds, even if expired). */
  clear(key: string): void {
    const k = this.#enter('Clear');
    try {
      k.begin('Clear');
      const slot = k.find(key);
      if (slot >= 0) k.removeAt(slot, tableAt(this.#heap, KEYS, slot));
    } finally {
      this.#heap.unlock();
    }
  }

  range(key: string, start: number, stop: number): string[] {
    const k = this.#enter('Range');
    let g: Gathered;
    try {
      k.begin('Range');
      g = k.gathered.begin('Range', k.maxResultBytes);
      collections.range(k, key, start, stop);
    } finally {
      this.#heap.unlock();
    }
    return g.strings();
  }

  push(key: string, value: string): number {
    const k = this.#enter('Push');
    try {
      k.begin('Push');
      return collections.push(k, key, value);
    } finally {
      this.#heap.unlock();
    }
  }

  /** LREM of every occurrence; returns the remaining length (an emptied list is dropped). */
  listItemDelete(key: string, value: string): number {
    const k = this.#enter('ListItemDelete');
    try {
      k.begin('ListItemDelete');
      return collections.listItemDelete(k, key, value);
    } finally {
      this.#heap.unlock();
    }
  }

  setAdd(key: string, value: string): number {
    const k = this.#enter('SetAdd');
    try {
      k.begin('SetAdd');
      return collections.setAdd(k, key, value);
    } finally {
      this.#heap.unlock();
    }
  }

  setRemove(key: string, value: string): number {
    const k = this.#enter('SetRemove');
    try {
      k.begin('SetRemove');
      return collections.setRemove(k, key, value);
    } finally {
      this.#heap.unlock();
    }
  }

  /** SUNION: missing keys count as empty sets. */
  setUnion(keys: string[]): string[] {
    const unique = distinct(keys);
    const k = this.#enter('SetUnion');
    let g: Gathered;
    try {
      k.begin('SetUnion');
      g = k.gathered.begin('SetUnion', k.maxResultBytes);
      collections.setUnion(k, unique);
    } finally {
      this.#heap.unlock();
    }
    return g.strings();
  }

  /** SINTER: every key's kind is checked first, then a missing key makes the result empty. */
  setIntersection(keys: string[]): string[] {
    const unique = distinct(keys);
    const k = this.#enter('SetIntersection');
    let g: Gathered;
    try {
      k.begin('SetIntersection');
      g = k.gathered.begin('SetIntersection', k.maxResultBytes);
      collections.setIntersection(k, unique);
    } finally {
      this.#heap.unlock();
    }
    return g.strings();
  }

  /** SMEMBERS. */
  setQuery(key: string): string[] {
    const k = this.#enter('SetQuery');
    let g: Gathered;
    try {
      k.begin('SetQuery');
      g = k.gathered.begin('SetQuery', k.maxResultBytes);
      collections.setQuery(k, key);
    } finally {
      this.#heap.unlock();
    }
    return g.strings();
  }

  keyExists(key: string): boolean {
    const k = this.#enter('KeyExists');
    try {
      k.begin('KeyExists');
      return k.live(key) !== 0;
    } finally {
      this.#heap.unlock();
    }
  }

  /**
   * Closes the table for every attached thread: later calls anywhere fail with BACKEND_ERROR.
   * The memory itself goes when the last thread drops the buffer.
   */
  close(): void {
    try {
      this.#heap.lock('Close');
    } catch {
      // A holder that never lets go must not keep the table open.
      this.#heap.markClosed();
      return;
    }
    try {
      this.#heap.markClosed();
    } finally {
      this.#heap.unlock();
    }
  }

  /** Takes the lock for `op` (callers release it in `finally`). */
  #enter(op: string): Keyspace {
    this.#heap.lock(op);
    return this.#k;
  }
}

/** Keys without repeats (a set counted twice adds nothing to a union or an intersection). */
function distinct(keys: string[]): string[] {
  return keys.length < 2 ? keys : [...new Set(keys)];
}
