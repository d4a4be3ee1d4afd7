/**
 * In-memory key-value backend with Redis semantics. `Add` is a benchmark's hot path, so every
 * operation is plain synchronous Map work inside an async method, and no timers exist:
 * expired keys are dropped lazily when touched, plus a small sweep every few operations that
 * visits a handful of keys with an expiry (Redis's own approach, without its background timer).
 *
 * Differences from Redis, on purpose: counters are limited to the safe-integer range
 * (±2^53-1) rather than 64 bits, and data lives only as long as the process.
 */
import type { BackendContext, GetResult, KeyValueBackendFactory, KeyValueStore, LinkValues, StoreLease } from './store.ts';
import {
  NOT_INTEGER_MESSAGE,
  OVERFLOW_MESSAGE,
  WRONG_TYPE_MESSAGE,
  backendError,
  badRequest,
  emptyKeysError,
  linkValue,
} from './store.ts';
import { LinkError } from '../errors.ts';

const STRING = 0;
const LIST = 1;
const SET = 2;
type Kind = typeof STRING | typeof LIST | typeof SET;

/** One key's value. A single shape for every kind keeps property access monomorphic. */
interface Entry {
  kind: Kind;
  /** String text; undefined while only `num` is current (after `add`), rendered on read. */
  str: string | undefined;
  /** Integer value of a string entry, valid when `numOk`. */
  num: number;
  numOk: boolean;
  list: string[] | undefined;
  members: Set<string> | undefined;
  /** Expiry in ms since the epoch; 0 = never. */
  exp: number;
}

function newEntry(kind: Kind): Entry {
  return { kind, str: undefined, num: 0, numOk: false, list: undefined, members: undefined, exp: 0 };
}

/** Redis's integer syntax: no sign on zero, no leading zeros, no spaces or `+`. */
const INTEGER = /^(?:0|-?[1-9][0-9]*)$/;

