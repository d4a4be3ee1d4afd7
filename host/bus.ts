/**
 * The bus carries invocations between hosts. Routing is local-first: a host calls targets it
 * serves itself directly and only hands the bus what lives elsewhere. The in-process bus (the
 * embedded default) connects the hosts of one process; the NATS bus connects machines.
 */
import { InvocationError } from './errors.ts';

/** `actor.<module key>` or `provider.<contract>.<link name>`. */
export type BusTarget = string;

export function actorTarget(actor: string): BusTarget {
  return `actor.${actor}`;
}
export function providerTarget(contract: string, linkName: string): BusTarget {
  return `provider.${contract}.${linkName}`;
}

export interface BusInvocation {
  /** Who calls: an actor's module key or a provider id. */
  origin: string;
  target: BusTarget;
  operation: string;
  msg: Uint8Array;
  /** Absolute deadline, ms since the epoch. */
  deadline: number;
  /** For provider targets: the calling actor and its link name. */
  actor?: string;
  linkName?: string;
}

export type BusHandler = (inv: BusInvocation) => Promise<Uint8Array>;

export interface BusSubscription {
  close(): void;
}

export interface Bus {
  /** Serve invocations addressed to `target` (several servers of one target share the load). */
  serve(target: BusTarget, handler: BusHandler): BusSubscription;
  /** Deliver an invocation; rejects with InvocationError (ACTOR_NOT_FOUND when nobody serves it, DEADLINE_EXCEEDED, UNAVAILABLE). */
  request(inv: BusInvocation): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** The in-process bus: targets served by any host in this process, round-robin between servers. */
export class InProcessBus implements Bus {
  readonly #servers = new Map<BusTarget, BusHandler[]>();
  #rr = 0;

  serve(target: BusTarget, handler: BusHandler): BusSubscription {
    const list = this.#servers.get(target) ?? [];
    list.push(handler);
    this.#servers.set(target, list);
    return {
      close: () => {
        const l = this.#servers.get(target);
        if (!l) return;
        const i = l.indexOf(handler);
        if (i >= 0) l.splice(i, 1);
        if (!l.length) this.#servers.delete(target);
      },
    };
  }

  request(inv: BusInvocation): Promise<Uint8Array> {
    const list = this.#servers.get(inv.target);
    if (!list?.length) return Promise.reject(new InvocationError('ACTOR_NOT_FOUND', `nothing serves ${inv.target}`));
    const handler = list[this.#rr++ % list.length]!;
    const remaining = inv.deadline - Date.now();
    if (remaining <= 0) return Promise.reject(new InvocationError('DEADLINE_EXCEEDED', `deadline passed before ${inv.target} was called`));
    return new Promise<Uint8Array>((resolve, reject) => {
      const t = setTimeout(() => reject(new InvocationError('DEADLINE_EXCEEDED', `${inv.target} did not answer ${inv.operation} in time`)), remaining);
      handler(inv).then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  async close(): Promise<void> {
    this.#servers.clear();
  }
}
