/**
 * NATS JetStream KV backend for the key-value provider, with the same Redis semantics as the
 * memory and Redis backends.
 *
 * Data model: one KV entry per key, its value a small JSON document: `{"t":"s","v":"text"}`
 * for strings, `{"t":"l","v":[…]}` for lists, `{"t":"z","v":[…]}` for sets, plus `"x": <ms since
 * the epoch>` when the key expires. Values that are not such a document (written by other tools,
 * e.g. `nats kv put`) read as plain strings. KV keys only allow `A–Z a–z 0–9 _ - / = .`, so
 * keys are encoded with `=XX` escapes (`encodeKvToken`); plain keys stay readable as they are.
 *
 * Consistency: every change is a compare-and-set on the entry's revision (`previousSeq`),
 * retried on conflict, so `Add`, `Push`, `SetAdd`… are atomic across processes. Within one
 * process, changes to one key are queued, and the last revision this process wrote is tried
 * first, so a hot counter costs one round trip per `Add` instead of a read and a write.
 *
 * Expiry: KV TTLs are per bucket, so per-key expiry is the `x` timestamp, checked on every read
 * and change; an expired entry behaves as missing and is overwritten by the next change to its
 * key (it stays in the bucket until then).
 *
 * Which links use it (link values, names case-insensitive):
 * - `URL: nats://host:port` (or `tls://`), or `NATS_URL: url[,url…]`: a connection of the
 *   backend's own per server list, shared by the links naming it; credentials may sit in the
 *   URL (`nats://user:pass@host`, `nats://token@host`);
 * - `BACKEND: nats` without a URL: the provider-level connection given to `natsBackend()`
 *   (a provider process that joined the lattice passes its lattice connection);
 * - `BUCKET: name`: the KV bucket (letters, digits, `-`, `_`), default `wasmlet_kv`.
 */
import type { Logger } from 'pino';
import type { NatsConnection } from 'nats';
import { connectNats, redactServer, type NatsConnectionOptionsInput } from '../../host/index.ts';
import { encodeKvToken } from '../../host/index.ts';
import { LinkError, isOperationError, type OperationError } from '../errors.ts';
import type { BackendContext, GetResult, KeyValueBackendFactory, KeyValueStore, LinkValues, StoreLease } from './store.ts';
import { NOT_INTEGER_MESSAGE, OVERFLOW_MESSAGE, WRONG_TYPE_MESSAGE, backendError, badRequest, emptyKeysError, linkValue } from './store.ts';
import { Bucket, openKv, parseInteger, type Change, type Kind, type Value } from './nats-kv-bucket.ts';

function expectKind(op: string, key: string, v: Value | undefined, kind: Kind): void {
  if (v !== undefined && v.t !== kind) throw badRequest(op, key, WRONG_TYPE_MESSAGE);
}

export class NatsKeyValueStore implements KeyValueStore {
  readonly #bucket: Bucket;
  readonly #where: string;
  #closed = false;

  constructor(bucket: Bucket, where: string) {
    this.#bucket = bucket;
    this.#where = where;
  }

  /** A store on bucket `name` (created when missing) of connection `nc`, which stays the caller's. */
  static async open(nc: NatsConnection, name: string, options: { replicas?: number; maxRetries?: number; timeoutMs?: number } = {}): Promise<NatsKeyValueStore> {
    const kv = await openKv(nc, name, options.replicas ?? 1, options.timeoutMs ?? 2000);
    return new NatsKeyValueStore(new Bucket(nc, kv, options.maxRetries ?? 100), `nats:${name}`);
  }

  async get(key: string): Promise<GetResult> {
    const v = await this.#run('Get', key, () => this.#bucket.read(encodeKvToken(key)));
    if (v === undefined) return { value: '', exists: false };
    expectKind('Get', key, v, 's');
    return { value: v.v as string, exists: true };
  }

  async set(key: string, value: string, expiresSeconds: number): Promise<void> {
    const v: Value = { t: 's', v: value };
    if (expiresSeconds > 0) v.x = Date.now() + expiresSeconds * 1000;
    await this.#run('Set', key, () => this.#bucket.overwrite(encodeKvToken(key), v));
  }

