/**
 * The main-thread side of actor isolation: a fixed set of worker threads, each running one call
 * at a time. An actor gets at most `maxInstances` instances, each in a different worker; calls
 * beyond that wait in the actor's queue. Every call has a deadline: a worker whose call overruns
 * is terminated and replaced, and the host keeps serving from the other workers.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { InvocationError } from '../errors.ts';
import type { PreparedActor } from '../runtime/runtime.ts';
import type { FromWorker, GuestLogLine, HostReply, ToWorker, WorkerInit } from './protocol.ts';

export interface WorkerPoolOptions {
  /** Number of worker threads. */
  size: number;
  logger: Logger;
  /** Answers an actor's host call (claims/link checks and routing happen there). */
  hostCall(actor: string, binding: string, namespace: string, operation: string, payload: Uint8Array, deadline: number): Promise<Uint8Array>;
  /** Receives the log lines a guest wrote during a call. */
  onLogs?(actor: string, lines: GuestLogLine[]): void;
  /** How often deadlines are checked (ms). */
  sweepIntervalMs?: number;
}

export interface PoolActorOptions {
  maxInstances: number;
  deadlineMs: number;
}

interface CallRec {
  id: number;
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
  queue: CallRec[];
  inFlight: number;
  stopping: boolean;
  drained?: () => void;
}

interface Slot {
  index: number;
  generation: number;
  worker: Worker;
  flag: Int32Array;
  replies: MessagePort;
  ready: boolean;
  dead: boolean;
  busy: CallRec | null;
  loaded: Set<string>;
}

const WORKER_URL = new URL('./worker-bootstrap.mjs', import.meta.url);

export class WorkerPool {
  readonly #opts: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  readonly #actors = new Map<string, ActorEntry>();
  /** Actors with queued calls, in round-robin order. */
  readonly #pending = new Set<ActorEntry>();
  #nextId = 1;
  #rr = 0;
  #closed = false;
  #sweep: NodeJS.Timeout;
  #restarts = 0;
  #crashBackoffMs = 0;

  constructor(opts: WorkerPoolOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    for (let i = 0; i < opts.size; i++) this.#slots.push(this.#spawn(i, 0));
    this.#sweep = setInterval(() => this.#checkDeadlines(), opts.sweepIntervalMs ?? 20);
    this.#sweep.unref();
  }

