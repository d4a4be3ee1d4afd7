import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.ts';
import { runKeyValueConformance } from './conformance.ts';
import { createRedisClient, RedisKeyValueStore, parseRedisUrl } from './redis-store.ts';
import { isLinkError } from '../errors.ts';

let redis: RedisServer;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await redis?.stop();
});

runKeyValueConformance(
  'redis',
  async () => {
    const store = RedisKeyValueStore.connect(redis.url);
    return { store, cleanup: () => store.close() };
  },
  { linkValues: () => ({ URL: redis.url }) },
);

test('redis: Set with expires sets a TTL in Redis itself', async () => {
  const store = RedisKeyValueStore.connect(redis.url);
  // Read the TTL through a plain client.
  const raw = new Redis(redis.url);
  try {
    await store.set('ttl:k', 'v', 30);
    const ttl = await raw.ttl('ttl:k');
    assert.ok(ttl > 25 && ttl <= 30, `ttl ${ttl}`);
    await store.set('ttl:k', 'w', 0);
    assert.equal(await raw.ttl('ttl:k'), -1, 'Set without expires clears the TTL');
  } finally {
    raw.disconnect();
    await store.close();
  }
});

test('redis: URL validation', () => {
  assert.equal(parseRedisUrl('redis://127.0.0.1:6380/2').href, 'redis://127.0.0.1:6380/2');
  assert.equal(parseRedisUrl('rediss://user:pw@cache.example:6380').hostname, 'cache.example');
  for (const bad of ['redis://', 'ftp://x', 'not a url', 'redis://h/notadb', 'redis://h:99999']) {
    assert.throws(() => parseRedisUrl(bad), (err: unknown) => isLinkError(err), bad);
  }
  // Credentials never appear in the error.
  assert.throws(() => parseRedisUrl('redis://u:secret@h/x'), (err: Error) => !err.message.includes('secret'));
});

test('redis: a read past maxReplyBytes is refused inside Redis: the value never reaches this process', async () => {
  const cap = 64 * 1024;
  const client = createRedisClient(redis.url);
  const store = new RedisKeyValueStore(client, { owned: true, maxReplyBytes: cap });
  const raw = new Redis(redis.url);
  try {
    await raw.set('cap:big', 'x'.repeat(1024 * 1024));
    await raw.rpush('cap:list', ...Array.from({ length: 5000 }, (_, i) => `item ${i} ${'y'.repeat(40)}`));
    await raw.sadd('cap:set', ...Array.from({ length: 5000 }, (_, i) => `member ${i} ${'z'.repeat(40)}`));
    await store.get('warm'); // the script is loaded; what follows is the reads alone
    const bytesRead = () => (client as unknown as { stream: { bytesRead: number } }).stream.bytesRead;
    const before = bytesRead();
    const refused = (p: Promise<unknown>, op: string) =>
      assert.rejects(p, (e: Error & { code?: string }) => e.code === 'BACKEND_ERROR' && e.message.startsWith(`${op}: the reply would hold`) && /over the limit of 65536/.test(e.message));
    await refused(store.get('cap:big'), 'Get');
    await refused(store.range('cap:list', 0, -1), 'Range');
    await refused(store.setQuery('cap:set'), 'SetQuery');
    await refused(store.setUnion(['cap:set', 'cap:other']), 'SetUnion');
    assert.ok(bytesRead() - before < 4096, `only the refusals came back (${bytesRead() - before} bytes read)`);
    // Within the cap, the same reads answer as Redis does.
    assert.deepEqual(await store.range('cap:list', 0, 1), ['item 0 ' + 'y'.repeat(40), 'item 1 ' + 'y'.repeat(40)]);
    assert.deepEqual(await store.range('cap:list', -1, -1), ['item 4999 ' + 'y'.repeat(40)]);
    assert.deepEqual(await store.range('cap:list', 10, 5), []);
    assert.equal((await store.setIntersection(['cap:set', 'cap:missing'])).length, 0);
    await assert.rejects(store.range('cap:big', 0, 1), (e: Error & { code?: string }) => e.code === 'BAD_REQUEST' && /WRONGTYPE/.test(e.message));
    await assert.rejects(store.get('cap:list'), (e: Error & { code?: string }) => e.code === 'BAD_REQUEST' && /WRONGTYPE/.test(e.message));
  } finally {
    await raw.del('cap:big', 'cap:list', 'cap:set');
    raw.disconnect();
    await store.close();
  }
});
