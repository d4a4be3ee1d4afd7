/**
 * An actor worker: holds compiled actors and at most one live instance per actor, runs one
 * call at a time (so no instance ever sees two calls at once), and blocks on Atomics while a
 * host call is answered by the main thread.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { GuestError, type GuestFactory, type GuestInstance, type HostCallResult } from '../runtime/runtime.ts';
import { componentGuestFactory } from '../runtime/component-guest.ts';
import { wapcGuestFactory } from '../runtime/wapc.ts';
import { CALL_RING_SIZE, REPLY_ERROR, REPLY_HEADER_BYTES, REPLY_OK, type CallItem, type FromWorker, type GuestLogLine, type HostReply, type ToWorker, type WorkerInit, type WorkItem } from './protocol.ts';

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
const port = parentPort!;

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

function instanceOf(actor: string, loaded: Loaded): GuestInstance {
  if (!loaded.instance) {
    loaded.instance = loaded.factory.instantiate(loaded.payload, {
      actor,
      hostCall: hostCallFor(actor),
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
    out = { t: 'done', id: m.id, ok: result };
  } catch (err) {
    if (err instanceof GuestError) {
      out = { t: 'done', id: m.id, err: { code: 'GUEST_ERROR', message: err.message } };
    } else {
      // A trap (or any throw from inside the guest) leaves the instance in an unknown state: discard it.
      loaded.instance = undefined;
      const message = err instanceof Error ? err.message : String(err);
      out = { t: 'done', id: m.id, err: { code: 'TRAP', message } };
    }
  }
  if (logs.length) {
    (out as { logs?: GuestLogLine[] }).logs = logs;
    logs = [];
  }
  // One reply per call, at once: a later call in the batch may never return (it will be stopped).
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
        // An async load step (a component's ES module glue): hold every later item, in order, until it settles.
        loading = true;
        factory
          .load(m.payload)
          .then(
            (payload) => {
              loaded.payload = payload;
            },
            (err: unknown) => {
              loaded.loadError = err instanceof Error ? err.message : String(err);
            },
          )
          .finally(() => {
            loading = false;
            runItems(held.splice(0));
          });
      }
      return;
    }
    case 'unload':
      actors.delete(m.actor);
      return;
    case 'call':
      runCall(m);
      return;
  }
}

/** True while a factory's async load step runs; items that arrive meanwhile wait in `held`. */
let loading = false;
const held: WorkItem[] = [];

function runItems(items: WorkItem[]): void {
  for (let i = 0; i < items.length; i++) {
    if (loading) {
      held.push(...items.slice(i));
      return;
    }
    runItem(items[i]!);
  }
}

port.on('message', (m: ToWorker) => {
  if (loading) held.push(...m.items);
  else runItems(m.items);
});

reply({ t: 'ready' });
