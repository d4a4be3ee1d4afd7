/**
 * The keyspace of a SharedKeyValueTable and the pieces its operations share: entry layout,
 * lookup with lazy expiry, the sweep, allocation of entries and items, freeing, UTF-8 scratch.
 * Everything here runs with the table's lock held.
 *
 * Each key is one entry block: kind and flags, key length, expiry, links in the list of
 * expiring entries, the key's UTF-8 bytes and, for strings, the value's bytes (or the counter as
 * a float64 once `add` has used it, so counting never reparses text). A list is an array of item
 * blocks that doubles as it grows; a set is a hash table of member blocks. Expiring entries are
 * also in a doubly linked list, which the sweep walks a few entries at a time.
 */
import { backendError, badRequest, WRONG_TYPE_MESSAGE } from './store.ts';
import { ROOT, type SharedHeap } from './shared-heap.ts';
import { hashBytes, tableAt, tableCount, tableFind, tableInit, tableRemoveAt, tableSlotOf } from './shared-hash.ts';
import { Gathered } from './shared-results.ts';

export const STRING = 0;
export const LIST = 1;
export const SET = 2;
export const KIND = 3;
/** Flag of a STRING entry whose value is the counter at E_NUM (its text bytes are stale). */
export const NUM = 4;

// Entry block (byte offsets); its first word is the kind and flags.
export const E_KEYLEN = 4;
const E_EXP = 8; // float64, ms since the epoch; 0 = never
const E_EXP_NEXT = 16;
const E_EXP_PREV = 20;
export const E_NUM = 24; // STRING: float64 counter
export const E_VALLEN = 32; // STRING: value bytes, after the key
export const E_ITEMS = 24; // LIST: block of item pointers
export const E_LEN = 28;
export const E_CAP = 32;
export const E_MEMBERS = 24; // SET: hash table descriptor (3 words)
export const E_KEY = 40;
/** List items and set members are [byte length][bytes]. */
export const M_BYTES = 4;

// Root words (byte offsets).
export const KEYS = ROOT; // keyspace hash table descriptor (3 words)
const R_OPS = ROOT + 12;
const R_EXP_HEAD = ROOT + 16;
const R_EXP_CURSOR = ROOT + 20;
const R_EXP_COUNT = ROOT + 24;
/** Limits, written when the table is made (see SharedTableOptions). */
const R_MAX_ITEMS = ROOT + 28;
const R_MAX_RESULT = ROOT + 32;
/** Entries taken out of the keyspace whose items are still being freed, a few per operation. */
const R_PENDING = ROOT + 36;
/** Times a dead thread's lock was taken over, and times the table had to be emptied then. */
const R_RECOVERED = ROOT + 40;
const R_RESETS = ROOT + 44;

/** Items of a big list or set freed per operation once it is deleted (the rest wait for the next). */
const FREE_BATCH = 1024;

/** Operations between two sweeps (a power of two, used as a mask). */
const SWEEP_EVERY = 64;
/** Expiring keys visited per sweep. */
const SWEEP_BATCH = 20;
/** Strings longer than this (in UTF-16 units) are encoded into a one-off buffer, not the reused one. */
const SCRATCH_MAX_CHARS = 16 * 1024;

export class Keyspace {
  readonly heap: SharedHeap;
  readonly u8: Uint8Array;
  readonly w: Uint32Array;
  readonly f64: Float64Array;
  readonly #now: () => number;
  /** The operation's clock reading, taken once when first needed (-1: not yet). */
  #t = -1;
  readonly #encoder = new TextEncoder();
  #keyScratch = new Uint8Array(256);
  #valueScratch = new Uint8Array(256);
  /** The last key looked up: its bytes, their length and hash, and its keyspace slot if found live. */
  kb: Uint8Array = this.#keyScratch;
  kl = 0;
  kh = 0;
  slot = -1;
  /** Byte length of the last `utf8` result. */
  n = 0;
  /** Where list and set reads copy their items (turned into strings once the lock is released). */
  readonly gathered = new Gathered();

