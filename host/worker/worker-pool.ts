/**
 * The main-thread side of actor isolation: a fixed set of worker threads, each running one call
 * at a time. An actor gets at most `maxInstances` instances, each in a different worker.
 *
 * Fair share: an actor's calls run on at most `maxConcurrency` workers at once (the host's
 * default is one less than the worker count), so an actor whose calls spin until their deadline
 * never holds every worker; its other calls wait in its own queue, and queues are served
 * round-robin. Calls of other actors are not sent ahead behind a call of an actor that was
 * recently slow (a stalled or overrun call), so they do not wait for it to be taken back.
 *
 * Speed: calls are pipelined (up to `pipelineDepth` sent ahead to a worker) and sends are batched
 * per event-loop turn, so workers never wait on a thread round trip between calls.
 * Isolation: every call has a deadline; a worker whose call overruns is terminated and replaced.
 * Calls queued behind a call that runs longer than `stallMs` are taken back (a compare-and-swap
 * on a shared cell decides, so a call never runs twice) and served by other workers, so one
 * stuck actor never holds up the others.
 */
import type { Logger } from 'pino';
import { decode } from '../codec.ts';
import { InvocationError } from '../errors.ts';
import { hostReplyTooLarge, type PreparedActor } from '../runtime/runtime.ts';
import { CALL_RING_SIZE, sameRoutes, WORKER_DOOMED, WORKER_IDLE, type FromWorker, type GuestLogLine, type HostReply, type RouteTable, type WorkerLimits, type WorkItem } from './protocol.ts';
import { spawnSlot, writeHostReply, type WorkerSlot } from './slot.ts';

type Slot = WorkerSlot<CallRec>;

export interface WorkerPoolOptions {
  /** Number of worker threads. */
  size: number;
  logger: Logger;
  /** Answers an actor's host call (claims/link checks and routing happen there). */
  hostCall(actor: string, binding: string, namespace: string, operation: string, payload: Uint8Array, deadline: number): Promise<Uint8Array>;
  /** Receives the log lines a guest wrote during a call. */
  onLogs?(actor: string, lines: GuestLogLine[]): void;
  /** Told when a call of `actor` trapped or overran its deadline (the instance or worker was discarded). */
  onFailure?(actor: string, code: 'TRAP' | 'DEADLINE_EXCEEDED', message: string): void;
  /**
   * Calls sent ahead to one worker. Default 32 (at most 64): with fair share an actor alone on a
   * host runs on one worker less than there are, so one worker must be kept busy by itself
   * (measured on 2 cores: at 8, echo on one worker lost ~30% to the pool's round trips; at 32 it
   * did as well as on two).
   */
  pipelineDepth?: number;
  /** A call running longer than this (ms) makes its worker "stalled": queued calls move elsewhere. Default 20. */
  stallMs?: number;
  /** How often deadlines and stalls are checked (ms). Default 10. */
  sweepIntervalMs?: number;
  /**
   * A worker whose discarded instances (traps, unloaded actors) held this much linear memory in
   * total is replaced once its calls in progress are answered, so that memory goes back to the
   * system. Default 64 MiB.
   */
  retireAfterBytes?: number;
  /** Largest host-call payload an actor may send, and reply it may get, bytes. Default 2 MiB. */
  maxHostCallBytes?: number;
  /** Largest response an actor may answer a call with, bytes. Default 8 MiB. */
  maxResponseBytes?: number;
}

/** See WorkerPoolOptions.retireAfterBytes. */
export const DEFAULT_RETIRE_AFTER_BYTES = 64 * 1024 * 1024;
/** See WorkerPoolOptions. */
export const DEFAULT_MAX_HOST_CALL_BYTES = 2 * 1024 * 1024;
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface PoolActorOptions {
  maxInstances: number;
  /** Workers the actor's calls may occupy at once (calls sent ahead behind its own running call do not count). Default: `maxInstances`. */
  maxConcurrency?: number;
  deadlineMs: number;
  /** Config values the actor can read (components). */
  config?: Record<string, string>;
}

interface CallRec {
  id: number;
  seq: number;
  actor: ActorEntry;
  op: string;
  msg: Uint8Array;
  deadline: number;
  resolve(v: Uint8Array): void;
  reject(e: Error): void;
}

