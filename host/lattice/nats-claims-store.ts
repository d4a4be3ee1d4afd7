/**
 * Actors' claims by module key in the lattice's `wasmlet_<lattice>_claims` KV bucket, for
 * `wasmlet ctl get claims` (hosts record the claims of the actors they start).
 */
import type { KV, KvEntry, NatsConnection } from 'nats';
import { WasmletError } from '../errors.ts';
import { parseWith } from '../options.ts';
import type { ActorClaims } from '../types.ts';
import { claimsBucketName, latticeStoreOptionsSchema, openBucket, storeError, type LatticeStoreOptionsInput } from './nats-link-store.ts';
import { encodeKvToken } from './subjects.ts';

/** Actors' claims by module key, in `wasmlet_<lattice>_claims`, for `wasmlet ctl get claims`. */
export class NatsClaimsStore {
  readonly bucket: string;
  readonly #kv: KV;

  private constructor(kv: KV, bucket: string) {
    this.#kv = kv;
    this.bucket = bucket;
  }

  static async open(nc: NatsConnection, options: LatticeStoreOptionsInput): Promise<NatsClaimsStore> {
    const o = parseWith(latticeStoreOptionsSchema, 'claims store options', options);
    const bucket = o.bucket ?? claimsBucketName(o.lattice);
    return new NatsClaimsStore(await openBucket(nc, bucket, o.replicas), bucket);
  }

  async put(claims: ActorClaims): Promise<void> {
    if (typeof claims?.sub !== 'string' || claims.sub === '') throw new WasmletError('CLAIMS_MALFORMED', 'claims without a subject (module key) cannot be stored');
    try {
      await this.#kv.put(encodeKvToken(claims.sub), JSON.stringify(claims));
    } catch (err) {
      throw storeError(`cannot store claims of ${claims.sub}`, err);
    }
  }

  async get(moduleKey: string): Promise<ActorClaims | undefined> {
    let entry: KvEntry | null;
    try {
      entry = await this.#kv.get(encodeKvToken(moduleKey));
    } catch (err) {
      throw storeError(`cannot read claims of ${moduleKey}`, err);
    }
    if (!entry || entry.operation !== 'PUT') return undefined;
    try {
      return entry.json<ActorClaims>();
    } catch {
      return undefined;
    }
  }

  async delete(moduleKey: string): Promise<void> {
    try {
      await this.#kv.delete(encodeKvToken(moduleKey));
    } catch (err) {
      throw storeError(`cannot delete claims of ${moduleKey}`, err);
    }
  }

  /** Every stored claims set (malformed values are skipped). */
  async list(): Promise<ActorClaims[]> {
    const keys: string[] = [];
    try {
      for await (const k of await this.#kv.keys()) keys.push(k);
    } catch (err) {
      throw storeError(`cannot list ${this.bucket}`, err);
    }
    const all = await Promise.all(keys.map((k) => this.#kv.get(k).catch(() => null)));
    const out: ActorClaims[] = [];
    for (const e of all) {
      if (!e || e.operation !== 'PUT') continue;
      try {
        out.push(e.json<ActorClaims>());
      } catch {
        // skip malformed entries
      }
    }
    return out;
  }
}
