/**
 * The NATS bus: invocations that cross hosts travel as authenticated msgpack batches (see envelope.ts)
 * on `wasmlet.<lattice>.rpc.<target>` (see subjects.ts). Hosts call local targets directly; only
 * what lives elsewhere reaches this bus.
 *
 * Calling (outbound-calls.ts): calls are queued per target and flushed once per event-loop turn,
 * one NATS message per target per turn, signed, or tagged with a MAC for each host known to
 * serve the target; replies come back on one private inbox subscription. Failures are values,
 * never hangs:
 * - no subscriber for the target: the server's no-responders status (503) → ACTOR_NOT_FOUND;
 * - the deadline passes → DEADLINE_EXCEEDED;
 * - the connection is down (or drops with calls in flight) → UNAVAILABLE at once;
 * - the serving side failed → the same InvocationError code it raised, with its message.
 *
 * Serving: one queue-group subscription per target, so several hosts serving the same actor
 * share its load (at batch granularity). Every batch is verified once: on a closed lattice the
 * sender's credential (this lattice's issuer, not expired) and its signature, or this host's MAC
 * from a member it has verified; the sender's role (hosts and provider processes may call
 * actors, only hosts may call providers); the host allow-list; freshness; that it was not seen
 * before (session and sequence, replay.ts); the subject matching the signed target. Anything
 * else is dropped whole with a (rate-limited) log line and never answered. A batch this host
 * cannot authenticate for itself (tagged for other hosts only, or from a member it has not
 * verified yet) is declined (nothing runs; the caller sends it again, signed). Each item is
 * dispatched on its own and answered with id `id` under `reply`, the caller's inbox prefix from
 * the authenticated body; a turn's replies to one caller leave together at its end, as one reply
 * batch authenticated like the batch it answers (signed with this member's credential, or with a
 * MAC for the caller). A target that stops being served drains: batches already routed to it
 * are declined (not run), and their callers send them again elsewhere.
 *
 * Deadlines cross hosts as a budget: the receiver gives each item `deadline − sent` ms from
 * when the batch arrives, so clock offsets between hosts do not shorten or stretch calls.
 * `sent` must be within `maxClockSkewMs` of the receiver's clock (the freshness window).
 *
 * On an open lattice (`--insecure`) nothing is authenticated.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { createInbox, Events, type Msg, type NatsConnection, type Status, type Subscription } from 'nats';
import type { Bus, BusHandler, BusInvocation, BusSubscription, BusTarget } from '../bus.ts';
import { generateKeyPair, isPublicKey } from '../claims/keys.ts';
import { InvocationError, isBatchNotAddressed, isEnvelopeError, type LatticeDropReason } from '../errors.ts';
import { parseWith } from '../options.ts';
import type { ActorClaims } from '../types.ts';
import { decodeBatch, ENVELOPE_MACS, hostKeyFromSeed, MAX_BATCH_ITEMS, type HostKey, type ReceivedBatch } from './envelope.ts';
import type { LatticeTrust, MemberRole } from './membership.ts';
import type { PeerKeys } from './pair-keys.ts';
import { DECLINED, errorPayload, frameReplyBatch, REPLY_BATCH_TOKEN, REPLY_DECLINED, REPLY_ERROR, REPLY_OK, replyBatchEntrySize, type ReplyAuth } from './replies.ts';
import { OutboundCalls } from './outbound-calls.ts';
import { SequenceWindow } from './replay.ts';
import { rpcSubject } from './subjects.ts';

const EMPTY = new Uint8Array(0);

export const natsBusOptionsSchema = z
  .object({
    /**
     * On an open lattice only: this host's server nkey seed (`SN…`), whose public key is the host
     * id. Default: a fresh key. A closed lattice member's key is the one of its credential.
     */
    hostSeed: z.string().min(1).optional(),
    /** Accept invocations only from these host ids, on top of the membership checks. Empty (default): any member. */
    allowedHosts: z.array(z.string().refine((k) => isPublicKey(k, 'server'), 'a server public key (N…)')).default([]),
    /** Queue group name for served targets. Default `wasmlet`. */
    queueGroup: z.string().regex(/^[A-Za-z0-9_-]+$/).default('wasmlet'),
    /** How often calls in flight are checked against their deadlines, ms. Default 10. */
    sweepIntervalMs: z.number().int().min(1).max(1000).default(10),
    /** Batches sent further than this from the receiver's clock are refused (the freshness window of replay checks), ms. Default 60000. */
    maxClockSkewMs: z.number().int().min(1000).default(60_000),
    /** Calls one batch carries at most; more in one turn are split. Default 256. */
    maxBatchItems: z.number().int().min(1).max(MAX_BATCH_ITEMS).default(256),
    /**
     * Bytes one batch or reply batch may take at most, sent or received (the server's max payload
     * bounds it too). A call or a reply too large for it fails with PAYLOAD_TOO_LARGE (the HTTP
     * provider answers 502); a received message past it (plus room for the credential and tags)
     * is dropped before anything of it is decoded. Default 1 MiB.
     */
    maxBatchBytes: z.number().int().min(4096).default(1024 * 1024),
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

