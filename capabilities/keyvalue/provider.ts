/**
 * The key-value capability provider (`wasmlet:keyvalue`, aliases `wascc:keyvalue` and
 * `wasmcloud:keyvalue`). Payloads follow waSCC's wascc-codec 0.6: msgpack maps with camelCase
 * field names (rmp-serde's positional arrays are accepted too, as rmp-serde accepts them).
 *
 * Each link (actor, link name) gets a store from the backend its values select (see
 * `selectBackend`): `URL: redis://…` → Redis, otherwise memory. Memory stores are per bucket
 * (`BUCKET`, default `default`) and shared by every link naming that bucket, so links without
 * a bucket share one store, as they would share one Redis database.
 */
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { decode, encode } from '../../host/index.ts';
import { KEY_VALUE, canonicalContract, normalizeLinkName } from '../../host/index.ts';
import { OptionsError } from '../../host/index.ts';
import type { CapabilityProvider, LinkDefinition, ProviderCall, ProviderContext } from '../../host/index.ts';
import { LinkError, OperationError, isOperationError } from '../errors.ts';
import { memoryBackend } from './memory-store.ts';
import { REDIS_STORE_DEFAULTS, redisBackend } from './redis-store.ts';
import type { KeyValueBackendRegistry, KeyValueStore, StoreLease } from './store.ts';
import { selectBackend } from './store.ts';

const redisOptionsSchema = z
  .object({
    /** Deadline of one connection attempt, ms. Default 2000. */
    connectTimeoutMs: z.number().int().positive().default(REDIS_STORE_DEFAULTS.connectTimeoutMs),
    /** Deadline of every Redis command, queued time included, ms. Default 2000. */
    commandTimeoutMs: z.number().int().positive().default(REDIS_STORE_DEFAULTS.commandTimeoutMs),
    /** Failed reconnect attempts after which queued calls fail. Default 1. */
    maxRetriesPerRequest: z.number().int().min(0).default(REDIS_STORE_DEFAULTS.maxRetriesPerRequest),
    /** Cap of the reconnect backoff, ms. Default 1000. */
    maxReconnectDelayMs: z.number().int().positive().default(REDIS_STORE_DEFAULTS.maxReconnectDelayMs),
  })
  .strict();

const optionsSchema = z
  .object({
    /** Backend for links whose values select none. Default `memory`. */
    defaultBackend: z.string().min(1).default('memory'),
    /** Memory bucket for links without `BUCKET`. Default `default`. */
    defaultBucket: z.string().min(1).max(255).default('default'),
    /** Redis client policy (see redis-store.ts for why these defaults). */
    redis: redisOptionsSchema.prefault({}),
  })
  .strict();

/** Options after parsing, every default filled in. */
export type KeyValueProviderOptions = z.output<typeof optionsSchema>;
/** Options as written by a caller; everything is optional. */
export type KeyValueProviderOptionsInput = z.input<typeof optionsSchema>;

/** Validates options and fills in defaults; throws OptionsError naming every bad field. */
export function parseKeyValueProviderOptions(input: unknown = {}): KeyValueProviderOptions {
  const result = optionsSchema.safeParse(input ?? {});
  if (!result.success) {
    throw new OptionsError(`invalid key-value provider options: ${z.prettifyError(result.error)}`, { cause: result.error });
  }
  return result.data;
}

type Request = Record<string, unknown>;
type Handler = (store: KeyValueStore, req: Request) => Promise<unknown>;

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

function field(op: string, req: Request, name: string): unknown {
  const v = req[name];
  if (v === undefined) throw new OperationError('BAD_REQUEST', `${op}: missing field "${name}"`);
  return v;
}

function str(op: string, req: Request, name: string): string {
  const v = field(op, req, name);
  if (typeof v !== 'string') throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be a string, got ${typeName(v)}`);
  return v;
}

function int(op: string, req: Request, name: string, min: number, max: number, fallback?: number): number {
  const v = req[name] === undefined && fallback !== undefined ? fallback : field(op, req, name);
  // msgpackr decodes 64-bit integers as bigint.
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be an integer in [${min}, ${max}], got ${typeName(v)}`);
  }
  return n;
}

