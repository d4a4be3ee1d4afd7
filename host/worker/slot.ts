/**
 * One worker of the pool and what the main thread shares with it: the host-call reply buffer,
 * the call-state ring and the worker-state cell (layouts in protocol.ts).
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { WorkerRoute } from '../types.ts';
import { ResultsReader, resultsBuffer } from './results-ring.ts';
import { CALL_RING_SIZE, REPLY_BUFFER_BYTES, REPLY_ERROR, REPLY_HEADER_BYTES, REPLY_OK, REPLY_VIA_PORT, type HostReply, type WorkerInit, type WorkerLimits, type WorkItem } from './protocol.ts';

export interface WorkerSlot<Call> {
  index: number;
  worker: Worker;
  /** The worker's threadId, kept: the Worker object reports -1 once the thread is gone. */
  threadId: number;
  /** Every worker route handed to this worker (providers' shared state it may have held a lock in). */
  routesSeen: Set<WorkerRoute>;
  flag: Int32Array;
  replyBytes: Uint8Array;
  ring: Int32Array;
  replies: MessagePort;
  /** WORKER_IDLE / WORKER_IN_PROVIDER / WORKER_DOOMED (see protocol.ts). */
  state: Int32Array;
  /** Results the worker wrote to shared memory (see results-ring.ts). */
  results: ResultsReader;
  ready: boolean;
  dead: boolean;
  /** Asked to be replaced: gets no new calls, and goes once its outstanding calls are answered. */
  retiring: boolean;
  /** Sent and not answered, in send order: [0] is running (or about to). */
  outstanding: Call[];
  /** When outstanding[0] started (approximately). */
  headSince: number;
  seq: number;
  loaded: Set<string>;
  sendBuf: WorkItem[];
}

const utf8 = new TextEncoder();
const WORKER_URL = new URL('./worker-bootstrap.mjs', import.meta.url);

/** Starts a worker with fresh shared buffers; the caller wires its events. */
export function spawnSlot<Call>(index: number, limits: WorkerLimits): WorkerSlot<Call> {
  const flagBuf = new SharedArrayBuffer(REPLY_HEADER_BYTES + REPLY_BUFFER_BYTES);
  const ringBuf = new SharedArrayBuffer(4 * CALL_RING_SIZE);
  const stateBuf = new SharedArrayBuffer(4);
  const channel = new MessageChannel();
  const results = resultsBuffer();
  const init: WorkerInit = { flag: flagBuf, ring: ringBuf, replies: channel.port2, state: stateBuf, results, limits };
  const worker = new Worker(WORKER_URL, { workerData: init, transferList: [channel.port2], stdout: false, stderr: false });
  return {
    index,
    worker,
    threadId: worker.threadId,
    routesSeen: new Set(),
    flag: new Int32Array(flagBuf, 0, 4),
    replyBytes: new Uint8Array(flagBuf, REPLY_HEADER_BYTES),
    ring: new Int32Array(ringBuf),
    replies: channel.port1,
    state: new Int32Array(stateBuf),
    results: new ResultsReader(results),
    ready: false,
    dead: false,
    retiring: false,
    outstanding: [],
    headSince: 0,
    seq: 0,
    loaded: new Set(),
    sendBuf: [],
  };
}

/** Hands a host-call reply to the worker blocked on it: through the shared buffer, or the port when too large. */
export function writeHostReply(slot: WorkerSlot<unknown>, reply: HostReply): void {
  let status: number;
  let len = 0;
  const bytes = reply.error !== undefined ? utf8.encode(reply.error) : reply.ok!;
  if (bytes.byteLength <= REPLY_BUFFER_BYTES) {
    slot.replyBytes.set(bytes);
    len = bytes.byteLength;
    status = reply.error !== undefined ? REPLY_ERROR : REPLY_OK;
  } else {
    slot.replies.postMessage(reply);
    status = REPLY_VIA_PORT;
  }
  const f = slot.flag;
  Atomics.store(f, 1, reply.seq);
  Atomics.store(f, 2, status);
  Atomics.store(f, 3, len);
  Atomics.store(f, 0, 1);
  Atomics.notify(f, 0);
}
