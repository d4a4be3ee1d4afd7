/**
 * Checks shared by the SharedKeyValueTable tests: the allocator's and the keyspace's own
 * consistency checks, run on a table's buffer between operations; and a worker thread that
 * attaches to tables and runs calls on them.
 */
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { isOperationError } from '../errors.ts';
import { SharedHeap } from './shared-heap.ts';
import { Keyspace } from './shared-keyspace.ts';
import type { SharedKeyValueTable } from './shared-table.ts';

/** Asserts `fn` throws an OperationError of `code` whose message matches `pattern`. */
export function throwsOp(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isOperationError(err), `expected an OperationError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

/** A second view of the heap in `table`'s buffer, for its checks (and for holding its lock in tests). */
export function heapOf(table: SharedKeyValueTable): SharedHeap {
  return SharedHeap.attach(table.buffer, 1000);
}

/** Runs the allocator's and the keyspace's own checks; returns the bytes in use. */
export function assertTableSound(table: SharedKeyValueTable): { usedBytes: number } {
  const heap = heapOf(table);
  const report = heap.verify();
  assert.deepEqual(report.problems, []);
  assert.deepEqual(new Keyspace(heap, Date.now).verify(), []);
  return report;
}

export interface WireError {
  name: string;
  code?: string;
  message: string;
}

/** A worker thread attached to tables the test gives it. */
export class TableWorker {
  readonly #worker: Worker;
  #next = 0;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (msg: { id?: number; result?: unknown; error?: WireError }) => {
      if (msg.id === undefined) return;
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      if (msg.error) p?.reject(Object.assign(new Error(msg.error.message), msg.error));
      else p?.resolve(msg.result);
    });
  }

  static async start(): Promise<TableWorker> {
    const worker = new Worker(new URL('./shared-table-test-worker.mjs', import.meta.url));
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    return new TableWorker(worker);
  }

  /** Resolves when the worker posts a message with `flag` set (e.g. `holding`), outside any call's answer. */
  says(flag: string): Promise<void> {
    return new Promise((resolve) => {
      const on = (msg: Record<string, unknown>) => {
        if (msg[flag] === undefined) return;
        this.#worker.off('message', on);
        resolve();
      };
      this.#worker.on('message', on);
    });
  }

  call(method: string, ...args: unknown[]): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, method, args });
    });
  }

  /** The worker's threadId (the tag its table locks carry). */
  get threadId(): number {
    return this.#worker.threadId;
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}
