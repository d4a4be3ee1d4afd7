/**
 * The NATS bus: invocations that cross hosts travel as signed msgpack envelopes (see
 * envelope.ts) on `wasmlet.<lattice>.rpc.<target>` (see subjects.ts). Hosts call local targets
 * directly; only what lives elsewhere reaches this bus.
 *
 * Serving: one queue-group subscription per target, so several hosts serving the same actor
 * share its load. Every message is verified (framing, signature, host allow-list, freshness,
 * subject matching the signed target); anything else is dropped with a (rate-limited) log
 * line and never answered.
 *
 * Requesting: no stock `request()` per call (it costs ~40 µs each in nats.js). One wildcard
 * subscription on a private inbox (`_INBOX.<nuid>.*`) receives every reply; the last token is
 * the correlation id, looked up in a map. One interval timer, running only while calls are in
 * flight, sweeps calls past their deadline. Failures are values, never hangs:
 * - no subscriber for the target: the server's no-responders status (503) → ACTOR_NOT_FOUND;
 * - the deadline passes → DEADLINE_EXCEEDED;
 * - the connection is down (or drops with calls in flight) → UNAVAILABLE at once;
 * - the serving side failed → the same InvocationError code it raised, with its message.
 *
 * Deadlines cross hosts as a budget: the receiver gives the handler `deadline − sent` ms from
 * when the envelope arrives, so clock offsets between hosts do not shorten or stretch calls.
 * `sent` must be within `maxClockSkewMs` of the receiver's clock, which bounds replays.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { createInbox, Events, type Msg, type NatsConnection, type Status, type Subscription } from 'nats';
import type { Bus, BusHandler, BusInvocation, BusSubscription, BusTarget } from '../bus.ts';
import { isPublicKey } from '../claims/keys.ts';
import { InvocationError, type InvocationErrorCode } from '../errors.ts';
import { parseWith } from '../options.ts';
import type { ActorClaims } from '../types.ts';
import { decodeEnvelope, decodeReply, encodeEnvelope, encodeErrorReply, encodeOkReply, hostKeyFromSeed, type HostKey } from './envelope.ts';
import { latticeIdSchema, rpcSubject } from './subjects.ts';
import type { KeyObject } from 'node:crypto';

export const natsBusOptionsSchema = z
  .object({
    /** Lattice id; namespaces every subject. Default `default`. */
    lattice: latticeIdSchema.default('default'),
    /** This host's server nkey seed (`SN…`); its public key is the host id envelopes carry. */
    hostSeed: z.string().min(1),
    /** Accept invocations only from these host keys. Empty (default): any host that signs validly. */
    allowedHosts: z.array(z.string().refine((k) => isPublicKey(k, 'server'), 'a server public key (N…)')).default([]),
    /** Queue group name for served targets. Default `wasmlet`. */
    queueGroup: z.string().regex(/^[A-Za-z0-9_-]+$/).default('wasmlet'),
    /** How often calls in flight are checked against their deadlines, ms. Default 10. */
    sweepIntervalMs: z.number().int().min(1).max(1000).default(10),
    /** Envelopes sent further than this from the receiver's clock are refused (replay bound), ms. Default 60000. */
    maxClockSkewMs: z.number().int().min(1000).default(60_000),
    /**
     * Sign outgoing invocations and require valid signatures on incoming ones (waSCC's
     * antiforgery). Default true. Turn it off only on every host of a lattice secured by NATS
     * itself (accounts, TLS): it saves ~150 µs of Ed25519 work per cross-host call.
     */
    antiforgery: z.boolean().default(true),
    /** Calls in flight at most; more fail with UNAVAILABLE (backpressure). Default 65536. */
    maxPending: z.number().int().min(1).default(65_536),
  })
  .strict();

export type NatsBusOptionsInput = z.input<typeof natsBusOptionsSchema>;
export type NatsBusOptions = z.output<typeof natsBusOptionsSchema>;

export function parseNatsBusOptions(input: unknown): NatsBusOptions {
  return parseWith(natsBusOptionsSchema, 'NATS bus options', input);
}

