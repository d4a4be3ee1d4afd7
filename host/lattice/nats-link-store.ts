/**
 * Links and claims kept in JetStream KV buckets, so hosts and providers that join the lattice
 * later learn them.
 *
 * `NatsLinkStore` keeps a local cache fed by a KV watch, so `get()` (on every capability call)
 * stays synchronous and costs a Map lookup. The watch is the single source of events: a put or
 * delete made here is applied when the watch delivers it (the write waits for that, so a
 * caller reads its own writes), and changes made by any other host arrive the same way. If the
 * watch ends, or the connection comes back after an outage (the server may have lost the
 * watch's ephemeral consumer; nats.js would only notice after missed heartbeats, ~15 s), it is
 * re-created and the cache resynchronised: links deleted meanwhile are reported as deletes.
 *
 * Keys: `<actor>.<contract>.<link name>`, each part KV-token encoded (subjects.ts), so a watch
 * on `<actor>.>` sees one actor's links. Values: the LinkDefinition as JSON.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { z } from 'zod';
import { Events, StorageType, type KV, type KvEntry, type NatsConnection, type Status } from 'nats';
import { canonicalContract, normalizeLinkName } from '../contracts.ts';
import { WasmletError } from '../errors.ts';
import { linkKey, normalizeLink, type LinkEvent, type LinkStore } from '../links.ts';
import { parseWith } from '../options.ts';
import type { LinkDefinition } from '../types.ts';
import { encodeKvToken, latticeIdSchema } from './subjects.ts';

/** Error code when the lattice's KV buckets cannot be opened or written (JetStream off, server down). */
export const LATTICE_STORE_UNAVAILABLE = 'LATTICE_STORE_UNAVAILABLE';

export const latticeStoreOptionsSchema = z
  .object({
    /** Lattice id. Default `default`. */
    lattice: latticeIdSchema.default('default'),
    /** Bucket name. Default `wasmlet_<lattice>_links` (links) / `wasmlet_<lattice>_claims` (claims). */
    bucket: z.string().regex(/^[A-Za-z0-9_-]+$/).optional(),
    /** Replicas of the bucket's stream (a clustered JetStream). Default 1. */
    replicas: z.number().int().min(1).max(5).default(1),
    /** How long a write waits for the watch to deliver it back, ms. Default 5000. */
    writeTimeoutMs: z.number().int().min(1).default(5000),
  })
  .strict();

export type LatticeStoreOptionsInput = z.input<typeof latticeStoreOptionsSchema>;
export type LatticeStoreOptions = z.output<typeof latticeStoreOptionsSchema>;

export function linksBucketName(lattice: string): string {
  return `wasmlet_${lattice}_links`;
}
export function claimsBucketName(lattice: string): string {
  return `wasmlet_${lattice}_claims`;
}

export function storeError(what: string, err: unknown): WasmletError {
  const message = err instanceof Error ? err.message : String(err);
  const hint = /jetstream not enabled|503/i.test(message) ? ' (is JetStream enabled on the NATS server? start it with -js)' : '';
  return new WasmletError(LATTICE_STORE_UNAVAILABLE, `${what}: ${message}${hint}`, { cause: err });
}

/** Opens (creating when missing) a KV bucket with one value per key, on file storage. */
export async function openBucket(nc: NatsConnection, bucket: string, replicas: number): Promise<KV> {
  try {
    return await nc.jetstream().views.kv(bucket, { history: 1, storage: StorageType.File, replicas });
  } catch (err) {
    throw storeError(`cannot open lattice bucket ${bucket}`, err);
  }
}

/** The KV key of a link. */
export function linkKvKey(actor: string, contract: string, linkName?: string): string {
  return [actor, canonicalContract(contract), normalizeLinkName(linkName)].map(encodeKvToken).join('.');
}

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

interface Cached {
  link: LinkDefinition;
  revision: number;
}