  constructor(heap: SharedHeap, now: () => number) {
    this.heap = heap;
    this.u8 = heap.u8;
    this.w = heap.u32;
    this.f64 = heap.f64;
    this.#now = now;
  }

  get size(): number {
    return Atomics.load(this.w, (KEYS >>> 2) + 2);
  }

  /** The most items one list or set holds. */
  get maxItems(): number {
    return this.w[R_MAX_ITEMS >>> 2] as number;
  }

  /** The most bytes (as a reply would carry them) one read returns. */
  get maxResultBytes(): number {
    return this.w[R_MAX_RESULT >>> 2] as number;
  }

  /** Lock takeovers from dead threads, and how many of them had to empty the table. */
  get recoveries(): { recovered: number; resets: number } {
    return { recovered: Atomics.load(this.w, R_RECOVERED >>> 2), resets: Atomics.load(this.w, R_RESETS >>> 2) };
  }

  /** Makes an empty keyspace with these limits (a new table, or one being reset); lock held or not shared yet. */
  init(initialKeys: number, maxItems: number, maxResultBytes: number): boolean {
    const w = this.w;
    w.fill(0, ROOT >>> 2, (ROOT + 64) >>> 2);
    w[R_MAX_ITEMS >>> 2] = maxItems;
    w[R_MAX_RESULT >>> 2] = maxResultBytes;
    return tableInit(this.heap, KEYS, initialKeys);
  }

  /**
   * After a dead thread's lock was taken over: true when the keyspace checks out (the allocator's
   * bookkeeping is rebuilt from the blocks on the way); otherwise the table is emptied, keeping
   * its limits. Either way the table is consistent afterwards.
   */
  recover(initialKeys: number): 'repaired' | 'reset' {
    const w = this.w;
    Atomics.add(w, R_RECOVERED >>> 2, 1);
    if (this.heap.rebuildFreeLists() && this.heap.verify().problems.length === 0 && this.verify().length === 0) return 'repaired';
    const recovered = w[R_RECOVERED >>> 2] as number;
    const resets = (w[R_RESETS >>> 2] as number) + 1;
    this.heap.resetBlocks();
    this.init(initialKeys, this.maxItems, this.maxResultBytes);
    w[R_RECOVERED >>> 2] = recovered;
    w[R_RESETS >>> 2] = resets;
    return 'reset';
  }

  /** Every operation starts here, lock held: refuse when closed, free a few deleted items, sweep now and then. */
  begin(op: string): void {
    if (this.heap.closed) throw backendError(op, 'key-value store is closed');
    this.#t = -1;
    const w = this.w;
    const ops = ((w[R_OPS >>> 2] as number) + 1) >>> 0;
    w[R_OPS >>> 2] = ops;
    if (w[R_PENDING >>> 2] !== 0) this.#freePending(FREE_BATCH);
    if ((ops & (SWEEP_EVERY - 1)) === 0 && w[R_EXP_COUNT >>> 2] !== 0) this.#sweep();
  }

  /** The error for a list or set that would pass `maxItems`. */
  tooManyItems(op: string, key: string, what: 'list' | 'set'): Error {
    return backendError(op, `the ${what} at ${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key)} holds ${this.maxItems} items, the most one ${what} may hold in the shared-memory backend (use Redis for larger ones)`);
  }

  /** The clock, read once per operation so every check in it agrees. */
  clock(): number {
    if (this.#t < 0) this.#t = this.#now();
    return this.#t;
  }

  full(op: string): Error {
    return backendError(op, `out of shared memory (${this.heap.bytes} bytes); delete keys or create the table with more bytes`);
  }

  /**
   * UTF-8 of `s` in a reused scratch buffer (a one-off one for long strings); its length is left
   * in `n`. ASCII is copied by hand: cheaper than a native call for short strings.
   */
  utf8(s: string, forKey: boolean): Uint8Array {
    const len = s.length;
    let buf = forKey ? this.#keyScratch : this.#valueScratch;
    if (len * 3 > buf.length) {
      if (len > SCRATCH_MAX_CHARS) {
        buf = new Uint8Array(Buffer.byteLength(s, 'utf8'));
      } else {
        buf = new Uint8Array(1 << (32 - Math.clz32(len * 3)));
        if (forKey) this.#keyScratch = buf;
        else this.#valueScratch = buf;
      }
    }
    if (len <= 64) {
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[i] = c;
      }
      if (i === len) {
        this.n = len;
        return buf;
      }
    }
    this.n = this.#encoder.encodeInto(s, buf).written;
    return buf;
  }

