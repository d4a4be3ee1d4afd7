/**
 * Runs in actor worker threads: answers an actor's key-value calls on the shared-memory table
 * its link uses, synchronously, with the provider's own operation table (so replies and errors
 * are the ones the provider would give). The provider hands workers this module through
 * `KeyValueProvider.workerRoute`.
 */
import type { WorkerRouteContext } from '../../host/index.ts';
import { asOperationError, prepareOperation } from './operations.ts';
import { SharedKeyValueTable } from './shared-table.ts';

/** What the provider sends along with the route. */
export interface WorkerHandlerData {
  buffer: SharedArrayBuffer;
}

export function createWorkerHandler(data: WorkerHandlerData, ctx: WorkerRouteContext): (operation: string, msg: Uint8Array) => Uint8Array {
  const table = SharedKeyValueTable.attach(data.buffer);
  return (operation, msg) => {
    const op = prepareOperation(operation, msg, ctx);
    let result: unknown;
    try {
      result = (table[op.method] as (...args: unknown[]) => unknown)(...op.args);
    } catch (err) {
      throw asOperationError(operation, err);
    }
    return op.encode(result);
  };
}

/**
 * Called by the host on its main thread once an actor worker that had this route has ended: if
 * the worker died holding the table's lock (a crash inside an operation), the lock is taken
 * over, the table checked or emptied, and released (see SharedKeyValueTable.recoverDeadThread).
 */
export function recoverThread(data: WorkerHandlerData, threadId: number): 'not-held' | 'repaired' | 'reset' {
  return SharedKeyValueTable.recoverDeadThread(data.buffer, threadId);
}
