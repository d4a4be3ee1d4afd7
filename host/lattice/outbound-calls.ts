/**
 * The calling side of the NATS bus: calls queue per target during an event-loop turn and leave
 * at its end (`setImmediate`) as authenticated batches (see envelope.ts), one NATS message per
 * target, split at the item and byte bounds. A batch to a target is tagged with a MAC for each
 * member that answered calls to it lately (with a verified credential and a role entitled to
 * serve it), and signed (with this member's credential) when there is none yet, or when it
 * carries a call that was declined (it may reach a host not tagged).
 * Replies come back on one wildcard subscription of a private inbox (`_INBOX.<nuid>.*`) as
 * authenticated reply batches (replies.ts): a reply is accepted only from a member entitled to
 * answer the call (a host for actors; a host or provider process for providers), and only for a
 * call this bus sent and has not settled; anything else is dropped and the call keeps waiting
 * for a genuine answer (or its deadline). A batch's ids are consecutive, and its message's own
 * reply subject `<inbox>.<first>-<last>` only ever receives the server's no-responders status
 * (503), which fails that batch's calls at once.
 * One interval timer, running only while calls are in flight, sweeps calls past their deadline.
 * A call declined by a host that stopped serving its target (it was not run) is sent again.
 */
import { randomBytes } from 'node:crypto';
import type { Msg, NatsConnection } from 'nats';
import type { BusInvocation } from '../bus.ts';
import { InvocationError, type InvocationErrorCode } from '../errors.ts';
import type { ActorClaims } from '../types.ts';
import { batchOverhead, encodeItem, frameBatch, OPEN_AUTH, type BatchAuth, type BatchHeader, type HostKey } from './envelope.ts';
import type { LatticeTrust, MemberRole } from './membership.ts';
import type { PeerKeys } from './pair-keys.ts';
import { decodeReply, readReplyBatch, REPLY_BATCH_TOKEN, REPLY_OK, type Responder } from './replies.ts';
import { rpcSubject } from './subjects.ts';

/** What the calling side needs of the bus options (see `NatsBusOptions`). */
export interface OutboundOptions {
  /** The lattice's subject prefix and what this member trusts. */
  trust: LatticeTrust;
  maxBatchItems: number;
  maxBatchBytes: number;
  maxPending: number;
  sweepIntervalMs: number;
  /** Reply messages past this are dropped unread. */
  maxReceivedBytes: number;
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
  'PAYLOAD_TOO_LARGE',
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

/** Who may answer calls to `target`: a host for actors; a host or a provider process for providers. */
export function entitled(role: MemberRole, target: string): boolean {
  return role === 'host' || (role === 'provider' && target.startsWith('provider.'));
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
  readonly auth: BatchAuth;
  /** How a batch that must be signed is authenticated (the same as `auth` when that is already signed). */
  readonly signed: BatchAuth;
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
  /**
   * It ran a call of this member's (so it has verified this member's credential) since it last
   * declined one. Batches are tagged only while every known host of the target is confirmed;
   * until then they go signed, carrying the credential, so that a host that joined (or forgot
   * this member) learns it.
   */
  confirmed: boolean;
}

export class OutboundCalls {
  readonly stats = { requested: 0, batchesSent: 0, resent: 0, repliesDropped: 0 };
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
  /** This bus's session id and its batch counter: every batch it sends is unique (replay.ts). */
  readonly #session = randomBytes(9).toString('base64url');
  #batchSeq = 0;
  #sweep: NodeJS.Timeout | undefined;
  /** Hosts that answered calls to a target lately, by target, least recent first. */
  readonly #receivers = new Map<string, Map<string, Receiver>>();
  /** Set by `#settle`: the reply it settled was a decline. */
  #settledDeclined = false;

  readonly #replyOptions: { trust: LatticeTrust; key: HostKey; reply: string };
  readonly #onDrop: ((where: string, reason: string) => void) | undefined;

