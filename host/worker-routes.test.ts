import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { signTestActor, compileWat, toolboxActor, toolboxWat, type SignedTestActor } from '../test/helpers/wat.ts';
import { decode, encode, Host, isInvocationError, KEY_VALUE, type CapabilityProvider, type LinkDefinition, type ProviderCall, type WorkerRoute } from './index.ts';

const logger = pino({ level: 'silent' });
const ROUTE_MODULE = new URL('../test/helpers/counter-route.ts', import.meta.url).href;

/** A provider whose linked actors' calls workers answer themselves, through test/helpers/counter-route.ts. */
class RoutedProvider implements CapabilityProvider {
  readonly contract = KEY_VALUE;
  readonly name = 'routed';
  readonly buffer = new SharedArrayBuffer(8);
  readonly cells = new Int32Array(this.buffer);
  readonly linked = new Set<string>();
  mainCalls: ProviderCall[] = [];
  constructor(
    private readonly module = ROUTE_MODULE,
    private readonly spinMs = 0,
  ) {}
  async start() {}
  async stop() {}
  async putLink(l: LinkDefinition) {
    this.linked.add(l.actor);
  }
  async deleteLink(l: LinkDefinition) {
    this.linked.delete(l.actor);
  }
  async handle(call: ProviderCall): Promise<Uint8Array> {
    this.mainCalls.push(call);
    return encode({ value: -1, where: 'main' });
  }
  workerRoute(actor: string): WorkerRoute | undefined {
    return this.linked.has(actor) ? { module: this.module, data: { buffer: this.buffer, spinMs: this.spinMs } } : undefined;
  }
}

const add = (h: Host, actor: string) => h.invokeActor(actor, 'wascc:keyvalue/Add', encode({ key: 'k', value: 1 })).then((b) => decode<{ value: number; where: string }>(b));

describe('worker routes', () => {
  let toolbox: SignedTestActor;
  before(async () => {
    toolbox = await toolboxActor();
  });

  describe('on one host', () => {
    let host: Host;
    let provider: RoutedProvider;
    before(async () => {
      host = await Host.start({ workers: 2, deadlineMs: 3000 }, { logger });
      provider = new RoutedProvider();
      await host.addProvider(provider);
      await host.startActor(toolbox.bytes, { maxInstances: 2, maxConcurrency: 2 });
    });
    after(() => host.stop());

    it('answers a linked actor’s calls in its workers, never on the main thread', async () => {
      await host.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: {} });
      const results = await Promise.all(Array.from({ length: 200 }, () => add(host, toolbox.id)));
      assert.ok(results.every((r) => r.where === 'worker'));
      assert.deepEqual(
        results.map((r) => r.value).sort((a, b) => a - b),
        Array.from({ length: 200 }, (_, i) => i + 1),
        'every call counted once, from both instances',
      );
      assert.equal(Atomics.load(provider.cells, 0), 200);
      assert.equal(provider.mainCalls.length, 0);
      assert.equal(host.actor(toolbox.id)!.instances, 2, 'both workers got the route');
    });

    it('passes a route’s error to the actor as the host call’s error', async () => {
      await assert.rejects(
        host.invokeActor(toolbox.id, 'wascc:keyvalue/Fail', encode({})),
        (e) => isInvocationError(e) && e.code === 'GUEST_ERROR' && /the route says no/.test(e.message),
      );
    });

    it('stops routing at once when the link is deleted: the call is denied as unlinked', async () => {
      const before = Atomics.load(provider.cells, 0);
      assert.equal(await host.deleteLink(toolbox.id, KEY_VALUE), true);
      await assert.rejects(add(host, toolbox.id), (e) => isInvocationError(e) && /no link/.test(e.message));
      assert.equal(Atomics.load(provider.cells, 0), before, 'the route was not used');
      // Linked again: routed again.
      await host.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: {} });
      assert.equal((await add(host, toolbox.id)).where, 'worker');
    });
  });

  it('gives no route to an actor that does not claim the contract', async () => {
    const httpOnly = signTestActor(await compileWat(toolboxWat()), { name: 'http-only', caps: ['wascc:http_server'] });
    const provider = new RoutedProvider();
    const h = await Host.start({ workers: 1 }, { logger });
    try {
      await h.addProvider(provider);
      await h.startActor(httpOnly.bytes);
      provider.linked.add(httpOnly.id); // the provider would route it; the host must not
      await assert.rejects(add(h, httpOnly.id), (e) => isInvocationError(e) && /not allowed.*claims/.test(e.message));
      assert.equal(Atomics.load(provider.cells, 0), 0);
    } finally {
      await h.stop();
    }
  });

  it('falls back to the main thread when a route module cannot load', async () => {
    const provider = new RoutedProvider(new URL('./no-such-route-module.ts', import.meta.url).href);
    const h = await Host.start({ workers: 1 }, { logger });
    try {
      await h.addProvider(provider);
      await h.startActor(toolbox.bytes);
      await h.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: {} });
      const out = await add(h, toolbox.id);
      assert.equal(out.where, 'main');
      assert.equal(provider.mainCalls.length, 1);
    } finally {
      await h.stop();
    }
  });

  it('lets a worker finish a provider operation before its overrunning call is stopped', async () => {
    // The route spins past the call's deadline. Terminating the worker meanwhile could leave a
    // lock in shared memory held forever; the pool must wait for the operation to end.
    const provider = new RoutedProvider(ROUTE_MODULE, 400);
    const h = await Host.start({ workers: 1, deadlineMs: 100 }, { logger });
    try {
      await h.addProvider(provider);
      await h.startActor(toolbox.bytes);
      await h.putLink({ actor: toolbox.id, contract: KEY_VALUE, values: {} });
      // The worker loads the route module on first use: give that call time.
      await h.invokeActor(toolbox.id, 'wascc:keyvalue/Add', encode({}), { deadlineMs: 10_000 });
      const out = decode<{ spun: boolean }>(await h.invokeActor(toolbox.id, 'wascc:keyvalue/Spin', encode({})));
      assert.equal(out.spun, true);
      assert.equal(Atomics.load(provider.cells, 1), 1, 'the operation ran to its end');
      assert.equal(h.workerRestarts, 0);
      // A guest that overruns outside any provider operation is still stopped.
      await assert.rejects(h.invokeActor(toolbox.id, 'loop', new Uint8Array()), (e) => isInvocationError(e) && e.code === 'DEADLINE_EXCEEDED');
      assert.equal(h.workerRestarts, 1);
    } finally {
      await h.stop();
    }
  });
});
