/**
 * An actor worker: holds compiled actors and at most one live instance per actor, runs one
 * call at a time (so no instance ever sees two calls at once), and blocks on Atomics while a
 * host call is answered by the main thread.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { GuestError, type GuestFactory, type GuestInstance, type HostCallResult } from '../runtime/runtime.ts';
import { wapcGuestFactory } from '../runtime/wapc.ts';
import type { FromWorker, GuestLogLine, HostReply, ToWorker, WorkerInit } from './protocol.ts';

const factories = new Map<string, GuestFactory>([[wapcGuestFactory.kind, wapcGuestFactory]]);

const init = workerData as WorkerInit;
const flag = new Int32Array(init.flag);
const replies = init.replies;
const port = parentPort!;

interface Loaded {
  factory: GuestFactory;
  payload: unknown;
  instance?: GuestInstance;
}
const actors = new Map<string, Loaded>();

let logs: GuestLogLine[] = [];
let seq = 0;
let currentDeadline = 0;

function hostCallFor(actor: string) {
  return (binding: string, ns: string, op: string, payload: Uint8Array): HostCallResult => {
    const mySeq = ++seq;
    Atomics.store(flag, 0, 0);
    const msg: FromWorker = { t: 'host', seq: mySeq, actor, binding, ns, op, payload, deadline: currentDeadline };
    port.postMessage(msg);
    for (;;) {
      const got = receiveMessageOnPort(replies);
      if (got) {
        const reply = got.message as HostReply;
        if (reply.seq !== mySeq) continue; // a late reply to an earlier call that timed out
        if (reply.error !== undefined) return { error: reply.error };
        return { ok: reply.ok ?? new Uint8Array(0) };
      }
      const remaining = currentDeadline - Date.now();
      if (remaining <= 0) return { error: 'host call timed out: invocation deadline exceeded' };
      Atomics.wait(flag, 0, 0, remaining);
      Atomics.store(flag, 0, 0);
    }
  };
}

function instanceOf(actor: string, loaded: Loaded): GuestInstance {
  if (!loaded.instance) {
    loaded.instance = loaded.factory.instantiate(loaded.payload, {
      actor,
      hostCall: hostCallFor(actor),
      log: (level, message) => logs.push([level, message, Date.now()]),
    });
  }
  return loaded.instance;
}

function reply(msg: FromWorker) {
  port.postMessage(msg);
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'load': {
      const factory = factories.get(m.kind);
      if (!factory) throw new Error(`no runtime for actor kind ${m.kind}`);
      actors.set(m.actor, { factory, payload: m.payload });
      return;
    }
    case 'unload':
      actors.delete(m.actor);
      return;
    case 'call': {
      const loaded = actors.get(m.actor);
      if (!loaded) {
        reply({ t: 'done', id: m.id, err: { code: 'ACTOR_NOT_FOUND', message: `actor ${m.actor} is not loaded in this worker` } });
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
      reply(out);
      return;
    }
  }
});

reply({ t: 'ready' });
