import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryLogStore, parseLogStoreOptions } from './log-store.ts';
import { isOptionsError } from './errors.ts';
import type { LogRecord } from './types.ts';

function rec(msg: string, time = Date.now(), level: LogRecord['level'] = 'info'): LogRecord {
  return { time, level, stream: 'log', msg };
}

async function collect(iter: AsyncIterable<LogRecord>): Promise<string[]> {
  const out: string[] = [];
  for await (const r of iter) out.push(r.msg);
  return out;
}

test('records are kept per actor and read back in order', async () => {
  const store = new MemoryLogStore();
  store.append('A', rec('a1'));
  store.append('B', rec('b1'));
  store.append('A', rec('a2'));
  assert.deepEqual(await collect(store.read('A')), ['a1', 'a2']);
  assert.deepEqual(await collect(store.read('B')), ['b1']);
  assert.deepEqual(await collect(store.read('nobody')), []);
  // A plain read of an unknown actor creates nothing.
  assert.deepEqual(store.stats('nobody'), { records: 0, bytes: 0, followers: 0 });
});

test('the ring keeps the newest maxRecordsPerActor records', async () => {
  const store = new MemoryLogStore({ maxRecordsPerActor: 3 });
  for (let i = 1; i <= 7; i++) store.append('A', rec(`m${i}`));
  assert.deepEqual(await collect(store.read('A')), ['m5', 'm6', 'm7']);
  assert.equal(store.stats('A').records, 3);
});

test('the ring keeps at most maxBytesPerActor bytes, truncating an oversized line at a character boundary', async () => {
  const store = new MemoryLogStore({ maxBytesPerActor: 10 });
  for (const m of ['aaaa', 'bbbb', 'cccc']) store.append('A', rec(m));
  assert.deepEqual(await collect(store.read('A')), ['bbbb', 'cccc']);
  assert.equal(store.stats('A').bytes, 8);
  // 'é' is two bytes: 6 of them (12 bytes) do not fit in 10, five do.
  store.append('A', rec('éééééé'));
  assert.deepEqual(await collect(store.read('A')), ['ééééé']);
  assert.equal(store.stats('A').bytes, 10);
  // A cut that would split a character steps back instead: 'a' + 5×'é' = 11 bytes → 'a' + 4×'é'.
  store.append('B', rec('aééééé'));
  assert.deepEqual(await collect(store.read('B')), ['aéééé']);
});

test('tailLines and sinceMs filter what is read', async () => {
  const store = new MemoryLogStore();
  for (let i = 1; i <= 5; i++) store.append('A', rec(`m${i}`, 1000 * i));
  assert.deepEqual(await collect(store.read('A', { tailLines: 2 })), ['m4', 'm5']);
  assert.deepEqual(await collect(store.read('A', { tailLines: 0 })), []);
  assert.deepEqual(await collect(store.read('A', { tailLines: 99 })), ['m1', 'm2', 'm3', 'm4', 'm5']);
  assert.deepEqual(await collect(store.read('A', { sinceMs: 3000 })), ['m3', 'm4', 'm5']);
  assert.deepEqual(await collect(store.read('A', { sinceMs: 4500, tailLines: 3 })), ['m5']);
});

test('bad options and bad read arguments are refused with OptionsError', () => {
  assert.throws(() => parseLogStoreOptions({ maxRecordsPerActor: 0 }), isOptionsError);
  assert.throws(() => new MemoryLogStore({ maxBytesPerActor: 1.5 }), isOptionsError);
  assert.throws(() => parseLogStoreOptions({ maxRecords: 5 }), isOptionsError);
  assert.deepEqual(parseLogStoreOptions(), { maxRecordsPerActor: 10_000, maxBytesPerActor: 4 * 1024 * 1024 });
  const store = new MemoryLogStore();
  store.append('A', rec('kept'));
  assert.throws(() => store.read('A', { tailLines: -1 }), isOptionsError);
  assert.throws(() => store.read('A', { sinceMs: Number.NaN }), isOptionsError);
  assert.equal(store.stats('A').records, 1);
});

