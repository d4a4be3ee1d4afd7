/**
 * Links and claims kept in JetStream KV buckets, so hosts and providers that join the lattice
 * later learn them. On a closed lattice every value is a signed record (signed-record.ts): a
 * link is accepted only when written by a ctl or host member of this lattice, and a deletion is
 * a signed record too; anything else written into the bucket (by a client without a credential,
 * by a provider, a bare KV delete or purge, an older record replayed over a newer one) is ignored
 * with a log line.
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
import { isLatticeAuthError } from '../errors.ts';
import type { LatticeTrust, MemberRole } from './membership.ts';
import { openRecord, sealRecord } from './signed-record.ts';
import { encodeKvToken, latticeBucket } from './subjects.ts';

/** Error code when the lattice's KV buckets cannot be opened or written (JetStream off, server down). */
export const LATTICE_STORE_UNAVAILABLE = 'LATTICE_STORE_UNAVAILABLE';

export const latticeStoreOptionsSchema = z
  .object({
    /** Bucket name. Default `wasmlet_<lattice>_<scope>_links` (links) / `…_claims` (claims). */
    bucket: z.string().regex(/^[A-Za-z0-9_-]+$/).optional(),
    /** Replicas of the bucket's stream (a clustered JetStream). Default 1. */
    replicas: z.number().int().min(1).max(5).default(1),
    /** How long a write waits for the watch to deliver it back, ms. Default 5000. */
    writeTimeoutMs: z.number().int().min(1).default(5000),
  })
  .strict();

export type LatticeStoreOptionsInput = z.input<typeof latticeStoreOptionsSchema>;
export type LatticeStoreOptions = z.output<typeof latticeStoreOptionsSchema>;

/** Who may write links: ctl, and hosts (the links of the manifests they run). */
export const LINK_WRITERS: readonly MemberRole[] = ['ctl', 'host'];

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

function parseLink(raw: unknown): LinkDefinition | undefined {
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
  readonly #trust: LatticeTrust;
  /** The write time of the newest record seen per key (a record older than it is a rollback). */
  readonly #newest = new Map<string, number>();
  #ignoredWindowStart = 0;
  #ignoredCount = 0;
  #waiters: Waiter[] = [];
  #watch: { stop(): void } | undefined;
  #statusIter: { stop(): void } | undefined;
  #closed = false;

  private constructor(nc: NatsConnection, trust: LatticeTrust, kv: KV, bucket: string, options: LatticeStoreOptions, logger: Logger) {
    this.#nc = nc;
    this.#trust = trust;
    this.#kv = kv;
    this.bucket = bucket;
    this.options = options;
    this.#log = logger.child({ store: 'links', bucket });
    this.#events.setMaxListeners(0);
  }

  /** Opens the lattice's link bucket and resolves once the cache holds every link already there. */
  static async open(nc: NatsConnection, trust: LatticeTrust, options: LatticeStoreOptionsInput, logger: Logger): Promise<NatsLinkStore> {
    const o = parseWith(latticeStoreOptionsSchema, 'link store options', options);
    const bucket = o.bucket ?? latticeBucket(trust.lattice, trust.scope, 'links');
    const kv = await openBucket(nc, bucket, o.replicas);
    const store = new NatsLinkStore(nc, trust, kv, bucket, o, logger);
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
      revision = await this.#kv.put(key, sealRecord(this.#trust, this.bucket, key, link));
    } catch (err) {
      throw storeError(`cannot put link ${linkKey(link.actor, link.contract, link.linkName)}`, err);
    }
    await this.#waitFor(() => this.#appliedRevision >= revision);
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
      const stored = entry && entry.operation === 'PUT' ? this.#read(key, entry.value) : undefined;
      // What this store holds counts too: a link whose record someone else purged or overwrote
      // (ignored here) is still in every member's cache until a signed deletion reaches them.
      const removed = stored ?? this.#cache.get(key)?.link;
      if (!removed) return undefined;
      // A deletion is a signed record too (a tombstone), written over the record just read.
      let revision: number;
      try {
        const tombstone = sealRecord(this.#trust, this.bucket, key, null);
        revision = entry ? await this.#kv.update(key, tombstone, entry.revision) : await this.#kv.create(key, tombstone);
      } catch (err) {
        if (isWrongSequence(err) && attempt < 10) continue;
        throw storeError(`cannot delete link ${what}`, err);
      }
      await this.#waitFor(() => this.#appliedRevision >= revision);
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
        // Links that vanished while no watch ran: report them as deleted (on an open lattice;
        // on a closed one a deletion is a signed record, and a key that vanished was purged by
        // someone else: ignored like any other unauthenticated write).
        for (const [key, c] of this.#cache) {
          if (!seen.has(key) && this.#trust.insecure) {
            this.#cache.delete(key);
            this.#emit({ type: 'delete', link: c.link });
          } else if (!seen.has(key)) {
            this.#ignored(key, 'the key vanished from the bucket (a purge without a signed record)');
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
    if (previous && previous.revision >= e.revision) return this.#checkWaiters();
    if (e.operation !== 'PUT') {
      // A bare KV delete or purge: authenticated only on an open lattice.
      if (!this.#trust.insecure) this.#ignored(e.key, `a ${e.operation} without a signed record`);
      else if (previous) {
        this.#cache.delete(e.key);
        this.#emit({ type: 'delete', link: previous.link });
      }
      return this.#checkWaiters();
    }
    let opened;
    try {
      opened = openRecord(this.#trust, this.bucket, e.key, e.value, LINK_WRITERS);
    } catch (err) {
      this.#ignored(e.key, (err as Error).message, isLatticeAuthError(err) ? err.code : undefined);
      return this.#checkWaiters();
    }
    if (!this.#trust.insecure) {
      const newest = this.#newest.get(e.key) ?? -Infinity;
      if (opened.at < newest) {
        this.#ignored(e.key, `a record written at ${new Date(opened.at).toISOString()}, older than one already seen (a rollback)`);
        return this.#checkWaiters();
      }
      this.#newest.set(e.key, opened.at);
    }
    if (opened.body === null) {
      if (previous) {
        this.#cache.delete(e.key);
        this.#emit({ type: 'delete', link: previous.link });
      }
      return this.#checkWaiters();
    }
    const link = parseLink(opened.body);
    if (!link || linkKvKey(link.actor, link.contract, link.linkName) !== e.key) {
      this.#ignored(e.key, 'not a link, or a link stored under another key');
      return this.#checkWaiters();
    }
    this.#cache.set(e.key, { link, revision: e.revision });
    this.#emit({ type: 'put', link });
    this.#checkWaiters();
  }

  /** A link record read for `delete`: the link it holds, undefined for a tombstone or a record not to trust. */
  #read(key: string, value: Uint8Array): LinkDefinition | undefined {
    try {
      const opened = openRecord(this.#trust, this.bucket, key, value, LINK_WRITERS);
      return opened.body === null ? undefined : parseLink(opened.body);
    } catch {
      return undefined;
    }
  }

  /** Logs an ignored bucket entry: at most 20 lines per 10 s. */
  #ignored(key: string, reason: string, code?: string): void {
    const now = Date.now();
    if (now - this.#ignoredWindowStart > 10_000) {
      this.#ignoredWindowStart = now;
      this.#ignoredCount = 0;
    }
    if (++this.#ignoredCount <= 20) this.#log.warn({ key, reason, ...(code ? { code } : {}) }, 'ignored a link record in the lattice bucket');
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

