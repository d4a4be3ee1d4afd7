/**
 * Actors' claims by module key in the lattice's claims bucket (`wasmlet_<lattice>_<scope>_claims`),
 * written by the hosts that start actors, so that every member can check a link or a call
 * against the claims of an actor it does not run: the member that writes a link, a provider
 * before it calls an actor, a host before its provider answers a call from another host.
 *
 * A record's body is `{token}`: the actor's own claims JWT, which every reader verifies (signed
 * by the account it names, subject = the key it is stored under, not expired) on top of the
 * record's own signature by a host member (signed-record.ts). So neither a client without a
 * credential nor a provider can make an actor claim more than its signer gave it.
 *
 * A KV watch feeds a local cache: `get()` is a Map lookup.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { KV, KvEntry, NatsConnection } from 'nats';
import { isPublicKey } from '../claims/keys.ts';
import type { ClaimsSource } from '../claims-source.ts';
import { LatticeAuthError, WasmletError } from '../errors.ts';
import { parseWith } from '../options.ts';
import type { ActorClaims } from '../types.ts';
import type { LatticeTrust, MemberRole } from './membership.ts';
import { verifyBy } from './membership.ts';
import { latticeStoreOptionsSchema, openBucket, storeError, type LatticeStoreOptionsInput } from './nats-link-store.ts';
import { openRecord, sealRecord } from './signed-record.ts';
import { decodeKvToken, encodeKvToken, latticeBucket } from './subjects.ts';

/** Who may write claims: the hosts that start actors. */
const CLAIMS_WRITERS: readonly MemberRole[] = ['host'];
/** An actor's claims token is refused past this size, before it is decoded. */
const MAX_ACTOR_TOKEN = 64 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks an actor's claims JWT without its module: size, three segments, an Ed25519 signature
 * by the account it names, the module key it names, and that it has not expired. Throws
 * LatticeAuthError(MESSAGE_REFUSED) naming the reason.
 */
export function verifyClaimsToken(token: string, moduleKey: string, now = Date.now()): ActorClaims {
  const bad = (why: string) => new LatticeAuthError('MESSAGE_REFUSED', `claims of ${moduleKey.slice(0, 60)} refused: ${why}`);
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_ACTOR_TOKEN) throw bad('no token, or one too large');
  const parts = token.split('.');
  if (parts.length !== 3) throw bad('not a JWT');
  let claims: ActorClaims;
  try {
    claims = JSON.parse(utf8.decode(Buffer.from(parts[1]!, 'base64url'))) as ActorClaims;
  } catch {
    throw bad('claims are not JSON');
  }
  if (typeof claims?.iss !== 'string' || !isPublicKey(claims.iss, 'account')) throw bad('no account issuer');
  if (claims.sub !== moduleKey) throw bad(`the token is for ${String(claims.sub).slice(0, 60)}`);
  if (typeof claims.wascap !== 'object' || claims.wascap === null) throw bad('no wascap claims');
  if (!verifyBy(claims.iss, Buffer.from(`${parts[0]}.${parts[1]}`, 'latin1'), Buffer.from(parts[2]!, 'base64url'))) throw bad(`signature does not verify against its issuer ${claims.iss}`);
  if (typeof claims.exp === 'number' && now / 1000 >= claims.exp) throw bad(`expired at ${new Date(claims.exp * 1000).toISOString()}`);
  return claims;
}

/** Actors' claims by module key, in the lattice's claims bucket; a verified cache fed by a watch. */
export class NatsClaimsStore implements ClaimsSource {
  readonly bucket: string;
  readonly #kv: KV;
  readonly #trust: LatticeTrust;
  readonly #log: Logger;
  readonly #cache = new Map<string, { claims: ActorClaims; revision: number }>();
  readonly #events = new EventEmitter();
  #watch: { stop(): void } | undefined;
  #appliedRevision = 0;
  #waiters: { rev: number; resolve: () => void }[] = [];

  private constructor(kv: KV, trust: LatticeTrust, bucket: string, logger: Logger) {
    this.#kv = kv;
    this.#trust = trust;
    this.bucket = bucket;
    this.#log = logger.child({ store: 'claims', bucket });
    this.#events.setMaxListeners(0);
  }

  /** Opens the claims bucket; resolves once the cache holds every claims record already there. */
  static async open(nc: NatsConnection, trust: LatticeTrust, options: LatticeStoreOptionsInput, logger: Logger): Promise<NatsClaimsStore> {
    const o = parseWith(latticeStoreOptionsSchema, 'claims store options', options);
    const bucket = o.bucket ?? latticeBucket(trust.lattice, trust.scope, 'claims');
    const store = new NatsClaimsStore(await openBucket(nc, bucket, o.replicas), trust, bucket, logger);
    await store.#startWatching();
    return store;
  }

  get(actor: string): ActorClaims | undefined {
    return this.#cache.get(encodeKvToken(actor))?.claims;
  }

  list(): ActorClaims[] {
    return [...this.#cache.values()].map((c) => c.claims);
  }

  subscribe(listener: (claims: ActorClaims) => void): () => void {
    this.#events.on('c', listener);
    return () => this.#events.off('c', listener);
  }

  /** Stores the claims of an actor this host verified (`token` is its JWT); resolves once the watch has it. */
  async record(token: string, claims: ActorClaims): Promise<void> {
    if (typeof claims?.sub !== 'string' || claims.sub === '') throw new WasmletError('CLAIMS_MALFORMED', 'claims without a subject (module key) cannot be stored');
    const key = encodeKvToken(claims.sub);
    let revision: number;
    try {
      revision = await this.#kv.put(key, sealRecord(this.#trust, this.bucket, key, { token }));
    } catch (err) {
      throw storeError(`cannot store claims of ${claims.sub}`, err);
    }
    if (this.#appliedRevision >= revision) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      timer.unref();
      this.#waiters.push({ rev: revision, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  async close(): Promise<void> {
    this.#watch?.stop();
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
  }

  async #startWatching(): Promise<void> {
    let ready!: () => void;
    const initialised = new Promise<void>((r) => (ready = r));
    let iter;
    try {
      iter = await this.#kv.watch({ initializedFn: () => ready() });
    } catch (err) {
      throw storeError(`cannot watch lattice bucket ${this.bucket}`, err);
    }
    this.#watch = iter;
    void (async () => {
      try {
        for await (const e of iter) this.#apply(e);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'claims watch ended');
      }
    })();
    await initialised;
  }

  #apply(e: KvEntry): void {
    this.#appliedRevision = Math.max(this.#appliedRevision, e.revision);
    try {
      if (e.operation !== 'PUT') return;
      const previous = this.#cache.get(e.key);
      if (previous && previous.revision >= e.revision) return;
      const opened = openRecord(this.#trust, this.bucket, e.key, e.value, CLAIMS_WRITERS);
      const token = (opened.body as { token?: unknown } | null)?.token;
      if (typeof token !== 'string') throw new LatticeAuthError('MESSAGE_REFUSED', 'a claims record without a token');
      const claims = verifyClaimsToken(token, decodeKvToken(e.key));
      this.#cache.set(e.key, { claims, revision: e.revision });
      this.#events.emit('c', claims);
    } catch (err) {
      this.#log.warn({ key: e.key, reason: (err as Error).message }, 'ignored a claims record in the lattice bucket');
    } finally {
      if (this.#waiters.length) {
        const still = [];
        for (const w of this.#waiters) (this.#appliedRevision >= w.rev ? w.resolve() : still.push(w));
        this.#waiters = still;
      }
    }
  }
}
