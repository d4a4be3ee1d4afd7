/**
 * An actor worker: holds compiled actors and at most one live instance per actor, runs one
 * call at a time (so no instance ever sees two calls at once), and blocks on Atomics while a
 * host call is answered by the main thread.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ResultsWriter } from './results-ring.ts';
import { GuestError, hostCallTooLarge, hostReplyTooLarge, ResponseTooLarge, type GuestFactory, type GuestInstance, type GuestLimits, type HostCallResult } from '../runtime/runtime.ts';
import { componentGuestFactory } from '../runtime/component-guest.ts';
import { wapcGuestFactory } from '../runtime/wapc.ts';
import { decode, encode } from '../codec.ts';
import { canonicalContract, normalizeLinkName } from '../contracts.ts';
import type { WorkerRouteContext } from '../types.ts';
import {
  CALL_RING_SIZE,
  REPLY_ERROR,
  REPLY_HEADER_BYTES,
  REPLY_OK,
  WORKER_IDLE,
  WORKER_IN_PROVIDER,
  type CallItem,
  type FromWorker,
  type GuestLogLine,
  type HostReply,
  type RouteTable,
  type ToWorker,
  type WorkerInit,
  type WorkItem,
} from './protocol.ts';

const factories = new Map<string, GuestFactory>([
  [wapcGuestFactory.kind, wapcGuestFactory],
  [componentGuestFactory.kind, componentGuestFactory],
]);

const init = workerData as WorkerInit;
const flag = new Int32Array(init.flag, 0, 4);
const replyBytes = new Uint8Array(init.flag, REPLY_HEADER_BYTES);
const utf8d = new TextDecoder();
const ring = new Int32Array(init.ring);
const replies = init.replies;
const state = new Int32Array(init.state);
const port = parentPort!;
const results = new ResultsWriter(init.results);
const guestLimits: GuestLimits = { hostCallBytes: init.limits.hostCallBytes, responseBytes: init.limits.responseBytes };
const HOST_CALL_BYTES = init.limits.hostCallBytes;

/** A host call's reply as the guest gets it: past the cap, an error instead. */
function capped(result: HostCallResult): HostCallResult {
  if ('ok' in result && result.ok.byteLength > HOST_CALL_BYTES) {
    return { error: hostReplyTooLarge(result.ok.byteLength, HOST_CALL_BYTES) };
  }
  return result;
}

/** Linear memory of the instances this worker discarded (see WorkerLimits.retireAfterBytes). */
let discardedBytes = 0;
let retiring = false;

/** Drops an actor's instance; asks to be replaced once discarded instances held enough memory. */
function discard(loaded: Loaded): void {
  const instance = loaded.instance;
  if (!instance) return;
  loaded.instance = undefined;
  try {
    discardedBytes += instance.memoryBytes();
  } catch {
    // An instance too broken to say: count nothing.
  }
  if (!retiring && discardedBytes >= init.limits.retireAfterBytes) {
    retiring = true;
    port.postMessage({ t: 'retire', discardedBytes } satisfies FromWorker);
  }
}
/** When the oldest result in the ring whose doorbell is not rung yet was written (0: none). */
let unannouncedSince = 0;

/** Tells the main thread there are results to drain, unless a doorbell is already on its way. */
function announceResults(): void {
  if (unannouncedSince === 0) return;
  unannouncedSince = 0;
  if (results.ring()) port.postMessage({ t: 'results' } satisfies FromWorker);
}

type RouteHandler = (operation: string, msg: Uint8Array) => Uint8Array;

/** An actor's worker routes: handlers by route key, and the guest's raw (binding, namespace) resolved once. */
interface ActorRoutes {
  byKey: Map<string, RouteHandler>;
  resolved: Map<string, RouteHandler | null>;
}
const routes = new Map<string, ActorRoutes>();
/** Route modules by URL, imported once. */
const routeModules = new Map<string, { createWorkerHandler(data: unknown, ctx: WorkerRouteContext): RouteHandler }>();
const routeContext: WorkerRouteContext = { encode, decode };

interface Loaded {
  factory: GuestFactory;
  payload: unknown;
  /** Config values from the load item, when the host sends them. */
  config?: Record<string, string>;
  /** Why the factory's async load step failed; the actor's calls here fail with it. */
  loadError?: string;
  instance?: GuestInstance;
}
const actors = new Map<string, Loaded>();

let logs: GuestLogLine[] = [];
let seq = 0;
let currentDeadline = 0;

