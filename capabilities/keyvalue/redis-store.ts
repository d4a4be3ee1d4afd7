/**
 * Redis key-value backend (ioredis), the store waSCC's own key-value provider used.
 *
 * Connection policy, chosen so that a Redis that is down never hangs an actor's call:
 * - `commandTimeout` is a hard deadline on every command, including one waiting in the offline
 *   queue, so any call settles within it.
 * - The offline queue stays on: a call made while the client is (re)connecting, e.g. right after
 *   a link is put or during a Redis restart, waits briefly and succeeds instead of failing.
 * - `maxRetriesPerRequest` (default 1) flushes queued calls with an error once a reconnect
 *   attempt has failed, so a refused connection fails calls in a few hundred ms rather than
 *   at the deadline.
 * - `connectTimeout` bounds one connection attempt to a host that does not answer at all.
 * - The client reconnects forever with a capped backoff, so calls work again once Redis is back.
 * One client per URL is shared by every link naming that URL.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { BackendContext, GetResult, KeyValueBackendFactory, KeyValueStore, LinkValues, StoreLease } from './store.ts';
import { backendError, badRequest, emptyKeysError, linkValue, redactUrl } from './store.ts';
import { LinkError, type OperationError } from '../errors.ts';

export interface RedisStoreOptions {
  /** Deadline of one connection attempt, ms. Default 2000. */
  connectTimeoutMs?: number;
  /** Deadline of every command (queued time included), ms. Default 2000. */
  commandTimeoutMs?: number;
  /** Failed reconnect attempts after which queued commands fail. Default 1. */
  maxRetriesPerRequest?: number;
  /** Cap of the reconnect backoff, ms. Default 1000. */
  maxReconnectDelayMs?: number;
  /**
   * The most one read may return, in reply bytes (each string's bytes plus 5). Reads are run as
   * scripts that check the size inside Redis, so a larger value or list never reaches this
   * process: the call fails with BACKEND_ERROR instead. Default 2 MiB.
   */
  maxReplyBytes?: number;
}

export const REDIS_STORE_DEFAULTS: Required<RedisStoreOptions> = {
  connectTimeoutMs: 2000,
  commandTimeoutMs: 2000,
  maxRetriesPerRequest: 1,
  maxReconnectDelayMs: 1000,
  maxReplyBytes: 2 * 1024 * 1024,
};

/** Errors of the capped reads below when a reply would pass its cap. */
const TOO_LARGE = 'TOOLARGE';

/**
 * Reads that check their reply's size inside Redis (Lua, run with EVALSHA), so that an
 * oversized value or collection is refused there and never read into this process. Errors of
 * the commands they run (WRONGTYPE…) come back as they are.
 */
const CAPPED_READS = {
  /** KEYS[1]; ARGV: cap. */
  wasmletGet: `
local n = redis.pcall('STRLEN', KEYS[1])
if type(n) == 'table' and n.err then return redis.error_reply(n.err) end
if n + 5 > tonumber(ARGV[1]) then return redis.error_reply('${TOO_LARGE} a value of ' .. n .. ' bytes') end
return redis.call('GET', KEYS[1])`,
  /** KEYS[1]; ARGV: start, stop, cap. Reads the range a thousand items at a time, stopping at the cap. */
  wasmletRange: `
local len = redis.pcall('LLEN', KEYS[1])
if type(len) == 'table' and len.err then return redis.error_reply(len.err) end
local s, e, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if s < 0 then s = len + s end
if e < 0 then e = len + e end
if s < 0 then s = 0 end
if e >= len then e = len - 1 end
local out, total = {}, 0
while s <= e do
  local j = math.min(s + 999, e)
  local chunk = redis.call('LRANGE', KEYS[1], s, j)
  for k = 1, #chunk do
    total = total + #chunk[k] + 5
    if total > cap then return redis.error_reply('${TOO_LARGE} a range of more than ' .. cap .. ' bytes') end
    out[#out + 1] = chunk[k]
  end
  s = j + 1
end
return out`,
  /** KEYS: the sets; ARGV: cap, command (SMEMBERS, SUNION or SINTER). */
  wasmletSets: `
local r = redis.pcall(ARGV[2], unpack(KEYS))
if type(r) == 'table' and r.err then return redis.error_reply(r.err) end
local total, cap = 0, tonumber(ARGV[1])
for i = 1, #r do
  total = total + #r[i] + 5
  if total > cap then return redis.error_reply('${TOO_LARGE} a result of more than ' .. cap .. ' bytes') end
end
return r`,
};

type CappedReads = {
  wasmletGet(key: string, cap: number): Promise<string | null>;
  wasmletRange(key: string, start: number, stop: number, cap: number): Promise<string[]>;
  wasmletSets(numKeys: number, ...args: (string | number)[]): Promise<string[]>;
};