/** What a handler on this bus receives: the invocation plus who sent it. */
export interface LatticeInvocation extends BusInvocation {
  /** The calling host's key (verified). */
  fromHost: string;
  claims?: ActorClaims;
}

const INVOCATION_CODES = new Set<string>([
  'DEADLINE_EXCEEDED',
  'TRAP',
  'GUEST_ERROR',
  'ACTOR_NOT_FOUND',
  'NOT_CLAIMED',
  'NOT_LINKED',
  'NO_PROVIDER',
  'PROVIDER_ERROR',
  'BAD_PAYLOAD',
  'UNAVAILABLE',
  'STOPPING',
]);

interface Pending {
  resolve: (v: Uint8Array) => void;
  reject: (e: unknown) => void;
  deadline: number;
  target: string;
  operation: string;
}

export interface NatsBusStats {
  /** Calls sent / answered (any outcome) by this bus as caller. */
  requested: number;
  /** Invocations served by this bus's handlers. */
  served: number;
  /** Messages dropped as garbled, forged, stale or misrouted. */
  dropped: number;
  /** Calls in flight now. */
  pending: number;
}

export class NatsBus implements Bus {
  readonly options: NatsBusOptions;
  readonly #nc: NatsConnection;
  readonly #log: Logger;
  readonly #key: HostKey;
  readonly #allowed: ReadonlySet<string>;
  readonly #keyCache = new Map<string, KeyObject>();
  readonly #inbox: string;
  readonly #inboxLen: number;
  readonly #replySub: Subscription;
  readonly #serving = new Set<Subscription>();
  readonly #pending = new Map<string, Pending>();
  #seq = 0;
  #sweep: NodeJS.Timeout | undefined;
  #connected = true;
  #closed = false;
  #statusIter: { stop(): void } | undefined;
  #stats = { requested: 0, served: 0, dropped: 0 };
  #dropWindowStart = 0;
  #dropWindowCount = 0;

  /** `nc` is shared, not owned: `close()` leaves it open. */
  constructor(nc: NatsConnection, options: NatsBusOptionsInput, logger: Logger) {
    this.options = parseNatsBusOptions(options);
    this.#nc = nc;
    this.#key = hostKeyFromSeed(this.options.hostSeed);
    this.#log = logger.child({ bus: 'nats', lattice: this.options.lattice });
    this.#allowed = new Set(this.options.allowedHosts);
    this.#inbox = createInbox();
    this.#inboxLen = this.#inbox.length + 1;
    this.#replySub = nc.subscribe(`${this.#inbox}.*`, { callback: (err, m) => (err ? this.#log.warn({ err: err.message }, 'reply subscription error') : this.#onReply(m)) });
    this.#connected = !nc.isClosed();
    void this.#watchStatus();
  }

