/**
 * Actor instances: several running copies of one signed module, each with its own identity,
 * links, config, logs, trap count and lifecycle; the module key stays the signer-verified identity.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { toolboxActor, type SignedTestActor } from '../test/helpers/wat.ts';
import { decode, encode, Host, isActorLoadError, isInvocationError, KEY_VALUE, type CapabilityProvider, type HostEvent, type LinkDefinition, type LogRecord, type ProviderCall } from './index.ts';

const logger = pino({ level: 'silent' });

/** A key-value stand-in that answers each caller with the BUCKET value of its own link. */
class BucketEcho implements CapabilityProvider {
  readonly contract = KEY_VALUE;
  readonly name = 'bucket-echo';
  readonly links = new Map<string, LinkDefinition>();
  readonly calls: ProviderCall[] = [];
  async start() {}
  async stop() {}
  async putLink(l: LinkDefinition) {
    this.links.set(l.actor, l);
  }
  async deleteLink(l: LinkDefinition) {
    this.links.delete(l.actor);
  }
  async handle(call: ProviderCall): Promise<Uint8Array> {
    this.calls.push(call);
    return encode({ value: this.links.get(call.actor)?.values.BUCKET ?? '(no link)', exists: true });
  }
}

async function collect(it: AsyncIterable<LogRecord>): Promise<string[]> {
  const out: string[] = [];
  for await (const r of it) out.push(r.msg);
  return out;
}

describe('actor instances', () => {
  let host: Host;
  let toolbox: SignedTestActor;
  let other: SignedTestActor;
  const kv = new BucketEcho();
  const events: HostEvent[] = [];

  before(async () => {
    host = await Host.start({ workers: 2, deadlineMs: 2000 }, { logger });
    await host.addProvider(kv);
    host.onEvent((e) => events.push(e));
    toolbox = await toolboxActor();
    other = await toolboxActor({ name: 'other' });
  });
  after(async () => host?.stop());

  it('runs one module as several instances, each with its own links, config and logs', async () => {
    const a = await host.startActor(toolbox.bytes, { instance: 'default/web-1/app', config: { WHO: 'one' } });
    const b = await host.startActor(toolbox.bytes, { instance: 'default/web-2/app', config: { WHO: 'two' } });
    const c = await host.startActor(toolbox.bytes, { instance: 'staging/web-1/app' });
    assert.deepEqual([a.id, a.module, b.id, b.module, c.module], ['default/web-1/app', toolbox.id, 'default/web-2/app', toolbox.id, toolbox.id]);
    assert.equal(a.name, 'toolbox');
    assert.deepEqual(host.actorConfig(a.id), { WHO: 'one' });
    assert.deepEqual(host.actorConfig(b.id), { WHO: 'two' });
    assert.equal(host.actor(toolbox.id), undefined, 'no instance is named after the module key');

    await host.putLink({ actor: a.id, contract: KEY_VALUE, values: { BUCKET: 'bucket-a' } });
    await host.putLink({ actor: b.id, contract: KEY_VALUE, values: { BUCKET: 'bucket-b' } });
    const value = async (id: string) => decode<{ value: string }>(await host.invokeActor(id, 'wascc:keyvalue', encode({ key: 'k' }))).value;
    assert.equal(await value(a.id), 'bucket-a');
    assert.equal(await value(b.id), 'bucket-b');
    assert.deepEqual(kv.calls.slice(-2).map((x) => x.actor), [a.id, b.id], 'the provider sees which instance calls');
    // c has no link of its own: the others' links do not lend it any.
    await assert.rejects(host.invokeActor(c.id, 'wascc:keyvalue', encode({ key: 'k' })), (e) => isInvocationError(e) && /no link/.test(e.message));

    await host.invokeActor(a.id, 'HandleRequest', encode({ method: 'GET', path: '/', queryString: '', header: {}, body: new Uint8Array() }));
    const logsOf = (id: string) => collect(host.logs.read(id));
    assert.equal((await logsOf(a.id)).filter((l) => l === 'handling').length, 2);
    assert.equal((await logsOf(b.id)).filter((l) => l === 'handling').length, 1);
    assert.equal((await logsOf(c.id)).filter((l) => l === 'handling').length, 1);
  });

  it('stops one instance and leaves the others serving', async () => {
    await host.stopActor('default/web-1/app');
    assert.equal(host.actor('default/web-1/app'), undefined);
    await assert.rejects(host.invokeActor('default/web-1/app', 'wascc:keyvalue', encode({ key: 'k' })));
    const out = decode<{ value: string }>(await host.invokeActor('default/web-2/app', 'wascc:keyvalue', encode({ key: 'k' })));
    assert.equal(out.value, 'bucket-b');
    // Its id can be used again.
    const again = await host.startActor(toolbox.bytes, { instance: 'default/web-1/app' });
    assert.equal(again.module, toolbox.id);
  });

  it('counts traps per instance', async () => {
    await assert.rejects(host.invokeActor('default/web-2/app', 'trap', new Uint8Array()));
    assert.equal(host.actor('default/web-2/app')!.traps, 1);
    assert.equal(host.actor('staging/web-1/app')!.traps, 0);
  });

  it('refuses a taken instance id, another module\'s key as an instance id, and malformed ids', async () => {
    await assert.rejects(host.startActor(toolbox.bytes, { instance: 'default/web-2/app' }), (e) => isActorLoadError(e) && /instance default\/web-2\/app of actor M\w+ \(toolbox\) is already running/.test(e.message));
    await assert.rejects(host.startActor(other.bytes, { instance: 'default/web-2/app' }), /already running/, 'one id, one instance, whatever the module');
    await assert.rejects(host.startActor(other.bytes, { instance: toolbox.id }), (e) => isActorLoadError(e) && /another actor's module key/.test(e.message));
    for (const bad of ['', ' x', 'a b', '../x', 'x\n', 'a:b', 'x'.repeat(513)]) {
      await assert.rejects(host.startActor(other.bytes, { instance: bad }), /instance/, JSON.stringify(bad));
    }
    // Two concurrent starts of one id: exactly one wins.
    const results = await Promise.allSettled([host.startActor(other.bytes, { instance: 'race/x/y' }), host.startActor(other.bytes, { instance: 'race/x/y' })]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    // The module key itself is still a valid instance id (the default).
    const plain = await host.startActor(other.bytes);
    assert.equal(plain.id, other.id);
    assert.equal(plain.module, other.id);
  });

  it('reports instances in lifecycle events with their module key', () => {
    const started = events.filter((e) => e.type === 'actor_started').map((e) => [e.data.actor, e.data.module]);
    assert.ok(started.some(([id, m]) => id === 'default/web-2/app' && m === toolbox.id), JSON.stringify(started));
    const stopped = events.filter((e) => e.type === 'actor_stopped').map((e) => [e.data.actor, e.data.module]);
    assert.deepEqual(stopped[0], ['default/web-1/app', toolbox.id]);
  });
});
