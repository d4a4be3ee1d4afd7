import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import { decode, encode } from '../../host/codec.ts';
import { isLinkError } from '../errors.ts';
import { runKeyValueConformance, testProviderContext } from './conformance.ts';
import { NatsKeyValueStore, natsBackend } from './nats-store.ts';
import { KeyValueProvider } from './provider.ts';
import { selectBackend } from './store.ts';

const silent = pino({ level: 'silent' });
let server: NatsServer;
let nc: NatsConnection;

before(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, reconnectTimeWait: 50 });
});
after(async () => {
  await nc?.close();
  await server?.stop();
});

runKeyValueConformance('nats', async () => {
  // A bucket per test, as a fresh database.
  const store = await NatsKeyValueStore.open(nc, `conf_${randomUUID().slice(0, 8)}`);
  return { store, cleanup: () => store.close() };
});

const ACTOR = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';

test('nats: two processes\' worth of stores on one bucket stay atomic (compare-and-set)', async () => {
  const other = await connect({ servers: server.url });
  try {
    const bucket = `cas_${randomUUID().slice(0, 8)}`;
    const a = await NatsKeyValueStore.open(nc, bucket);
    const b = await NatsKeyValueStore.open(other, bucket);
    // Separate connections and separate Bucket objects: no in-process queue to help.
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).add('n', 1)));
    assert.deepEqual([...results].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i + 1));
    const pushed = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).push('l', `v${i}`)));
    assert.deepEqual([...pushed].sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i + 1));
    assert.equal((await a.range('l', 0, -1)).length, 40);
    // A's guess of the counter is stale after B's write; A still adds correctly.
    await b.set('n', '1000', 0);
    assert.equal(await a.add('n', 1), 1001);
    // A's guess says list; B made it a string: A must not answer WRONGTYPE from its guess… it must from the truth.
    await a.push('k', 'x');
    await b.set('k', '5', 0);
    assert.equal(await a.add('k', 1), 6);
    await a.close();
    await b.close();
  } finally {
    await other.close();
  }
});

test('nats: values written by other tools read as plain strings; keys are encoded for KV', async () => {
  const bucket = `raw_${randomUUID().slice(0, 8)}`;
  const store = await NatsKeyValueStore.open(nc, bucket);
  const kv = await nc.jetstream().views.kv(bucket);
  await kv.put('counter', '41');
  assert.deepEqual(await store.get('counter'), { value: '41', exists: true });
  assert.equal(await store.add('counter', 1), 42);
  await store.set(':a:b', 'v', 0);
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  assert.ok(keys.includes('=3Aa=3Ab'), `keys: ${keys.join(', ')}`);
  await store.close();
});