  /** Encodes and hashes `key` (into kb, kl, kh); the slot holding it, or -1 (expired or not). */
  find(key: string): number {
    const kb = this.utf8(key, true);
    this.kb = kb;
    this.kl = this.n;
    this.kh = hashBytes(kb, 0, this.n);
    return tableFind(this.heap, KEYS, this.kh, kb, 0, this.kl, E_KEYLEN, E_KEY);
  }

  /** The entry at `key` (its slot left in `slot`), dropping it first when it has expired; 0 if none. */
  live(key: string): number {
    const slot = this.find(key);
    if (slot < 0) return 0;
    const e = tableAt(this.heap, KEYS, slot);
    const exp = this.f64[(e + E_EXP) >>> 3] as number;
    if (exp !== 0 && exp <= this.clock()) {
      this.removeAt(slot, e);
      return 0;
    }
    this.slot = slot;
    return e;
  }

  /** The live entry at `key`, which must be of `kind` (else WRONGTYPE for `op`); 0 if none. */
  entry(op: string, key: string, kind: number): number {
    const e = this.live(key);
    if (e !== 0 && ((this.w[e >>> 2] as number) & KIND) !== kind) throw badRequest(op, key, WRONG_TYPE_MESSAGE);
    return e;
  }

  /** The text of a STRING entry found by the last lookup. */
  stringValue(e: number): string {
    if (((this.w[e >>> 2] as number) & NUM) !== 0) return String(this.f64[(e + E_NUM) >>> 3]);
    return this.heap.text(e + E_KEY + this.kl, this.w[(e + E_VALLEN) >>> 2] as number);
  }

  /** A new entry for the last key looked up, with `extra` bytes after the key; 0 when memory is full. */
  newEntry(meta: number, extra: number): number {
    const kl = this.kl;
    const e = this.heap.alloc(E_KEY + kl + extra);
    if (e === 0) return 0;
    const w = this.w;
    w[e >>> 2] = meta;
    w[(e + E_KEYLEN) >>> 2] = kl;
    this.f64[(e + E_EXP) >>> 3] = 0;
    w[(e + E_EXP_NEXT) >>> 2] = 0;
    w[(e + E_EXP_PREV) >>> 2] = 0;
    this.heap.copyIn(this.kb, kl, e + E_KEY);
    return e;
  }

  /** A list item or set member holding the first `len` bytes of `bytes`; 0 when memory is full. */
  newItem(bytes: Uint8Array, len: number): number {
    const p = this.heap.alloc(M_BYTES + len);
    if (p === 0) return 0;
    this.w[p >>> 2] = len;
    this.heap.copyIn(bytes, len, p + M_BYTES);
    return p;
  }

  itemText(p: number): string {
    return this.heap.text(p + M_BYTES, this.w[p >>> 2] as number);
  }

  /** Copies item or member `p` into the result being gathered. */
  gather(p: number): void {
    this.gathered.add(this.u8, p + M_BYTES, this.w[p >>> 2] as number);
  }

  /** Copies the members of set entry `e`, in slot order, into the result being gathered. */
  gatherMembers(e: number): void {
    const w = this.w;
    const base = (w[(e + E_MEMBERS) >>> 2] as number) >>> 2;
    const cap = w[((e + E_MEMBERS) >>> 2) + 1] as number;
    for (let i = 0; i < cap; i++) {
      const m = w[base + i * 2 + 1] as number;
      if (m !== 0) this.gather(m);
    }
  }

  /** Removes entry `e` (in keyspace `slot`) and frees all it holds. */
  removeAt(slot: number, e: number): void {
    tableRemoveAt(this.heap, KEYS, slot);
    this.drop(e);
  }

