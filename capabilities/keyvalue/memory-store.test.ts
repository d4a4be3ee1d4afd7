import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runKeyValueConformance } from './conformance.ts';
import { MemoryKeyValueStore, memoryBackend } from './memory-store.ts';
import { pino } from 'pino';

runKeyValueConformance(
  'memory',
  async () => {
    const store = new MemoryKeyValueStore();
    return { store, cleanup: () => store.close() };
  },
  { linkValues: () => ({}) },
);

test('memory: expiry is exact to the clock, without timers', async () => {
  let now = 1_000_000;
  const store = new MemoryKeyValueStore({ now: () => now });
  await store.set('k', 'v', 2);
  now += 1999;
  assert.deepEqual(await store.get('k'), { value: 'v', exists: true });
  now += 1;
  assert.deepEqual(await store.get('k'), { value: '', exists: false });
  await store.close();
});

test('memory: the sweep drops expired keys nobody reads', async () => {
  let now = 0;
  const store = new MemoryKeyValueStore({ now: () => now });
  for (let i = 0; i < 100; i++) await store.set(`exp:${i}`, 'v', 1);
  await store.set('forever', 'v', 0);
  assert.equal(store.size, 101);
  now += 5000;
  // Unrelated traffic only: no expired key is read, yet they are dropped bit by bit.
  for (let i = 0; i < 2000; i++) await store.add('hits', 1);
  assert.equal(store.size, 2, 'only "forever" and "hits" remain');
  assert.deepEqual(await store.get('forever'), { value: 'v', exists: true });
  assert.deepEqual(await store.get('hits'), { value: '2000', exists: true });
  await store.close();
});

test('memory: keys overwritten without expiry are not swept', async () => {
  let now = 0;
  const store = new MemoryKeyValueStore({ now: () => now });
  await store.set('k', 'temp', 1);
  await store.set('k', 'kept', 0);
  now += 10_000;
  for (let i = 0; i < 500; i++) await store.add('n', 1);
  assert.deepEqual(await store.get('k'), { value: 'kept', exists: true });
  await store.close();
});

test('memory: counters beyond the safe-integer range are refused, value kept', async () => {
  const store = new MemoryKeyValueStore();
  await store.set('big', String(Number.MAX_SAFE_INTEGER), 0);
  await assert.rejects(store.add('big', 1), /overflow/);
  assert.deepEqual(await store.get('big'), { value: String(Number.MAX_SAFE_INTEGER), exists: true });
  await store.set('huge', '123456789012345678901234', 0);
  await assert.rejects(store.add('huge', 1), /not an integer/);
  await store.close();
});

test('memory backend: links share a store per BUCKET', async () => {
  const factory = memoryBackend();
  const ctx = { logger: pino({ level: 'silent' }) };
  const a = await factory.acquire({}, ctx);
  const b = await factory.acquire({ BUCKET: 'default' }, ctx);
  const c = await factory.acquire({ bucket: 'other' }, ctx);
  await a.store.set('k', 'from a', 0);
  assert.deepEqual(await b.store.get('k'), { value: 'from a', exists: true });
  assert.deepEqual(await c.store.get('k'), { value: '', exists: false });
  assert.equal(c.describe, 'memory:other');
  // Releasing every lease keeps the data for the next link to the bucket.
  await a.release();
  await b.release();
  const again = await factory.acquire({}, ctx);
  assert.deepEqual(await again.store.get('k'), { value: 'from a', exists: true });
  await factory.close();
  await assert.rejects(again.store.get('k'), /closed/);
});