  /** Resolves when every worker has started. */
  async ready(): Promise<void> {
    await Promise.all(
      this.#slots.map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            if (s.ready) return resolve();
            const onMsg = (m: FromWorker) => {
              if (m.t === 'ready') {
                s.worker.off('message', onMsg);
                s.worker.off('error', onErr);
                resolve();
              }
            };
            const onErr = (e: Error) => reject(e);
            s.worker.on('message', onMsg);
            s.worker.once('error', onErr);
          }),
      ),
    );
  }

  get size(): number {
    return this.#slots.length;
  }

  /** Worker restarts since the pool started (overruns and crashes). */
  get restarts(): number {
    return this.#restarts;
  }

  register(actor: string, prepared: PreparedActor, opts: PoolActorOptions): void {
    if (this.#actors.has(actor)) throw new Error(`actor ${actor} is already registered`);
    this.#actors.set(actor, { id: actor, prepared, opts, slots: new Set(), queue: [], inFlight: 0, stopping: false });
  }

  /** Stops accepting calls for `actor`, waits for its in-flight calls (up to `drainMs`), and unloads it from every worker. */
  async unregister(actor: string, drainMs = 5000): Promise<void> {
    const a = this.#actors.get(actor);
    if (!a) return;
    a.stopping = true;
    for (const rec of a.queue.splice(0)) rec.reject(new InvocationError('STOPPING', `actor ${actor} is stopping`));
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
    for (const s of a.slots) if (!s.dead) this.#post(s, { t: 'unload', actor });
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
      const rec: CallRec = { id: this.#nextId++, actor: a, op, msg, deadline: Date.now() + (deadlineMs ?? a.opts.deadlineMs), resolve, reject };
      a.inFlight++;
      const slot = this.#pickSlot(a);
      if (slot) this.#send(slot, rec);
      else {
        a.queue.push(rec);
        this.#pending.add(a);
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const a of this.#actors.values()) {
      for (const rec of a.queue.splice(0)) rec.reject(new InvocationError('STOPPING', 'host is shutting down'));
    }
    for (const s of this.#slots) {
      s.dead = true;
      if (s.busy) this.#finish(s.busy, new InvocationError('STOPPING', 'host is shutting down'));
      s.busy = null;
    }
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }

  #spawn(index: number, generation: number): Slot {
    const flagBuf = new SharedArrayBuffer(4);
    const channel = new MessageChannel();
    const init: WorkerInit = { flag: flagBuf, replies: channel.port2 };
    const worker = new Worker(WORKER_URL, { workerData: init, transferList: [channel.port2], stdout: false, stderr: false });
    const slot: Slot = {
      index,
      generation,
      worker,
      flag: new Int32Array(flagBuf),
      replies: channel.port1,
      ready: false,
      dead: false,
      busy: null,
      loaded: new Set(),
    };
    worker.on('message', (m: FromWorker) => this.#onMessage(slot, m));
    worker.on('error', (err) => {
      this.#log.error({ err, worker: index }, 'actor worker crashed');
      this.#replace(slot, new InvocationError('TRAP', `actor worker crashed: ${err.message}`, { cause: err }));
    });
    worker.on('exit', (code) => {
      if (!slot.dead && !this.#closed) {
        this.#log.error({ worker: index, code }, 'actor worker exited');
        this.#replace(slot, new InvocationError('TRAP', `actor worker exited with code ${code}`));
      }
    });
    return slot;
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    if (slot.dead) return;
    switch (m.t) {
      case 'ready':
        slot.ready = true;
        this.#crashBackoffMs = 0;
        this.#pump(slot);
        return;
      case 'done': {
        const rec = slot.busy;
        slot.busy = null;
        if (rec && rec.id === m.id) {
          if (m.logs && this.#opts.onLogs) this.#opts.onLogs(rec.actor.id, m.logs);
          if (m.ok) this.#finish(rec, undefined, m.ok);
          else this.#finish(rec, new InvocationError(m.err!.code, m.err!.message));
        }
        this.#pump(slot);
        return;
      }
      case 'host': {
        const rec = slot.busy;
        const actor = rec?.actor.id ?? m.actor;
        this.#opts.hostCall(actor, m.binding, m.ns, m.op, m.payload, m.deadline).then(
          (ok) => this.#hostReply(slot, { seq: m.seq, ok }),
          (err: Error) => this.#hostReply(slot, { seq: m.seq, error: err?.message ?? String(err) }),
        );
        return;
      }
    }
  }

  #hostReply(slot: Slot, reply: HostReply): void {
    if (slot.dead) return;
    slot.replies.postMessage(reply);
    Atomics.store(slot.flag, 0, 1);
    Atomics.notify(slot.flag, 0);
  }

  #finish(rec: CallRec, err?: Error, ok?: Uint8Array): void {
    const a = rec.actor;
    a.inFlight--;
    if (err) rec.reject(err);
    else rec.resolve(ok!);
    if (a.stopping && a.inFlight === 0) a.drained?.();
  }

  #pickSlot(a: ActorEntry): Slot | null {
    for (const s of a.slots) if (s.ready && !s.busy) return s;
    if (a.slots.size >= a.opts.maxInstances) return null;
    const n = this.#slots.length;
    for (let k = 0; k < n; k++) {
      const s = this.#slots[(this.#rr + k) % n]!;
      if (s.ready && !s.busy && !s.loaded.has(a.id)) {
        this.#rr = (this.#rr + k + 1) % n;
        return s;
      }
    }
    return null;
  }

  #send(slot: Slot, rec: CallRec): void {
    const a = rec.actor;
    if (!slot.loaded.has(a.id)) {
      this.#post(slot, { t: 'load', actor: a.id, kind: a.prepared.kind, payload: a.prepared.payload });
      slot.loaded.add(a.id);
      a.slots.add(slot);
    }
    slot.busy = rec;
    this.#post(slot, { t: 'call', id: rec.id, actor: a.id, op: rec.op, msg: rec.msg, deadline: rec.deadline });
  }

  #post(slot: Slot, m: ToWorker): void {
    slot.worker.postMessage(m);
  }

  /** Give an idle worker the next queued call it may serve, round-robin over actors. */
  #pump(slot: Slot): void {
    if (slot.busy || !slot.ready || slot.dead || this.#pending.size === 0) return;
    for (const a of this.#pending) {
      if (a.queue.length === 0) {
        this.#pending.delete(a);
        continue;
      }
      if (slot.loaded.has(a.id) || a.slots.size < a.opts.maxInstances) {
        const rec = a.queue.shift()!;
        this.#pending.delete(a);
        if (a.queue.length) this.#pending.add(a); // to the back: fairness between actors
        this.#send(slot, rec);
        return;
      }
    }
  }

  #checkDeadlines(): void {
    const now = Date.now();
    for (const s of this.#slots) {
      const rec = s.busy;
      if (rec && !s.dead && rec.deadline < now) {
        const ms = now - rec.deadline;
        this.#log.warn({ actor: rec.actor.id, worker: s.index, operation: rec.op, overrunMs: ms }, 'actor call overran its deadline; replacing its worker');
        this.#replace(s, new InvocationError('DEADLINE_EXCEEDED', `actor ${rec.actor.id} did not answer ${rec.op} within its deadline; its worker was replaced`));
      }
    }
    for (const a of this.#pending) {
      while (a.queue.length && a.queue[0]!.deadline < now) {
        this.#finish(a.queue.shift()!, new InvocationError('DEADLINE_EXCEEDED', `actor ${a.id} was busy: ${a.opts.maxInstances} instance(s) in use until the deadline`));
      }
      if (!a.queue.length) this.#pending.delete(a);
    }
  }

  #replace(slot: Slot, reason: InvocationError): void {
    if (slot.dead || this.#closed) return;
    slot.dead = true;
    this.#restarts++;
    if (slot.busy) this.#finish(slot.busy, reason);
    slot.busy = null;
    for (const id of slot.loaded) this.#actors.get(id)?.slots.delete(slot);
    void slot.worker.terminate();
    slot.replies.close();
    const delay = this.#crashBackoffMs;
    this.#crashBackoffMs = Math.min(5000, Math.max(50, delay * 2));
    const respawn = () => {
      if (this.#closed) return;
      this.#slots[slot.index] = this.#spawn(slot.index, slot.generation + 1);
    };
    if (reason.code === 'DEADLINE_EXCEEDED' || delay === 0) respawn();
    else setTimeout(respawn, delay).unref();
    // Queued calls that could use other workers keep flowing; try idle ones now.
    for (const s of this.#slots) if (s !== slot) this.#pump(s);
  }
}