  /**
   * Frees an entry already out of the keyspace, with its list items or set members; a big list
   * or set goes on the pending list, and later operations free its items a batch at a time.
   */
  drop(e: number): void {
    const heap = this.heap;
    const w = this.w;
    if (this.f64[(e + E_EXP) >>> 3] !== 0) this.#unlinkExpiring(e);
    const kind = (w[e >>> 2] as number) & KIND;
    if ((kind === LIST && (w[(e + E_LEN) >>> 2] as number) > FREE_BATCH) || (kind === SET && tableCount(heap, e + E_MEMBERS) > FREE_BATCH)) {
      this.f64[(e + E_EXP) >>> 3] = 0;
      w[(e + E_EXP_NEXT) >>> 2] = w[R_PENDING >>> 2] as number;
      w[R_PENDING >>> 2] = e;
      return;
    }
    if (kind === LIST) {
      const items = w[(e + E_ITEMS) >>> 2] as number;
      const len = w[(e + E_LEN) >>> 2] as number;
      for (let i = 0; i < len; i++) heap.free(w[(items >>> 2) + i] as number);
      heap.free(items);
    } else if (kind === SET) {
      const slots = w[(e + E_MEMBERS) >>> 2] as number;
      const cap = w[((e + E_MEMBERS) >>> 2) + 1] as number;
      for (let i = 0; i < cap; i++) {
        const m = w[(slots >>> 2) + i * 2 + 1] as number;
        if (m !== 0) heap.free(m);
      }
      heap.free(slots);
    }
    heap.free(e);
  }

  /**
   * Checks the keyspace's bookkeeping, for tests (run it while no operation is under way): slot
   * hashes match their keys, counts match, and the expiring list holds exactly the entries with an
   * expiry, linked both ways, with the sweep's cursor on one of them.
   */
  verify(): string[] {
    const w = this.w;
    const problems: string[] = [];
    const slots = (w[KEYS >>> 2] as number) >>> 2;
    const cap = w[(KEYS >>> 2) + 1] as number;
    let entries = 0;
    const expiring = new Set<number>();
    for (let i = 0; i < cap; i++) {
      const e = w[slots + i * 2 + 1] as number;
      if (e === 0) continue;
      entries++;
      if (w[slots + i * 2] !== hashBytes(this.u8, e + E_KEY, w[(e + E_KEYLEN) >>> 2] as number)) problems.push(`slot ${i}: hash does not match its key`);
      const kind = (w[e >>> 2] as number) & KIND;
      if (kind === SET && tableCount(this.heap, e + E_MEMBERS) === 0) problems.push(`slot ${i}: an empty set was kept`);
      if (kind === LIST && w[(e + E_LEN) >>> 2] === 0) problems.push(`slot ${i}: an empty list was kept`);
      if (this.f64[(e + E_EXP) >>> 3] !== 0) expiring.add(e);
    }
    if (entries !== tableCount(this.heap, KEYS)) problems.push(`the keyspace counts ${tableCount(this.heap, KEYS)} entries, holds ${entries}`);
    let linked = 0;
    let prev = 0;
    let cursorSeen = w[R_EXP_CURSOR >>> 2] === 0;
    for (let e = w[R_EXP_HEAD >>> 2] as number; e !== 0 && linked <= entries; e = w[(e + E_EXP_NEXT) >>> 2] as number) {
      linked++;
      if (!expiring.has(e)) problems.push(`expiring list: ${e} is not a live entry with an expiry`);
      if (w[(e + E_EXP_PREV) >>> 2] !== prev) problems.push(`expiring list: ${e} has a wrong back link`);
      if (w[R_EXP_CURSOR >>> 2] === e) cursorSeen = true;
      prev = e;
    }
    if (linked !== expiring.size || w[R_EXP_COUNT >>> 2] !== linked) {
      problems.push(`expiring list: ${linked} linked, ${w[R_EXP_COUNT >>> 2]} counted, ${expiring.size} entries expire`);
    }
    if (!cursorSeen) problems.push('the sweep cursor is not on the expiring list');
    return problems;
  }