function strList(op: string, req: Request, name: string): string[] {
  const v = field(op, req, name);
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be an array of strings`);
  }
  return v as string[];
}

function typeName(v: unknown): string {
  if (v === null) return 'nil';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object' && !isPlainObject(v)) return `${v.constructor?.name ?? 'object'} value`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return typeof v;
}

/** A decoded msgpack map (msgpackr decodes the reserved byte 0xc1 to an object of its own, for one). */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function i32Result(op: string, key: string, n: number): number {
  if (n < I32_MIN || n > I32_MAX) {
    throw new OperationError('BAD_REQUEST', `${op} ${JSON.stringify(key)}: result ${n} does not fit the contract's 32-bit integer`);
  }
  return n;
}

/** Operation → handler, and each request's fields in wascc-codec's struct order (for positional payloads). */
const operations = new Map<string, { fields: readonly string[]; run: Handler }>([
  ['Get', { fields: ['key'], run: (s, r) => s.get(str('Get', r, 'key')) }],
  [
    'Set',
    {
      fields: ['key', 'value', 'expires'],
      run: async (s, r) => {
        const key = str('Set', r, 'key');
        const value = str('Set', r, 'value');
        await s.set(key, value, int('Set', r, 'expires', 0, 0xffffffff, 0));
        return { value };
      },
    },
  ],
  [
    'Del',
    {
      fields: ['key'],
      run: async (s, r) => {
        const key = str('Del', r, 'key');
        await s.del(key);
        return { key };
      },
    },
  ],
  [
    'Add',
    {
      fields: ['key', 'value'],
      run: async (s, r) => {
        const key = str('Add', r, 'key');
        const value = await s.add(key, int('Add', r, 'value', I32_MIN, I32_MAX));
        return { value: i32Result('Add', key, value) };
      },
    },
  ],
  [
    'Clear',
    {
      fields: ['key'],
      run: async (s, r) => {
        const key = str('Clear', r, 'key');
        await s.clear(key);
        return { key };
      },
    },
  ],
  [
    'Range',
    {
      fields: ['key', 'start', 'stop'],
      run: async (s, r) => ({
        values: await s.range(str('Range', r, 'key'), int('Range', r, 'start', I32_MIN, I32_MAX), int('Range', r, 'stop', I32_MIN, I32_MAX)),
      }),
    },
  ],
  ['Push', { fields: ['key', 'value'], run: async (s, r) => ({ newCount: await s.push(str('Push', r, 'key'), str('Push', r, 'value')) }) }],
  [
    'ListItemDelete',
    {
      fields: ['key', 'value'],
      run: async (s, r) => ({ newCount: await s.listItemDelete(str('ListItemDelete', r, 'key'), str('ListItemDelete', r, 'value')) }),
    },
  ],
  ['SetAdd', { fields: ['key', 'value'], run: async (s, r) => ({ newCount: await s.setAdd(str('SetAdd', r, 'key'), str('SetAdd', r, 'value')) }) }],
  [
    'SetRemove',
    { fields: ['key', 'value'], run: async (s, r) => ({ newCount: await s.setRemove(str('SetRemove', r, 'key'), str('SetRemove', r, 'value')) }) },
  ],
  ['SetUnion', { fields: ['keys'], run: async (s, r) => ({ values: await s.setUnion(strList('SetUnion', r, 'keys')) }) }],
  ['SetIntersection', { fields: ['keys'], run: async (s, r) => ({ values: await s.setIntersection(strList('SetIntersection', r, 'keys')) }) }],
  ['SetQuery', { fields: ['key'], run: async (s, r) => ({ values: await s.setQuery(str('SetQuery', r, 'key')) }) }],
  ['KeyExists', { fields: ['key'], run: async (s, r) => ({ value: '', exists: await s.keyExists(str('KeyExists', r, 'key')) }) }],
]);

/** The operation names this provider serves (wascc-codec's keyvalue operations). */
export const KEY_VALUE_OPERATIONS: readonly string[] = [...operations.keys()];

interface ActiveLink {
  lease: StoreLease;
  backend: string;
}

function linkKey(actor: string, linkName: string): string {
  return `${actor}\n${linkName}`;
}

export class KeyValueProvider implements CapabilityProvider {
  readonly contract = KEY_VALUE;
  readonly name = 'keyvalue';
  readonly options: KeyValueProviderOptions;
  readonly #registry: KeyValueBackendRegistry;
  readonly #links = new Map<string, ActiveLink>();
  #logger: Logger = pino({ level: 'silent' });
  #stopped = false;

