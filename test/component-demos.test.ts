/**
 * The TypeScript demos (demos/hello, demos/kv-counter, demos/logger, demos/messaging): built with the SDK and run
 * from their own wasmlet.yaml (ports swapped for free ones), served over real HTTP.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { builtinProviders } from '../capabilities/index.ts';
import { freePort } from './helpers/redis-server.ts';
import { Host, wapcRuntime, type ActorRuntime } from '../host/index.ts';
// Not exported by host/index.ts yet.
import { loadManifest, type HostPlan } from '../host/index.ts';
import { runPlan } from '../host/index.ts';
import { buildTestActor, repoRoot, testComponentRuntime } from './helpers/component-actors.ts';
import { eventually } from './helpers/wait.ts';

const logger = pino({ level: 'silent' });
const components = testComponentRuntime();
const fixtures = new URL('../../shared/fixtures/', import.meta.url);

/** Hands the plan's actor config to the worker in the payload (until the host passes start-time config itself). */
function withConfig(config: Record<string, string>): ActorRuntime {
  return {
    kind: 'component',
    detect: (b, m) => components.detect(b, m),
    prepare: async (b, m) => {
      const p = await components.prepare(b, m);
      return { ...p, payload: { ...(p.payload as object), config } };
    },
  };
}

/** Builds a demo and runs its manifest with free ports. */
async function runDemo(name: string): Promise<{ host: Host; port: number; plan: HostPlan }> {
  const dir = join(repoRoot, 'demos', name);
  const built = await buildTestActor(dir);
  const plan = await loadManifest(join(dir, 'wasmlet.yaml'));
  assert.equal(plan.actors.length, 1);
  assert.equal(plan.actors[0]!.path, join(dir, 'build', `${name}.wasm`), 'the manifest runs what `wasmlet actor build` writes');
  plan.actors[0]!.path = built.path;
  const port = await freePort();
  for (const l of plan.links) if (l.values.PORT) l.values.PORT = String(port);
  const host = await runPlan(plan, { logger, providers: builtinProviders, deps: { runtimes: [wapcRuntime, withConfig(plan.actors[0]!.config)] } });
  return { host, port, plan };
}

describe('TypeScript demos', () => {
  const hosts: Host[] = [];
  after(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
  });

  it('hello greets with values from its config', async () => {
    const { host, port, plan } = await runDemo('hello');
    hosts.push(host);
    assert.deepEqual(plan.actors[0]!.config, { GREETING: 'Bonjour', NAME: 'wasmlet' });
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'Bonjour, wasmlet!\n');
    const named = await fetch(`http://127.0.0.1:${port}/x?name=Ada`, { headers: { accept: 'application/json' } });
    assert.deepEqual(await named.json(), { greeting: 'Bonjour', name: 'Ada', path: '/x', config: ['GREETING', 'NAME'] });
  });

  it('kv-counter behaves like waSCC kvcounter over HTTP', async () => {
    const { host, port } = await runDemo('kv-counter');
    hosts.push(host);
    // The real waSCC actor, on its own host and memory store, gets the same requests.
    const wascc = await Host.start({ workers: 1 }, { logger });
    hosts.push(wascc);
    await wascc.addProvider(builtinProviders['wasmlet:httpserver']!({}, logger));
    await wascc.addProvider(builtinProviders['wasmlet:keyvalue']!({}, logger));
    const kvcounter = await wascc.startActor(readFileSync(new URL('wascc/kvcounter.wasm', fixtures)));
    const waPort = await freePort();
    await wascc.putLink({ actor: kvcounter.id, contract: 'wascc:http_server', values: { PORT: String(waPort), ADDRESS: '127.0.0.1' } });
    await wascc.putLink({ actor: kvcounter.id, contract: 'wascc:keyvalue' });

    for (const path of ['/a/b', '/a/b', '/c', '/a/b', '/']) {
      const [ts, wa] = await Promise.all([fetch(`http://127.0.0.1:${port}${path}`), fetch(`http://127.0.0.1:${waPort}${path}`)]);
      const [tsBody, waBody] = [await ts.text(), await wa.text()];
      assert.equal(ts.status, wa.status, path);
      assert.equal(ts.status, 200);
      assert.deepEqual(JSON.parse(tsBody), JSON.parse(waBody), `${path}: ${tsBody} vs ${waBody}`);
    }
    const last = await fetch(`http://127.0.0.1:${port}/a/b`);
    assert.deepEqual(await last.json(), { counter: 4 });
  });

  it('messaging: the publisher publishes each request\'s path, the subscribed counter counts them in key-value', async () => {
    const dir = join(repoRoot, 'demos', 'messaging');
    const [publisher, counter] = await Promise.all([buildTestActor(join(dir, 'publisher')), buildTestActor(join(dir, 'counter'))]);
    const plan = await loadManifest(join(dir, 'wasmlet.yaml'));
    assert.deepEqual(plan.actors.map((a) => a.path), [join(dir, 'publisher', 'build', 'messaging-publisher.wasm'), join(dir, 'counter', 'build', 'messaging-counter.wasm')]);
    [plan.actors[0]!.path, plan.actors[1]!.path] = [publisher.path, counter.path];
    const ports: Record<string, number> = {};
    for (const l of plan.links) if (l.values.PORT) l.values.PORT = String((ports[l.actor] = await freePort()));
    const host = await runPlan(plan, { logger, providers: builtinProviders, deps: { runtimes: [wapcRuntime, components] } });
    hosts.push(host);
    for (const path of ['/a/b', '/a/b', '/c']) {
      const res = await fetch(`http://127.0.0.1:${ports['messaging-publisher']}${path}`);
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { published: path });
    }
    const count = async (path: string) => (await fetch(`http://127.0.0.1:${ports['messaging-counter']}${path}`)).json();
    await eventually(async () => assert.deepEqual(await count('/a/b'), { path: '/a/b', count: 2, total: 3 }), 'the counter counted the published paths');
    assert.deepEqual(await count('/c'), { path: '/c', count: 1, total: 3 });
    assert.deepEqual(await count('/never'), { path: '/never', count: 0, total: 3 });
  });

  it('logger writes structured lines at the asked level, and refuses unknown levels', async () => {
    const { host, port } = await runDemo('logger');
    hosts.push(host);
    const id = host.actors()[0]!.id;
    const res = await fetch(`http://127.0.0.1:${port}/orders?level=warn&msg=slow+order`, { method: 'POST', body: 'abc', headers: { 'user-agent': 'demo-test' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { logged: true, level: 'warn', context: { method: 'POST', path: '/orders', agent: 'demo-test', bytes: 3 } });
    const bad = await fetch(`http://127.0.0.1:${port}/?level=loud`);
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
    const lines = [];
    for await (const r of host.logs.read(id)) lines.push(r);
    assert.ok(lines.some((l) => l.stream === 'log' && l.level === 'warn' && l.msg === 'slow order method=POST path=/orders agent=demo-test bytes=3'), JSON.stringify(lines));
    assert.ok(lines.some((l) => l.stream === 'console' && l.msg === 'POST /orders'));
  });
});
