import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { decode, encode } from '../../host/index.ts';
import { isOptionsError } from '../../host/index.ts';
import type { LinkDefinition } from '../../host/index.ts';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.ts';
import { isLinkError } from '../errors.ts';
import { rejectsWith, testProviderContext } from './conformance.ts';
import { MemoryKeyValueStore } from './memory-store.ts';
import { KEY_VALUE_OPERATIONS, KeyValueProvider, parseKeyValueProviderOptions } from './provider.ts';
import { REDIS_CLIENT_NAME } from './redis-store.ts';
import type { KeyValueBackendFactory } from './store.ts';
import { linkValue } from './store.ts';

const A = 'MAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const B = 'MBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const C = 'MCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC';

function link(actor: string, values: Record<string, string> = {}, linkName = 'default'): LinkDefinition {
  return { actor, contract: 'wasmlet:keyvalue', linkName, values };
}

async function started(options = {}, backends = {}): Promise<KeyValueProvider> {
  const p = new KeyValueProvider(options, backends);
  await p.start(testProviderContext());
  return p;
}

function call(p: KeyValueProvider, actor: string, operation: string, req: unknown, linkName = 'default'): Promise<unknown> {
  return p.handle({ actor, linkName, operation, msg: encode(req) }).then((bytes) => decode(bytes));
}

describe('options', () => {
  test('defaults are filled in', () => {
    const o = parseKeyValueProviderOptions({});
    assert.equal(o.defaultBackend, 'memory');
    assert.equal(o.defaultBucket, 'default');
    assert.equal(o.memoryBytes, 64 * 1024 * 1024);
    assert.equal(o.memoryMaxItems, 16_384);
    assert.equal(o.maxPayloadBytes, 2 * 1024 * 1024);
    assert.deepEqual(o.redis, { connectTimeoutMs: 2000, commandTimeoutMs: 2000, maxRetriesPerRequest: 1, maxReconnectDelayMs: 1000 });
    assert.equal(parseKeyValueProviderOptions({ redis: { commandTimeoutMs: 500 } }).redis.connectTimeoutMs, 2000);
  });

  test('bad options are OptionsErrors naming the field', () => {
    assert.throws(() => parseKeyValueProviderOptions({ redis: { commandTimeoutMs: -1 } }), (e: Error) => isOptionsError(e) && /commandTimeoutMs/.test(e.message));
    assert.throws(() => parseKeyValueProviderOptions({ memoryBytes: 1024 }), (e: Error) => isOptionsError(e) && /memoryBytes/.test(e.message));
    assert.throws(() => parseKeyValueProviderOptions({ bogus: 1 }), (e: Error) => isOptionsError(e) && /bogus/.test(e.message));
    assert.throws(() => new KeyValueProvider({ defaultBackend: 'etcd' }), (e: Error) => isOptionsError(e) && /etcd/.test(e.message));
  });
});