/** A served target; `closing` once its subscription drains (late batches are declined). */
interface Serving {
  sub: Subscription;
  closing: boolean;
}

export interface NatsBusStats {
  /** Calls sent / answered (any outcome) by this bus as caller. */
  requested: number;
  /** Invocations served by this bus's handlers. */
  served: number;
  /** Messages dropped as garbled, forged, stale, replayed, refused or misrouted (a dropped batch counts once). */
  dropped: number;
  /** The same, by reason. */
  droppedBy: Record<DropReason, number>;
  /** Reply batches dropped by this bus as caller (forged, from an unverified or unentitled member, garbled). */
  repliesDropped: number;
  /** Batch messages sent (each authenticated once on a closed lattice) / accepted. */
  batchesSent: number;
  batchesReceived: number;
  /** Messages that carried replies: a turn's replies to one caller share one. */
  replyMessages: number;
  /** Items this bus declined (arrived while it stopped serving their target, or in a batch without a MAC for it) / calls it sent again after a decline. */
  declined: number;
  /** Batches this host could not authenticate for itself (MACs for other hosts only, or a sender it has not verified): their items were declined. */
  unaddressed: number;
  resent: number;
  /** Calls in flight now (sent, or queued for the end of this turn). */
  pending: number;
}

/** Why a lattice message was dropped. */
export type DropReason = LatticeDropReason;

/** How a reply batch to one caller is authenticated: signed unless every batch it answers was MAC'd for this host. */
interface ReplyQueue {
  entries: (string | number | Uint8Array)[];
  /** The caller's keys, when replies may carry a MAC for it. */
  peer: PeerKeys | undefined;
  signed: boolean;
}

/** The way replies to one batch go back: its caller's inbox and how to authenticate them. */
interface ReplyMode {
  reply: string;
  peer: PeerKeys | undefined;
  signed: boolean;
}

/** Which roles may call a target: hosts and provider processes call actors; only hosts call providers. */
function mayCall(role: MemberRole, target: string): boolean {
  return role === 'host' || (role === 'provider' && target.startsWith('actor.'));
}

export class NatsBus implements Bus {
  readonly options: NatsBusOptions;
  readonly trust: LatticeTrust;
  readonly #nc: NatsConnection;
  readonly #log: Logger;
  readonly #key: HostKey;
  readonly #allowed: ReadonlySet<string>;
  readonly #window: SequenceWindow;
  /** Messages received past this are dropped unread: a batch's bound plus room for a credential and tags. */
  readonly #maxReceived: number;
  readonly #calls: OutboundCalls;
  readonly #replySub: Subscription;
  readonly #serving = new Set<Serving>();
  /** Subscriptions draining after close (their late batches are declined). */
  readonly #draining = new Set<Promise<void>>();
  /** Replies of this turn by the caller's reply prefix: id, status, payload, id, status, payload… */
  #replies = new Map<string, ReplyQueue>();
  #replyTimer: NodeJS.Immediate | undefined;
  readonly #flushReplies = () => this.#sendReplies();
  #connected = true;
  #closed = false;
  #statusIter: { stop(): void } | undefined;
  #stats = { served: 0, dropped: 0, batchesReceived: 0, declined: 0, unaddressed: 0, replyMessages: 0 };
  readonly #droppedBy: Record<DropReason, number> = { malformed: 0, forged: 0, refused: 0, stale: 0, replayed: 0, misrouted: 0, oversized: 0 };
  #dropWindowStart = 0;
  #dropWindowCount = 0;