function parseLink(value: Uint8Array): LinkDefinition | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(value));
  } catch {
    return undefined;
  }
  const shape = z
    .object({
      actor: z.string().min(1),
      contract: z.string().min(1),
      linkName: z.string().optional(),
      provider: z.string().optional(),
      values: z.record(z.string(), z.unknown()).optional(),
    })
    .safeParse(raw);
  return shape.success ? normalizeLink(shape.data) : undefined;
}

export class NatsLinkStore implements LinkStore {
  readonly options: LatticeStoreOptions;
  readonly bucket: string;
  readonly #kv: KV;
  readonly #nc: NatsConnection;
  readonly #log: Logger;
  /** By KV key. */
  readonly #cache = new Map<string, Cached>();
  readonly #events = new EventEmitter();
  #waiters: Waiter[] = [];
  #watch: { stop(): void } | undefined;
  #statusIter: { stop(): void } | undefined;
  #closed = false;

  private constructor(nc: NatsConnection, kv: KV, bucket: string, options: LatticeStoreOptions, logger: Logger) {
    this.#nc = nc;
    this.#kv = kv;
    this.bucket = bucket;
    this.options = options;
    this.#log = logger.child({ store: 'links', bucket });
    this.#events.setMaxListeners(0);
  }

  /** Opens the lattice's link bucket and resolves once the cache holds every link already there. */
  static async open(nc: NatsConnection, options: LatticeStoreOptionsInput, logger: Logger): Promise<NatsLinkStore> {
    const o = parseWith(latticeStoreOptionsSchema, 'link store options', options);
    const bucket = o.bucket ?? linksBucketName(o.lattice);
    const kv = await openBucket(nc, bucket, o.replicas);
    const store = new NatsLinkStore(nc, kv, bucket, o, logger);
    await store.#startWatching();
    void store.#followConnection();
    return store;
  }

  async put(input: LinkDefinition): Promise<void> {
    this.#assertOpen();
    const link = normalizeLink(input);
    const key = linkKvKey(link.actor, link.contract, link.linkName);
    let revision: number;
    try {
      revision = await this.#kv.put(key, JSON.stringify(link));
    } catch (err) {
      throw storeError(`cannot put link ${linkKey(link.actor, link.contract, link.linkName)}`, err);
    }
    await this.#waitFor(() => (this.#cache.get(key)?.revision ?? 0) >= revision || this.#appliedRevision >= revision);
  }

  async delete(actor: string, contract: string, linkName?: string): Promise<LinkDefinition | undefined> {
    this.#assertOpen();
    const key = linkKvKey(actor, contract, linkName);
    const what = linkKey(actor, contract, linkName);
    // Compare-and-delete, so the link returned is the one removed even when another host races.
    for (let attempt = 0; ; attempt++) {
      let entry: KvEntry | null;
      try {
        entry = await this.#kv.get(key);
      } catch (err) {
        throw storeError(`cannot read link ${what}`, err);
      }
      if (!entry || entry.operation !== 'PUT') return undefined;
      const removed = parseLink(entry.value);
      try {
        await this.#kv.delete(key, { previousSeq: entry.revision });
      } catch (err) {
        if (isWrongSequence(err) && attempt < 10) continue;
        throw storeError(`cannot delete link ${what}`, err);
      }
      const rev = entry.revision;
      await this.#waitFor(() => (this.#cache.get(key)?.revision ?? Infinity) > rev || !this.#cache.has(key));
      return removed;
    }
  }

  get(actor: string, contract: string, linkName?: string): LinkDefinition | undefined {
    return this.#cache.get(linkKvKey(actor, contract, linkName))?.link;
  }