/** Name the clients give themselves (CLIENT SETNAME), to tell them apart in CLIENT LIST. */
export const REDIS_CLIENT_NAME = 'wasmlet-keyvalue';

/** A client configured with the policy above; logs outages once each (not every retry). */
export function createRedisClient(url: string, options: RedisStoreOptions = {}, logger?: Logger): Redis {
  const o = { ...REDIS_STORE_DEFAULTS, ...options };
  const client = new Redis(url, {
    connectTimeout: o.connectTimeoutMs,
    commandTimeout: o.commandTimeoutMs,
    maxRetriesPerRequest: o.maxRetriesPerRequest,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times - 1, 10), o.maxReconnectDelayMs),
    // RESP2 works with every Redis version and avoids a HELLO round trip; nothing here needs RESP3.
    protocol: 2,
    connectionName: REDIS_CLIENT_NAME,
    disableClientInfo: true,
  });
  client.defineCommand('wasmletGet', { numberOfKeys: 1, lua: CAPPED_READS.wasmletGet });
  client.defineCommand('wasmletRange', { numberOfKeys: 1, lua: CAPPED_READS.wasmletRange });
  client.defineCommand('wasmletSets', { lua: CAPPED_READS.wasmletSets });
  const where = redactUrl(url);
  let down = false;
  // Without an 'error' listener ioredis prints to the console; log once per outage instead.
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger?.warn({ redis: where, err: err.message }, 'redis unavailable; key-value calls fail until it is back');
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    logger?.info({ redis: where }, 'redis connection restored');
  });
  return client;
}

function capped(client: Redis): CappedReads {
  return client as unknown as CappedReads;
}

/** Ends a client: QUIT when connected (bounded), then disconnect so it never reconnects. */
export async function closeRedisClient(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise((resolve) => {
        timer = setTimeout(resolve, 500);
      }),
    ]);
    clearTimeout(timer);
  }
  client.disconnect();
}

/** Redis replies that mean the caller misused a key, rather than that Redis failed. */
const CALLER_ERRORS = /^(WRONGTYPE|ERR value is not an integer|ERR increment or decrement would overflow)/;

function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

export class RedisKeyValueStore implements KeyValueStore {
  readonly #client: Redis;
  readonly #owned: boolean;
  readonly #where: string;
  #closed = false;

  /**
   * Wraps `client`. When `owned`, `close()` ends the client; otherwise (a shared client)
   * `close()` only stops this store from being used.
   */
  readonly #cap: number;

  /**
   * Wraps `client` (made by `createRedisClient`, which defines the capped reads). When `owned`,
   * `close()` ends the client; otherwise (a shared client) `close()` only stops this store from
   * being used. `maxReplyBytes`: see RedisStoreOptions.
   */
  constructor(client: Redis, options: { owned?: boolean; describe?: string; maxReplyBytes?: number } = {}) {
    this.#client = client;
    this.#owned = options.owned ?? false;
    this.#where = options.describe ?? 'redis';
    this.#cap = options.maxReplyBytes ?? REDIS_STORE_DEFAULTS.maxReplyBytes;
  }

  /** A store with its own client for `url`. */
  static connect(url: string, options: RedisStoreOptions = {}, logger?: Logger): RedisKeyValueStore {
    return new RedisKeyValueStore(createRedisClient(url, options, logger), { owned: true, describe: redactUrl(url), ...(options.maxReplyBytes ? { maxReplyBytes: options.maxReplyBytes } : {}) });
  }

  async get(key: string): Promise<GetResult> {
    const value = await this.#run('Get', key, (c) => capped(c).wasmletGet(key, this.#cap));
    return value === null ? { value: '', exists: false } : { value, exists: true };
  }

  async set(key: string, value: string, expiresSeconds: number): Promise<void> {
    await this.#run('Set', key, (c) => (expiresSeconds > 0 ? c.set(key, value, 'EX', expiresSeconds) : c.set(key, value)));
  }