  /**
   * `nc` is shared, not owned: `close()` leaves it open. `trust` says which lattice this bus
   * belongs to and what it accepts (a closed lattice's member credential, or an open lattice).
   */
  constructor(nc: NatsConnection, trust: LatticeTrust, options: NatsBusOptionsInput, logger: Logger) {
    this.options = parseNatsBusOptions(options);
    this.trust = trust;
    this.#nc = nc;
    if (!trust.insecure && this.options.hostSeed !== undefined) throw new InvocationError('BAD_PAYLOAD', 'a closed lattice member signs with the key of its credential; hostSeed is for open lattices only');
    this.#key = hostKeyFromSeed(trust.self?.seed ?? this.options.hostSeed ?? generateKeyPair('server').seed);
    this.#log = logger.child({ bus: 'nats', lattice: trust.lattice });
    this.#allowed = new Set(this.options.allowedHosts);
    this.#window = new SequenceWindow({ freshnessMs: this.options.maxClockSkewMs });
    this.#maxReceived = this.options.maxBatchBytes + 16 * 1024;
    const inbox = createInbox();
    this.#calls = new OutboundCalls(nc, { ...this.options, trust, maxReceivedBytes: this.#maxReceived }, this.#key, inbox, () => this.connected, (where, reason) => this.#dropReply(where, reason));
    this.#replySub = nc.subscribe(`${inbox}.*`, { callback: (err, m) => (err ? this.#log.warn({ err: err.message }, 'reply subscription error') : this.#calls.onReply(m)) });
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
    return { ...this.#stats, droppedBy: { ...this.#droppedBy }, ...this.#calls.stats, pending: this.#calls.inFlight };
  }

  /** Sends what this turn queued, then resolves once the server has seen every subscription and message sent so far. */
  flush(): Promise<void> {
    this.#calls.flushNow();
    return this.#nc.flush();
  }

  serve(target: BusTarget, handler: BusHandler): BusSubscription {
    if (this.#closed) throw new InvocationError('STOPPING', 'the NATS bus is closed');
    const subject = rpcSubject(this.trust.prefix, target);
    const serving: Serving = {
      closing: false,
      sub: this.#nc.subscribe(subject, {
        queue: this.options.queueGroup,
        callback: (err, m) => {
          if (err) {
            this.#log.warn({ err: err.message, target }, 'serve subscription error');
            return;
          }
          this.#onInvocation(target, serving.closing ? undefined : handler, m);
        },
      }),
    };
    this.#serving.add(serving);
    this.#log.debug({ target, subject }, 'serving');
    return { close: () => this.#stopServing(serving) };
  }

  /**
   * Stops serving without losing calls: the subscription drains (the server stops routing to
   * it; what it had already routed still arrives) and every item that arrives meanwhile is
   * declined, so its caller sends it again, to another host of the queue group if there is one.
   */
  #stopServing(serving: Serving): void {
    if (!this.#serving.delete(serving)) return;
    serving.closing = true;
    if (!this.#connected || this.#nc.isClosed()) {
      serving.sub.unsubscribe();
      return;
    }
    const drained = serving.sub.drain().catch(() => undefined);
    this.#draining.add(drained);
    void drained.then(() => this.#draining.delete(drained));
  }

  request(inv: BusInvocation): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new InvocationError('STOPPING', 'the NATS bus is closed'));
    if (!this.#connected) return Promise.reject(new InvocationError('UNAVAILABLE', `lattice unavailable: NATS is disconnected, cannot reach ${inv.target}`));
    return this.#calls.request(inv);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const serving of [...this.#serving]) this.#stopServing(serving);
    this.#replySub.unsubscribe();
    this.#statusIter?.stop();
    this.#calls.failAll('STOPPING', 'the NATS bus closed');
    if (this.#replyTimer !== undefined) {
      clearImmediate(this.#replyTimer);
      this.#sendReplies();
    }
    // Replies already answered go out before close returns; never wait on a connection that is
    // down (a flush would wait for the reconnect), and never long.
    if (!this.#nc.isClosed() && this.#connected) {
      let timer: NodeJS.Timeout | undefined;
      const settled = Promise.all([...this.#draining, this.#nc.flush().catch(() => undefined)]);
      await Promise.race([settled, new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
      clearTimeout(timer);
      // Declines of batches that arrived while draining are replies of this turn.
      if (this.#replyTimer !== undefined) {
        clearImmediate(this.#replyTimer);
        this.#sendReplies();
      }
    }
  }

  // ------------------------------------------------------------------ serving side

  /** `handler` is undefined while the subscription drains: verified items are then declined. */
  #onInvocation(target: string, handler: BusHandler | undefined, m: Msg): void {
    if (m.data.byteLength > this.#maxReceived) {
      this.#drop('oversized', m.subject, `a message of ${m.data.byteLength} bytes (at most ${this.#maxReceived})`);
      return;
    }
    let batch: ReceivedBatch;
    try {
      batch = decodeBatch(m.data, { trust: this.trust, receiver: this.#key, allowedHosts: this.#allowed });
    } catch (err) {
      if (isBatchNotAddressed(err)) {
        // Authenticated for other hosts only, or by a member this host has not verified: run
        // nothing; the signed declines tell the caller who this host is, and it sends the items
        // again with its credential.
        const why = errorPayload(DECLINED, `host ${this.hostId} could not authenticate the batch for itself (${err.message})`);
        const mode: ReplyMode = { reply: err.reply, peer: undefined, signed: true };
        for (const id of err.ids) this.#respond(mode, id, REPLY_DECLINED, why);
        this.#stats.declined += err.ids.length;
        this.#stats.unaddressed++;
        return;
      }
      this.#drop(isEnvelopeError(err) ? err.reason : 'malformed', m.subject, (err as Error).message);
      return;
    }
    if (batch.target !== target) {
      this.#drop('misrouted', m.subject, `batch for ${batch.target} arrived on the subject of ${target}`, batch.hostId);
      return;
    }
    const sender = batch.sender;
    if (sender && !mayCall(sender.role, target)) {
      this.#drop('refused', m.subject, `a ${sender.role} (${sender.hostId}) may not call ${target}`, batch.hostId);
      return;
    }
    const now = Date.now();
    if (Math.abs(now - batch.sent) > this.options.maxClockSkewMs) {
      this.#drop('stale', m.subject, `batch sent ${now - batch.sent} ms from this host's clock (over ${this.options.maxClockSkewMs} ms: stale, replayed or clocks apart)`, batch.hostId);
      return;
    }
    if (sender && !this.#window.accept(batch.hostId, batch.session, batch.seq, batch.sent, now)) {
      this.#drop('replayed', m.subject, `batch ${batch.seq} of session ${batch.session} seen before`, batch.hostId);
      return;
    }
    this.#stats.batchesReceived++;
    // Replies mirror the batch: a MAC for the caller when it tagged this host (it has verified
    // this host), else signed with this member's credential.
    const mode: ReplyMode = { reply: batch.reply, peer: undefined, signed: !this.trust.insecure };
    if (sender && m.data[0] === ENVELOPE_MACS) {
      mode.peer = this.#key.peer(batch.hostId);
      mode.signed = mode.peer === undefined;
    }
    if (!handler) {
      const why = errorPayload(DECLINED, `${target} is no longer served by host ${this.hostId}`);
      for (const item of batch.items) this.#respond(mode, item.id, REPLY_DECLINED, why);
      this.#stats.declined += batch.items.length;
      return;
    }
    for (const item of batch.items) {
      this.#stats.served++;
      const id = item.id;
      const deadline = now + (item.deadline - batch.sent);
      if (deadline <= now) {
        this.#respond(mode, id, REPLY_ERROR, errorPayload('DEADLINE_EXCEEDED', `deadline passed before ${target} was called`));
        continue;
      }
      // Every field written, absent ones as undefined: one object shape for every invocation.
      const inv: LatticeInvocation = {
        origin: item.origin,
        target,
        operation: item.operation,
        msg: item.msg,
        deadline,
        fromHost: batch.hostId,
        actor: item.actor,
        linkName: item.linkName,
        claims: item.claims,
      };
      let result: Promise<Uint8Array>;
      try {
        result = handler(inv);
      } catch (err) {
        result = Promise.reject(err);
      }
      result.then(
        (bytes) => this.#respond(mode, id, REPLY_OK, bytes instanceof Uint8Array ? bytes : EMPTY),
        (err: unknown) => {
          // Errors without a code of their own are reported as ERROR; the caller maps it by target kind.
          const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'ERROR';
          const message = err instanceof Error ? err.message : String(err);
          this.#respond(mode, id, REPLY_ERROR, errorPayload(code, message));
        },
      );
    }
  }

  /**
   * Replies wait for the end of the turn too: each caller then gets its replies of the turn in
   * one reply batch (a lone reply too), split at the batch byte bound.
   */
  #respond(mode: ReplyMode, id: string, status: number, payload: Uint8Array): void {
    let queue = this.#replies.get(mode.reply);
    if (queue === undefined) {
      queue = { entries: [], peer: mode.peer, signed: mode.signed };
      this.#replies.set(mode.reply, queue);
    } else if (mode.signed) {
      queue.signed = true;
    }
    queue.entries.push(id, status, payload);
    if (this.#replyTimer === undefined) this.#replyTimer = setImmediate(this.#flushReplies);
  }

  #sendReplies(): void {
    this.#replyTimer = undefined;
    const replies = this.#replies;
    this.#replies = new Map();
    const token = this.trust.self?.token ?? '';
    const maxBytes = Math.min(this.options.maxBatchBytes, this.#nc.info?.max_payload ?? Infinity) - 3 - Math.max(token.length + 64, this.hostId.length);
    for (const [replyTo, queue] of replies) {
      this.#capReplies(queue.entries, maxBytes);
      const auth: ReplyAuth = this.trust.insecure
        ? { kind: 'open', hostId: this.hostId }
        : queue.signed || queue.peer === undefined
          ? { kind: 'signed', token, key: this.#key }
          : { kind: 'mac', key: this.#key, peer: queue.peer };
      const list = queue.entries;
      let start = 0;
      let bytes = 0;
      for (let i = 0; i < list.length; i += 3) {
        const size = replyBatchEntrySize(list[i] as string, list[i + 2] as Uint8Array);
        if (i > start && bytes + size > maxBytes) {
          this.#publishReplies(replyTo, auth, list.slice(start, i));
          start = i;
          bytes = 0;
        }
        bytes += size;
      }
      this.#publishReplies(replyTo, auth, list.slice(start));
    }
  }

  /** Replaces each reply too large for any message with a PAYLOAD_TOO_LARGE error, so its caller hears why. */
  #capReplies(list: (string | number | Uint8Array)[], maxBytes: number): void {
    for (let i = 0; i < list.length; i += 3) {
      const payload = list[i + 2] as Uint8Array;
      if (replyBatchEntrySize(list[i] as string, payload) <= maxBytes) continue;
      list[i + 1] = REPLY_ERROR;
      list[i + 2] = errorPayload('PAYLOAD_TOO_LARGE', `the answer (${payload.byteLength} bytes) is larger than a lattice message may be (${maxBytes} bytes)`);
    }
  }

  #publishReplies(replyTo: string, auth: ReplyAuth, entries: (string | number | Uint8Array)[]): void {
    try {
      this.#nc.publish(`${replyTo}.${REPLY_BATCH_TOKEN}`, frameReplyBatch(auth, replyTo, entries));
      this.#stats.replyMessages++;
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'could not send replies');
    }
  }

  /** Logs a dropped message: at most 20 lines per 10 s, then one line with the count. */
  #drop(reason: DropReason, subject: string, detail: string, fromHost?: string): void {
    this.#stats.dropped++;
    this.#droppedBy[reason]++;
    const now = Date.now();
    if (now - this.#dropWindowStart > 10_000) {
      if (this.#dropWindowCount > 20) this.#log.warn({ suppressed: this.#dropWindowCount - 20 }, 'more lattice messages were dropped');
      this.#dropWindowStart = now;
      this.#dropWindowCount = 0;
    }
    if (++this.#dropWindowCount <= 20) this.#log.warn({ subject, reason, detail, ...(fromHost ? { fromHost } : {}) }, 'dropped lattice message');
  }

  /** A reply batch the calling side dropped (forged, unverified, unentitled): logged like other drops. */
  #dropReply(where: string, detail: string): void {
    const now = Date.now();
    if (now - this.#dropWindowStart > 10_000) {
      this.#dropWindowStart = now;
      this.#dropWindowCount = 0;
    }
    if (++this.#dropWindowCount <= 20) this.#log.warn({ subject: where, detail }, 'dropped lattice reply');
  }

  async #watchStatus(): Promise<void> {
    // The iterator nats.js returns can be stopped; its declared type does not say so.
    const iter = this.#nc.status() as AsyncIterable<Status> & { stop(): void };
    this.#statusIter = iter;
    void this.#nc.closed().then(() => {
      this.#connected = false;
      this.#calls.failAll('UNAVAILABLE', 'lattice unavailable: the NATS connection closed');
      iter.stop();
    });
    try {
      for await (const s of iter) {
        if (s.type === Events.Disconnect) {
          this.#connected = false;
          this.#calls.failAll('UNAVAILABLE', 'lattice unavailable: NATS disconnected');
        } else if (s.type === Events.Reconnect) {
          this.#connected = true;
        }
      }
    } catch {
      // the iterator ends when the connection closes
    }
  }
}