describe('links', () => {
  test('the provider serves wasmlet:keyvalue', () => {
    const p = new KeyValueProvider();
    assert.equal(p.contract, 'wasmlet:keyvalue');
    assert.equal(p.name, 'keyvalue');
    assert.ok(KEY_VALUE_OPERATIONS.includes('SetIntersection'));
  });

  test('invalid link values reject with LinkError and keep nothing', async () => {
    const p = await started();
    try {
      const bad: Record<string, string>[] = [{ URL: 'ftp://x' }, { URL: 'redis://' }, { URL: 'redis://h/abc' }, { BACKEND: 'etcd' }, { URL: '::' }];
      for (const values of bad) {
        await assert.rejects(p.putLink(link(A, values)), (e: Error) => isLinkError(e), JSON.stringify(values));
        assert.equal(p.describeLink(A), undefined);
        await rejectsWith(call(p, A, 'Get', { key: 'k' }), 'NOT_LINKED', /no key-value link/);
      }
      await assert.rejects(p.putLink({ ...link(A), contract: 'wasmlet:httpserver' }), (e: Error) => isLinkError(e) && /httpserver/.test(e.message));
    } finally {
      await p.stop();
    }
  });

  test('a rejected re-link keeps the previous link working', async () => {
    const p = await started();
    try {
      await p.putLink(link(A));
      await call(p, A, 'Set', { key: 'k', value: 'v', expires: 0 });
      await assert.rejects(p.putLink(link(A, { URL: 'ftp://x' })), (e: Error) => isLinkError(e));
      assert.deepEqual(await call(p, A, 'Get', { key: 'k' }), { value: 'v', exists: true });
      assert.deepEqual(p.describeLink(A), { backend: 'memory', store: 'memory:default' });
    } finally {
      await p.stop();
    }
  });

  test('aliases of the contract are accepted; "" is the default link name', async () => {
    const p = await started();
    try {
      await p.putLink({ ...link(A), contract: 'wascc:keyvalue', linkName: '' });
      assert.deepEqual(await call(p, A, 'Add', { key: 'n', value: 1 }, ''), { value: 1 });
      assert.deepEqual(await call(p, A, 'Add', { key: 'n', value: 1 }, 'default'), { value: 2 });
    } finally {
      await p.stop();
    }
  });

  test('memory: links share the default bucket; BUCKET separates; link names are separate links', async () => {
    const p = await started();
    try {
      await p.putLink(link(A));
      await p.putLink(link(B));
      await p.putLink(link(C, { BUCKET: 'other' }));
      await p.putLink(link(A, { BUCKET: 'other' }, 'cache'));
      await call(p, A, 'Set', { key: 'k', value: 'from A', expires: 0 });
      await call(p, C, 'Set', { key: 'k', value: 'from C', expires: 0 });
      assert.deepEqual(await call(p, B, 'Get', { key: 'k' }), { value: 'from A', exists: true });
      assert.deepEqual(await call(p, A, 'Get', { key: 'k' }, 'cache'), { value: 'from C', exists: true });
      await rejectsWith(call(p, B, 'Get', { key: 'k' }, 'cache'), 'NOT_LINKED', /"cache"/);
    } finally {
      await p.stop();
    }
  });

  test('deleteLink ends calls; deleting an unknown link is a no-op', async () => {
    const p = await started();
    try {
      await p.putLink(link(A));
      await p.deleteLink(link(A));
      await p.deleteLink(link(B));
      await rejectsWith(call(p, A, 'Get', { key: 'k' }), 'NOT_LINKED', /no key-value link/);
    } finally {
      await p.stop();
    }
  });

  test('a stopped provider refuses calls and links', async () => {
    const p = await started();
    await p.putLink(link(A));
    await p.stop();
    await rejectsWith(call(p, A, 'Get', { key: 'k' }), 'NOT_LINKED', /stopped/);
    await assert.rejects(p.putLink(link(A)), (e: Error) => isLinkError(e) && /stopped/.test(e.message));
  });

  test('another backend plugs in as one factory: detected by its link values, released and closed', async () => {
    const events: string[] = [];
    const shared = new MemoryKeyValueStore();
    const extra: KeyValueBackendFactory = {
      name: 'extra',
      urlSchemes: ['extra:'],
      detect: (values) => linkValue(values, 'EXTRA_BUCKET') !== undefined,
      async acquire(values) {
        events.push(`acquire ${linkValue(values, 'EXTRA_BUCKET') ?? linkValue(values, 'URL')}`);
        return { store: shared, describe: 'extra', release: async () => void events.push('release') };
      },
      async close() {
        events.push('close');
      },
    };
    const p = await started({}, { extra });
    await p.putLink(link(A, { EXTRA_BUCKET: 'b1' }));
    await p.putLink(link(B, { URL: 'extra://b2' }));
    assert.deepEqual(p.describeLink(A), { backend: 'extra', store: 'extra' });
    await call(p, A, 'Set', { key: 'k', value: 'v', expires: 0 });
    assert.deepEqual(await shared.get('k'), { value: 'v', exists: true });
    await p.deleteLink(link(A));
    await p.stop();
    assert.deepEqual(events, ['acquire b1', 'acquire extra://b2', 'release', 'release', 'close']);
  });
});