function hostCallFor(actor: string) {
  return (binding: string, ns: string, op: string, payload: Uint8Array): HostCallResult => {
    if (payload.byteLength > HOST_CALL_BYTES) return { error: hostCallTooLarge(payload.byteLength, HOST_CALL_BYTES) };
    const own = routes.get(actor);
    if (own !== undefined) {
      const raw = `${binding}\0${ns}`;
      let handler = own.resolved.get(raw);
      if (handler === undefined) {
        handler = own.byKey.get(`${canonicalContract(ns)}|${normalizeLinkName(binding)}`) ?? null;
        own.resolved.set(raw, handler);
      }
      if (handler !== null) return capped(runRouted(handler, op, payload));
    }
    // The main thread is about to work for us: let it take the results waiting meanwhile.
    announceResults();
    const mySeq = ++seq;
    const msg: FromWorker = { t: 'host', seq: mySeq, actor, binding, ns, op, payload, deadline: currentDeadline };
    port.postMessage(msg);
    for (;;) {
      // Read the flag once: deciding on two separate reads could take the reply that lands between
      // them for a late one and drop it. The main thread writes the seq before raising the flag.
      if (Atomics.load(flag, 0) === 1) {
        if (Atomics.load(flag, 1) !== mySeq) {
          // A late reply to an earlier call that timed out: drop it (and its port message, if any).
          Atomics.store(flag, 0, 0);
          while (receiveMessageOnPort(replies)) {}
          continue;
        }
        const status = Atomics.load(flag, 2);
        const len = Atomics.load(flag, 3);
        Atomics.store(flag, 0, 0);
        if (status === REPLY_OK) return { ok: replyBytes.slice(0, len) };
        if (status === REPLY_ERROR) return { error: utf8d.decode(replyBytes.subarray(0, len)) };
        // Too large for the shared buffer: it waits on the port.
        for (;;) {
          const got = receiveMessageOnPort(replies);
          if (!got) throw new Error('host reply announced on the port but missing');
          const reply = got.message as HostReply;
          if (reply.seq !== mySeq) continue;
          if (reply.error !== undefined) return { error: reply.error };
          return { ok: reply.ok ?? new Uint8Array(0) };
        }
      }
      const remaining = currentDeadline - Date.now();
      if (remaining <= 0) return { error: 'host call timed out: invocation deadline exceeded' };
      Atomics.wait(flag, 0, 0, remaining);
    }
  };
}