  async del(key: string): Promise<boolean> {
    return (await this.#run('Del', key, (c) => c.del(key))) > 0;
  }

  async add(key: string, delta: number): Promise<number> {
    return this.#run('Add', key, (c) => c.incrby(key, delta));
  }

  async clear(key: string): Promise<void> {
    await this.#run('Clear', key, (c) => c.del(key));
  }

  async range(key: string, start: number, stop: number): Promise<string[]> {
    return this.#run('Range', key, (c) => capped(c).wasmletRange(key, start, stop, this.#cap));
  }

  async push(key: string, value: string): Promise<number> {
    return this.#run('Push', key, (c) => c.rpush(key, value));
  }

  async listItemDelete(key: string, value: string): Promise<number> {
    // LREM and LLEN in one transaction, so the count is the length right after this removal.
    const replies = await this.#run('ListItemDelete', key, (c) => c.multi().lrem(key, 0, value).llen(key).exec());
    if (replies === null) throw backendError('ListItemDelete', 'redis transaction was aborted');
    for (const [err] of replies) if (err) throw this.#error('ListItemDelete', key, err);
    return replies[1]?.[1] as number;
  }

  async setAdd(key: string, value: string): Promise<number> {
    return this.#run('SetAdd', key, (c) => c.sadd(key, value));
  }

  async setRemove(key: string, value: string): Promise<number> {
    return this.#run('SetRemove', key, (c) => c.srem(key, value));
  }

  async setUnion(keys: string[]): Promise<string[]> {
    if (keys.length === 0) throw emptyKeysError('SetUnion');
    return this.#run('SetUnion', keys.join(','), (c) => capped(c).wasmletSets(keys.length, ...keys, this.#cap, 'SUNION'));
  }

  async setIntersection(keys: string[]): Promise<string[]> {
    if (keys.length === 0) throw emptyKeysError('SetIntersection');
    return this.#run('SetIntersection', keys.join(','), (c) => capped(c).wasmletSets(keys.length, ...keys, this.#cap, 'SINTER'));
  }

  async setQuery(key: string): Promise<string[]> {
    return this.#run('SetQuery', key, (c) => capped(c).wasmletSets(1, key, this.#cap, 'SMEMBERS'));
  }

  async keyExists(key: string): Promise<boolean> {
    return (await this.#run('KeyExists', key, (c) => c.exists(key))) > 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) await closeRedisClient(this.#client);
  }

  async #run<T>(op: string, key: string, command: (client: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) throw backendError(op, 'key-value store is closed');
    try {
      return await command(this.#client);
    } catch (err) {
      throw this.#error(op, key, err);
    }
  }

  #error(op: string, key: string, err: unknown): OperationError {
    const message = err instanceof Error ? err.message : String(err);
    if (isReplyError(err) && message.startsWith(TOO_LARGE)) {
      return backendError(op, `the reply would hold ${message.slice(TOO_LARGE.length + 1)}, over the limit of ${this.#cap} (maxPayloadBytes); ask for less`, err);
    }
    if (isReplyError(err) && CALLER_ERRORS.test(message)) return badRequest(op, key, message, err);
    if (isReplyError(err)) return backendError(op, `redis error: ${message}`, err);
    return backendError(op, `redis at ${this.#where} unavailable: ${message}`, err);
  }
}

/** Checks a redis URL link value; returns its canonical form (the key clients are shared by). */
export function parseRedisUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new LinkError(`link value URL is not a valid URL: ${JSON.stringify(redactUrl(url))}`, { cause: err });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new LinkError(`link value URL must use redis: or rediss:, got "${u.protocol}"`);
  }
  // Without a host ioredis would quietly use localhost:6379; make the link say where Redis is.
  if (!u.hostname) throw new LinkError(`link value URL must name a host: ${JSON.stringify(redactUrl(url))}`);
  if (u.pathname !== '' && u.pathname !== '/' && !/^\/(0|[1-9][0-9]{0,4})$/.test(u.pathname)) {
    throw new LinkError(`link value URL path must be a database number, got "${u.pathname}"`);
  }
  return u;
}

/**
 * The Redis backend: selected by `URL: redis://host[:port][/db]` (or `rediss://` for TLS).
 * One client per URL, shared by the links naming it, closed when its last link goes.
 */
export function redisBackend(options: RedisStoreOptions = {}): KeyValueBackendFactory {
  const clients = new Map<string, { client: Redis; refs: number }>();
  return {
    name: 'redis',
    urlSchemes: ['redis:', 'rediss:'],
    async acquire(values: LinkValues, ctx: BackendContext): Promise<StoreLease> {
      const raw = linkValue(values, 'URL');
      if (raw === undefined) throw new LinkError('the redis key-value backend needs link value URL (redis://host:port)');
      const url = parseRedisUrl(raw);
      const id = url.href;
      const describe = redactUrl(id);
      let shared = clients.get(id);
      if (shared === undefined) {
        shared = { client: createRedisClient(id, options, ctx.logger), refs: 0 };
        clients.set(id, shared);
      }
      shared.refs++;
      const entry = shared;
      let released = false;
      const store = new RedisKeyValueStore(entry.client, { owned: false, describe, ...(options.maxReplyBytes ? { maxReplyBytes: options.maxReplyBytes } : {}) });
      return {
        store,
        describe,
        release: async () => {
          if (released) return;
          released = true;
          await store.close();
          if (--entry.refs > 0) return;
          if (clients.get(id) === entry) clients.delete(id);
          await closeRedisClient(entry.client);
        },
      };
    },
    async close(): Promise<void> {
      const all = [...clients.values()];
      clients.clear();
      await Promise.all(all.map((e) => closeRedisClient(e.client)));
    },
  };
}
