import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { compileWat, toolboxWat } from '../../test/helpers/wat.ts';
import { decode, encode, isInvocationError, wapcRuntime, WorkerPool } from '../index.ts';
import type { WorkItem } from './protocol.ts';
import { compactPayloads } from './worker-pool.ts';

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

test('call payloads that are views into larger memory travel as their own bytes', () => {
  const big = new Uint8Array(65_536).fill(9);
  const own = Uint8Array.from([1, 2, 3]);
  const items: WorkItem[] = [
    { t: 'call', id: 1, seq: 1, actor: 'M', op: 'A', msg: big.subarray(100, 110), deadline: 0 },
    { t: 'unload', actor: 'X' },
    { t: 'call', id: 2, seq: 2, actor: 'M', op: 'A', msg: own, deadline: 0 },
    { t: 'call', id: 3, seq: 3, actor: 'M', op: 'A', msg: big.subarray(0, 5), deadline: 0 },
  ];
  compactPayloads(items);
  const [a, , b, c] = items as Extract<WorkItem, { t: 'call' }>[];
  assert.equal(a!.msg.buffer.byteLength, 15, 'the two views share one 15-byte block');
  assert.equal(c!.msg.buffer, a!.msg.buffer);
  assert.deepEqual([...a!.msg], Array(10).fill(9));
  assert.deepEqual([...c!.msg], Array(5).fill(9));
  assert.equal(b!.msg, own, 'a payload that owns its memory is left as it is');
  // What a worker would receive: the structured clone carries 15 bytes, not 64 KiB.
  const cloned = structuredClone(items) as typeof items;
  assert.equal((cloned[0] as { msg: Uint8Array }).msg.buffer.byteLength, 15);
});

test('a call that finished before a later one overran is answered, with its log lines, when the worker is replaced', async () => {
  const bytes = await compileWat(toolboxWat());
  const prepared = await wapcRuntime.prepare(bytes, await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>));
  const logged: string[] = [];
  const pool = new WorkerPool({
    size: 1,
    logger: pino({ level: 'silent' }),
    hostCall: async () => new Uint8Array(0),
    onLogs: (actor, lines) => logged.push(...lines.map(([, message]) => `${actor}:${message}`)),
  });
  try {
    await pool.ready();
    pool.register('A', prepared, { maxInstances: 1, deadlineMs: 300 });
    // Warm: the instance exists, so both calls below go to the one worker in one message.
    await pool.invoke('A', 'HandleRequest', encode({ method: 'GET' }));
    logged.length = 0;
    // The first finishes at once; the second spins until the worker is replaced. The first's
    // result waits in shared memory (its doorbell would go at the end of the message, which
    // never comes) and is answered when the pool stops the worker.
    const done = pool.invoke('A', 'HandleRequest', encode({ method: 'GET' }));
    const spin = pool.invoke('A', 'loop', new Uint8Array(0));
    assert.equal(decode<{ statusCode: number }>(await done).statusCode, 200);
    await assert.rejects(spin, (e) => isInvocationError(e) && e.code === 'DEADLINE_EXCEEDED');
    // The first call's log line came with its result (the spinning call's own never finished).
    assert.deepEqual(logged, ['A:handling']);
    assert.equal(pool.restarts, 1);
    // Many calls in a row all come back (results through the ring, doorbells coalesced).
    const many = await Promise.all(Array.from({ length: 500 }, () => pool.invoke('A', 'HandleRequest', encode({ method: 'GET' }), 10_000)));
    assert.ok(many.every((r) => decode<{ statusCode: number }>(r).statusCode === 200));
  } finally {
    await pool.close();
  }
});

test('deadlines hold after the pool has been idle (the sweep runs only while calls are out, and comes back)', async () => {
  const bytes = await compileWat(toolboxWat());
  const prepared = await wapcRuntime.prepare(bytes, await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>));
  const pool = new WorkerPool({ size: 1, logger: pino({ level: 'silent' }), hostCall: async () => new Uint8Array(0), sweepIntervalMs: 5 });
  try {
    await pool.ready();
    // A replaced worker takes a while to start again on a busy machine: only the spinning call
    // has a short deadline.
    pool.register('A', prepared, { maxInstances: 1, deadlineMs: 30_000 });
    for (let round = 0; round < 2; round++) {
      assert.equal(decode<{ statusCode: number }>(await pool.invoke('A', 'HandleRequest', encode({ method: 'GET' }))).statusCode, 200);
      // Idle for many sweep intervals: the sweep stops; the next call must start it again.
      await new Promise((r) => setTimeout(r, 50));
      await assert.rejects(pool.invoke('A', 'loop', new Uint8Array(0), 200), (e) => isInvocationError(e) && e.code === 'DEADLINE_EXCEEDED');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(pool.restarts, 2);
  } finally {
    await pool.close();
  }
});