interface ActorEntry {
  id: string;
  prepared: PreparedActor;
  opts: PoolActorOptions;
  /** Workers that hold this actor (each holds at most one instance). */
  slots: Set<Slot>;
  /** Workers with calls of this actor sent and not answered, and how many: its share in use. */
  running: Map<Slot, number>;
  maxConcurrency: number;
  /** Until when (ms) other actors' calls are not sent ahead behind this actor's calls. */
  slowUntil: number;
  queue: CallRec[];
  inFlight: number;
  /** Worker routes: host calls the workers answer themselves. */
  routes: RouteTable;
  stopping: boolean;
  drained?: () => void;
}

const MAX_SEQ = 2 ** 30;
/** How long an actor whose call stalled a worker counts as slow. */
const SLOW_MS = 10_000;

/**
 * Posting a view to a worker copies the whole memory behind it, and call payloads are often views
 * into much larger blocks: a NATS read buffer (~64 KiB) or a shared allocation pool (8 KiB). Such
 * payloads are copied into one exact-size block per message first, so a message costs its bytes.
 */
export function compactPayloads(items: WorkItem[]): void {
  let total = 0;
  for (const item of items) if (item.t === 'call' && !ownsMemory(item.msg)) total += item.msg.byteLength;
  if (total === 0) return;
  const block = new Uint8Array(total);
  let at = 0;
  for (const item of items) {
    if (item.t !== 'call' || ownsMemory(item.msg)) continue;
    const n = item.msg.byteLength;
    block.set(item.msg, at);
    item.msg = block.subarray(at, at + n);
    at += n;
  }
}

function ownsMemory(view: Uint8Array): boolean {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
}

export class WorkerPool {
  readonly #opts: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #depth: number;
  readonly #stallMs: number;
  readonly #slots: Slot[] = [];
  readonly #actors = new Map<string, ActorEntry>();
  /** Actors with queued calls, in round-robin order. */
  readonly #pending = new Set<ActorEntry>();
  readonly #readyWaiters = new Set<() => void>();
  /**
   * Workers being started in place of one an actor's call overran, charged to that actor's share
   * until they are ready: otherwise its next call would take a worker the others still have.
   */
  readonly #charged = new Map<Slot, ActorEntry>();
  #nextId = 1;
  #closed = false;
  /** Runs only while calls are outstanding or queued: an idle host does not wake up. */
  #sweep: NodeJS.Timeout | undefined = undefined;
  #restarts = 0;
  #recycled = 0;
  #crashBackoffMs = 0;
  #flushScheduled = false;

  readonly #limits: WorkerLimits;