  constructor(nc: NatsConnection, options: OutboundOptions, key: HostKey, inbox: string, usable: () => boolean, onDrop?: (where: string, reason: string) => void) {
    this.#nc = nc;
    this.#options = options;
    this.#key = key;
    this.#inbox = inbox;
    this.#replyOptions = { trust: options.trust, key, reply: inbox };
    this.#onDrop = onDrop;
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
    const trust = this.#options.trust;
    const subject = rpcSubject(trust.prefix, target);
    // seq is set per published batch; the upper bound below assumes the widest number.
    const header: BatchHeader = { hostId: this.#key.publicKey, target, sent: now, reply: this.#inbox, session: this.#session, seq: Number.MAX_SAFE_INTEGER };
    const signed: BatchAuth = trust.insecure ? OPEN_AUTH : { kind: 'signed', token: trust.self!.token };
    const macFor = trust.insecure ? undefined : this.#receiversOf(target, now);
    const auth: BatchAuth = macFor ? { kind: 'mac', peers: macFor } : signed;
    const maxItems = this.#options.maxBatchItems;
    // Upper bound of what a batch adds around its items (the array header is widest past 15 items).
    const overhead = Math.max(batchOverhead(header, 0xffff, signed), batchOverhead(header, 0xffff, auth));
    // Batch state in one object and the publishing in a method, not a closure (the TypeScript
    // loader names every arrow function it creates with Object.defineProperty, a slow path in V8).
    const b: OutgoingBatch = { subject, header, target, auth, signed, overhead, items: [], entries: [], first: 0, bytes: overhead, mustSign: false };
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
        c.reject(new InvocationError('PAYLOAD_TOO_LARGE', `invocation of ${target} is larger than a lattice message may be (${item.byteLength} bytes, at most ${maxBytes - overhead})`));
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
      b.header.seq = this.#batchSeq++;
      this.#nc.publish(b.subject, frameBatch(b.header, items, this.#key, b.mustSign ? b.signed : b.auth), { reply: `${this.#inbox}.${first.toString(36)}-${last.toString(36)}` });
      this.stats.batchesSent++;
    } catch (err) {
      for (let i = 0; i < sent.length; i++) this.#pending.delete((first + i).toString(36));
      const code = (err as { code?: string }).code;
      const failure =
        code === 'MAX_PAYLOAD_EXCEEDED'
          ? new InvocationError('PAYLOAD_TOO_LARGE', `a batch of ${sent.length} invocations of ${target} is too large for NATS`, { cause: err })
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
      if (m.data.byteLength > this.#options.maxReceivedBytes) {
        this.stats.repliesDropped++;
        this.#onDrop?.(m.subject, `a reply message of ${m.data.byteLength} bytes (at most ${this.#options.maxReceivedBytes})`);
        return;
      }
      let target: string | undefined;
      let targetDeclined = false;
      let other: Map<string, boolean> | undefined;
      let responder: Responder;
      try {
        responder = readReplyBatch(m.data, this.#replyOptions, (one, frame, from) => {
          this.#settledDeclined = false;
          const t = this.#settle(one, frame, from);
          if (t === undefined) return;
          const declined = this.#settledDeclined;
          if (t === target) targetDeclined ||= declined;
          else if (target === undefined) {
            target = t;
            targetDeclined = declined;
          } else (other ??= new Map()).set(t, (other.get(t) ?? false) || declined);
        });
      } catch (err) {
        // Forged, from a member this caller has not verified, or garbled past some point: the
        // calls it did not answer keep waiting for a genuine reply (or their deadline).
        this.stats.repliesDropped++;
        this.#onDrop?.(m.subject, (err as Error).message);
        return;
      }
      // The member answered calls to these targets: tag later batches to them for it.
      if (target !== undefined && responder.member !== undefined) {
        const now = Date.now();
        this.#learn(target, responder.hostId, now, !targetDeclined);
        if (other) for (const [t, declined] of other) this.#learn(t, responder.hostId, now, !declined);
      }
      return;
    }
    // Anything else on the inbox but the server's no-responders status of a batch is ignored.
    if (id.includes('-') && m.headers?.code === 503 && m.data.byteLength === 0) this.#onNoResponders(id);
  }

  /**
   * Settles call `id` with its reply frame (or the server's no-responders status). Returns the
   * call's target when the frame was a well-formed reply to a call waiting for it.
   */
  #settle(id: string, frame: Uint8Array, from: Responder): string | undefined {
    const p = this.#pending.get(id);
    if (!p) return undefined; // late reply to a call that already failed (deadline, disconnect)
    if (from.member !== undefined && !entitled(from.member.role, p.target)) {
      // An admitted member, but not one that may answer this call (a provider answering for an actor).
      this.stats.repliesDropped++;
      this.#onDrop?.(p.target, `a ${from.member.role} (${from.hostId}) may not answer calls to ${p.target}`);
      return undefined;
    }
    this.#pending.delete(id);
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
      // Not run: the host that got it stops serving the target, or could not authenticate the
      // batch for itself. Send it again, signed, while time allows.
      this.#settledDeclined = true;
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

  /**
   * Host `hostId` answered calls to `target` (ran them when `confirmed`, else declined some): later
   * batches to it carry a MAC for that host once every known host of the target is confirmed.
   */
  #learn(target: string, hostId: string, now: number, confirmed: boolean): void {
    let known = this.#receivers.get(target);
    const entry = known?.get(hostId);
    if (entry) {
      entry.seen = now;
      entry.confirmed = confirmed;
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
    known.set(hostId, { peer, seen: now, confirmed });
    if (known.size > MAX_TAGS) known.delete(known.keys().next().value!);
  }

  /**
   * The keys of the hosts that answered calls to `target` lately; undefined when there are none,
   * or when one of them has not confirmed it knows this member (the batch then goes signed).
   */
  #receiversOf(target: string, now: number): PeerKeys[] | undefined {
    const known = this.#receivers.get(target);
    if (!known) return undefined;
    let peers: PeerKeys[] | undefined;
    let unconfirmed = false;
    for (const [hostId, r] of known) {
      if (now - r.seen > RECEIVER_TTL_MS) known.delete(hostId);
      else {
        (peers ??= []).push(r.peer);
        if (!r.confirmed) unconfirmed = true;
      }
    }
    if (known.size === 0) this.#receivers.delete(target);
    return unconfirmed ? undefined : peers;
  }

  /**
   * The server's no-responders status on a batch's own reply subject: nobody serves the target,
   * so the batch's calls fail now rather than at their deadline.
   */
  #onNoResponders(token: string): void {
    const [firstText, lastText] = token.split('-');
    const first = parseInt(firstText ?? '', 36);
    const last = parseInt(lastText ?? '', 36);
    if (!(first >= 0 && last >= first && last - first < this.#options.maxBatchItems)) return;
    for (let seq = first; seq <= last; seq++) {
      const id = seq.toString(36);
      const p = this.#pending.get(id);
      if (!p) continue;
      this.#pending.delete(id);
      p.reject(new InvocationError('ACTOR_NOT_FOUND', `nothing on the lattice serves ${p.target}`));
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
