/**
 * The calling side of the NATS bus: calls queue per target during an event-loop turn and leave
 * at its end (`setImmediate`) as authenticated batches (see envelope.ts), one NATS message per
 * target, split at the item and byte bounds. A batch to a target is tagged with a MAC for each
 * host that answered calls to it lately (reply batches name their host), and signed when there
 * is none yet, or when it carries a call that was declined (it may reach a host not tagged).
 * Replies come back on one wildcard subscription of a private inbox (`_INBOX.<nuid>.*`): the
 * last token is the call's correlation id, looked up in a map. A batch's ids are consecutive,
 * and its message's own reply subject `<inbox>.<first>-<last>` only ever receives the server's
 * no-responders status (503), which fails that batch's calls at once.
 * One interval timer, running only while calls are in flight, sweeps calls past their deadline.
 * A call declined by a host that stopped serving its target (it was not run) is sent again.
 */
import type { Msg, NatsConnection } from 'nats';
import type { BusInvocation } from '../bus.ts';
import { InvocationError, type InvocationErrorCode } from '../errors.ts';
import type { ActorClaims } from '../types.ts';
import { batchOverhead, encodeItem, frameBatch, type BatchHeader, type HostKey } from './envelope.ts';
import type { PeerKeys } from './pair-keys.ts';
import { decodeReply, readReplyBatch, REPLY_BATCH_TOKEN, REPLY_OK } from './replies.ts';
import { rpcSubject } from './subjects.ts';

/** What the calling side needs of the bus options (see `NatsBusOptions`). */
export interface OutboundOptions {
  lattice: string;
  antiforgery: boolean;
  maxBatchItems: number;
  maxBatchBytes: number;
  maxPending: number;
  sweepIntervalMs: number;
}

/** InvocationError codes a reply may carry as they are; others map to PROVIDER_ERROR / GUEST_ERROR. */
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

/** A call: queued for the end of the turn, then sent and waiting for its reply. */
interface Call {
  inv: BusInvocation & { claims?: ActorClaims };
  target: string;
  resolve: (v: Uint8Array) => void;
  reject: (e: unknown) => void;
  /** Times it was declined by a host that stopped serving the target, and sent again. */
  resends: number;
  /** Sign the batch that carries it (a resend: it may reach a host the caller has no MAC for). */
  sign: boolean;
}

/** A declined call is sent again at most this many times. */
const MAX_RESENDS = 3;
/** Hosts a batch is tagged for at most: the ones that answered calls to its target most recently. */
const MAX_TAGS = 16;
/** A host that has not answered calls to a target for this long is no longer tagged for it. */
const RECEIVER_TTL_MS = 5 * 60_000;

/** The batch being filled for one target during a flush. */
interface OutgoingBatch {
  readonly subject: string;
  readonly header: BatchHeader;
  readonly target: string;
  readonly sign: boolean;
  readonly macFor: PeerKeys[] | undefined;
  /** Bytes a batch adds around its items (upper bound). */
  readonly overhead: number;
  items: Uint8Array[];
  entries: Call[];
  /** Correlation id (sequence number) of the first item. */
  first: number;
  bytes: number;
  /** Some call must go signed (it was declined for want of a MAC). */
  mustSign: boolean;
}

interface Receiver {
  peer: PeerKeys;
  seen: number;
}

export class OutboundCalls {
  readonly stats = { requested: 0, batchesSent: 0, resent: 0 };
  readonly #nc: NatsConnection;
  readonly #options: OutboundOptions;
  readonly #key: HostKey;
  readonly #inbox: string;
  readonly #inboxLen: number;
  /** False while the connection is down or the bus closed: queued calls then fail instead of leaving. */
  readonly #usable: () => boolean;
  readonly #pending = new Map<string, Call>();
  /** Calls queued this turn, by target (insertion order is kept within a target). */
  #queues = new Map<string, Call[]>();
  #queued = 0;
  #flushTimer: NodeJS.Immediate | undefined;
  readonly #flushQueues = () => this.#flush();
  #seq = 0;
  #sweep: NodeJS.Timeout | undefined;
  /** Hosts that answered calls to a target lately, by target, least recent first. */
  readonly #receivers = new Map<string, Map<string, Receiver>>();

