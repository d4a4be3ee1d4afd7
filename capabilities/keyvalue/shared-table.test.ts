import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isProviderError } from '../errors.ts';
import { assertTableSound, heapOf, TableWorker, throwsOp, type WireError } from './shared-table-checks.ts';
import { SharedKeyValueTable } from './shared-table.ts';

async function rejectsWire(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: WireError) => {
    assert.equal(err.name, 'OperationError', err.message);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('shared table: options and attaching', () => {
  test('bad options are refused with a clear error', () => {
    const refused = (options: object, pattern: RegExp) =>
      assert.throws(() => SharedKeyValueTable.create(options), (err: unknown) => {
        assert.ok(isProviderError(err));
        assert.equal(err.code, 'OPTIONS_INVALID');
        assert.match(err.message, pattern);
        return true;
      });
    refused({ bytes: 1000 }, /bytes must be an integer from 65536/);
    refused({ bytes: 2 ** 31 + 8 }, /bytes must be an integer/);
    refused({ bytes: 100_000.5 }, /bytes must be an integer/);
    refused({ bytes: '1048576' }, /bytes must be an integer/);
    refused({ now: 5 }, /now must be a function/);
    refused({ lockTimeoutMs: 0 }, /lockTimeoutMs must be a positive number/);
    refused({ lockTimeoutMs: Infinity }, /lockTimeoutMs must be a positive number/);
    assert.equal(SharedKeyValueTable.create({ bytes: 65_536 }).buffer.byteLength, 65_536);
    assert.equal(SharedKeyValueTable.create().buffer.byteLength, 64 * 1024 * 1024);
  });

  test('attach refuses anything but a table buffer', () => {
    const refused = (buffer: unknown, pattern: RegExp) =>
      assert.throws(() => SharedKeyValueTable.attach(buffer as SharedArrayBuffer), (err: unknown) => {
        assert.ok(isProviderError(err));
        assert.equal(err.code, 'SHARED_BUFFER_INVALID');
        assert.match(err.message, pattern);
        return true;
      });
    refused(new ArrayBuffer(1 << 20), /expected a SharedArrayBuffer/);
    refused(new Uint8Array(new SharedArrayBuffer(1 << 20)), /expected a SharedArrayBuffer/);
    refused(new SharedArrayBuffer(1 << 20), /bad magic number/);
    refused(new SharedArrayBuffer(1024), /1024 bytes is not one/);
    const real = SharedKeyValueTable.create({ bytes: 1 << 16 });
    const copy = new SharedArrayBuffer(1 << 16);
    new Uint8Array(copy).set(new Uint8Array(real.buffer));
    assert.equal(SharedKeyValueTable.attach(copy).size, 0, 'a byte-for-byte copy is a table');
    new Uint32Array(copy)[1] = 99; // layout version
    refused(copy, /layout version 99/);
    const longer = new SharedArrayBuffer(1 << 17);
    new Uint8Array(longer).set(new Uint8Array(real.buffer));
    refused(longer, /recorded size/);
  });

  test('two handles on one buffer in one thread see the same data', () => {
    const a = SharedKeyValueTable.create({ bytes: 1 << 20 });
    const b = SharedKeyValueTable.attach(a.buffer);
    a.set('k', 'v', 0);
    assert.equal(b.add('n', 2), 2);
    assert.deepEqual(b.get('k'), { value: 'v', exists: true });
    assert.deepEqual(a.get('n'), { value: '2', exists: true });
    assert.equal(b.size, 2);
  });
});

describe('shared table: values', () => {
  test('unicode keys and values: distinct byte strings are distinct keys', () => {
    const t = SharedKeyValueTable.create({ bytes: 1 << 20 });
    const composed = 'caf\u00e9';
    const decomposed = 'cafe\u0301';
    t.set(composed, 'one', 0);
    t.set(decomposed, 'two', 0);
    assert.deepEqual(t.get(composed), { value: 'one', exists: true });
    assert.deepEqual(t.get(decomposed), { value: 'two', exists: true });
    const long = '𝄞✓ключ'.repeat(40); // past the short-string paths
    t.set(long, long + '🚀', 0);
    assert.deepEqual(t.get(long), { value: long + '🚀', exists: true });
    t.push('列表', '一');
    t.push('列表', 'ß');
    assert.deepEqual(t.range('列表', 0, -1), ['一', 'ß']);
    assert.equal(t.listItemDelete('列表', 'ß'), 1);
    t.setAdd('集合', 'α');
    assert.equal(t.setAdd('集合', 'α'), 0);
    assert.deepEqual(t.setQuery('集合'), ['α']);
  });

  test('1 MiB values as strings, list items and set members', () => {
    const t = SharedKeyValueTable.create({ bytes: 16 << 20 });
    const big = 'x'.repeat(1 << 20);
    const bigUnicode = 'é🚀'.repeat(200_000);
    t.set('big', big, 0);
    t.set('bigu', bigUnicode, 0);
    assert.equal(t.get('big').value, big);
    assert.equal(t.get('bigu').value, bigUnicode);
    t.push('l', big);
    t.push('l', 'small');
    assert.deepEqual(t.range('l', 0, -1), [big, 'small']);
    assert.equal(t.setAdd('s', bigUnicode), 1);
    assert.equal(t.setAdd('s', bigUnicode), 0);
    assert.equal(t.setRemove('s', bigUnicode.slice(0, -1)), 0);
    assert.deepEqual(t.setQuery('s'), [bigUnicode]);
    assert.equal(t.listItemDelete('l', big), 1);
    t.set('big', 'now small', 0);
    assert.deepEqual(t.get('big'), { value: 'now small', exists: true });
    assertTableSound(t);
  });
});

describe('shared table: across threads', () => {
  const workers: TableWorker[] = [];
  before(async () => {
    workers.push(...(await Promise.all([TableWorker.start(), TableWorker.start()])));
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.terminate()));
  });
  const attachAll = (t: SharedKeyValueTable, options: object = {}) => Promise.all(workers.map((w) => w.call('attach', t.buffer, options)));

  test('concurrent add, push and setAdd from workers and the main thread lose nothing', async () => {
    const t = SharedKeyValueTable.create({ bytes: 8 << 20, maxItems: 65_536 });
    await attachAll(t);
    const n = 20_000;
    const gate = new SharedArrayBuffer(4);
    const results = workers.map((w, i) => w.call('hammer', { tag: `w${i}`, n, gate }) as Promise<number[]>);
    await new Promise((r) => setTimeout(r, 20)); // let the workers reach the gate
    Atomics.store(new Int32Array(gate), 0, 1);
    Atomics.notify(new Int32Array(gate), 0);
    const mine: number[] = [];
    for (let i = 0; i < n; i++) {
      mine.push(t.add('counter', 1));
      t.push('list', `main:${i}`);
      t.setAdd('set', `main:${i}`);
    }
    const all = [mine, ...(await Promise.all(results))];
    const total = n * all.length;
    assert.deepEqual(t.get('counter'), { value: String(total), exists: true });
    const answered = all.flat().sort((a, b) => a - b);
    assert.ok(answered.every((v, i) => v === i + 1), 'every add answered a distinct value');
    const list = t.range('list', 0, -1);
    assert.equal(list.length, total);
    for (const tag of ['main', 'w0', 'w1']) {
      const own = list.filter((x) => x.startsWith(`${tag}:`));
      assert.deepEqual(own, Array.from({ length: n }, (_, i) => `${tag}:${i}`), `${tag}'s pushes all there, in order`);
    }
    assert.equal(t.setQuery('set').length, total);
    assertTableSound(t);
  });

  test('a thread waiting for the lock proceeds when it is released, or times out', async () => {
    const t = SharedKeyValueTable.create({ bytes: 1 << 20 });
    await attachAll(t, { lockTimeoutMs: 1500 });
    const heap = heapOf(t);
    heap.lock('test');
    const pending = workers[0]!.call('add', 'n', 5);
    let settled = false;
    void pending.then(() => (settled = true), () => (settled = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(settled, false, 'the worker waits while the lock is held');
    heap.unlock();
    assert.equal(await pending, 5);
    // A holder that never lets go: callers get BACKEND_ERROR after the timeout, not a hang.
    const impatient = SharedKeyValueTable.attach(t.buffer, { lockTimeoutMs: 100 });
    heap.lock('test');
    try {
      const t0 = performance.now();
      throwsOp(() => impatient.get('n'), 'BACKEND_ERROR', /^Get: timed out after 100 ms waiting for the shared key-value table's lock/);
      assert.ok(performance.now() - t0 >= 90, 'it waited about its timeout first');
      await rejectsWire(workers[1]!.call('keyExists', 'n'), 'BACKEND_ERROR', /KeyExists: timed out after 1500 ms/);
    } finally {
      heap.unlock();
    }
    assert.deepEqual(impatient.get('n'), { value: '5', exists: true });
  });

  test('expiry is judged by absolute time, whichever thread set the key', async () => {
    let skew = -10_000;
    const t = SharedKeyValueTable.create({ bytes: 1 << 20, now: () => Date.now() + skew });
    await attachAll(t);
    const [w] = workers as [TableWorker];
    t.set('gone', 'v', 1); // expired 9 s ago by the real clock
    t.set('later', 'v', 60);
    t.set('kept', 'v', 0);
    assert.deepEqual(await w.call('get', 'gone'), { value: '', exists: false });
    assert.equal(await w.call('keyExists', 'later'), true);
    assert.equal(await w.call('keyExists', 'kept'), true);
    await w.call('set', 'short', 'v', 1);
    assert.equal(t.keyExists('short'), true, 'ten seconds behind, still alive');
    skew = 5000;
    assert.equal(t.keyExists('short'), false);
    assert.equal(await w.call('keyExists', 'later'), true);
  });

  test('close is seen by every attached thread', async () => {
    const t = SharedKeyValueTable.create({ bytes: 1 << 20 });
    await attachAll(t);
    t.set('k', 'v', 0);
    assert.deepEqual(await workers[0]!.call('get', 'k'), { value: 'v', exists: true });
    await workers[1]!.call('close');
    throwsOp(() => t.get('k'), 'BACKEND_ERROR', /^Get: key-value store is closed$/);
    throwsOp(() => t.setUnion([]), 'BACKEND_ERROR', /closed/);
    await rejectsWire(workers[0]!.call('add', 'k', 1), 'BACKEND_ERROR', /^Add: key-value store is closed$/);
    t.close(); // closing again is harmless
  });
});