test('follow yields buffered records, then new ones, until the signal aborts; the listener is removed', async () => {
  const store = new MemoryLogStore();
  store.append('A', rec('old'));
  const ac = new AbortController();
  const seen: string[] = [];
  const done = (async () => {
    for await (const r of store.read('A', { follow: true, signal: ac.signal })) seen.push(r.msg);
  })();
  await sleep(5);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
  store.append('A', rec('new1'));
  store.append('B', rec('other actor'));
  store.append('A', rec('new2'));
  await sleep(5);
  assert.deepEqual(seen, ['old', 'new1', 'new2']);
  ac.abort();
  await done;
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  assert.equal(store.stats('A').followers, 0);
});

test('follow ends when close(actor) is called; forget drops the records', async () => {
  const store = new MemoryLogStore();
  store.append('A', rec('x'));
  const ac = new AbortController();
  const done = collect(store.read('A', { follow: true, signal: ac.signal }));
  await sleep(5);
  store.close('A');
  assert.deepEqual(await done, ['x']);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  assert.deepEqual(await collect(store.read('A')), ['x'], 'close without forget keeps records');
  store.close('A', { forget: true });
  assert.deepEqual(await collect(store.read('A')), []);
  assert.equal(store.stats('A').records, 0);
});

test('breaking out of for-await removes the follower and its abort listener', async () => {
  const store = new MemoryLogStore();
  const ac = new AbortController();
  for (let i = 0; i < 3; i++) store.append('A', rec(`m${i}`));
  for (let round = 0; round < 50; round++) {
    for await (const r of store.read('A', { follow: true, signal: ac.signal })) {
      if (r.msg === 'm1') break;
    }
  }
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  assert.equal(store.stats('A').followers, 0);
  // The same while waiting for a new record: break right after it arrives.
  const got = (async () => {
    for await (const r of store.read('A', { follow: true, signal: ac.signal, tailLines: 0 })) return r.msg;
    return undefined;
  })();
  await sleep(5);
  assert.equal(store.stats('A').followers, 1);
  store.append('A', rec('late'));
  assert.equal(await got, 'late');
  assert.equal(store.stats('A').followers, 0);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
});

test('an already-aborted signal yields nothing and registers nothing', async () => {
  const store = new MemoryLogStore();
  store.append('A', rec('x'));
  const signal = AbortSignal.abort();
  assert.deepEqual(await collect(store.read('A', { follow: true, signal })), []);
  assert.deepEqual(await collect(store.read('A', { signal })), []);
  assert.equal(store.stats('A').followers, 0);
});

test('a slow follower does not hold back append or memory; it skips records the ring evicted', async () => {
  const store = new MemoryLogStore({ maxRecordsPerActor: 100 });
  const ac = new AbortController();
  const iter = store.read('A', { follow: true, signal: ac.signal })[Symbol.asyncIterator]();
  const fast = collect(store.read('A', { follow: true, signal: ac.signal }));
  store.append('A', rec('first'));
  assert.equal((await iter.next()).value?.msg, 'first');
  // The slow follower stops reading; 100 000 appends still complete synchronously.
  const t0 = performance.now();
  for (let i = 0; i < 100_000; i++) store.append('A', rec(`m${i}`));
  const elapsed = performance.now() - t0;
  assert.ok(elapsed < 2000, `append took ${elapsed} ms`);
  assert.equal(store.stats('A').records, 100);
  // When it reads again it continues from the oldest record still kept, in order.
  const next: string[] = [];
  for (let i = 0; i < 100; i++) next.push((await iter.next()).value!.msg);
  assert.equal(next[0], 'm99900');
  assert.equal(next[99], 'm99999');
  ac.abort();
  const fastSeen = await fast;
  assert.equal(fastSeen[0], 'first');
  assert.equal(fastSeen.at(-1), 'm99999');
  assert.deepEqual(await iter.next(), { done: true, value: undefined });
});

test('several followers each see every new record', async () => {
  const store = new MemoryLogStore();
  const ac = new AbortController();
  const readers = [1, 2, 3].map(() => collect(store.read('A', { follow: true, signal: ac.signal })));
  await sleep(5);
  store.append('A', rec('one'));
  store.append('A', rec('two'));
  await sleep(5);
  ac.abort();
  for (const r of await Promise.all(readers)) assert.deepEqual(r, ['one', 'two']);
});