  /** This host's public key (`N…`): the id its envelopes carry. */
  get hostId(): string {
    return this.#key.publicKey;
  }

  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  stats(): NatsBusStats {
    return { ...this.#stats, pending: this.#pending.size };
  }

  /** Resolves once the server has seen every subscription and message sent so far. */
  flush(): Promise<void> {
    return this.#nc.flush();
  }

  serve(target: BusTarget, handler: BusHandler): BusSubscription {
    if (this.#closed) throw new InvocationError('STOPPING', 'the NATS bus is closed');
    const subject = rpcSubject(this.options.lattice, target);
    const sub = this.#nc.subscribe(subject, {
      queue: this.options.queueGroup,
      callback: (err, m) => {
        if (err) {
          this.#log.warn({ err: err.message, target }, 'serve subscription error');
          return;
        }
        this.#onInvocation(target, handler, m);
      },
    });
    this.#serving.add(sub);
    this.#log.debug({ target, subject }, 'serving');
    return {
      close: () => {
        if (!this.#serving.delete(sub)) return;
        sub.unsubscribe();
      },
    };
  }

  request(inv: BusInvocation): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new InvocationError('STOPPING', 'the NATS bus is closed'));
    if (!this.#connected) return Promise.reject(new InvocationError('UNAVAILABLE', `lattice unavailable: NATS is disconnected, cannot reach ${inv.target}`));
    const now = Date.now();
    if (inv.deadline <= now) return Promise.reject(new InvocationError('DEADLINE_EXCEEDED', `deadline passed before ${inv.target} was called`));
    if (this.#pending.size >= this.options.maxPending) {
      return Promise.reject(new InvocationError('UNAVAILABLE', `lattice busy: ${this.#pending.size} calls in flight`));
    }
    const id = (this.#seq++).toString(36);
    let frame: Uint8Array;
    try {
      frame = encodeEnvelope(
        {
          id,
          origin: inv.origin,
          target: inv.target,
          operation: inv.operation,
          msg: inv.msg,
          hostId: this.#key.publicKey,
          deadline: inv.deadline,
          sent: now,
          ...(inv.actor !== undefined ? { actor: inv.actor } : {}),
          ...(inv.linkName !== undefined ? { linkName: inv.linkName } : {}),
          ...((inv as Partial<LatticeInvocation>).claims ? { claims: (inv as LatticeInvocation).claims } : {}),
        },
        this.#key,
        { sign: this.options.antiforgery },
      );
    } catch (err) {
      return Promise.reject(new InvocationError('BAD_PAYLOAD', `cannot encode invocation of ${inv.target}: ${(err as Error).message}`, { cause: err }));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, deadline: inv.deadline, target: inv.target, operation: inv.operation });
      this.#stats.requested++;
      try {
        this.#nc.publish(rpcSubject(this.options.lattice, inv.target), frame, { reply: `${this.#inbox}.${id}` });
      } catch (err) {
        this.#pending.delete(id);
        const code = (err as { code?: string }).code;
        if (code === 'MAX_PAYLOAD_EXCEEDED') {
          reject(new InvocationError('BAD_PAYLOAD', `invocation of ${inv.target} is too large for NATS (${frame.byteLength} bytes)`, { cause: err }));
        } else {
          reject(new InvocationError('UNAVAILABLE', `lattice unavailable: ${(err as Error).message}`, { cause: err }));
        }
        return;
      }
      if (this.#sweep === undefined) this.#startSweep();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of this.#serving) sub.unsubscribe();
    this.#serving.clear();
    this.#replySub.unsubscribe();
    this.#statusIter?.stop();
    this.#failAll('STOPPING', 'the NATS bus closed');
    this.#stopSweep();
    if (!this.#nc.isClosed()) await this.#nc.flush().catch(() => undefined);
  }

  // ------------------------------------------------------------------ serving side

  #onInvocation(target: string, handler: BusHandler, m: Msg): void {
    let env;
    try {
      env = decodeEnvelope(m.data, { allowedHosts: this.#allowed, keyCache: this.#keyCache, requireSignature: this.options.antiforgery });
    } catch (err) {
      this.#drop(m.subject, (err as Error).message);
      return;
    }
    if (env.target !== target) {
      this.#drop(m.subject, `envelope for ${env.target} arrived on the subject of ${target}`, env.hostId);
      return;
    }
    const now = Date.now();
    if (Math.abs(now - env.sent) > this.options.maxClockSkewMs) {
      this.#drop(m.subject, `envelope sent ${now - env.sent} ms from this host's clock (over ${this.options.maxClockSkewMs} ms: stale, replayed or clocks apart)`, env.hostId);
      return;
    }
    this.#stats.served++;
    const deadline = now + (env.deadline - env.sent);
    const reply = m.reply;
    if (deadline <= now) {
      if (reply) this.#respond(reply, encodeErrorReply('DEADLINE_EXCEEDED', `deadline passed before ${target} was called`));
      return;
    }
    const inv: LatticeInvocation = {
      origin: env.origin,
      target: env.target,
      operation: env.operation,
      msg: env.msg,
      deadline,
      fromHost: env.hostId,
      ...(env.actor !== undefined ? { actor: env.actor } : {}),
      ...(env.linkName !== undefined ? { linkName: env.linkName } : {}),
      ...(env.claims !== undefined ? { claims: env.claims } : {}),
    };
    let result: Promise<Uint8Array>;
    try {
      result = handler(inv);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (bytes) => {
        if (reply) this.#respond(reply, encodeOkReply(bytes instanceof Uint8Array ? bytes : new Uint8Array(0)));
      },
      (err: unknown) => {
        if (!reply) return;
        // Errors without a code of their own are reported as ERROR; the caller maps it by target kind.
        const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'ERROR';
        const message = err instanceof Error ? err.message : String(err);
        this.#respond(reply, encodeErrorReply(code, message));
      },
    );
  }

  #respond(reply: string, frame: Uint8Array): void {
    try {
      this.#nc.publish(reply, frame);
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'could not send a reply');
    }
  }

  /** Logs a dropped message: at most 20 lines per 10 s, then one line with the count. */
  #drop(subject: string, reason: string, fromHost?: string): void {
    this.#stats.dropped++;
    const now = Date.now();
    if (now - this.#dropWindowStart > 10_000) {
      if (this.#dropWindowCount > 20) this.#log.warn({ suppressed: this.#dropWindowCount - 20 }, 'more lattice messages were dropped');
      this.#dropWindowStart = now;
      this.#dropWindowCount = 0;
    }
    if (++this.#dropWindowCount <= 20) this.#log.warn({ subject, reason, ...(fromHost ? { fromHost } : {}) }, 'dropped lattice message');
  }

  // ------------------------------------------------------------------ calling side

  #onReply(m: Msg): void {
    const id = m.subject.slice(this.#inboxLen);
    const p = this.#pending.get(id);
    if (!p) return; // late reply to a call that already failed (deadline, disconnect)
    this.#pending.delete(id);
    const headers = m.headers;
    if (headers && headers.code === 503) {
      p.reject(new InvocationError('ACTOR_NOT_FOUND', `nothing on the lattice serves ${p.target}`));
      return;
    }
    let reply;
    try {
      reply = decodeReply(m.data);
    } catch (err) {
      p.reject(new InvocationError('BAD_PAYLOAD', `garbled reply from ${p.target}: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (reply.ok) {
      p.resolve(reply.result);
      return;
    }
    if (INVOCATION_CODES.has(reply.code)) {
      p.reject(new InvocationError(reply.code as InvocationErrorCode, reply.message));
    } else {
      // Provider errors keep their own code (BAD_REQUEST…) as the cause; the actor sees the message.
      const code: InvocationErrorCode = p.target.startsWith('provider.') ? 'PROVIDER_ERROR' : 'GUEST_ERROR';
      p.reject(new InvocationError(code, reply.message, { cause: { code: reply.code } }));
    }
  }

  #startSweep(): void {
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const [id, p] of this.#pending) {
        if (p.deadline <= now) {
          this.#pending.delete(id);
          p.reject(new InvocationError('DEADLINE_EXCEEDED', `${p.target} did not answer ${p.operation} in time`));
        }
      }
      if (this.#pending.size === 0) this.#stopSweep();
    }, this.options.sweepIntervalMs);
    this.#sweep.unref();
  }

  #stopSweep(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  #failAll(code: InvocationErrorCode, why: string): void {
    if (this.#pending.size === 0) return;
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) p.reject(new InvocationError(code, `${why}; the call to ${p.target} (${p.operation}) may or may not have run`));
  }

  async #watchStatus(): Promise<void> {
    // The iterator nats.js returns can be stopped; its declared type does not say so.
    const iter = this.#nc.status() as AsyncIterable<Status> & { stop(): void };
    this.#statusIter = iter;
    void this.#nc.closed().then(() => {
      this.#connected = false;
      this.#failAll('UNAVAILABLE', 'lattice unavailable: the NATS connection closed');
      iter.stop();
    });
    try {
      for await (const s of iter) {
        if (s.type === Events.Disconnect) {
          this.#connected = false;
          this.#failAll('UNAVAILABLE', 'lattice unavailable: NATS disconnected');
        } else if (s.type === Events.Reconnect) {
          this.#connected = true;
        }
      }
    } catch {
      // the iterator ends when the connection closes
    }
  }
}
