import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { toolboxActor, type SignedTestActor } from '../../test/helpers/wat.ts';
import { decode, encode, Host, isInvocationError, KEY_VALUE, type ProviderCall } from '../../host/index.ts';
import { KeyValueProvider } from './provider.ts';
import { MemoryKeyValueStore } from './memory-store.ts';
import type { KeyValueBackendFactory, KeyValueStore } from './store.ts';

const logger = pino({ level: 'silent' });

describe('key-value calls answered in actor workers (memory backend)', () => {
  let host: Host;
  let provider: KeyValueProvider;
  let toolbox: SignedTestActor;
  const mainCalls: ProviderCall[] = [];

  before(async () => {
    host = await Host.start({ workers: 2, deadlineMs: 10_000 }, { logger });
    provider = new KeyValueProvider();
    const handle = provider.handle.bind(provider);
    provider.handle = (call) => {
      mainCalls.push(call);
      return handle(call);
    };
    await host.addProvider(provider);
    toolbox = await toolboxActor();
    // Both workers at once (beyond the default fair share), so that two threads share the table.
    await host.startActor(toolbox.bytes, { maxInstances: 2, maxConcurrency: 2 });
    await host.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: { BUCKET: 'routes' } });
  });
  after(() => host.stop());

  const call = (op: string, req: unknown) => host.invokeActor(toolbox.id, `wascc:keyvalue/${op}`, encode(req)).then((b) => decode<Record<string, unknown>>(b));
  const viaMain = (op: string, req: unknown) =>
    provider.handle({ actor: toolbox.id, linkName: 'default', operation: op, msg: encode(req) }).then((b) => decode<Record<string, unknown>>(b));

  it('counts every concurrent Add exactly once, in the store the main thread sees', async () => {
    const replies = await Promise.all(Array.from({ length: 300 }, () => call('Add', { key: 'hits', value: 1 })));
    assert.deepEqual(
      replies.map((r) => r.value).sort((a, b) => (a as number) - (b as number)),
      Array.from({ length: 300 }, (_, i) => i + 1),
    );
    assert.equal(mainCalls.length, 0, 'no call took the main-thread path');
    assert.deepEqual(await viaMain('Get', { key: 'hits' }), { value: '300', exists: true });
    assert.equal(host.actor(toolbox.id)!.instances, 2);
    // Writes from the main thread are seen by the workers too.
    await viaMain('Set', { key: 'greeting', value: 'héllo ✓', expires: 0 });
    assert.deepEqual(await call('Get', { key: 'greeting' }), { value: 'héllo ✓', exists: true });
  });

  it('answers errors exactly as the provider does', async () => {
    const mainBefore = mainCalls.length;
    await call('Push', { key: 'list', value: 'a' });
    const fromMain = await viaMain('Add', { key: 'list', value: 1 }).then(
      () => assert.fail('Add on a list must fail'),
      (e: Error) => e.message,
    );
    assert.match(fromMain, /WRONGTYPE/);
    await assert.rejects(call('Add', { key: 'list', value: 1 }), (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && e.message.includes(fromMain));
    await assert.rejects(call('Range', { key: 'list' }), (e) => isInvocationError(e) && /Range: missing field "start"/.test(e.message));
    await assert.rejects(call('Nope', {}), (e) => isInvocationError(e) && /unknown key-value operation "Nope"/.test(e.message));
    const bad = host.invokeActor(toolbox.id, 'wascc:keyvalue/Get', new Uint8Array([0xc1]));
    await assert.rejects(bad, (e) => isInvocationError(e) && /Get: .*reserved byte/.test(e.message));
    assert.equal(mainCalls.length - mainBefore, 1, 'only the direct main-thread call reached handle()');
  });

  it('follows a link moved to another bucket, and stops when the link goes', async () => {
    const mainBefore = mainCalls.length;
    await call('Set', { key: 'where', value: 'routes-bucket', expires: 0 });
    await host.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: { BUCKET: 'elsewhere' } });
    assert.deepEqual(await call('Get', { key: 'where' }), { value: '', exists: false }, 'the new bucket is empty');
    await call('Set', { key: 'where', value: 'elsewhere-bucket', expires: 0 });
    assert.deepEqual(await viaMain('Get', { key: 'where' }), { value: 'elsewhere-bucket', exists: true });
    await host.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: { BUCKET: 'routes' } });
    assert.deepEqual(await call('Get', { key: 'where' }), { value: 'routes-bucket', exists: true }, 'back on the first bucket, its data kept');
    assert.equal(await host.deleteLink(toolbox.id, KEY_VALUE), true);
    await assert.rejects(call('Get', { key: 'where' }), (e) => isInvocationError(e) && /no link/.test(e.message));
    await host.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: { BUCKET: 'routes' } });
    assert.equal(mainCalls.length - mainBefore, 1, 'only the direct main-thread call reached handle()');
  });

  it('offers a route only for links on a shared-memory store', async () => {
    assert.ok(provider.workerRoute(toolbox.id, 'default'));
    assert.equal(provider.workerRoute(toolbox.id, 'other'), undefined, 'unknown link');
    const plain: KeyValueBackendFactory = {
      name: 'plain',
      urlSchemes: ['plain:'],
      async acquire() {
        // Any store that is not the shared-memory one: calls must take the provider's own path.
        return { store: wrap(new MemoryKeyValueStore()), describe: 'plain', release: async () => {} };
      },
      async close() {},
    };
    const other = new KeyValueProvider({}, { plain });
    await other.start({ hostId: 'h', logger, logs: host.logs, invokeActor: () => Promise.reject(new Error('unused')) });
    await other.putLink({ actor: 'A', contract: KEY_VALUE, linkName: 'default', values: { URL: 'plain://x' } });
    assert.equal(other.workerRoute('A', 'default'), undefined);
    await other.putLink({ actor: 'B', contract: KEY_VALUE, linkName: 'default', values: {} });
    assert.ok(other.workerRoute('B', 'default'));
    await other.stop();
    assert.equal(other.workerRoute('B', 'default'), undefined, 'no route once stopped');
  });
});

/** A store that forwards to `inner` but is not a MemoryKeyValueStore. */
function wrap(inner: MemoryKeyValueStore): KeyValueStore {
  return new Proxy({} as KeyValueStore, {
    get: (_, name) => {
      const v = Reflect.get(inner, name, inner) as unknown;
      return typeof v === 'function' ? v.bind(inner) : v;
    },
  });
}
