/**
 * A worker route for tests of a worker that dies inside a key-value operation: the real
 * key-value route of the shared-memory backend, plus an operation `CrashHoldingLock` that takes
 * the table's lock and ends the worker thread there (a crash, not a deadline kill).
 */
import type { WorkerRouteContext } from '../../host/index.ts';
import { SharedHeap } from '../../capabilities/keyvalue/shared-heap.ts';
import { createWorkerHandler as keyValueHandler, type WorkerHandlerData } from '../../capabilities/keyvalue/worker-handler.ts';

export { recoverThread } from '../../capabilities/keyvalue/worker-handler.ts';

export function createWorkerHandler(data: WorkerHandlerData, ctx: WorkerRouteContext): (operation: string, msg: Uint8Array) => Uint8Array {
  const real = keyValueHandler(data, ctx);
  return (operation, msg) => {
    if (operation !== 'CrashHoldingLock') return real(operation, msg);
    SharedHeap.attach(data.buffer, 1000).lock('CrashHoldingLock');
    process.exit(70);
  };
}
