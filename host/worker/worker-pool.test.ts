import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { compileWat, toolboxWat } from '../../test/helpers/wat.ts';
import { decode, encode, isInvocationError, wapcRuntime, WorkerPool } from '../index.ts';

test('a late host-call reply to a call that timed out is dropped; the next call gets its own reply', async () => {
  const bytes = await compileWat(toolboxWat());
  const prepared = await wapcRuntime.prepare(bytes, await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>));
  const pending: { op: string; resolve(v: Uint8Array): void }[] = [];
  const arrived: (() => void)[] = [];
  const pool = new WorkerPool({
    size: 1,
    logger: pino({ level: 'silent' }),
    // The sweep that would replace an overrunning worker stays out of the way: the worker's own
    // wait, bounded by the deadline, is what this test exercises.
    sweepIntervalMs: 60_000,
    hostCall: (_actor, _binding, _ns, op, payload) =>
      new Promise<Uint8Array>((resolve) => {
        pending.push({ op: `${op}:${decode<{ key: string }>(payload).key}`, resolve });
        arrived.splice(0).forEach((f) => f());
      }),
  });
  const nextHostCall = () => new Promise<void>((r) => arrived.push(r));
  try {
    await pool.ready();
    pool.register('A', prepared, { maxInstances: 1, deadlineMs: 5000 });
    // First call: its host call is never answered in time; the guest sees the timeout as an error.
    const first = pool.invoke('A', 'wascc:keyvalue/Get', encode({ key: 'first' }), 150);
    await assert.rejects(first, (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && /host call timed out/.test(e.message));
    assert.equal(pending.length, 1);
    // Second call: while its worker waits, the first call's late reply lands first, then its own.
    const arrivedSecond = nextHostCall();
    const second = pool.invoke('A', 'wascc:keyvalue/Get', encode({ key: 'second' }), 5000);
    await arrivedSecond;
    assert.deepEqual(
      pending.map((p) => p.op),
      ['Get:first', 'Get:second'],
    );
    pending[0]!.resolve(encode({ value: 'late reply of the first call', exists: true }));
    await new Promise((r) => setTimeout(r, 50)); // the worker wakes, sees another call's reply, drops it
    pending[1]!.resolve(encode({ value: 'reply of the second call', exists: true }));
    assert.deepEqual(decode(await second), { value: 'reply of the second call', exists: true });
    assert.equal(pool.restarts, 0);
  } finally {
    await pool.close();
  }
});