  constructor(nc: NatsConnection, options: OutboundOptions, key: HostKey, inbox: string, usable: () => boolean) {
    this.#nc = nc;
    this.#options = options;
    this.#key = key;
    this.#inbox = inbox;
    this.#inboxLen = inbox.length + 1;
    this.#usable = usable;
  }

  /** Calls sent and not answered, plus calls queued for the end of this turn. */
  get inFlight(): number {
    return this.#pending.size + this.#queued;
  }

  /** Queues a call for this turn's batch to its target. The bus checked that it may be sent. */
  request(inv: Call['inv']): Promise<Uint8Array> {
    if (inv.deadline <= Date.now()) return Promise.reject(new InvocationError('DEADLINE_EXCEEDED', `deadline passed before ${inv.target} was called`));
    const inFlight = this.inFlight;
    if (inFlight >= this.#options.maxPending) {
      return Promise.reject(new InvocationError('UNAVAILABLE', `lattice busy: ${inFlight} calls in flight`));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#enqueue({ inv, target: inv.target, resolve, reject, resends: 0, sign: false });
      this.stats.requested++;
    });
  }

  /** Sends what this turn queued now rather than at the end of the turn. */
  flushNow(): void {
    if (this.#flushTimer === undefined) return;
    clearImmediate(this.#flushTimer);
    this.#flush();
  }

  /** Fails every call queued or in flight (disconnect, close). */
  failAll(code: InvocationErrorCode, why: string): void {
    if (this.#flushTimer !== undefined) clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#queued > 0) {
      const queues = this.#queues;
      this.#queues = new Map();
      this.#queued = 0;
      for (const [target, calls] of queues) for (const c of calls) c.reject(new InvocationError(code, `${why}; the call to ${target} (${c.inv.operation}) was not sent`));
    }
    if (this.#pending.size > 0) {
      const all = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of all) p.reject(new InvocationError(code, `${why}; the call to ${p.target} (${p.inv.operation}) may or may not have run`));
    }
    this.#stopSweep();
  }

  #enqueue(call: Call): void {
    let queue = this.#queues.get(call.target);
    if (!queue) {
      queue = [];
      this.#queues.set(call.target, queue);
    }
    queue.push(call);
    this.#queued++;
    if (this.#flushTimer === undefined) this.#flushTimer = setImmediate(this.#flushQueues);
  }

  /** End of the turn: every target's queued calls go out as batches. */
  #flush(): void {
    this.#flushTimer = undefined;
    const queues = this.#queues;
    this.#queues = new Map();
    this.#queued = 0;
    if (!this.#usable()) {
      // The connection dropped (or the bus closed) during this turn: fail fast rather than sit
      // in nats.js's reconnect buffer.
      for (const [target, calls] of queues) {
        for (const c of calls) c.reject(new InvocationError('UNAVAILABLE', `lattice unavailable: NATS is disconnected, cannot reach ${target}`));
      }
      return;
    }
    const maxBytes = Math.min(this.#options.maxBatchBytes, this.#nc.info?.max_payload ?? Infinity);
    const now = Date.now();
    for (const [target, calls] of queues) this.#sendBatches(target, calls, now, maxBytes);
    if (this.#pending.size > 0 && this.#sweep === undefined) this.#startSweep();
  }

  #sendBatches(target: string, calls: Call[], now: number, maxBytes: number): void {
    const subject = rpcSubject(this.#options.lattice, target);
    const header: BatchHeader = { hostId: this.#key.publicKey, target, sent: now, reply: this.#inbox };
    const sign = this.#options.antiforgery;
    const macFor = sign ? this.#receiversOf(target, now) : undefined;
    const maxItems = this.#options.maxBatchItems;
    // Upper bound of what a batch adds around its items (the array header is widest past 15 items).
    const overhead = Math.max(batchOverhead(header, 0xffff, { sign }), macFor ? batchOverhead(header, 0xffff, { macFor }) : 0);
    // Batch state in one object and the publishing in a method, not a closure (the TypeScript
    // loader names every arrow function it creates with Object.defineProperty, a slow path in V8).
    const b: OutgoingBatch = { subject, header, target, sign, macFor, overhead, items: [], entries: [], first: 0, bytes: overhead, mustSign: false };
    for (const c of calls) {
      const inv = c.inv;
      if (inv.deadline <= now) {
        c.reject(new InvocationError('DEADLINE_EXCEEDED', `deadline passed before ${target} was called`));
        continue;
      }
      const claims = inv.claims;
      let item: Uint8Array;
      try {
        // One object shape for every item (encodeItem leaves undefined fields out).
        item = encodeItem({ id: this.#seq.toString(36), origin: inv.origin, operation: inv.operation, msg: inv.msg, deadline: inv.deadline, actor: inv.actor, linkName: inv.linkName, claims: claims || undefined });
      } catch (err) {
        c.reject(new InvocationError('BAD_PAYLOAD', `cannot encode invocation of ${target}: ${(err as Error).message}`, { cause: err }));
        continue;
      }
      if (overhead + item.byteLength > maxBytes) {
        c.reject(new InvocationError('BAD_PAYLOAD', `invocation of ${target} is too large for NATS (${item.byteLength} bytes, at most ${maxBytes - overhead})`));
        continue;
      }
      if (b.items.length >= maxItems || b.bytes + item.byteLength > maxBytes) this.#publish(b);
      // Ids are consumed only by calls that are sent, so a batch's ids are consecutive.
      if (b.items.length === 0) b.first = this.#seq;
      this.#seq++;
      b.items.push(item);
      b.bytes += item.byteLength;
      if (c.sign) b.mustSign = true;
      b.entries.push(c);
    }
    this.#publish(b);
  }

  /** Publishes the batch `b` holds (if any) and empties it. */
  #publish(b: OutgoingBatch): void {
    const { items, entries: sent, first, target } = b;
    if (items.length === 0) return;
    const last = first + items.length - 1;
    for (let i = 0; i < sent.length; i++) this.#pending.set((first + i).toString(36), sent[i]!);
    try {
      const options = !b.sign ? { sign: false } : b.macFor && !b.mustSign ? { macFor: b.macFor } : {};
      this.#nc.publish(b.subject, frameBatch(b.header, items, this.#key, options), { reply: `${this.#inbox}.${first.toString(36)}-${last.toString(36)}` });
      this.stats.batchesSent++;
    } catch (err) {
      for (let i = 0; i < sent.length; i++) this.#pending.delete((first + i).toString(36));
      const code = (err as { code?: string }).code;
      const failure =
        code === 'MAX_PAYLOAD_EXCEEDED'
          ? new InvocationError('BAD_PAYLOAD', `a batch of ${sent.length} invocations of ${target} is too large for NATS`, { cause: err })
          : new InvocationError('UNAVAILABLE', `lattice unavailable: ${(err as Error).message}`, { cause: err });
      for (const p of sent) p.reject(failure);
    }
    b.items = [];
    b.entries = [];
    b.bytes = b.overhead;
    b.mustSign = false;
  }

  /** A message on the inbox: a reply to one call, the replies to several, or a status of a whole batch. */
  onReply(m: Msg): void {
    const id = m.subject.slice(this.#inboxLen);
    if (id === REPLY_BATCH_TOKEN) {
      let target: string | undefined;
      let other: Set<string> | undefined;
      let host: string;
      try {
        host = readReplyBatch(m.data, (one, frame) => {
          const t = this.#settle(one, frame);
          if (t === undefined || t === target) return;
          if (target === undefined) target = t;
          else (other ??= new Set()).add(t);
        });
      } catch {
        // Garbled past some point: the calls it did not answer fail at their deadline.
        return;
      }
      // The host answered calls to these targets: tag later batches to them for it.
      if (target !== undefined && this.#options.antiforgery) {
        const now = Date.now();
        this.#learn(target, host, now);
        if (other) for (const t of other) this.#learn(t, host, now);
      }
      return;
    }
    if (id.includes('-')) {
      this.#onBatchStatus(id, m);
      return;
    }
    this.#settle(id, m.data, m.headers?.code === 503);
  }

  /**
   * Settles call `id` with its reply frame (or the server's no-responders status). Returns the
   * call's target when the frame was a well-formed reply to a call waiting for it.
   */
  #settle(id: string, frame: Uint8Array, noResponders = false): string | undefined {
    const p = this.#pending.get(id);
    if (!p) return undefined; // late reply to a call that already failed (deadline, disconnect)
    this.#pending.delete(id);
    if (noResponders) {
      p.reject(new InvocationError('ACTOR_NOT_FOUND', `nothing on the lattice serves ${p.target}`));
      return undefined;
    }
    if (frame.byteLength > 0 && frame[0] === REPLY_OK) {
      p.resolve(frame.subarray(1));
      return p.target;
    }
    let reply;
    try {
      reply = decodeReply(frame);
    } catch (err) {
      p.reject(new InvocationError('BAD_PAYLOAD', `garbled reply from ${p.target}: ${(err as Error).message}`, { cause: err }));
      return undefined;
    }
    if (reply.ok) {
      p.resolve(reply.result);
      return p.target;
    }
    if (reply.declined) {
      // Not run: the host that got it stops serving the target, or had no MAC in the batch.
      // Send it again, signed, while time allows.
      if (p.resends < MAX_RESENDS && p.inv.deadline > Date.now() && this.#usable()) {
        this.stats.resent++;
        this.#enqueue({ inv: p.inv, target: p.target, resolve: p.resolve, reject: p.reject, resends: p.resends + 1, sign: true });
      } else {
        p.reject(new InvocationError('UNAVAILABLE', `${p.target} was declined by every host it was sent to (${p.resends + 1} times: ${reply.message})`));
      }
      return p.target;
    }
    if (INVOCATION_CODES.has(reply.code)) {
      p.reject(new InvocationError(reply.code as InvocationErrorCode, reply.message));
    } else {
      // Provider errors keep their own code (BAD_REQUEST…) as the cause; the actor sees the message.
      const code: InvocationErrorCode = p.target.startsWith('provider.') ? 'PROVIDER_ERROR' : 'GUEST_ERROR';
      p.reject(new InvocationError(code, reply.message, { cause: { code: reply.code } }));
    }
    return p.target;
  }

  /** Host `hostId` answered calls to `target`: later batches to it carry a MAC for that host. */
  #learn(target: string, hostId: string, now: number): void {
    let known = this.#receivers.get(target);
    const entry = known?.get(hostId);
    if (entry) {
      entry.seen = now;
      // Keep the map in order of last answer, so the least recent host is the first to go.
      known!.delete(hostId);
      known!.set(hostId, entry);
      return;
    }
    const peer = this.#key.peer(hostId);
    if (!peer) return; // not a server key: nothing to tag for (a garbled or forged reply)
    if (!known) {
      known = new Map();
      this.#receivers.set(target, known);
    }
    known.set(hostId, { peer, seen: now });
    if (known.size > MAX_TAGS) known.delete(known.keys().next().value!);
  }

  /** The keys of the hosts that answered calls to `target` lately; undefined when there are none. */
  #receiversOf(target: string, now: number): PeerKeys[] | undefined {
    const known = this.#receivers.get(target);
    if (!known) return undefined;
    let peers: PeerKeys[] | undefined;
    for (const [hostId, r] of known) {
      if (now - r.seen > RECEIVER_TTL_MS) known.delete(hostId);
      else (peers ??= []).push(r.peer);
    }
    if (known.size === 0) this.#receivers.delete(target);
    return peers;
  }

  /**
   * A message on a batch's own reply subject: the server's no-responders status (nobody serves
   * the target), or an answer from something that does not speak wasmlet batches. Either way
   * the batch's calls fail now rather than at their deadline.
   */
  #onBatchStatus(token: string, m: Msg): void {
    const [firstText, lastText] = token.split('-');
    const first = parseInt(firstText ?? '', 36);
    const last = parseInt(lastText ?? '', 36);
    if (!(first >= 0 && last >= first && last - first < this.#options.maxBatchItems)) return;
    const noResponders = m.headers?.code === 503;
    for (let seq = first; seq <= last; seq++) {
      const id = seq.toString(36);
      const p = this.#pending.get(id);
      if (!p) continue;
      this.#pending.delete(id);
      p.reject(
        noResponders
          ? new InvocationError('ACTOR_NOT_FOUND', `nothing on the lattice serves ${p.target}`)
          : new InvocationError('BAD_PAYLOAD', `garbled reply from ${p.target}: an answer to the whole batch, not to its calls`),
      );
    }
  }

  #startSweep(): void {
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const [id, p] of this.#pending) {
        if (p.inv.deadline <= now) {
          this.#pending.delete(id);
          p.reject(new InvocationError('DEADLINE_EXCEEDED', `${p.target} did not answer ${p.inv.operation} in time`));
        }
      }
      if (this.#pending.size === 0) this.#stopSweep();
    }, this.#options.sweepIntervalMs);
    this.#sweep.unref();
  }

  #stopSweep(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}