  constructor(opts: WorkerPoolOptions) {
    this.#opts = opts;
    this.#limits = {
      retireAfterBytes: opts.retireAfterBytes ?? DEFAULT_RETIRE_AFTER_BYTES,
      hostCallBytes: opts.maxHostCallBytes ?? DEFAULT_MAX_HOST_CALL_BYTES,
      responseBytes: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    };
    this.#log = opts.logger;
    this.#depth = Math.max(1, Math.min(64, opts.pipelineDepth ?? 32));
    this.#stallMs = opts.stallMs ?? 20;
    for (let i = 0; i < opts.size; i++) this.#slots.push(this.#spawn(i));
  }

  #startSweep(): void {
    this.#sweep = setInterval(() => this.#checkDeadlines(), this.#opts.sweepIntervalMs ?? 10);
    this.#sweep.unref();
  }

  /** Resolves when every worker has started. */
  async ready(): Promise<void> {
    while (!this.#slots.every((s) => s.ready)) {
      await new Promise<void>((resolve) => this.#readyWaiters.add(resolve));
    }
  }

  get size(): number {
    return this.#slots.length;
  }

  /** Worker restarts since the pool started (overruns and crashes). */
  get restarts(): number {
    return this.#restarts;
  }

  /** Workers replaced (after their calls finished) to give back the memory of discarded instances. */
  get recycled(): number {
    return this.#recycled;
  }

  register(actor: string, prepared: PreparedActor, opts: PoolActorOptions): void {
    if (this.#actors.has(actor)) throw new Error(`actor ${actor} is already registered`);
    const maxConcurrency = Math.max(1, opts.maxConcurrency ?? opts.maxInstances);
    this.#actors.set(actor, { id: actor, prepared, opts, slots: new Set(), running: new Map(), maxConcurrency, slowUntil: 0, queue: [], inFlight: 0, routes: {}, stopping: false });
  }

  /**
   * Sets the host calls of `actor` that workers answer themselves. Workers holding the actor get
   * the new table before any call sent after this; workers that load it later get it with the load.
   */
  setRoutes(actor: string, routes: RouteTable): void {
    const a = this.#actors.get(actor);
    if (!a || sameRoutes(a.routes, routes)) return;
    a.routes = routes;
    for (const s of a.slots) if (!s.dead) this.#enqueue(s, { t: 'routes', actor, routes });
  }

  /** Stops accepting calls for `actor`, waits for its in-flight calls (up to `drainMs`), and unloads it from every worker. */
  async unregister(actor: string, drainMs = 5000): Promise<void> {
    const a = this.#actors.get(actor);
    if (!a) return;
    a.stopping = true;
    for (const rec of a.queue.splice(0)) this.#finish(rec, new InvocationError('STOPPING', `actor ${actor} is stopping`));
    this.#pending.delete(a);
    if (a.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, drainMs);
        a.drained = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    for (const s of a.slots) {
      if (s.dead) continue;
      s.loaded.delete(actor);
      this.#enqueue(s, { t: 'unload', actor });
    }
    this.#actors.delete(actor);
  }

  /** How many instances `actor` has (workers holding it). */
  instances(actor: string): number {
    return this.#actors.get(actor)?.slots.size ?? 0;
  }

  invoke(actor: string, op: string, msg: Uint8Array, deadlineMs?: number): Promise<Uint8Array> {
    const a = this.#actors.get(actor);
    if (!a) return Promise.reject(new InvocationError('ACTOR_NOT_FOUND', `actor ${actor} is not running on this host`));
    if (a.stopping) return Promise.reject(new InvocationError('STOPPING', `actor ${actor} is stopping`));
    return new Promise<Uint8Array>((resolve, reject) => {
      const rec: CallRec = { id: this.#nextId++, seq: 0, actor: a, op, msg, deadline: Date.now() + (deadlineMs ?? a.opts.deadlineMs), resolve, reject };
      a.inFlight++;
      const slot = a.queue.length ? null : this.#pickSlot(a, Date.now());
      if (slot) this.#send(slot, rec);
      else {
        a.queue.push(rec);
        this.#pending.add(a);
      }
      if (this.#sweep === undefined && !this.#closed) this.#startSweep();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    const stopping = () => new InvocationError('STOPPING', 'host is shutting down');
    for (const a of this.#actors.values()) for (const rec of a.queue.splice(0)) this.#finish(rec, stopping());
    for (const s of this.#slots) {
      s.dead = true;
      for (const rec of s.outstanding.splice(0)) this.#finish(rec, stopping());
    }
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }

  #spawn(index: number): Slot {
    const slot = spawnSlot<CallRec>(index, this.#limits);
    const worker = slot.worker;
    worker.on('message', (m: FromWorker) => this.#onMessage(slot, m));
    worker.on('error', (err) => {
      this.#log.error({ err, worker: index }, 'actor worker crashed');
      this.#replace(slot, new InvocationError('TRAP', `actor worker crashed: ${err.message}`, { cause: err }));
    });
    worker.on('exit', (code) => {
      // Whatever ended it, it may have held a lock in a provider's shared memory.
      void this.#recoverRoutes(slot);
      if (!slot.dead && !this.#closed) {
        this.#log.error({ worker: index, code }, 'actor worker exited');
        this.#replace(slot, new InvocationError('TRAP', `actor worker exited with code ${code}`));
      }
    });
    return slot;
  }

  /**
   * Lets each provider whose worker route this worker had recover what the thread may have left
   * half-done: route modules may export `recoverThread(data, threadId)` (see WorkerRoute).
   */
  async #recoverRoutes(slot: Slot): Promise<void> {
    for (const route of slot.routesSeen) {
      try {
        const mod = (await import(route.module)) as { recoverThread?: (data: unknown, threadId: number) => unknown };
        const done = mod.recoverThread?.(route.data, slot.threadId);
        if (done !== undefined && done !== 'not-held') {
          this.#log.warn({ worker: slot.index, module: route.module, result: done }, 'a worker ended while it held a provider\'s shared lock; recovered it');
        }
      } catch (err) {
        this.#log.error({ err, worker: slot.index, module: route.module }, 'could not recover a provider\'s shared state after its worker ended');
      }
    }
    slot.routesSeen.clear();
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    if (slot.dead) return;
    switch (m.t) {
      case 'ready':
        slot.ready = true;
        this.#uncharge(slot);
        this.#crashBackoffMs = 0;
        for (const w of this.#readyWaiters) w();
        this.#readyWaiters.clear();
        this.#pump(slot, Date.now());
        return;
      case 'warn':
        this.#log.warn({ actor: m.actor, worker: slot.index }, m.message);
        return;
      case 'retire':
        this.#log.info({ worker: slot.index, discardedMiB: Math.round(m.discardedBytes / 2 ** 20) }, 'replacing a worker to give back the memory of discarded instances');
        slot.retiring = true;
        // Calls sent ahead that have not started run elsewhere; the one running finishes here.
        this.#takeBack(slot, 1);
        this.#retireIfDone(slot);
        this.#pumpAll(Date.now());
        return;
      case 'results':
        slot.results.clearDoorbell();
        this.#drainResults(slot);
        return;
      case 'done': {
        const rec = this.#takeOutstanding(slot, m.id);
        if (!rec) return; // answered already (e.g. taken back and failed elsewhere)
        const now = Date.now();
        slot.headSince = now;
        if (m.logs && this.#opts.onLogs) this.#opts.onLogs(rec.actor.id, m.logs);
        if (m.ok) this.#finish(rec, undefined, m.ok);
        else this.#finish(rec, new InvocationError(m.err!.code, m.err!.message));
        if (slot.retiring) this.#retireIfDone(slot);
        else this.#pump(slot, now);
        return;
      }
      case 'host': {
        const actor = slot.outstanding[0]?.actor.id ?? m.actor;
        this.#opts.hostCall(actor, m.binding, m.ns, m.op, m.payload, m.deadline).then(
          (ok) => this.#hostReply(slot, { seq: m.seq, ok }),
          (err: Error) => this.#hostReply(slot, { seq: m.seq, error: err?.message ?? String(err) }),
        );
        return;
      }
    }
  }

  #takeOutstanding(slot: Slot, id: number): CallRec | undefined {
    const out = slot.outstanding;
    const i = out[0]?.id === id ? 0 : out.findIndex((r) => r.id === id);
    if (i < 0) return undefined;
    const rec = out[i]!;
    out.splice(i, 1);
    release(slot, rec);
    return rec;
  }

  /** Completes the calls whose results the worker wrote to shared memory. */
  #drainResults(slot: Slot, pump = true): void {
    let now = 0;
    const n = slot.results.drain((id, ok, logs) => {
      const rec = this.#takeOutstanding(slot, id);
      if (!rec) return;
      now ||= Date.now();
      slot.headSince = now;
      if (logs && this.#opts.onLogs) this.#opts.onLogs(rec.actor.id, decode<GuestLogLine[]>(logs));
      this.#finish(rec, undefined, ok);
    });
    if (n > 0 && pump && !slot.dead) {
      if (slot.retiring) this.#retireIfDone(slot);
      else this.#pump(slot, now || Date.now());
    }
  }

  /** A retiring worker with nothing outstanding is replaced: no call fails, no backoff. */
  #retireIfDone(slot: Slot): void {
    if (slot.dead || slot.outstanding.length > 0) return;
    this.#recycled++;
    this.#replace(slot, new InvocationError('TRAP', 'worker recycled'), { recycle: true });
  }

  #hostReply(slot: Slot, reply: HostReply): void {
    if (slot.dead) return;
    const limit = this.#limits.hostCallBytes;
    // Past the cap it is not handed over (posting it would copy it on this thread).
    if (reply.ok !== undefined && reply.ok.byteLength > limit) {
      reply = { seq: reply.seq, error: hostReplyTooLarge(reply.ok.byteLength, limit) };
    }
    writeHostReply(slot, reply);
  }

  #finish(rec: CallRec, err?: Error, ok?: Uint8Array): void {
    const a = rec.actor;
    a.inFlight--;
    if (err) {
      const code = (err as InvocationError).code;
      if ((code === 'TRAP' || code === 'DEADLINE_EXCEEDED') && this.#opts.onFailure) this.#opts.onFailure(a.id, code, err.message);
      rec.reject(err);
    }
    else rec.resolve(ok!);
    if (a.stopping && a.inFlight === 0) a.drained?.();
  }

  #usable(s: Slot, now: number): boolean {
    if (!s.ready || s.dead || s.retiring || s.outstanding.length >= this.#depth) return false;
    return s.outstanding.length === 0 || now - s.headSince <= this.#stallMs;
  }

  /** Whether a call of `a` may go to `s`: an instance there or room for one, and within its share of workers. */
  #mayRun(a: ActorEntry, s: Slot, now: number): boolean {
    if (!s.loaded.has(a.id) && a.slots.size >= a.opts.maxInstances) return false;
    if (!a.running.has(s) && a.running.size >= a.maxConcurrency) return false;
    // Never sent ahead behind another actor's call that may spin: it would wait until taken back.
    for (const rec of s.outstanding) if (rec.actor !== a && rec.actor.slowUntil > now) return false;
    return true;
  }

  /** The least-loaded usable worker holding `a`; or, when `a` may grow, a less-loaded one without it. */
  #pickSlot(a: ActorEntry, now: number): Slot | null {
    let best: Slot | null = null;
    for (const s of a.slots) {
      if (this.#usable(s, now) && (!best || s.outstanding.length < best.outstanding.length) && this.#mayRun(a, s, now)) best = s;
    }
    if (best && best.outstanding.length === 0) return best;
    if (a.slots.size < a.opts.maxInstances && a.running.size < a.maxConcurrency) {
      let fresh: Slot | null = null;
      for (const s of this.#slots) {
        if (!s.loaded.has(a.id) && this.#usable(s, now) && (!fresh || s.outstanding.length < fresh.outstanding.length) && this.#mayRun(a, s, now)) fresh = s;
      }
      if (fresh && (!best || fresh.outstanding.length < best.outstanding.length)) return fresh;
    }
    return best;
  }

  #send(slot: Slot, rec: CallRec): void {
    const a = rec.actor;
    if (!slot.loaded.has(a.id)) {
      this.#enqueue(slot, {
        t: 'load',
        actor: a.id,
        kind: a.prepared.kind,
        payload: a.prepared.payload,
        ...(a.opts.config ? { config: a.opts.config } : {}),
        ...(Object.keys(a.routes).length ? { routes: a.routes } : {}),
      });
      slot.loaded.add(a.id);
      a.slots.add(slot);
    }
    slot.seq = slot.seq >= MAX_SEQ ? 1 : slot.seq + 1;
    rec.seq = slot.seq;
    Atomics.store(slot.ring, rec.seq % CALL_RING_SIZE, rec.seq);
    if (slot.outstanding.length === 0) slot.headSince = Date.now();
    slot.outstanding.push(rec);
    a.running.set(slot, (a.running.get(slot) ?? 0) + 1);
    this.#enqueue(slot, { t: 'call', id: rec.id, seq: rec.seq, actor: a.id, op: rec.op, msg: rec.msg, deadline: rec.deadline });
  }

  #enqueue(slot: Slot, item: WorkItem): void {
    if ((item.t === 'load' || item.t === 'routes') && item.routes) for (const r of Object.values(item.routes)) slot.routesSeen.add(r);
    slot.sendBuf.push(item);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** One message per worker per event-loop turn. */
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    for (const s of this.#slots) {
      if (s.sendBuf.length === 0 || s.dead) continue;
      const items = s.sendBuf;
      s.sendBuf = [];
      compactPayloads(items);
      s.worker.postMessage({ t: 'batch', items });
    }
  };

  /** Fill a worker with queued calls it may serve, round-robin over actors. */
  #pump(slot: Slot, now: number): void {
    while (this.#pending.size && this.#usable(slot, now)) {
      let sent = false;
      for (const a of this.#pending) {
        if (a.queue.length === 0) {
          this.#pending.delete(a);
          continue;
        }
        if (this.#mayRun(a, slot, now)) {
          const rec = a.queue.shift()!;
          this.#pending.delete(a);
          if (a.queue.length) this.#pending.add(a); // to the back: fairness between actors
          this.#send(slot, rec);
          sent = true;
          break;
        }
      }
      if (!sent) return;
    }
  }

  /** Take back calls that have not started on `slot` (skipping `keep` leading ones); they go back to their queues' front. */
  #takeBack(slot: Slot, keep: number): CallRec[] {
    const started: CallRec[] = [];
    for (let i = slot.outstanding.length - 1; i >= keep; i--) {
      const rec = slot.outstanding[i]!;
      if (Atomics.compareExchange(slot.ring, rec.seq % CALL_RING_SIZE, rec.seq, 0) === rec.seq) {
        slot.outstanding.splice(i, 1);
        release(slot, rec);
        rec.actor.queue.unshift(rec);
        this.#pending.add(rec.actor);
      } else started.push(rec);
    }
    return started;
  }

  #checkDeadlines(): void {
    const now = Date.now();
    for (const s of this.#slots) {
      if (s.dead || s.outstanding.length === 0) continue;
      // Results already written count, whether or not their doorbell has arrived.
      this.#drainResults(s);
      if (s.outstanding.length === 0) continue;
      const head = s.outstanding[0]!;
      if (now - s.headSince > this.#stallMs) head.actor.slowUntil = now + SLOW_MS;
      if (head.deadline < now) {
        // A worker inside a provider's operation (it may hold a shared lock) finishes it first: µs.
        if (Atomics.compareExchange(s.state, 0, WORKER_IDLE, WORKER_DOOMED) !== WORKER_IDLE) continue;
        this.#log.warn({ actor: head.actor.id, worker: s.index, operation: head.op, overrunMs: now - head.deadline }, 'actor call overran its deadline; replacing its worker');
        this.#replace(s, new InvocationError('DEADLINE_EXCEEDED', `actor ${head.actor.id} did not answer ${head.op} within its deadline; its worker was replaced`), { overran: head.actor });
      } else if (s.outstanding.length > 1 && now - s.headSince > this.#stallMs) {
        this.#takeBack(s, 1);
      }
    }
    for (const a of this.#pending) {
      for (let i = a.queue.length - 1; i >= 0; i--) {
        if (a.queue[i]!.deadline < now) {
          const [rec] = a.queue.splice(i, 1);
          const why = a.running.size >= Math.min(a.maxConcurrency, a.opts.maxInstances)
            ? `actor ${a.id} was busy: its ${a.running.size} concurrent call(s) ran until the deadline`
            : `actor ${a.id} waited for a worker until the deadline: every worker was running other actors' calls`;
          this.#finish(rec!, new InvocationError('DEADLINE_EXCEEDED', why));
        }
      }
      if (!a.queue.length) this.#pending.delete(a);
    }
    let busy = this.#pending.size > 0;
    for (const s of this.#slots) {
      this.#pump(s, now);
      if (s.outstanding.length > 0) busy = true;
    }
    if (!busy) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  #uncharge(slot: Slot): void {
    const a = this.#charged.get(slot);
    if (a === undefined) return;
    this.#charged.delete(slot);
    leave(a, slot);
  }

  /**
   * Replaces a worker. `overran`: the actor whose call overran there, charged for the new worker
   * until it is ready. `recycle`: a planned replacement (not a failure): no backoff, not counted as a restart.
   */
  #replace(slot: Slot, reason: InvocationError, how: { overran?: ActorEntry; recycle?: boolean } = {}): void {
    const { overran, recycle = false } = how;
    if (slot.dead || this.#closed) return;
    this.#uncharge(slot);
    // Calls that finished before the worker is stopped are answered.
    this.#drainResults(slot, false);
    // Calls that never started run elsewhere; the one(s) that did get the reason.
    const started = this.#takeBack(slot, 0);
    slot.dead = true;
    for (const rec of slot.outstanding) release(slot, rec);
    slot.outstanding = [];
    if (!recycle) this.#restarts++;
    for (const rec of started) this.#finish(rec, reason);
    for (const id of slot.loaded) this.#actors.get(id)?.slots.delete(slot);
    void slot.worker.terminate();
    slot.replies.close();
    const delay = recycle ? 0 : this.#crashBackoffMs;
    if (!recycle) this.#crashBackoffMs = Math.min(5000, Math.max(50, delay * 2));
    const respawn = () => {
      if (this.#closed) return;
      const fresh = this.#spawn(slot.index);
      this.#slots[slot.index] = fresh;
      if (overran && this.#actors.get(overran.id) === overran) {
        this.#charged.set(fresh, overran);
        overran.running.set(fresh, (overran.running.get(fresh) ?? 0) + 1);
      }
    };
    if (reason.code === 'DEADLINE_EXCEEDED' || delay === 0) respawn();
    else setTimeout(respawn, delay).unref();
    this.#pumpAll(Date.now());
  }

  #pumpAll(now: number): void {
    for (const s of this.#slots) if (!s.dead) this.#pump(s, now);
  }
}

/** `rec` left `slot`'s outstanding calls. */
function release(slot: Slot, rec: CallRec): void {
  leave(rec.actor, slot);
}

/** One call (or charge) of `a` on `slot` is gone: its share in use shrinks when it was the last there. */
function leave(a: ActorEntry, slot: Slot): void {
  const n = a.running.get(slot);
  if (n === undefined) return;
  if (n <= 1) a.running.delete(slot);
  else a.running.set(slot, n - 1);
}