describe('calls', () => {
  let p: KeyValueProvider;
  before(async () => {
    p = await started();
    await p.putLink(link(A));
  });
  after(async () => {
    await p.stop();
  });

  test('unknown operations are refused by name', async () => {
    await rejectsWith(call(p, A, 'Frobnicate', { key: 'k' }), 'UNKNOWN_OPERATION', /"Frobnicate".*known: Get, Set/);
    await rejectsWith(call(p, A, 'constructor', { key: 'k' }), 'UNKNOWN_OPERATION', /"constructor"/);
    await rejectsWith(call(p, A, 'get', { key: 'k' }), 'UNKNOWN_OPERATION', /"get"/);
  });

  test('undecodable payloads are BAD_REQUEST', async () => {
    const raw = (msg: Uint8Array) => p.handle({ actor: A, linkName: 'default', operation: 'Get', msg });
    await rejectsWith(raw(new Uint8Array(0)), 'BAD_REQUEST', /^Get: empty msgpack payload/);
    await rejectsWith(raw(Uint8Array.from([0xc1])), 'BAD_REQUEST', /^Get: /); // 0xc1 is reserved in msgpack
    await rejectsWith(raw(Uint8Array.from([0x82, 0xa3])), 'BAD_REQUEST', /^Get: invalid msgpack/);
    await rejectsWith(raw(encode(5)), 'BAD_REQUEST', /must be a msgpack map, got 5/);
    await rejectsWith(raw(encode('key')), 'BAD_REQUEST', /must be a msgpack map/);
  });

  test('requests with missing or mistyped fields are BAD_REQUEST and change nothing', async () => {
    await call(p, A, 'Set', { key: 'f', value: '7', expires: 0 });
    await rejectsWith(call(p, A, 'Get', {}), 'BAD_REQUEST', /^Get: missing field "key"/);
    await rejectsWith(call(p, A, 'Get', { key: 5 }), 'BAD_REQUEST', /"key" must be a string, got 5/);
    await rejectsWith(call(p, A, 'Set', { key: 'f', value: 8 }), 'BAD_REQUEST', /"value" must be a string/);
    await rejectsWith(call(p, A, 'Set', { key: 'f', value: 'x', expires: -1 }), 'BAD_REQUEST', /"expires" must be an integer/);
    await rejectsWith(call(p, A, 'Add', { key: 'f', value: 1.5 }), 'BAD_REQUEST', /"value" must be an integer/);
    await rejectsWith(call(p, A, 'Add', { key: 'f', value: 2 ** 31 }), 'BAD_REQUEST', /"value" must be an integer in \[-2147483648, 2147483647\]/);
    await rejectsWith(call(p, A, 'Add', { key: 'f' }), 'BAD_REQUEST', /missing field "value"/);
    await rejectsWith(call(p, A, 'Range', { key: 'l', start: 0 }), 'BAD_REQUEST', /missing field "stop"/);
    await rejectsWith(call(p, A, 'SetUnion', { keys: 'a' }), 'BAD_REQUEST', /"keys" must be an array of strings/);
    await rejectsWith(call(p, A, 'SetUnion', { keys: ['a', 1] }), 'BAD_REQUEST', /"keys" must be an array of strings/);
    await rejectsWith(call(p, A, 'SetIntersection', { keys: [] }), 'BAD_REQUEST', /at least one key/);
    assert.deepEqual(await call(p, A, 'Get', { key: 'f' }), { value: '7', exists: true });
  });

  test('Set without expires defaults to never', async () => {
    assert.deepEqual(await call(p, A, 'Set', { key: 'noexp', value: 'v' }), { value: 'v' });
    assert.deepEqual(await call(p, A, 'Get', { key: 'noexp' }), { value: 'v', exists: true });
  });

  test('an Add result beyond 32 bits is refused rather than truncated', async () => {
    await call(p, A, 'Set', { key: 'big', value: '2147483647', expires: 0 });
    await rejectsWith(call(p, A, 'Add', { key: 'big', value: 1 }), 'BAD_REQUEST', /2147483648 does not fit/);
    assert.deepEqual(await call(p, A, 'Add', { key: 'big', value: -2 }), { value: 2147483646 });
  });

  test('64-bit msgpack integers in requests are read', async () => {
    // msgpack int64 7, as a generic encoder may write it.
    const msg = Uint8Array.from([0x82, 0xa3, ...Buffer.from('key'), 0xa2, ...Buffer.from('i6'), 0xa5, ...Buffer.from('value'), 0xd3, 0, 0, 0, 0, 0, 0, 0, 7]);
    assert.deepEqual(decode(await p.handle({ actor: A, linkName: 'default', operation: 'Add', msg })), { value: 7 });
  });
});

