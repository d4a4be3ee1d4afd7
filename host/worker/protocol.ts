/** Messages between the main thread and actor workers. */
import type { MessagePort } from 'node:worker_threads';
import type { ActorKind, GuestLogLevel } from '../runtime/runtime.ts';
import type { WorkerRoute } from '../types.ts';

/** Cells in a worker's call-state ring; more than the pipeline depth can ever hold. */
export const CALL_RING_SIZE = 256;

/**
 * Host-call replies travel through a shared buffer: Int32 header [flag, seq, status, length], then
 * the reply bytes. The main thread writes, sets flag = 1 and notifies; the worker waits on flag.
 * A reply larger than the buffer goes through the `replies` port instead (status REPLY_VIA_PORT).
 */
export const REPLY_HEADER_BYTES = 16;
export const REPLY_BUFFER_BYTES = 64 * 1024;
export const REPLY_OK = 1;
export const REPLY_ERROR = 2;
export const REPLY_VIA_PORT = 3;

export interface WorkerInit {
  /** REPLY_HEADER_BYTES + REPLY_BUFFER_BYTES, laid out as described above. */
  flag: SharedArrayBuffer;
  /**
   * Int32Array[CALL_RING_SIZE]: per queued call, cell `seq % size` holds `seq` while queued. The worker
   * claims it (seq → -seq) before running the call; the main thread may take it back (seq → 0) to
   * run it elsewhere. Compare-and-swap makes exactly one of the two win.
   */
  ring: SharedArrayBuffer;
  /** The worker reads host-call replies from this port synchronously (receiveMessageOnPort). */
  replies: MessagePort;
  /**
   * Int32Array[1]: WORKER_IDLE, or WORKER_IN_PROVIDER while the worker runs a provider's code
   * itself (a worker route, which may hold a lock in shared memory), or WORKER_DOOMED once the
   * main thread decided to terminate it. Compare-and-swap makes the two sides agree, so a worker
   * is never terminated halfway through a provider's operation.
   */
  state: SharedArrayBuffer;
  /** Call results, worker → main (results-ring.ts); a `results` message is its doorbell. */
  results: SharedArrayBuffer;
  limits: WorkerLimits;
}

export interface WorkerLimits {
  /**
   * Once the instances a worker discarded (traps, unloads) held this much linear memory in
   * total, it asks to be replaced (`retire`): the engine gives such memory back only when it
   * collects it, and a worker that is gone gives it all back.
   */
  retireAfterBytes: number;
  /** Largest host-call payload, and host-call reply, bytes (host option `maxHostCallBytes`). */
  hostCallBytes: number;
  /** Largest response to an invocation, bytes (host option `maxResponseBytes`). */
  responseBytes: number;
}

export const WORKER_IDLE = 0;
export const WORKER_IN_PROVIDER = 1;
export const WORKER_DOOMED = 2;

/** Worker routes of one actor by `<canonical contract>|<link name>`. */
export type RouteTable = Record<string, WorkerRoute>;

export interface CallItem {
  t: 'call';
  id: number;
  /** Per-worker sequence number (> 0): the call's ring cell. */
  seq: number;
  actor: string;
  op: string;
  msg: Uint8Array;
  deadline: number;
}

export type WorkItem =
  | { t: 'load'; actor: string; kind: ActorKind; payload: unknown; config?: Record<string, string>; routes?: RouteTable }
  | { t: 'routes'; actor: string; routes: RouteTable }
  | { t: 'unload'; actor: string }
  | CallItem;

/** The main thread sends work in batches: everything queued for a worker during one event-loop turn. */
export type ToWorker = { t: 'batch'; items: WorkItem[] };

export type GuestLogLine = [GuestLogLevel, string, number];

export type CallErrorCode = 'TRAP' | 'GUEST_ERROR' | 'ACTOR_NOT_FOUND' | 'PAYLOAD_TOO_LARGE';

export type FromWorker =
  | { t: 'ready' }
  | { t: 'results' }
  | { t: 'warn'; actor: string; message: string }
  /** Replace me once my calls in progress are done (see WorkerLimits.retireAfterBytes). */
  | { t: 'retire'; discardedBytes: number }
  | { t: 'done'; id: number; ok?: Uint8Array; err?: { code: CallErrorCode; message: string }; logs?: GuestLogLine[] }
  | { t: 'host'; seq: number; actor: string; binding: string; ns: string; op: string; payload: Uint8Array; deadline: number };

export type HostReply = { seq: number; ok?: Uint8Array; error?: string };

/** Same keys, modules and data (by identity of each data field, e.g. the same shared buffer). */
export function sameRoutes(a: RouteTable, b: RouteTable): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    const x = a[k]!;
    const y = b[k];
    if (!y || x.module !== y.module) return false;
    if (x.data !== y.data) {
      if (typeof x.data !== 'object' || typeof y.data !== 'object' || x.data === null || y.data === null) return false;
      const dx = x.data as Record<string, unknown>;
      const dy = y.data as Record<string, unknown>;
      const fields = Object.keys(dx);
      if (fields.length !== Object.keys(dy).length || fields.some((f) => dx[f] !== dy[f])) return false;
    }
  }
  return true;
}
