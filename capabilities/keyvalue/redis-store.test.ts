import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.ts';
import { runKeyValueConformance } from './conformance.ts';
import { RedisKeyValueStore, parseRedisUrl } from './redis-store.ts';
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