/** Runs a provider's operation here; the state cell keeps the main thread from terminating us meanwhile. */
function runRouted(handler: RouteHandler, op: string, payload: Uint8Array): HostCallResult {
  if (Atomics.compareExchange(state, 0, WORKER_IDLE, WORKER_IN_PROVIDER) !== WORKER_IDLE) {
    return { error: 'host call refused: this call is being stopped (deadline exceeded)' };
  }
  try {
    return { ok: handler(op, payload) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    Atomics.store(state, 0, WORKER_IDLE);
  }
}

/**
 * Installs an actor's routes. Route modules load asynchronously the first time; until they have,
 * later items wait (as for an async actor load). A route that fails to set up is left out: its
 * calls take the main-thread path, which answers them the same way.
 */
function setRoutes(actor: string, table: RouteTable | undefined): void {
  const entries = Object.entries(table ?? {});
  if (entries.length === 0) {
    routes.delete(actor);
    return;
  }
  const install = () => {
    const byKey = new Map<string, RouteHandler>();
    for (const [key, route] of entries) {
      if (!routeModules.has(route.module)) continue; // failed to load (and said so)
      try {
        byKey.set(key, routeModules.get(route.module)!.createWorkerHandler(route.data, routeContext));
      } catch (err) {
        reply({ t: 'warn', actor, message: `worker route ${key} not set up, calls take the main thread: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
    routes.set(actor, { byKey, resolved: new Map() });
  };
  const missing = [...new Set(entries.map(([, r]) => r.module))].filter((m) => !routeModules.has(m));
  if (missing.length === 0) {
    install();
    return;
  }
  routes.delete(actor); // until the new ones are in, calls take the main-thread path
  hold(
    Promise.allSettled(
      missing.map(async (m) => {
        try {
          routeModules.set(m, await import(m));
        } catch (err) {
          reply({ t: 'warn', actor, message: `worker route module ${m} failed to load: ${err instanceof Error ? err.message : String(err)}` });
        }
      }),
    ).then(install),
  );
}

function instanceOf(actor: string, loaded: Loaded): GuestInstance {
  if (!loaded.instance) {
    loaded.instance = loaded.factory.instantiate(loaded.payload, {
      actor,
      hostCall: hostCallFor(actor),
      limits: guestLimits,
      log: (level, message) => logs.push([level, message, Date.now()]),
      ...(loaded.config ? { config: loaded.config } : {}),
    });
  }
  return loaded.instance;
}

function reply(msg: FromWorker) {
  port.postMessage(msg);
}

function runCall(m: CallItem): void {
  // Claim the call; if the main thread took it back (to run it elsewhere), skip it.
  const cell = m.seq % CALL_RING_SIZE;
  if (Atomics.compareExchange(ring, cell, m.seq, -m.seq) !== m.seq) return;
  const loaded = actors.get(m.actor);
  if (!loaded) {
    reply({ t: 'done', id: m.id, err: { code: 'ACTOR_NOT_FOUND', message: `actor ${m.actor} is not loaded in this worker` } });
    return;
  }
  if (loaded.loadError !== undefined) {
    reply({ t: 'done', id: m.id, err: { code: 'TRAP', message: `actor ${m.actor} failed to load in this worker: ${loaded.loadError}` } });
    return;
  }
  currentDeadline = m.deadline;
  let out: FromWorker;
  try {
    const result = instanceOf(m.actor, loaded).call(m.op, m.msg);
    if (result.byteLength > guestLimits.responseBytes) throw new ResponseTooLarge(result.byteLength, guestLimits.responseBytes);
    out = { t: 'done', id: m.id, ok: result };
  } catch (err) {
    if (err instanceof ResponseTooLarge) {
      out = { t: 'done', id: m.id, err: { code: 'PAYLOAD_TOO_LARGE', message: `actor ${m.actor} answered ${m.op} with ${err.bytes} bytes, over the limit of ${err.limit} (maxResponseBytes)` } };
    } else if (err instanceof GuestError) {
      out = { t: 'done', id: m.id, err: { code: 'GUEST_ERROR', message: err.message } };
    } else {
      // A trap (or any throw from inside the guest) leaves the instance in an unknown state: discard it.
      discard(loaded);
      const message = err instanceof Error ? err.message : String(err);
      out = { t: 'done', id: m.id, err: { code: 'TRAP', message } };
    }
  }
  const lines = logs.length ? logs : undefined;
  if (lines) logs = [];
  if (out.t === 'done' && out.ok && results.write(m.id, out.ok, lines && encode(lines))) {
    // In shared memory, the result survives this worker being stopped during a later call;
    // the doorbell goes at the end of this work, or now if results have waited 1 ms.
    const now = Date.now();
    if (unannouncedSince === 0) unannouncedSince = now;
    else if (now - unannouncedSince >= 1) announceResults();
    return;
  }
  // By message: errors, and what the ring cannot take.
  if (lines) (out as { logs?: GuestLogLine[] }).logs = lines;
  reply(out);
}

function runItem(m: WorkItem): void {
  switch (m.t) {
    case 'load': {
      const factory = factories.get(m.kind);
      if (!factory) throw new Error(`no runtime for actor kind ${m.kind}`);
      const config = m.config;
      const loaded: Loaded = { factory, payload: m.payload, ...(config ? { config } : {}) };
      actors.set(m.actor, loaded);
      if (factory.load) {
        // An async load step (a component's ES module glue).
        hold(
          factory.load(m.payload).then(
            (payload) => {
              loaded.payload = payload;
            },
            (err: unknown) => {
              loaded.loadError = err instanceof Error ? err.message : String(err);
            },
          ),
        );
      }
      if (m.routes) setRoutes(m.actor, m.routes);
      return;
    }
    case 'routes':
      setRoutes(m.actor, m.routes);
      return;
    case 'unload': {
      const loaded = actors.get(m.actor);
      if (loaded) discard(loaded);
      actors.delete(m.actor);
      routes.delete(m.actor);
      return;
    }
    case 'call':
      runCall(m);
      return;
  }
}

/** Async steps (actor loads, route modules) under way; items that arrive meanwhile wait in `held`, in order. */
let steps = 0;
const held: WorkItem[] = [];

function hold(step: Promise<unknown>): void {
  steps++;
  const done = () => {
    if (--steps === 0) runItems(held.splice(0));
  };
  step.then(done, done);
}

function runItems(items: WorkItem[]): void {
  for (let i = 0; i < items.length; i++) {
    if (steps > 0) {
      held.push(...items.slice(i));
      break;
    }
    runItem(items[i]!);
  }
  announceResults();
}

port.on('message', (m: ToWorker) => {
  if (steps > 0) held.push(...m.items);
  else runItems(m.items);
});

reply({ t: 'ready' });