  /**
   * `backends` adds (or replaces, by name) backend factories next to the built-in `memory` and
   * `redis`; the provider closes every factory when it stops.
   */
  constructor(options: KeyValueProviderOptionsInput = {}, backends: KeyValueBackendRegistry = {}) {
    this.options = parseKeyValueProviderOptions(options);
    this.#registry = {
      memory: memoryBackend({ defaultBucket: this.options.defaultBucket }),
      redis: redisBackend(this.options.redis),
      ...backends,
    };
    if (!this.#registry[this.options.defaultBackend]) {
      throw new OptionsError(
        `invalid key-value provider options: defaultBackend "${this.options.defaultBackend}" is not one of ${Object.keys(this.#registry).join(', ')}`,
      );
    }
  }

  async start(ctx: ProviderContext): Promise<void> {
    this.#logger = ctx.logger.child({ provider: this.name });
    this.#stopped = false;
  }

  async putLink(link: LinkDefinition): Promise<void> {
    if (this.#stopped) throw new LinkError('the key-value provider is stopped');
    if (canonicalContract(link.contract) !== KEY_VALUE) {
      throw new LinkError(`the key-value provider cannot serve contract "${link.contract}"`);
    }
    const linkName = normalizeLinkName(link.linkName);
    const factory = selectBackend(link.values ?? {}, this.#registry, this.options.defaultBackend);
    const logger = this.#logger.child({ actor: link.actor, linkName });
    // Backends share clients between links, so they log with the provider's logger, not this link's.
    const lease = await factory.acquire(link.values ?? {}, { logger: this.#logger });
    if (this.#stopped) {
      await lease.release();
      throw new LinkError('the key-value provider stopped while the link was being put');
    }
    const key = linkKey(link.actor, linkName);
    const previous = this.#links.get(key);
    // Install the new store before releasing the old one, so calls never see a gap.
    this.#links.set(key, { lease, backend: factory.name });
    logger.debug({ backend: factory.name, store: lease.describe }, 'key-value link put');
    if (previous) await previous.lease.release();
  }

  async deleteLink(link: LinkDefinition): Promise<void> {
    const linkName = normalizeLinkName(link.linkName);
    const key = linkKey(link.actor, linkName);
    const active = this.#links.get(key);
    if (!active) return;
    this.#links.delete(key);
    this.#logger.debug({ actor: link.actor, linkName, store: active.lease.describe }, 'key-value link deleted');
    await active.lease.release();
  }

  /** Which backend and store serve a link, for diagnostics; undefined when not linked. */
  describeLink(actor: string, linkName?: string): { backend: string; store: string } | undefined {
    const active = this.#links.get(linkKey(actor, normalizeLinkName(linkName)));
    return active && { backend: active.backend, store: active.lease.describe };
  }

  async handle(call: ProviderCall): Promise<Uint8Array> {
    const linkName = normalizeLinkName(call.linkName);
    const active = this.#links.get(linkKey(call.actor, linkName));
    if (active === undefined) {
      throw new OperationError(
        'NOT_LINKED',
        this.#stopped ? 'the key-value provider is stopped' : `actor ${call.actor} has no key-value link named "${linkName}"`,
      );
    }
    const op = operations.get(call.operation);
    if (op === undefined) {
      throw new OperationError(
        'UNKNOWN_OPERATION',
        `unknown key-value operation "${call.operation}" (known: ${KEY_VALUE_OPERATIONS.join(', ')})`,
      );
    }
    const req = this.#request(call.operation, call.msg, op.fields);
    try {
      return encode(await op.run(active.lease.store, req));
    } catch (err) {
      if (isOperationError(err)) throw err;
      throw new OperationError('BACKEND_ERROR', `${call.operation}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const active = [...this.#links.values()];
    this.#links.clear();
    await Promise.allSettled(active.map((a) => a.lease.release()));
    await Promise.allSettled(Object.values(this.#registry).map((f) => f.close()));
  }

  /** The request map: the first msgpack value of `msg` (trailing bytes ignored). */
  #request(operation: string, msg: Uint8Array, fields: readonly string[]): Request {
    let value: unknown;
    try {
      value = decode(msg);
    } catch (err) {
      throw new OperationError('BAD_REQUEST', `${operation}: ${(err as Error).message}`, { cause: err });
    }
    if (Array.isArray(value)) {
      // rmp-serde's compact struct form: fields by position.
      const req: Request = {};
      fields.forEach((name, i) => {
        if (i < value.length) req[name] = value[i];
      });
      return req;
    }
    if (!isPlainObject(value)) {
      throw new OperationError('BAD_REQUEST', `${operation}: payload must be a msgpack map, got ${typeName(value)}`);
    }
    return value as Request;
  }
}