  async del(key: string): Promise<boolean> {
    return this.#change('Del', key, (cur) => (cur === undefined ? { next: undefined, result: false } : { next: null, result: true }));
  }

  async add(key: string, delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta)) throw badRequest('Add', key, NOT_INTEGER_MESSAGE);
    return this.#change('Add', key, (cur) => {
      expectKind('Add', key, cur, 's');
      const n = cur === undefined ? 0 : parseInteger(cur.v as string);
      if (n === undefined) throw badRequest('Add', key, NOT_INTEGER_MESSAGE);
      const next = n + delta;
      if (!Number.isSafeInteger(next)) throw badRequest('Add', key, OVERFLOW_MESSAGE);
      // INCRBY keeps an existing expiry.
      const value: Value = { t: 's', v: String(next) };
      if (cur?.x !== undefined) value.x = cur.x;
      return { next: value, result: next };
    });
  }

  async clear(key: string): Promise<void> {
    await this.#change('Clear', key, (cur) => ({ next: cur === undefined ? undefined : null, result: undefined }));
  }

  async range(key: string, start: number, stop: number): Promise<string[]> {
    const v = await this.#run('Range', key, () => this.#bucket.read(encodeKvToken(key)));
    expectKind('Range', key, v, 'l');
    if (v === undefined) return [];
    const list = v.v as string[];
    const len = list.length;
    let from = start < 0 ? Math.max(len + start, 0) : start;
    const to = stop < 0 ? len + stop : Math.min(stop, len - 1);
    if (from > to || from >= len) return [];
    from = Math.max(from, 0);
    return list.slice(from, to + 1);
  }

  async push(key: string, value: string): Promise<number> {
    return this.#change('Push', key, (cur) => {
      expectKind('Push', key, cur, 'l');
      const list = cur === undefined ? [value] : [...(cur.v as string[]), value];
      return { next: { t: 'l', v: list }, result: list.length };
    });
  }

  async listItemDelete(key: string, value: string): Promise<number> {
    return this.#change('ListItemDelete', key, (cur) => {
      expectKind('ListItemDelete', key, cur, 'l');
      if (cur === undefined) return { next: undefined, result: 0 };
      const before = cur.v as string[];
      const list = before.filter((x) => x !== value);
      if (list.length === before.length) return { next: undefined, result: list.length };
      // An emptied list is gone, as in Redis.
      return { next: list.length === 0 ? null : { t: 'l', v: list }, result: list.length };
    });
  }

  async setAdd(key: string, value: string): Promise<number> {
    return this.#change('SetAdd', key, (cur) => {
      expectKind('SetAdd', key, cur, 'z');
      const members = cur === undefined ? [] : (cur.v as string[]);
      if (members.includes(value)) return { next: undefined, result: 0 };
      return { next: { t: 'z', v: [...members, value] }, result: 1 };
    });
  }

  async setRemove(key: string, value: string): Promise<number> {
    return this.#change('SetRemove', key, (cur) => {
      expectKind('SetRemove', key, cur, 'z');
      if (cur === undefined) return { next: undefined, result: 0 };
      const members = cur.v as string[];
      if (!members.includes(value)) return { next: undefined, result: 0 };
      const rest = members.filter((m) => m !== value);
      return { next: rest.length === 0 ? null : { t: 'z', v: rest }, result: 1 };
    });
  }

  async setUnion(keys: string[]): Promise<string[]> {
    if (keys.length === 0) throw emptyKeysError('SetUnion');
    const sets = await this.#sets('SetUnion', keys);
    const out = new Set<string>();
    for (const s of sets) for (const m of s) out.add(m);
    return [...out];
  }

  async setIntersection(keys: string[]): Promise<string[]> {
    if (keys.length === 0) throw emptyKeysError('SetIntersection');
    const sets = await this.#sets('SetIntersection', keys);
    const [first, ...rest] = sets;
    return first!.filter((m) => rest.every((s) => s.includes(m)));
  }

  async setQuery(key: string): Promise<string[]> {
    const v = await this.#run('SetQuery', key, () => this.#bucket.read(encodeKvToken(key)));
    expectKind('SetQuery', key, v, 'z');
    return v === undefined ? [] : [...(v.v as string[])];
  }

  async keyExists(key: string): Promise<boolean> {
    const v = await this.#run('KeyExists', key, () => this.#bucket.read(encodeKvToken(key)));
    return v !== undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async #sets(op: string, keys: string[]): Promise<string[][]> {
    const values = await this.#run(op, keys.join(','), () => Promise.all(keys.map((k) => this.#bucket.read(encodeKvToken(k)))));
    return values.map((v, i) => {
      expectKind(op, keys[i]!, v, 'z');
      return v === undefined ? [] : (v.v as string[]);
    });
  }

  #change<T>(op: string, key: string, decide: (cur: Value | undefined) => Change<T>): Promise<T> {
    return this.#run(op, key, () => this.#bucket.change(op, key, encodeKvToken(key), decide));
  }

  async #run<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw backendError(op, 'key-value store is closed');
    // While NATS is down, fail at once rather than at the request timeout.
    if (!this.#bucket.state.connected) throw backendError(op, `nats at ${this.#where} unavailable: disconnected`);
    try {
      return await fn();
    } catch (err) {
      if (isOperationError(err)) throw err;
      throw this.#error(op, err);
    }
  }

  #error(op: string, err: unknown): OperationError {
    const e = err as { code?: string; message?: string };
    return backendError(op, `nats at ${this.#where} unavailable: ${e?.code && e.code !== e.message ? `${e.code} ` : ''}${e?.message ?? String(err)}`, err);
  }
}