  /**
   * Frees up to `budget` items of the entries waiting on the pending list. A count is lowered
   * before its item is freed, so an operation cut short here leaks an item, never frees one twice.
   */
  #freePending(budget: number): void {
    const heap = this.heap;
    const w = this.w;
    let e = w[R_PENDING >>> 2] as number;
    while (e !== 0 && budget > 0) {
      if (((w[e >>> 2] as number) & KIND) === LIST) {
        const items = (w[(e + E_ITEMS) >>> 2] as number) >>> 2;
        let len = w[(e + E_LEN) >>> 2] as number;
        for (; len > 0 && budget > 0; budget--) {
          len--;
          w[(e + E_LEN) >>> 2] = len;
          heap.free(w[items + len] as number);
        }
        if (len > 0) return;
        heap.free(items << 2);
      } else {
        const slots = (w[(e + E_MEMBERS) >>> 2] as number) >>> 2;
        let cap = w[((e + E_MEMBERS) >>> 2) + 1] as number;
        while (cap > 0 && budget > 0) {
          cap--;
          w[((e + E_MEMBERS) >>> 2) + 1] = cap;
          const m = w[slots + cap * 2 + 1] as number;
          if (m !== 0) {
            heap.free(m);
            budget--;
          }
        }
        if (cap > 0) return;
        heap.free(slots << 2);
      }
      const next = w[(e + E_EXP_NEXT) >>> 2] as number;
      w[R_PENDING >>> 2] = next;
      heap.free(e);
      e = next;
    }
  }

  /** Sets entry `e`'s expiry (0 = never), keeping the list of expiring entries in step. */
  setExpiry(e: number, exp: number): void {
    const old = this.f64[(e + E_EXP) >>> 3] as number;
    if (old === 0 && exp !== 0) this.#linkExpiring(e);
    else if (old !== 0 && exp === 0) this.#unlinkExpiring(e);
    this.f64[(e + E_EXP) >>> 3] = exp;
  }

  #linkExpiring(e: number): void {
    const w = this.w;
    const head = w[R_EXP_HEAD >>> 2] as number;
    w[(e + E_EXP_NEXT) >>> 2] = head;
    w[(e + E_EXP_PREV) >>> 2] = 0;
    if (head !== 0) w[(head + E_EXP_PREV) >>> 2] = e;
    w[R_EXP_HEAD >>> 2] = e;
    w[R_EXP_COUNT >>> 2] = (w[R_EXP_COUNT >>> 2] as number) + 1;
  }

  #unlinkExpiring(e: number): void {
    const w = this.w;
    const next = w[(e + E_EXP_NEXT) >>> 2] as number;
    const prev = w[(e + E_EXP_PREV) >>> 2] as number;
    if (prev !== 0) w[(prev + E_EXP_NEXT) >>> 2] = next;
    else w[R_EXP_HEAD >>> 2] = next;
    if (next !== 0) w[(next + E_EXP_PREV) >>> 2] = prev;
    if (w[R_EXP_CURSOR >>> 2] === e) w[R_EXP_CURSOR >>> 2] = next;
    w[R_EXP_COUNT >>> 2] = (w[R_EXP_COUNT >>> 2] as number) - 1;
  }

  /** Visits a few expiring keys, resuming where the last sweep (in any thread) stopped. */
  #sweep(): void {
    const w = this.w;
    const now = this.clock();
    let e = (w[R_EXP_CURSOR >>> 2] as number) || (w[R_EXP_HEAD >>> 2] as number);
    for (let i = 0; i < SWEEP_BATCH && e !== 0; i++) {
      const next = w[(e + E_EXP_NEXT) >>> 2] as number;
      if ((this.f64[(e + E_EXP) >>> 3] as number) <= now) {
        const hash = hashBytes(this.u8, e + E_KEY, w[(e + E_KEYLEN) >>> 2] as number);
        this.removeAt(tableSlotOf(this.heap, KEYS, hash, e), e);
      }
      e = next;
    }
    w[R_EXP_CURSOR >>> 2] = e;
  }
}
