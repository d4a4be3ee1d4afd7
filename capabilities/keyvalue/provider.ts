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
import { KEY_VALUE, canonicalContract, normalizeLinkName } from '../../host/index.ts';
import { OptionsError } from '../../host/index.ts';
import { decode, encode } from '../../host/index.ts';
import type { CapabilityProvider, LinkDefinition, ProviderCall, ProviderContext, WorkerRoute } from '../../host/index.ts';
import { LinkError, OperationError } from '../errors.ts';
import { MemoryKeyValueStore, memoryBackend } from './memory-store.ts';
import { KEY_VALUE_OPERATIONS, asOperationError, prepareOperation } from './operations.ts';
import type { WorkerHandlerData } from './worker-handler.ts';
import { REDIS_STORE_DEFAULTS, redisBackend } from './redis-store.ts';
import { DEFAULT_MAX_ITEMS, DEFAULT_MAX_RESULT_BYTES } from './shared-table.ts';
import type { KeyValueBackendRegistry, StoreLease } from './store.ts';
import { selectBackend } from './store.ts';

const codec = { encode, decode };
const WORKER_HANDLER = new URL('./worker-handler.ts', import.meta.url).href;

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
    /**
     * Shared memory reserved per memory bucket, bytes (64 KiB to 2 GiB). Default 64 MiB, some
     * 800,000 small keys; pages are committed only as data fills them. A full bucket answers
     * BACKEND_ERROR and keeps its data.
     */
    memoryBytes: z.number().int().min(64 * 1024).max(2 ** 31).default(64 * 1024 * 1024),
    /**
     * The most items one list or set of a memory bucket holds (one more fails with BACKEND_ERROR):
     * it bounds how long any operation holds the bucket's lock. Default 16,384.
     */
    memoryMaxItems: z.number().int().min(1).max(2 ** 26).default(DEFAULT_MAX_ITEMS),
    /**
     * Largest request this provider decodes and reply it answers, in bytes, whatever the backend:
     * a larger request is refused (BAD_REQUEST) before it is decoded; a read whose reply would be
     * larger fails (BACKEND_ERROR), inside Redis for the Redis backend and after at most this much
     * copying for memory buckets. Default 2 MiB (the host's default cap on a host call).
     */
    maxPayloadBytes: z.number().int().min(1024).max(2 ** 30).default(DEFAULT_MAX_RESULT_BYTES),
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

export { KEY_VALUE_OPERATIONS };

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
      memory: memoryBackend({ defaultBucket: this.options.defaultBucket, bytes: this.options.memoryBytes, maxItems: this.options.memoryMaxItems, maxResultBytes: this.options.maxPayloadBytes }),
      redis: redisBackend({ ...this.options.redis, maxReplyBytes: this.options.maxPayloadBytes }),
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
    const max = this.options.maxPayloadBytes;
    if (call.msg.byteLength > max) {
      throw new OperationError('BAD_REQUEST', `${call.operation}: the request is ${call.msg.byteLength} bytes, over the key-value provider's limit of ${max} (maxPayloadBytes)`);
    }
    const op = prepareOperation(call.operation, call.msg, codec);
    const store = active.lease.store;
    let result: unknown;
    try {
      result = await (store[op.method] as (...args: unknown[]) => Promise<unknown>)(...op.args);
    } catch (err) {
      throw asOperationError(call.operation, err);
    }
    const reply = op.encode(result);
    if (reply.byteLength > max) {
      throw new OperationError('BACKEND_ERROR', `${call.operation}: the reply is ${reply.byteLength} bytes, over the key-value provider's limit of ${max} (maxPayloadBytes); ask for less`);
    }
    return reply;
  }

  /**
   * Lets actor workers answer this link's calls themselves when its store is the shared-memory
   * table (the memory backend): they run the same operations on the same memory, without a hop
   * to the main thread. Undefined for other backends (Redis, NATS KV) and unknown links.
   */
  workerRoute(actor: string, linkName: string): WorkerRoute | undefined {
    const active = this.#links.get(linkKey(actor, normalizeLinkName(linkName)));
    const store = active?.lease.store;
    if (this.#stopped || !(store instanceof MemoryKeyValueStore)) return undefined;
    return { module: WORKER_HANDLER, data: { buffer: store.table.buffer } satisfies WorkerHandlerData };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const active = [...this.#links.values()];
    this.#links.clear();
    await Promise.allSettled(active.map((a) => a.lease.release()));
    await Promise.allSettled(Object.values(this.#registry).map((f) => f.close()));
  }
}
