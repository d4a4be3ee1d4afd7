/**
 * kubectl against an actor pod, for what a user tries first: exec and attach say plainly that wasm
 * workloads do not have them (through the API server, from the kubelet), logs and describe of a
 * pod refused before it ran say why, and events list in order.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isReady, KUBECTL, kubectl, podManifest, startKubeletHarness, statusOf, waitForPod, type KubeletHarness } from './helpers/kubelet-harness.ts';
import { toolboxActor } from './helpers/wat.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);

describe('kubectl and actor pods', { skip: KUBECTL ? false : 'kubectl is not installed' }, () => {
  let h: KubeletHarness;
  let dir: string;
  const run = (...args: string[]) => kubectl(h.api, join(dir, 'cache'), ...args);

  before(async () => {
    h = await startKubeletHarness();
    dir = await mkdtemp(join(tmpdir(), 'kubelet-kubectl-'));
    h.puller.set('registry.test/echo:v1', readFileSync(new URL('wascc/echo.wasm', fixtures)));
    h.puller.set('registry.test/http-only:v1', (await toolboxActor({ name: 'http-only', caps: ['wascc:http_server'] })).bytes);
    h.api.store.create('pods', podManifest('echo', { containers: [{ name: 'echo', image: 'registry.test/echo:v1' }] }));
    h.api.store.create('pods', podManifest('refused', { annotations: { 'wasmlet.dev/capabilities': 'keyvalue' }, containers: [{ name: 'app', image: 'registry.test/http-only:v1' }] }));
    await waitForPod(h.api, 'echo', isReady);
    await waitForPod(h.api, 'refused', (p) => statusOf(p).phase === 'Failed');
  });
  after(async () => {
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('exec says it is not supported for wasm workloads', async () => {
    const r = await run('exec', 'echo', '--', 'ls');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /exec is not supported for wasm workloads: container echo of pod default\/echo runs WebAssembly/);
    assert.doesNotMatch(r.stderr, /NotFound/);
  });

  it('attach says it is not supported for wasm workloads', async () => {
    const r = await run('attach', 'echo');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /attach is not supported for wasm workloads/);
  });

  it('logs of a pod refused before it ran say why', async () => {
    const r = await run('logs', 'refused');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /container "app" in pod "refused" is terminated: it never started \(LinkNotClaimed: .*does not claim wasmlet:keyvalue/);
  });

  it('describe of that pod shows real times, not the zero time', async () => {
    const r = await run('describe', 'pod', 'refused');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Reason:\s+LinkNotClaimed/);
    assert.doesNotMatch(r.stdout, /0001/);
    assert.match(r.stdout, /Started:\s+\w{3}, \d{2} \w{3} 20\d\d/);
  });

  it('lists events, oldest first per object, and describe shows them', async () => {
    await h.agent.settled();
    const r = await run('get', 'events', '--field-selector', 'involvedObject.name=echo');
    assert.equal(r.code, 0, r.stderr);
    const reasons = r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s{2,}/)[2]);
    assert.deepEqual(reasons.filter((x) => ['Pulling', 'Pulled', 'Started'].includes(x!)), ['Pulling', 'Pulled', 'Started']);
    const ev = await run('events', '--for', 'pod/echo');
    assert.equal(ev.code, 0, ev.stderr);
    assert.match(ev.stdout, /Pulling[\s\S]*Started/);
    const d = await run('describe', 'pod', 'echo');
    assert.match(d.stdout, /Events:[\s\S]*Normal\s+Pulling[\s\S]*Normal\s+Started/);
  });
});