test('nats: acknowledged writes survive a nats-server restart', async () => {
  const restartable = await startNatsServer();
  const own = await connect({ servers: restartable.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  try {
    const store = await NatsKeyValueStore.open(own, 'durable');
    for (let i = 0; i < 20; i++) await store.add('hits', 1);
    await store.push('log', 'a');
    await store.setAdd('tags', 'x');
    await store.set('temp', 'v', 60);
    await restartable.restart();
    // Calls during the restart window may fail with BACKEND_ERROR; they succeed once it is back.
    const deadline = Date.now() + 15_000;
    let got: Awaited<ReturnType<typeof store.get>> | undefined;
    while (!got) {
      try {
        got = await store.get('hits');
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'BACKEND_ERROR');
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.deepEqual(got, { value: '20', exists: true });
    assert.deepEqual(await store.range('log', 0, -1), ['a']);
    assert.deepEqual(await store.setQuery('tags'), ['x']);
    assert.deepEqual(await store.get('temp'), { value: 'v', exists: true });
    assert.equal(await store.add('hits', 1), 21);
    await store.close();
  } finally {
    await own.close();
    await restartable.stop();
  }
});

test('nats: a call while the server is down fails with BACKEND_ERROR, not a hang', async () => {
  const down = await startNatsServer();
  const own = await connect({ servers: down.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  try {
    const store = await NatsKeyValueStore.open(own, 'outage');
    await store.set('k', 'v', 0);
    await down.kill();
    await new Promise((r) => setTimeout(r, 100)); // the client notices the closed socket
    const t0 = Date.now();
    await assert.rejects(store.get('k'), (err: Error & { code?: string }) => err.code === 'BACKEND_ERROR' && /nats at nats:outage unavailable: disconnected/.test(err.message));
    await assert.rejects(store.add('k', 1), (err: Error & { code?: string }) => err.code === 'BACKEND_ERROR');
    assert.ok(Date.now() - t0 < 500, `failed after ${Date.now() - t0} ms`);
  } finally {
    await own.close();
    await down.stop();
  }
});

test('nats backend: link values select it; URL and NATS_URL connections; provider-level connection', async () => {
  const backend = natsBackend({ connection: nc });
  const registry = { nats: backend };
  assert.equal(selectBackend({ URL: server.url }, registry).name, 'nats');
  assert.equal(selectBackend({ NATS_URL: server.url }, registry).name, 'nats');
  assert.equal(selectBackend({ backend: 'nats' }, registry).name, 'nats');
  const ctx = { logger: silent };
  const bucket = `lease_${randomUUID().slice(0, 8)}`;
  const viaUrl = await backend.acquire({ URL: server.url, BUCKET: bucket }, ctx);
  const viaNatsUrl = await backend.acquire({ NATS_URL: `${server.url}, ${server.url}`, bucket }, ctx);
  const viaLattice = await backend.acquire({ BACKEND: 'nats', BUCKET: bucket }, ctx);
  assert.match(viaUrl.describe, new RegExp(`^nats:nats://127\\.0\\.0\\.1:${server.port}/${bucket}$`));
  assert.equal(viaLattice.describe, `nats:lattice/${bucket}`);
  await viaUrl.store.set('shared', 'yes', 0);
  assert.deepEqual(await viaNatsUrl.store.get('shared'), { value: 'yes', exists: true });
  assert.deepEqual(await viaLattice.store.get('shared'), { value: 'yes', exists: true });
  await viaUrl.release();
  await assert.rejects(viaUrl.store.get('shared'), /closed/);
  assert.deepEqual(await viaNatsUrl.store.get('shared'), { value: 'yes', exists: true }, 'other leases keep working');
  await viaNatsUrl.release();
  await viaLattice.release();
  assert.ok(!nc.isClosed(), 'the provider-level connection is never closed by the backend');
  await backend.close();
});

test('nats backend: bad link values are LinkErrors that name the problem', async () => {
  const ctx = { logger: silent };
  const bare = natsBackend();
  const rejectsLink = (p: Promise<unknown>, pattern: RegExp) =>
    assert.rejects(p, (err: unknown) => {
      assert.ok(isLinkError(err), String(err));
      assert.match((err as Error).message, pattern);
      return true;
    });
  await rejectsLink(bare.acquire({ BACKEND: 'nats' }, ctx), /needs link value NATS_URL/);
  await rejectsLink(bare.acquire({ NATS_URL: 'http://h:1' }, ctx), /must use nats: or tls:/);
  await rejectsLink(bare.acquire({ NATS_URL: 'not a url' }, ctx), /not a valid URL/);
  await rejectsLink(bare.acquire({ URL: server.url, BUCKET: 'has space' }, ctx), /BUCKET must be/);
  await rejectsLink(bare.acquire({ URL: server.url, BUCKET: 'wasmlet_default_links' }, ctx), /reserved/);
  await rejectsLink(bare.acquire({ URL: 'nats://u:secret@127.0.0.1:1' }, ctx), /cannot open NATS KV bucket/);
  await rejectsLink(bare.acquire({ URL: 'nats://u:secret@127.0.0.1:1' }, ctx), /^(?!.*secret)/);
  await bare.close();
});

test('nats backend through the key-value provider: kvcounter-style Add, expiry and type errors', async () => {
  const provider = new KeyValueProvider({}, { nats: natsBackend() });
  await provider.start(testProviderContext());
  try {
    const bucket = `prov_${randomUUID().slice(0, 8)}`;
    await provider.putLink({ actor: ACTOR, contract: 'wascc:keyvalue', linkName: 'default', values: { NATS_URL: server.url, BUCKET: bucket } });
    assert.equal(provider.describeLink(ACTOR)?.backend, 'nats');
    const call = async (operation: string, msg: unknown) => decode(await provider.handle({ actor: ACTOR, linkName: '', operation, msg: encode(msg) }));
    assert.deepEqual(await call('Add', { key: ':a:b', value: 1 }), { value: 1 });
    assert.deepEqual(await call('Add', { key: ':a:b', value: 1 }), { value: 2 });
    assert.deepEqual(await call('Set', { key: 't', value: 'v', expires: 1 }), { value: 'v' });
    await assert.rejects(call('Push', { key: 't', value: 'x' }), /WRONGTYPE/);
    await new Promise((r) => setTimeout(r, 1200));
    assert.deepEqual(await call('Get', { key: 't' }), { value: '', exists: false });
    assert.deepEqual(await call('Push', { key: 't', value: 'x' }), { newCount: 1 });
  } finally {
    await provider.stop();
  }
});
