/**
 * In-memory key-value backend with Redis semantics. The data lives in a SharedKeyValueTable
 * (shared-table.ts), a SharedArrayBuffer that actor worker threads attach to, so they answer
 * key-value calls themselves instead of asking the main thread; this class is the async face of
 * that table for the provider. No timers exist: expired keys are dropped lazily when touched,
 * plus a small sweep every few operations (Redis's own approach, without its background timer).
 *
 * Differences from Redis, on purpose: counters are limited to the safe-integer range
 * (±2^53-1) rather than 64 bits, memory is bounded by the table's `bytes`, and data lives only
 * as long as the process.
 */
import type { BackendContext, GetResult, KeyValueBackendFactory, KeyValueStore, LinkValues, StoreLease } from './store.ts';
import { linkValue } from './store.ts';
import { SharedKeyValueTable, type SharedTableOptions } from './shared-table.ts';
import { LinkError } from '../errors.ts';

/** `now` (default `Date.now`), `bytes` (default 64 MiB), `lockTimeoutMs`: see SharedTableOptions. */
export type MemoryStoreOptions = SharedTableOptions;

export class MemoryKeyValueStore implements KeyValueStore {
  readonly #table: SharedKeyValueTable;

  constructor(options: MemoryStoreOptions = {}) {
    this.#table = SharedKeyValueTable.create(options);
  }

  /** The shared table holding the data, whose `buffer` worker threads attach to. */
  get table(): SharedKeyValueTable {
    return this.#table;
  }

  /** Entries held, counting expired ones not dropped yet (diagnostics and tests). */
  get size(): number {
    return this.#table.size;
  }

  async get(key: string): Promise<GetResult> {
    return this.#table.get(key);
  }

  async set(key: string, value: string, expiresSeconds: number): Promise<void> {
    this.#table.set(key, value, expiresSeconds);
  }

  async del(key: string): Promise<boolean> {
    return this.#table.del(key);
  }

  async add(key: string, delta: number): Promise<number> {
    return this.#table.add(key, delta);
  }

  async clear(key: string): Promise<void> {
    this.#table.clear(key);
  }

  async range(key: string, start: number, stop: number): Promise<string[]> {
    return this.#table.range(key, start, stop);
  }

  async push(key: string, value: string): Promise<number> {
    return this.#table.push(key, value);
  }

  async listItemDelete(key: string, value: string): Promise<number> {
    return this.#table.listItemDelete(key, value);
  }

  async setAdd(key: string, value: string): Promise<number> {
    return this.#table.setAdd(key, value);
  }

  async setRemove(key: string, value: string): Promise<number> {
    return this.#table.setRemove(key, value);
  }

  async setUnion(keys: string[]): Promise<string[]> {
    return this.#table.setUnion(keys);
  }

  async setIntersection(keys: string[]): Promise<string[]> {
    return this.#table.setIntersection(keys);
  }

  async setQuery(key: string): Promise<string[]> {
    return this.#table.setQuery(key);
  }

  async keyExists(key: string): Promise<boolean> {
    return this.#table.keyExists(key);
  }

  async close(): Promise<void> {
    this.#table.close();
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