export interface NatsBackendOptions {
  /** Connection for links that name no URL (`BACKEND: nats`): the provider's lattice connection. Never closed by the backend. */
  connection?: NatsConnection;
  /** Options for the connections the backend opens per URL (auth, TLS, reconnect); `servers` comes from the link. */
  connectionOptions?: Omit<NatsConnectionOptionsInput, 'servers'>;
  /** Bucket for links without `BUCKET`. Default `wasmlet_kv`. */
  defaultBucket?: string;
  /** Stream replicas of buckets the backend creates (clustered JetStream). Default 1. */
  replicas?: number;
  /** Compare-and-set retries of one change under contention. Default 100. */
  maxRetries?: number;
  /** Deadline of one KV request, ms. Default 2000. */
  timeoutMs?: number;
}

const BUCKET_NAME = /^[A-Za-z0-9_-]{1,200}$/;
/** The lattice's own buckets (links, claims) are not for actors. */
const RESERVED_BUCKET = /^wasmlet_.+_(links|claims)$/;

/** NATS server URLs from a link value (comma-separated); LinkError when one is not a NATS URL. */
function serversFrom(name: string, text: string): string[] {
  const servers = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (servers.length === 0) throw new LinkError(`link value ${name} names no NATS server`);
  for (const s of servers) {
    let u: URL;
    try {
      u = new URL(s);
    } catch (err) {
      throw new LinkError(`link value ${name} is not a valid URL: ${JSON.stringify(redactServer(s))}`, { cause: err });
    }
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:') throw new LinkError(`link value ${name} must use nats: or tls:, got "${u.protocol}"`);
    if (!u.hostname) throw new LinkError(`link value ${name} must name a host: ${JSON.stringify(redactServer(s))}`);
  }
  return servers;
}

interface SharedConnection {
  nc: Promise<NatsConnection>;
  refs: number;
  buckets: Map<string, Promise<Bucket>>;
}

/**
 * The NATS KV backend (registry name `nats`): selected by `BACKEND: nats`, a `URL` with scheme
 * `nats:`/`tls:`, or a `NATS_URL` value. One connection per server list, shared by the links
 * naming it and closed with its last link.
 */
