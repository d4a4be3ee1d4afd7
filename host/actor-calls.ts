/**
 * Actor-to-actor calls: waSCC's `__host_call` whose namespace names an actor (its module key
 * `M…`, or a call alias the target declares in its claims as `wascap.call_alias`) instead of a
 * capability contract. No link is involved; the caller's claims decide, as in waSCC: the call is
 * allowed only when the caller's `caps` include the target's module key or its call alias.
 *
 * Routing is local-first like every other invocation: a target on this host is called through
 * the worker pool with what is left of the caller's deadline; any other goes over the bus
 * (`actor.<M…>`), with the same deadline and the bus's authentication. A target named by alias,
 * or one not on this host, is looked up in the `ActorDirectory` (the lattice's claims, when the
 * host is on one; none in-process).
 *
 * A caller waits for its callee in its worker (host calls block the guest): the callee needs an
 * instance in another worker, so an actor that others call should keep `maxInstances` above 1.
 */
import type { Logger } from 'pino';
import { actorTarget, type Bus } from './bus.ts';
import { isPublicKey } from './claims/keys.ts';
import { InvocationError } from './errors.ts';
import type { ActorClaims } from './types.ts';

/** Who is running where, by module key or call alias. */
export interface ActorDirectory {
  /** The claims of the actor with this module key, or the one declaring this call alias; undefined when unknown. */
  lookup(keyOrAlias: string): Promise<ActorClaims | undefined>;
}

/** The call alias an actor declares in its claims, if any. */
export function callAliasOf(claims: ActorClaims): string | undefined {
  const alias = claims.wascap.call_alias;
  return typeof alias === 'string' && alias !== '' ? alias : undefined;
}

/** Whether a host call's namespace names an actor (contracts always have a `:`). */
export function isActorNamespace(namespace: string): boolean {
  return isPublicKey(namespace, 'module') || (namespace !== '' && !namespace.includes(':'));
}

/** A directory over stored claims (e.g. the lattice's claims bucket); alias look-ups list them, cached for `ttlMs`. */
export function claimsDirectory(store: { get(key: string): ActorClaims | undefined | Promise<ActorClaims | undefined>; list(): ActorClaims[] | Promise<ActorClaims[]> }, ttlMs = 5000): ActorDirectory {
  let cached: { at: number; all: Promise<ActorClaims[]> } | undefined;
  return {
    async lookup(keyOrAlias) {
      if (isPublicKey(keyOrAlias, 'module')) return store.get(keyOrAlias);
      if (!cached || Date.now() - cached.at > ttlMs) cached = { at: Date.now(), all: Promise.resolve().then(() => store.list()) };
      const all = await cached.all.catch((err: unknown) => {
        cached = undefined;
        throw err;
      });
      return all.find((c) => callAliasOf(c) === keyOrAlias);
    },
  };
}

/** What the host tells actor calls about the actors it runs. */
export interface LocalActors {
  /** Claims of an actor running here, by module key. */
  claims(id: string): ActorClaims | undefined;
  /** The module key of the actor running here that declares `alias`. */
  byAlias(alias: string): string | undefined;
  invoke(id: string, operation: string, msg: Uint8Array, deadlineMs: number): Promise<Uint8Array>;
}

/** The calling actor, as the host knows it. */
export interface Caller {
  id: string;
  /** Its claimed capabilities (contract ids canonicalized; module keys and aliases as written). */
  caps: ReadonlySet<string>;
  log: Logger;
}

export class ActorCalls {
  readonly #local: LocalActors;
  readonly #bus: Bus;
  readonly #directory: ActorDirectory | undefined;

  constructor(deps: { local: LocalActors; bus: Bus; directory?: ActorDirectory }) {
    this.#local = deps.local;
    this.#bus = deps.bus;
    this.#directory = deps.directory;
  }

  async call(caller: Caller, namespace: string, operation: string, payload: Uint8Array, deadline: number): Promise<Uint8Array> {
    const byKey = isPublicKey(namespace, 'module');
    let id = byKey ? namespace : this.#local.byAlias(namespace);
    let claims = id === undefined ? undefined : this.#local.claims(id);
    const local = claims !== undefined;
    // The directory is asked only when the caller's claims do not already settle it.
    if (!claims && !(byKey && caller.caps.has(namespace)) && this.#directory) {
      claims = await this.#directory.lookup(namespace).catch((err: unknown) => {
        throw new InvocationError('UNAVAILABLE', `cannot look up actor ${namespace}: ${(err as Error).message}`, { cause: err });
      });
      if (claims && !byKey && callAliasOf(claims) !== namespace) claims = undefined;
      id = claims?.sub ?? id;
    }
    if (id === undefined) throw new InvocationError('ACTOR_NOT_FOUND', `no actor declares the call alias ${namespace}`);
    const alias = claims ? callAliasOf(claims) : undefined;
    if (!caller.caps.has(id) && !(alias !== undefined && caller.caps.has(alias))) {
      caller.log.warn({ target: id, alias, operation }, 'actor call denied: not claimed');
      throw new InvocationError('NOT_CLAIMED', `actor ${caller.id} is not allowed to call actor ${namespace}: its claims include neither ${id}${alias ? ` nor the call alias ${alias}` : ''}`);
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new InvocationError('DEADLINE_EXCEEDED', `the deadline passed before actor ${namespace} was called`);
    if (local) return this.#local.invoke(id, operation, payload, left);
    return this.#bus.request({ origin: caller.id, target: actorTarget(id), operation, msg: payload, deadline });
  }
}
