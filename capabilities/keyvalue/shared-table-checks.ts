/**
 * Checks shared by the SharedKeyValueTable tests: the allocator's and the keyspace's own
 * consistency checks, run on a table's buffer between operations.
 */
import assert from 'node:assert/strict';
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