function parseInteger(text: string): number | undefined {
  if (text.length > 20 || !INTEGER.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Operations between two sweeps (a power of two, used as a mask). */
const SWEEP_EVERY = 64;
/** Keys with an expiry visited per sweep. */
const SWEEP_BATCH = 20;

export interface MemoryStoreOptions {
  /** Clock in ms since the epoch. Default `Date.now` (tests inject one). */
  now?: () => number;
}

export class MemoryKeyValueStore implements KeyValueStore {
  readonly #data = new Map<string, Entry>();
  /** Keys that carry an expiry, for the sweep. */
  readonly #expiring = new Set<string>();
  #sweepCursor: Iterator<string> | undefined;
  #ops = 0;
  #closed = false;
  readonly #now: () => number;

  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Entries held, counting expired ones not dropped yet (diagnostics and tests). */
  get size(): number {
    return this.#data.size;
  }

  async get(key: string): Promise<GetResult> {
    this.#enter('Get');
    const e = this.#live(key);
    if (e === undefined) return { value: '', exists: false };
    if (e.kind !== STRING) throw badRequest('Get', key, WRONG_TYPE_MESSAGE);
    if (e.str === undefined) e.str = String(e.num);
    return { value: e.str, exists: true };
  }

  async set(key: string, value: string, expiresSeconds: number): Promise<void> {
    this.#enter('Set');
    const e = newEntry(STRING);
    e.str = value;
    this.#data.set(key, e);
    if (expiresSeconds > 0) {
      e.exp = this.#now() + expiresSeconds * 1000;
      this.#expiring.add(key);
    } else {
      this.#expiring.delete(key);
    }
  }

  async del(key: string): Promise<boolean> {
    this.#enter('Del');
    if (this.#live(key) === undefined) return false;
    this.#remove(key);
    return true;
  }

  async add(key: string, delta: number): Promise<number> {
    this.#enter('Add');
    if (!Number.isSafeInteger(delta)) throw badRequest('Add', key, NOT_INTEGER_MESSAGE);
    const e = this.#live(key);
    if (e === undefined) {
      const fresh = newEntry(STRING);
      fresh.num = delta;
      fresh.numOk = true;
      this.#data.set(key, fresh);
      return delta;
    }
    if (e.kind !== STRING) throw badRequest('Add', key, WRONG_TYPE_MESSAGE);
    if (!e.numOk) {
      const n = parseInteger(e.str as string);
      if (n === undefined) throw badRequest('Add', key, NOT_INTEGER_MESSAGE);
      e.num = n;
      e.numOk = true;
    }
    const next = e.num + delta;
    if (!Number.isSafeInteger(next)) throw badRequest('Add', key, OVERFLOW_MESSAGE);
    e.num = next;
    e.str = undefined;
    return next;
  }

  async clear(key: string): Promise<void> {
    this.#enter('Clear');
    if (this.#data.has(key)) this.#remove(key);
  }

  async range(key: string, start: number, stop: number): Promise<string[]> {
    this.#enter('Range');
    const list = this.#list('Range', key, false);
    if (list === undefined) return [];
    const len = list.length;
    let from = start < 0 ? len + start : start;
    let to = stop < 0 ? len + stop : stop;
    if (from < 0) from = 0;
    if (from > to || from >= len) return [];
    if (to >= len) to = len - 1;
    return list.slice(from, to + 1);
  }

  async push(key: string, value: string): Promise<number> {
    this.#enter('Push');
    const list = this.#list('Push', key, true) as string[];
    list.push(value);
    return list.length;
  }

  async listItemDelete(key: string, value: string): Promise<number> {
    this.#enter('ListItemDelete');
    const list = this.#list('ListItemDelete', key, false);
    if (list === undefined) return 0;
    let kept = 0;
    for (let i = 0; i < list.length; i++) {
      const item = list[i] as string;
      if (item !== value) list[kept++] = item;
    }
    list.length = kept;
    if (kept === 0) this.#remove(key); // Redis drops empty lists
    return kept;
  }

  async setAdd(key: string, value: string): Promise<number> {
    this.#enter('SetAdd');
    const members = this.#set('SetAdd', key, true) as Set<string>;
    if (members.has(value)) return 0;
    members.add(value);
    return 1;
  }

  async setRemove(key: string, value: string): Promise<number> {
    this.#enter('SetRemove');
    const members = this.#set('SetRemove', key, false);
    if (members === undefined || !members.delete(value)) return 0;
    if (members.size === 0) this.#remove(key);
    return 1;
  }

  async setUnion(keys: string[]): Promise<string[]> {
    this.#enter('SetUnion');
    if (keys.length === 0) throw emptyKeysError('SetUnion');
    const out = new Set<string>();
    for (const key of keys) {
      const members = this.#set('SetUnion', key, false);
      if (members !== undefined) for (const m of members) out.add(m);
    }
    return [...out];
  }

  async setIntersection(keys: string[]): Promise<string[]> {
    this.#enter('SetIntersection');
    if (keys.length === 0) throw emptyKeysError('SetIntersection');
    // Like SINTER: check every key's kind first, then a missing key makes the result empty.
    const sets: Set<string>[] = [];
    let missing = false;
    for (const key of keys) {
      const members = this.#set('SetIntersection', key, false);
      if (members === undefined) missing = true;
      else sets.push(members);
    }
    if (missing) return [];
    sets.sort((a, b) => a.size - b.size);
    const [smallest, ...rest] = sets as [Set<string>, ...Set<string>[]];
    const out: string[] = [];
    for (const m of smallest) if (rest.every((s) => s.has(m))) out.push(m);
    return out;
  }

  async setQuery(key: string): Promise<string[]> {
    this.#enter('SetQuery');
    const members = this.#set('SetQuery', key, false);
    return members === undefined ? [] : [...members];
  }

  async keyExists(key: string): Promise<boolean> {
    this.#enter('KeyExists');
    return this.#live(key) !== undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#data.clear();
    this.#expiring.clear();
    this.#sweepCursor = undefined;
  }

  /** Every operation starts here: refuse when closed, and sweep now and then. */
  #enter(op: string): void {
    if (this.#closed) throw backendError(op, 'key-value store is closed');
    if ((++this.#ops & (SWEEP_EVERY - 1)) === 0 && this.#expiring.size !== 0) this.#sweep();
  }

  /** The entry at `key`, dropping it first when it has expired. */
  #live(key: string): Entry | undefined {
    const e = this.#data.get(key);
    if (e === undefined) return undefined;
    if (e.exp !== 0 && e.exp <= this.#now()) {
      this.#remove(key);
      return undefined;
    }
    return e;
  }

  #remove(key: string): void {
    const e = this.#data.get(key);
    if (e === undefined) return;
    this.#data.delete(key);
    if (e.exp !== 0) this.#expiring.delete(key);
  }

  #list(op: string, key: string, create: boolean): string[] | undefined {
    const e = this.#live(key);
    if (e === undefined) {
      if (!create) return undefined;
      const fresh = newEntry(LIST);
      fresh.list = [];
      this.#data.set(key, fresh);
      return fresh.list;
    }
    if (e.kind !== LIST) throw badRequest(op, key, WRONG_TYPE_MESSAGE);
    return e.list;
  }

  #set(op: string, key: string, create: boolean): Set<string> | undefined {
    const e = this.#live(key);
    if (e === undefined) {
      if (!create) return undefined;
      const fresh = newEntry(SET);
      fresh.members = new Set();
      this.#data.set(key, fresh);
      return fresh.members;
    }
    if (e.kind !== SET) throw badRequest(op, key, WRONG_TYPE_MESSAGE);
    return e.members;
  }

  /** Visits a few keys with an expiry, resuming where the last sweep stopped. */
  #sweep(): void {
    const now = this.#now();
    this.#sweepCursor ??= this.#expiring.values();
    for (let i = 0; i < SWEEP_BATCH; i++) {
      const next = this.#sweepCursor.next();
      if (next.done) {
        this.#sweepCursor = undefined;
        return;
      }
      const e = this.#data.get(next.value);
      if (e === undefined || e.exp === 0) this.#expiring.delete(next.value);
      else if (e.exp <= now) this.#remove(next.value);
    }
  }
}

export interface MemoryBackendOptions extends MemoryStoreOptions {
  /** Bucket used by links without a `BUCKET` value. Default `default`. */
  defaultBucket?: string;
}

/**
 * The memory backend: one store per bucket (link value `BUCKET`, else the default bucket),
 * shared by every link naming that bucket, so two actors on the same bucket see the same data.
 * A bucket's data lives until the provider stops, even while no link uses it, so re-linking an
 * actor (e.g. a restarted pod) finds its data again.
 */
export function memoryBackend(options: MemoryBackendOptions = {}): KeyValueBackendFactory {
  const defaultBucket = options.defaultBucket ?? 'default';
  const buckets = new Map<string, MemoryKeyValueStore>();
  return {
    name: 'memory',
    urlSchemes: [],
    async acquire(values: LinkValues, _ctx: BackendContext): Promise<StoreLease> {
      const bucket = linkValue(values, 'BUCKET') ?? defaultBucket;
      if (bucket.length > 255) throw new LinkError('link value BUCKET is longer than 255 characters');
      let store = buckets.get(bucket);
      if (store === undefined) {
        store = new MemoryKeyValueStore(options);
        buckets.set(bucket, store);
      }
      // The store is shared: a lease's user releases it and never closes the store itself.
      return { store, describe: `memory:${bucket}`, release: async () => {} };
    },
    async close(): Promise<void> {
      const stores = [...buckets.values()];
      buckets.clear();
      await Promise.all(stores.map((s) => s.close()));
    },
  };
}
