/** Messages between the main thread and actor workers. */
import type { MessagePort } from 'node:worker_threads';
import type { ActorKind, GuestLogLevel } from '../runtime/runtime.ts';

export interface WorkerInit {
  /** Int32Array over a SharedArrayBuffer: the main thread sets [0]=1 and notifies when a host-call reply is posted. */
  flag: SharedArrayBuffer;
  /** The worker reads host-call replies from this port synchronously (receiveMessageOnPort). */
  replies: MessagePort;
}

export type ToWorker =
  | { t: 'load'; actor: string; kind: ActorKind; payload: unknown }
  | { t: 'unload'; actor: string }
  | { t: 'call'; id: number; actor: string; op: string; msg: Uint8Array; deadline: number };

export type GuestLogLine = [GuestLogLevel, string, number];

export type CallErrorCode = 'TRAP' | 'GUEST_ERROR' | 'ACTOR_NOT_FOUND';

export type FromWorker =
  | { t: 'ready' }
  | { t: 'done'; id: number; ok?: Uint8Array; err?: { code: CallErrorCode; message: string }; logs?: GuestLogLine[] }
  | { t: 'host'; seq: number; actor: string; binding: string; ns: string; op: string; payload: Uint8Array; deadline: number };

export type HostReply = { seq: number; ok?: Uint8Array; error?: string };
