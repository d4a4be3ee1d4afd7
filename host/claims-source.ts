/**
 * Where a host learns the claims of actors it does not run itself: a provider checks them before
 * it calls an actor, and every member that writes or applies a link checks the link against them.
 * The memory source is the embedded default (one process knows its own actors); on a lattice the
 * claims live in a JetStream KV bucket (`NatsClaimsStore`), written by the hosts that start actors.
 */
import { EventEmitter } from 'node:events';
import type { ActorClaims } from './types.ts';

export interface ClaimsSource {
  /** The verified claims of `actor` (a module key), when known. */
  get(actor: string): ActorClaims | undefined;
  /** Every claims set known. */
  list(): ActorClaims[];
  /** Records the claims of an actor this host started (`token`: its verified JWT). */
  record(token: string, claims: ActorClaims): Promise<void>;
  /** Calls `listener` with claims learned later; returns an unsubscribe function. */
  subscribe(listener: (claims: ActorClaims) => void): () => void;
}

export class MemoryClaimsSource implements ClaimsSource {
  readonly #claims = new Map<string, ActorClaims>();
  readonly #events = new EventEmitter();

  get(actor: string): ActorClaims | undefined {
    return this.#claims.get(actor);
  }

  list(): ActorClaims[] {
    return [...this.#claims.values()];
  }

  async record(_token: string, claims: ActorClaims): Promise<void> {
    this.#claims.set(claims.sub, claims);
    this.#events.emit('c', claims);
  }

  subscribe(listener: (claims: ActorClaims) => void): () => void {
    this.#events.on('c', listener);
    return () => this.#events.off('c', listener);
  }
}

