/**
 * The shared table's lock cannot be held for long or forever: every operation visits a bounded
 * number of items under it (lists and sets are capped at `maxItems`, reads at `maxResultBytes`,
 * deleted collections are freed a batch per operation), and a thread that dies holding it (a
 * crash inside an operation) has its lock recovered with the table left consistent.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertTableSound, TableWorker, throwsOp } from './shared-table-checks.ts';
import { DEFAULT_MAX_ITEMS, SharedKeyValueTable } from './shared-table.ts';

describe('shared table: bounded lock holds', () => {
  test('lists and sets stop at maxItems; reads stop at maxResultBytes; the error says why', () => {
    const t = SharedKeyValueTable.create({ bytes: 1 << 22, maxItems: 100, maxResultBytes: 2048 });
    for (let i = 0; i < 100; i++) {
      t.push('l', `item ${i}`);
      t.setAdd('s', `member ${i}`);
    }
    throwsOp(() => t.push('l', 'one more'), 'BACKEND_ERROR', /^Push: the list at "l" holds 100 items, the most one list may hold in the shared-memory backend/);
    throwsOp(() => t.setAdd('s', 'one more'), 'BACKEND_ERROR', /^SetAdd: the set at "s" holds 100 items/);
    assert.equal(t.setAdd('s', 'member 5'), 0, 'a member already there is no growth');
    assert.equal(t.range('l', 0, -1).length, 100, '100 items of ~8 bytes fit 2048');
    t.set('big', 'x', 0);
    for (let i = 0; i < 5; i++) t.push('wide', 'y'.repeat(600));
    throwsOp(() => t.range('wide', 0, -1), 'BACKEND_ERROR', /^Range: the result is larger than 2048 bytes/);
    assert.equal(t.range('wide', 0, 2).length, 3);
    for (let i = 0; i < 100; i++) t.setAdd('s2', `other ${i}`);
    assert.equal(t.setUnion(['s', 's', 's']).length, 100, 'a key named twice counts once');
    throwsOp(() => t.setUnion(['s', 's2']), 'BACKEND_ERROR', /^SetUnion: the result is larger than 2048 bytes/);
    assert.deepEqual(t.setIntersection(['s', 's2', 'missing']), []);
    // Probes are bounded too (4 × maxItems): 100 members against 5 other sets is 500.
    for (const name of ['c1', 'c2', 'c3', 'c4', 'c5']) for (let i = 0; i < 100; i++) t.setAdd(name, `member ${i}`);
    assert.equal(t.setIntersection(['s', 'c1', 'c2', 'c3', 'c4']).length, 100);
    throwsOp(() => t.setIntersection(['s', 'c1', 'c2', 'c3', 'c4', 'c5']), 'BACKEND_ERROR', /^SetIntersection: comparing 500 set members is more work than one call may do in the shared-memory backend \(at most 400\)/);
    assertTableSound(t);
    assert.throws(() => SharedKeyValueTable.create({ maxItems: 0 }), (e: Error & { code?: string }) => e.code === 'OPTIONS_INVALID' && /maxItems must be an integer from 1/.test(e.message));
    assert.throws(() => SharedKeyValueTable.create({ maxResultBytes: 10 }), (e: Error & { code?: string }) => e.code === 'OPTIONS_INVALID' && /maxResultBytes must be an integer from 1024/.test(e.message));
  });

  test('a deleted big collection is freed a batch per operation, and the memory comes back', () => {
    const t = SharedKeyValueTable.create({ bytes: 1 << 23 });
    const empty = assertTableSound(t).usedBytes;
    for (let i = 0; i < 16_000; i++) t.push('l', `item ${i}`);
    for (let i = 0; i < 16_000; i++) t.setAdd('s', `member ${i}`);
    assert.equal(t.del('l'), true);
    assert.equal(t.del('s'), true);
    assert.equal(t.keyExists('l'), false);
    assertTableSound(t);
    for (let i = 0; i < 60; i++) t.get('x'); // each frees a batch
    assert.equal(assertTableSound(t).usedBytes, empty, 'all of it freed');
  });

  test('another thread’s Add stays fast while the largest reads and deletes run', async () => {
    const t = SharedKeyValueTable.create({ bytes: 64 << 20 });
    const max = DEFAULT_MAX_ITEMS;
    for (let i = 0; i < max; i++) {
      t.push('list', `list item number ${i}`);
      t.setAdd('a', `member ${i}`);
      t.setAdd('b', `member ${i}`);
    }
    const worker = await TableWorker.start();
    try {
      await worker.call('attach', t.buffer, { lockTimeoutMs: 10_000 });
      const gate = new SharedArrayBuffer(4);
      const probing = worker.call('probe', { ms: 3000, gate }) as Promise<{ calls: number; waited: number; median: number; p90: number; max: number }>;
      Atomics.store(new Int32Array(gate), 0, 1);
      Atomics.notify(new Int32Array(gate), 0);
      const end = performance.now() + 2800;
      let rounds = 0;
      while (performance.now() < end) {
        // The attacks of the issue: whole-list ranges, whole-set reads, big unions and intersections.
        assert.ok(t.range('list', 0, -1).length === max);
        assert.equal(t.setQuery('a').length, max);
        assert.equal(t.setIntersection(['a', 'b']).length, max);
        assert.equal(t.setUnion(['a', 'b']).length, max);
        assert.equal(t.listItemDelete('list', 'not there'), max);
        rounds++;
      }
      const p = await probing;
      const summary = `${p.calls} Adds, ${p.waited} waited: median ${p.median.toFixed(2)} ms, p90 ${p.p90.toFixed(2)} ms, max ${p.max.toFixed(1)} ms; ${rounds} rounds of the big operations`;
      if (process.env.KV_VERBOSE) process.stderr.write(`${summary}\n`);
      assert.ok(rounds >= 1 && p.waited >= 1, summary);
      // Before, one whole-list Range of 1.5M items held the lock for 1.4 s and Adds waited 1.3 s
      // (median). Measured on an idle 2-core machine: waits of ~1-2 ms median, ~10 ms p90. The
      // bounds here are far looser on purpose: a busy machine deschedules threads, even one that
      // holds the lock, and then the waits say more about the machine than about the table.
      assert.ok(p.median < 50, `median wait ${summary}`);
      assert.ok(p.p90 < 250, `p90 wait ${summary}`);
      assertTableSound(t);
    } finally {
      await worker.terminate();
    }
  });
});

describe('shared table: a thread that dies holding the lock', () => {
  test('its lock is recovered and the data kept when it died between changes', async () => {
    const t = SharedKeyValueTable.create({ bytes: 1 << 22 });
    t.set('kept', 'yes', 0);
    const worker = await TableWorker.start();
    await worker.call('attach', t.buffer, {});
    const holding = worker.says('holding');
    void worker.call('holdLock').catch(() => undefined);
    await holding;
    assert.equal(t.lockHolder, worker.threadId);
    const tid = worker.threadId;
    await worker.terminate();
    // Without recovery every later operation would wait out the lock timeout and fail.
    throwsOp(() => SharedKeyValueTable.attach(t.buffer, { lockTimeoutMs: 50 }).get('kept'), 'BACKEND_ERROR', new RegExp(`held by thread ${tid}`));
    assert.equal(SharedKeyValueTable.recoverDeadThread(t.buffer, tid), 'repaired');
    assert.equal(t.lockHolder, -1);
    assert.deepEqual(t.get('kept'), { value: 'yes', exists: true });
    assert.deepEqual(t.recoveries, { recovered: 1, resets: 0 });
    assert.equal(SharedKeyValueTable.recoverDeadThread(t.buffer, tid), 'not-held', 'nothing left to do');
    assertTableSound(t);
  });

  test('killed in the middle of changes, again and again: the table is consistent every time and keeps working', async () => {
    const t = SharedKeyValueTable.create({ bytes: 1 << 24 });
    const outcomes = { 'not-held': 0, repaired: 0, reset: 0 };
    let survivor = 0;
    for (let round = 0; round < 24; round++) {
      const worker = await TableWorker.start();
      await worker.call('attach', t.buffer, {});
      const churning = worker.says('churning');
      void worker.call('churn', { tag: `w${round}` }).catch(() => undefined);
      await churning;
      await new Promise((r) => setTimeout(r, 5 + ((round * 7) % 30)));
      const tid = worker.threadId;
      await worker.terminate();
      const outcome = SharedKeyValueTable.recoverDeadThread(t.buffer, tid);
      outcomes[outcome]++;
      assert.equal(t.lockHolder, -1, `round ${round}: the lock is free`);
      assertTableSound(t);
      // Data written before survives a repair; a reset empties the table (and says so).
      survivor = outcome === 'reset' ? 1 : survivor + 1;
      assert.equal(t.add('survivor', 1), survivor, `round ${round} (${outcome})`);
    }
    if (process.env.KV_VERBOSE) process.stderr.write(`kills: ${JSON.stringify(outcomes)}\n`);
    // The churn spends most of its time under the lock: most kills land inside an operation.
    assert.ok(outcomes.repaired + outcomes.reset >= 3, `kills inside an operation: ${JSON.stringify(outcomes)}`);
    assert.deepEqual(t.recoveries, { recovered: outcomes.repaired + outcomes.reset, resets: outcomes.reset });
  });
});