  list(): LinkDefinition[] {
    return [...this.#cache.values()].map((c) => c.link);
  }

  subscribe(listener: (e: LinkEvent) => void): () => void {
    this.#events.on('e', listener);
    return () => this.#events.off('e', listener);
  }

  /** Stops watching. The cache keeps its last state; writes reject. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#watch?.stop();
    this.#statusIter?.stop();
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
  }

  // ------------------------------------------------------------------ watch

  /** Highest stream sequence the watch has applied. */
  #appliedRevision = 0;

  /** Re-creates the watch after every reconnect; ends the store's watching when the connection closes. */
  async #followConnection(): Promise<void> {
    const iter = this.#nc.status() as AsyncIterable<Status> & { stop(): void };
    this.#statusIter = iter;
    void this.#nc.closed().then(() => this.close());
    try {
      for await (const s of iter) {
        if (s.type === Events.Reconnect && !this.#closed) {
          this.#log.debug('nats reconnected; re-creating the link watch');
          this.#watch?.stop();
        }
      }
    } catch {
      // ends with the connection
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new WasmletError(LATTICE_STORE_UNAVAILABLE, 'the link store is closed');
  }

  /** Starts the watch; resolves when the initial values are in the cache. */
  async #startWatching(): Promise<void> {
    let initialised!: () => void;
    let failed!: (err: unknown) => void;
    const ready = new Promise<void>((resolve, reject) => {
      initialised = resolve;
      failed = reject;
    });
    void this.#watchLoop(initialised, failed);
    await ready;
  }

  async #watchLoop(initialised: () => void, failed: (err: unknown) => void): Promise<void> {
    let first = true;
    let backoff = 50;
    while (!this.#closed && !this.#nc.isClosed()) {
      const seen = new Set<string>();
      let syncing = true;
      const onInitialised = () => {
        syncing = false;
        // Links that vanished while no watch ran: report them as deleted.
        for (const [key, c] of this.#cache) {
          if (!seen.has(key)) {
            this.#cache.delete(key);
            this.#emit({ type: 'delete', link: c.link });
          }
        }
        this.#checkWaiters();
        if (first) {
          first = false;
          initialised();
        }
      };
      try {
        const iter = await this.#kv.watch({ initializedFn: onInitialised });
        this.#watch = iter;
        for await (const e of iter) {
          if (syncing) seen.add(e.key);
          this.#apply(e);
        }
        if (!syncing) backoff = 50; // it worked for a while: retry soon
        if (!this.#closed) this.#log.debug('link watch ended; watching again');
      } catch (err) {
        if (first) {
          failed(storeError(`cannot watch lattice bucket ${this.bucket}`, err));
          return;
        }
        if (!this.#closed) this.#log.warn({ err: (err as Error).message }, 'link watch failed; watching again');
      }
      if (this.#closed || this.#nc.isClosed()) break;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  #apply(e: KvEntry): void {
    this.#appliedRevision = Math.max(this.#appliedRevision, e.revision);
    const previous = this.#cache.get(e.key);
    if (e.operation === 'PUT') {
      if (previous && previous.revision >= e.revision) return this.#checkWaiters();
      const link = parseLink(e.value);
      if (!link || linkKvKey(link.actor, link.contract, link.linkName) !== e.key) {
        this.#log.warn({ key: e.key, revision: e.revision }, 'ignored a malformed link in the lattice bucket');
        return this.#checkWaiters();
      }
      this.#cache.set(e.key, { link, revision: e.revision });
      this.#emit({ type: 'put', link });
    } else if (previous) {
      this.#cache.delete(e.key);
      this.#emit({ type: 'delete', link: previous.link });
    }
    this.#checkWaiters();
  }

  #emit(e: LinkEvent): void {
    try {
      this.#events.emit('e', e);
    } catch (err) {
      this.#log.error({ err }, 'a link listener threw');
    }
  }

  #waitFor(check: () => boolean): Promise<void> {
    if (check() || this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter = { check, resolve };
      this.#waiters.push(waiter);
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        this.#log.warn('a link write was stored but the watch has not delivered it yet');
        resolve();
      }, this.options.writeTimeoutMs);
      timer.unref();
      waiter.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #checkWaiters(): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      if (w.check()) w.resolve();
      else still.push(w);
    }
    this.#waiters = still;
  }
}

export function isWrongSequence(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? '');
}