describe('redis', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.stop();
  });

  async function namedClients(): Promise<number> {
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      const list = (await admin.client('LIST')) as string;
      return list.split('\n').filter((line) => line.includes(` name=${REDIS_CLIENT_NAME} `)).length;
    } finally {
      admin.disconnect();
    }
  }

  test('links to one URL share one client; it closes with the last link', async () => {
    const p = await started();
    try {
      await p.putLink(link(A, { URL: redis.url }));
      await p.putLink(link(B, { URL: redis.url }));
      await p.putLink(link(C, { URL: `${redis.url}/1` }));
      assert.deepEqual(await call(p, A, 'Add', { key: 'shared', value: 1 }), { value: 1 });
      assert.deepEqual(await call(p, B, 'Add', { key: 'shared', value: 1 }), { value: 2 });
      assert.deepEqual(await call(p, C, 'Add', { key: 'shared', value: 1 }), { value: 1 }, 'db 1 is another database');
      assert.equal(await namedClients(), 2);
      await p.deleteLink(link(A));
      assert.deepEqual(await call(p, B, 'Add', { key: 'shared', value: 1 }), { value: 3 });
      await p.deleteLink(link(B));
      await p.deleteLink(link(C));
      // The server notices closed connections asynchronously.
      const deadline = Date.now() + 3000;
      while ((await namedClients()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await namedClients(), 0);
    } finally {
      await p.stop();
    }
  });

  test('Redis down: calls fail within a bounded time with a clear error; back up: calls work again', async () => {
    const p = await started({ redis: { commandTimeoutMs: 1500, maxReconnectDelayMs: 200 } });
    try {
      await p.putLink(link(A, { URL: redis.url }));
      assert.deepEqual(await call(p, A, 'Add', { key: 'fault', value: 1 }), { value: 1 });

      await redis.kill();
      const t0 = Date.now();
      const results = await Promise.allSettled([1, 2, 3].map(() => call(p, A, 'Add', { key: 'fault', value: 1 })));
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 2500, `calls settled in ${elapsed} ms`);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        const err = (r as PromiseRejectedResult).reason as Error & { code: string };
        assert.equal(err.code, 'BACKEND_ERROR');
        assert.match(err.message, new RegExp(`^Add: redis at redis://127\\.0\\.0\\.1:${redis.port}/? unavailable: `));
      }
      await rejectsWith(call(p, A, 'Get', { key: 'fault' }), 'BACKEND_ERROR', /unavailable/);

      await redis.restart();
      // The client reconnects on its own (backoff capped at 200 ms here); the restarted Redis is empty.
      const deadline = Date.now() + 5000;
      let answer: unknown;
      while (Date.now() < deadline) {
        try {
          answer = await call(p, A, 'Add', { key: 'fault', value: 1 });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.deepEqual(answer, { value: 1 });
      assert.deepEqual(await call(p, A, 'Get', { key: 'fault' }), { value: '1', exists: true });
    } finally {
      await p.stop();
    }
  });

  test('a link to a Redis that is not running is accepted; its calls fail fast', async () => {
    const { freePort } = await import('../../test/helpers/redis-server.ts');
    const port = await freePort();
    const p = await started({ redis: { commandTimeoutMs: 1500 } });
    try {
      await p.putLink(link(A, { URL: `redis://127.0.0.1:${port}` }));
      const t0 = Date.now();
      await rejectsWith(call(p, A, 'Get', { key: 'k' }), 'BACKEND_ERROR', /unavailable/);
      assert.ok(Date.now() - t0 < 2500);
    } finally {
      await p.stop();
    }
  });
});

test('memoryBytes bounds each memory bucket: a full bucket answers BACKEND_ERROR and keeps its data', async () => {
  const p = await started({ memoryBytes: 64 * 1024 });
  try {
    await p.putLink({ actor: 'A', contract: 'wasmlet:keyvalue', linkName: 'default', values: {} });
    await call(p, 'A', 'Set', { key: 'kept', value: 'yes' });
    await assert.rejects(call(p, 'A', 'Set', { key: 'big', value: 'x'.repeat(128 * 1024) }), (e: Error & { code?: string }) => e.code === 'BACKEND_ERROR' && /out of shared memory/.test(e.message));
    assert.deepEqual(await call(p, 'A', 'Get', { key: 'kept' }), { value: 'yes', exists: true });
  } finally {
    await p.stop();
  }
});

test('maxPayloadBytes: a larger request is refused before it is decoded; a larger reply is refused, from any backend', async () => {
  const p = await started({ maxPayloadBytes: 4096, memoryMaxItems: 50 });
  try {
    await p.putLink(link(A));
    await assert.rejects(call(p, A, 'Set', { key: 'k', value: 'x'.repeat(5000) }), (e: Error & { code?: string }) => e.code === 'BAD_REQUEST' && /^Set: the request is \d+ bytes, over the key-value provider's limit of 4096 \(maxPayloadBytes\)/.test(e.message));
    // Not even a malformed one is decoded: the size check comes first.
    await assert.rejects(p.handle({ actor: A, linkName: 'default', operation: 'Get', msg: new Uint8Array(5000).fill(0xc1) }), /over the key-value provider's limit/);
    for (let i = 0; i < 50; i++) await call(p, A, 'Push', { key: 'l', value: 'y'.repeat(100) });
    await assert.rejects(call(p, A, 'Push', { key: 'l', value: 'one more' }), (e: Error & { code?: string }) => e.code === 'BACKEND_ERROR' && /holds 50 items/.test(e.message));
    await assert.rejects(call(p, A, 'Range', { key: 'l', start: 0, stop: -1 }), (e: Error & { code?: string }) => e.code === 'BACKEND_ERROR' && /larger than 4096 bytes/.test(e.message));
    assert.equal(((await call(p, A, 'Range', { key: 'l', start: 0, stop: 9 })) as { values: string[] }).values.length, 10);
  } finally {
    await p.stop();
  }
});