export function natsBackend(options: NatsBackendOptions = {}): KeyValueBackendFactory {
  const defaultBucket = options.defaultBucket ?? 'wasmlet_kv';
  const maxRetries = options.maxRetries ?? 100;
  const replicas = options.replicas ?? 1;
  const timeoutMs = options.timeoutMs ?? 2000;
  const connections = new Map<string, SharedConnection>();
  const providerBuckets = new Map<string, Promise<Bucket>>();

  const bucketOf = (cache: Map<string, Promise<Bucket>>, nc: NatsConnection, name: string): Promise<Bucket> => {
    let b = cache.get(name);
    if (!b) {
      b = openKv(nc, name, replicas, timeoutMs).then((kv) => new Bucket(nc, kv, maxRetries));
      cache.set(name, b);
      b.catch(() => cache.delete(name));
    }
    return b;
  };

  return {
    name: 'nats',
    urlSchemes: ['nats:', 'tls:'],
    detect: (values) => linkValue(values, 'NATS_URL') !== undefined,
    async acquire(values: LinkValues, ctx: BackendContext): Promise<StoreLease> {
      const bucketName = linkValue(values, 'BUCKET') ?? defaultBucket;
      if (!BUCKET_NAME.test(bucketName)) throw new LinkError(`link value BUCKET must be 1–200 letters, digits, "-" or "_" for NATS KV, got ${JSON.stringify(bucketName)}`);
      if (RESERVED_BUCKET.test(bucketName)) throw new LinkError(`link value BUCKET ${bucketName} is reserved for the lattice's own data`);
      const url = linkValue(values, 'NATS_URL') !== undefined ? ['NATS_URL', linkValue(values, 'NATS_URL')!] : linkValue(values, 'URL') !== undefined ? ['URL', linkValue(values, 'URL')!] : undefined;

      if (url === undefined) {
        const nc = options.connection;
        if (!nc) throw new LinkError('the nats key-value backend needs link value NATS_URL (or URL: nats://host:port), or a provider joined to a NATS lattice');
        const bucket = await bucketOf(providerBuckets, nc, bucketName).catch((err: unknown) => {
          throw new LinkError(`cannot open NATS KV bucket ${bucketName}: ${(err as Error).message}`, { cause: err });
        });
        const store = new NatsKeyValueStore(bucket, `lattice/${bucketName}`);
        return { store, describe: `nats:lattice/${bucketName}`, release: () => store.close() };
      }

      const servers = serversFrom(url[0], url[1]);
      const id = [...servers].sort().join(',');
      const where = `${servers.map(redactServer).join(',')}/${bucketName}`;
      let shared = connections.get(id);
      if (!shared) {
        const logger: Logger = ctx.logger;
        const created: SharedConnection = {
          nc: connectNats({ name: 'wasmlet-keyvalue', ...options.connectionOptions, servers }, logger),
          refs: 0,
          buckets: new Map(),
        };
        connections.set(id, created);
        created.nc.catch(() => {
          if (connections.get(id) === created) connections.delete(id);
        });
        shared = created;
      }
      shared.refs++;
      const entry = shared;
      const releaseConnection = async () => {
        if (--entry.refs > 0) return;
        if (connections.get(id) === entry) connections.delete(id);
        await entry.nc.then((nc) => nc.close()).catch(() => undefined);
      };
      let bucket: Bucket;
      try {
        const nc = await entry.nc;
        bucket = await bucketOf(entry.buckets, nc, bucketName);
      } catch (err) {
        await releaseConnection();
        throw new LinkError(`cannot open NATS KV bucket ${bucketName} at ${servers.map(redactServer).join(',')}: ${(err as Error).message}`, { cause: err });
      }
      const store = new NatsKeyValueStore(bucket, where);
      let released = false;
      return {
        store,
        describe: `nats:${where}`,
        release: async () => {
          if (released) return;
          released = true;
          await store.close();
          await releaseConnection();
        },
      };
    },
    async close(): Promise<void> {
      const all = [...connections.values()];
      connections.clear();
      providerBuckets.clear();
      await Promise.all(all.map((e) => e.nc.then((nc) => nc.close()).catch(() => undefined)));
    },
  };
}
