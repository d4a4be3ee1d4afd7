/**
 * The key-value store seen by the key-value provider, and the registry of backends that can
 * serve it. Semantics follow Redis (which waSCC's key-value provider wrapped), so every backend
 * behaves like the Redis one: lists are RPUSH/LRANGE/LREM lists, sets are SADD/SREM sets,
 * `Add` is INCRBY, and using a key of the wrong kind is an error, never a silent overwrite.
 */
import type { Logger } from 'pino';
import { LinkError, OperationError } from '../errors.ts';

/** `Get`/`KeyExists` result: `value` is `""` when the key is missing. */
export interface GetResult {
  value: string;
  exists: boolean;
}

/**
 * One key-value store. Every method rejects with an OperationError: code `BAD_REQUEST` for
 * misuse by the caller (wrong kind of key, non-integer counter), `BACKEND_ERROR` when the
 * backend is unreachable or closed.
 */
export interface KeyValueStore {
  /** GET: the string at `key`. */
  get(key: string): Promise<GetResult>;
  /** SET (any kind of key is replaced); `expiresSeconds` 0 = never (and clears an earlier expiry). */
  set(key: string, value: string, expiresSeconds: number): Promise<void>;
  /** DEL: removes a key of any kind; true when something was removed. */
  del(key: string): Promise<boolean>;
  /** INCRBY: a missing key counts as 0; keeps an existing expiry; returns the new value. */
  add(key: string, delta: number): Promise<number>;
  /** Clears a list. As waSCC's provider did, this is DEL (of whatever the key holds). */
  clear(key: string): Promise<void>;
  /** LRANGE: inclusive, negative indices count from the end. */
  range(key: string, start: number, stop: number): Promise<string[]>;
  /** RPUSH: returns the list's new length. */
  push(key: string, value: string): Promise<number>;
  /** LREM of every occurrence of `value`; returns the list's remaining length. */
  listItemDelete(key: string, value: string): Promise<number>;
  /** SADD: returns how many members were added (0 or 1). */
  setAdd(key: string, value: string): Promise<number>;
  /** SREM: returns how many members were removed (0 or 1). */
  setRemove(key: string, value: string): Promise<number>;
  /** SUNION: missing keys count as empty sets. `keys` must not be empty. */
  setUnion(keys: string[]): Promise<string[]>;
  /** SINTER: missing keys count as empty sets. `keys` must not be empty. */
  setIntersection(keys: string[]): Promise<string[]>;
  /** SMEMBERS. */
  setQuery(key: string): Promise<string[]>;
  /** EXISTS (any kind of key). */
  keyExists(key: string): Promise<boolean>;
  /** Releases what the store holds; later calls reject. */
  close(): Promise<void>;
}

/** Redis's own reply texts, used by every backend so actors see the same errors whatever backs them. */
export const WRONG_TYPE_MESSAGE = 'WRONGTYPE Operation against a key holding the wrong kind of value';
export const NOT_INTEGER_MESSAGE = 'ERR value is not an integer or out of range';
export const OVERFLOW_MESSAGE = 'ERR increment or decrement would overflow';

/** The error for a call that misused a key (wrong kind, not an integer…). */
export function badRequest(op: string, key: string, message: string, cause?: unknown): OperationError {
  return new OperationError('BAD_REQUEST', `${op} ${JSON.stringify(key)}: ${message}`, { cause });
}

/** The error for a call the backend could not serve (unreachable, closed…). */
export function backendError(op: string, message: string, cause?: unknown): OperationError {
  return new OperationError('BACKEND_ERROR', `${op}: ${message}`, { cause });
}

export function emptyKeysError(op: string): OperationError {
  return new OperationError('BAD_REQUEST', `${op}: at least one key is required`);
}

/** Link values as a link carries them. */
export type LinkValues = Readonly<Record<string, string>>;

/**
 * A link value by name, matched case-insensitively (manifests write `URL`, pod env vars may
 * come in any case). Empty strings count as absent.
 */
export function linkValue(values: LinkValues, name: string): string | undefined {
  const exact = values[name];
  if (exact !== undefined) return exact === '' ? undefined : exact;
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(values)) {
    if (k.toLowerCase() === wanted) return v === '' ? undefined : v;
  }
  return undefined;
}

/** A store handed to one link; `release()` gives it back (shared resources close with their last user). */
export interface StoreLease {
  store: KeyValueStore;
  /** A short description for logs, without credentials (e.g. `redis://127.0.0.1:6380/0`, `memory:default`). */
  describe: string;
  release(): Promise<void>;
}

export interface BackendContext {
  logger: Logger;
}

/**
 * A kind of backend (memory, redis, later NATS KV). A factory shares what it can between links
 * (one Redis client per URL, one memory store per bucket) and closes it all in `close()`.
 */
export interface KeyValueBackendFactory {
  /** Registry name, also accepted as the `BACKEND` link value. */
  readonly name: string;
  /** URL schemes (with the colon, e.g. `redis:`) that select this backend through the `URL` link value. */
  readonly urlSchemes: readonly string[];
  /** True when link values without `BACKEND` or `URL` still ask for this backend (e.g. a future `NATS_URL`). */
  detect?(values: LinkValues): boolean;
  /** Validates `values` and opens (or shares) a store. Rejects with LinkError when values are invalid. */
  acquire(values: LinkValues, ctx: BackendContext): Promise<StoreLease>;
  /** Closes everything the factory opened. */
  close(): Promise<void>;
}

/** Backends by name; insertion order is the order `detect` is tried in. */
export type KeyValueBackendRegistry = Readonly<Record<string, KeyValueBackendFactory>>;

/**
 * Picks the backend for a link's values:
 * 1. `BACKEND: <name>` names one explicitly (unknown name → LinkError);
 * 2. `URL: <scheme>://…` picks the backend serving that scheme (`redis:`/`rediss:` → redis;
 *    unknown scheme or unparsable URL → LinkError);
 * 3. otherwise the first backend whose `detect(values)` is true;
 * 4. otherwise `defaultBackend` (memory unless configured).
 */
export function selectBackend(
  values: LinkValues,
  registry: KeyValueBackendRegistry,
  defaultBackend = 'memory',
): KeyValueBackendFactory {
  const known = () => Object.keys(registry).join(', ');
  const explicit = linkValue(values, 'BACKEND');
  if (explicit !== undefined) {
    const factory = registry[explicit.toLowerCase()];
    if (!factory) throw new LinkError(`unknown key-value backend "${explicit}" in link value BACKEND (known: ${known()})`);
    return factory;
  }
  const url = linkValue(values, 'URL');
  if (url !== undefined) {
    let scheme: string;
    try {
      scheme = new URL(url).protocol;
    } catch (err) {
      throw new LinkError(`link value URL is not a valid URL: ${JSON.stringify(redactUrl(url))}`, { cause: err });
    }
    for (const factory of Object.values(registry)) {
      if (factory.urlSchemes.includes(scheme)) return factory;
    }
    const schemes = Object.values(registry).flatMap((f) => f.urlSchemes);
    throw new LinkError(
      `unsupported URL scheme "${scheme}" in link value URL (supported: ${schemes.join(', ') || 'none'})`,
    );
  }
  for (const factory of Object.values(registry)) {
    if (factory.detect?.(values)) return factory;
  }
  const fallback = registry[defaultBackend];
  if (!fallback) throw new LinkError(`default key-value backend "${defaultBackend}" is not registered (known: ${known()})`);
  return fallback;
}

/** A URL with its password (and user) masked, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    // Not parsable: mask anything that looks like userinfo.
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
