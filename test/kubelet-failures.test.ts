/**
 * The node agent when things go wrong: an actor that keeps trapping goes to CrashLoopBackOff with
 * growing backoff and comes back (or fails the pod under restartPolicy Never); the API server
 * stopped and restarted (actors keep serving, the watch resumes, a pod deleted during the outage
 * is stopped after the relist, one created meanwhile starts); the agent restarted (running pods
 * resume, finished ones are not run again); pods beyond capacity are refused; 50 pods at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HTTP_SERVER } from '../host/index.ts';
import { printAndExitWat, wasiProgram } from './helpers/wasi-programs.ts';
import { compileWat, signTestActor, toolboxActor, toolboxWat, type SignedTestActor } from './helpers/wat.ts';
import { freePort } from './helpers/redis-server.ts';
import { eventsFor, instanceOf, isReady, phaseIs, podManifest, startKubeletHarness, statusOf, waitForGone, waitForPod, type KubeletHarness } from './helpers/kubelet-harness.ts';
import { until } from './helpers/wait.ts';

async function get(port: number, path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  await res.arrayBuffer();
  return res.status;
}

describe('node agent: failures', () => {
  let h: KubeletHarness;

  before(async () => {
    h = await startKubeletHarness();
  });
  after(async () => h?.close());

  it('puts an actor that keeps trapping into CrashLoopBackOff with growing backoff, and restarts it', async () => {
    const actor = await toolboxActor({ name: 'crasher', caps: ['wascc:http_server'] });
    h.puller.set('registry.test/crasher:v1', actor.bytes);
    const port = await freePort();
    h.api.store.create('pods', podManifest('crasher', { containers: [{ name: 'app', image: 'registry.test/crasher:v1', ports: [{ containerPort: port }] }] }));
    await waitForPod(h.api, 'crasher', isReady);
    assert.equal(await get(port, '/ok'), 200);
    assert.equal(await get(port, '/one-trap!'), 500);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(statusOf(h.api.store.get('pods', 'default', 'crasher')).containerStatuses![0].ready, true, 'one trap is not a crash');
    for (let i = 0; i < 2; i++) assert.equal(await get(port, `/trap-${i}!`), 500);
    const crashed = await waitForPod(h.api, 'crasher', (p) => statusOf(p).containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff');
    const cs = statusOf(crashed).containerStatuses![0];
    assert.equal(cs.ready, false);
    assert.equal(cs.lastState.terminated?.reason, 'Error');
    assert.match(cs.lastState.terminated?.message, /failed 3 calls/);
    assert.equal(statusOf(crashed).phase, 'Running', 'a restarting pod stays Running');
    assert.equal(h.host.actor(instanceOf('crasher')), undefined, 'the crashed actor is stopped during the backoff');

    const back = await waitForPod(h.api, 'crasher', (p) => isReady(p) && statusOf(p).containerStatuses?.[0]?.restartCount === 1);
    assert.ok(back);
    assert.equal(await get(port, '/ok-again'), 200);
    // Crash again: the second backoff is longer than the first.
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) await get(port, `/again-${i}!`);
    await waitForPod(h.api, 'crasher', (p) => statusOf(p).containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff');
    await waitForPod(h.api, 'crasher', (p) => isReady(p) && statusOf(p).containerStatuses?.[0]?.restartCount === 2);
    assert.ok(Date.now() - t0 >= 400, `second backoff waited ${Date.now() - t0} ms (base 200 ms doubled)`);
    await h.agent.settled();
    assert.ok(eventsFor(h.api, 'crasher').some((e) => e.reason === 'BackOff' && e.type === 'Warning'));
  });

  it('fails an actor pod that crashes under restartPolicy Never', async () => {
    const actor = await toolboxActor({ name: 'crash-once', caps: ['wascc:http_server'] });
    h.puller.set('registry.test/crash-once:v1', actor.bytes);
    const port = await freePort();
    h.api.store.create('pods', podManifest('crash-once', { restartPolicy: 'Never', containers: [{ name: 'app', image: 'registry.test/crash-once:v1', ports: [{ containerPort: port }] }] }));
    await waitForPod(h.api, 'crash-once', isReady);
    for (let i = 0; i < 3; i++) await get(port, `/t${i}!`);
    const pod = await waitForPod(h.api, 'crash-once', phaseIs('Failed'));
    assert.equal(statusOf(pod).containerStatuses![0].state.terminated?.exitCode, 1);
    assert.equal(h.host.actor(instanceOf('crash-once')), undefined);
  });

  it('resumes a dropped watch from its resourceVersion, without relisting', async () => {
    const actor = await toolboxActor({ name: 'after-drop', caps: [] });
    h.puller.set('registry.test/after-drop:v1', actor.bytes);
    const { lists, watches } = h.agent.watchStats;
    h.api.closeWatches();
    h.api.store.create('pods', podManifest('after-drop', { containers: [{ name: 'app', image: 'registry.test/after-drop:v1' }] }));
    await waitForPod(h.api, 'after-drop', isReady);
    assert.equal(h.agent.watchStats.lists, lists, 'no relist');
    assert.ok(h.agent.watchStats.watches > watches, 'watched again');
  });

  it('rides out an API server outage: actors keep serving, the watch resumes, missed deletions are caught at relist', async () => {
    const [keep, doomed, newcomer] = await Promise.all(['keep', 'doomed', 'newcomer'].map((name) => toolboxActor({ name, caps: ['wascc:http_server'] })));
    const ports = { keep: await freePort(), doomed: await freePort(), newcomer: await freePort() };
    h.puller.set('registry.test/keep:v1', keep!.bytes).set('registry.test/doomed:v1', doomed!.bytes).set('registry.test/newcomer:v1', newcomer!.bytes);
    for (const name of ['keep', 'doomed'] as const) {
      h.api.store.create('pods', podManifest(name, { containers: [{ name: 'app', image: `registry.test/${name}:v1`, ports: [{ containerPort: ports[name] }] }] }));
    }
    await waitForPod(h.api, 'keep', isReady);
    await waitForPod(h.api, 'doomed', isReady);
    const listsBefore = h.agent.watchStats.lists;

    await h.api.stop();
    // While the API is away: the actors keep serving, one pod is deleted, one is created, and
    // the server forgets its history (so the agent must relist, not resume).
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await get(ports.keep, '/during'), 200);
    assert.equal(await get(ports.doomed, '/during'), 200);
    h.api.store.delete('pods', 'default', 'doomed', { gracePeriodSeconds: 0 });
    h.api.store.create('pods', podManifest('newcomer', { containers: [{ name: 'app', image: 'registry.test/newcomer:v1', ports: [{ containerPort: ports.newcomer }] }] }));
    h.api.compactHistory();
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(h.host.actor(instanceOf('doomed')), 'nothing is stopped on a guess while the API is away');
    await h.api.restart();

    await until(() => h.host.actor(instanceOf('doomed')) === undefined, 'the pod deleted during the outage is stopped', 15_000);
    assert.equal(h.host.links.get(instanceOf('doomed'), HTTP_SERVER), undefined);
    await assert.rejects(get(ports.doomed, '/after'));
    await waitForPod(h.api, 'newcomer', isReady);
    assert.equal(await get(ports.newcomer, '/new'), 200);
    assert.equal(await get(ports.keep, '/after'), 200);
    assert.equal(statusOf(h.api.store.get('pods', 'default', 'keep')).containerStatuses![0].restartCount, 0, 'kept running, not restarted');
    assert.ok(h.agent.watchStats.lists > listsBefore, 'relisted after 410 Gone');
    // Node heartbeat and lease resume too.
    const renew = (h.api.store.get('leases', 'kube-node-lease', 'wasmlet-test-node')!.spec as { renewTime: string }).renewTime;
    await until(() => (h.api.store.get('leases', 'kube-node-lease', 'wasmlet-test-node')!.spec as { renewTime: string }).renewTime !== renew, 'lease renewed after the outage', 5000);
  });

  it('writes a status that changed during an outage once the API is back', async () => {
    const actor = await toolboxActor({ name: 'late-status', caps: [] });
    h.puller.set('registry.test/late-status:v1', actor.bytes);
    h.puller.delayMs = 600;
    try {
      h.api.store.create('pods', podManifest('late-status', { containers: [{ name: 'app', image: 'registry.test/late-status:v1' }] }));
      await until(() => h.agent.pods().some((p) => p.name === 'late-status'), 'agent saw the pod');
      await h.api.stop();
      await until(() => h.host.actor(instanceOf('late-status')) !== undefined, 'actor started during the outage');
      await new Promise((r) => setTimeout(r, 300));
      await h.api.restart();
    } finally {
      h.puller.delayMs = 0;
    }
    await waitForPod(h.api, 'late-status', isReady);
  });

  it('resumes running pods after an agent restart and does not run finished WASI pods again', async () => {
    h.puller.set('registry.test/once:v1', await wasiProgram(printAndExitWat({ stdout: ['ran once'] })));
    h.api.store.create('pods', podManifest('once', { restartPolicy: 'Never', containers: [{ name: 'app', image: 'registry.test/once:v1' }] }));
    await waitForPod(h.api, 'once', phaseIs('Succeeded'));
    const pullsOfOnce = () => h.puller.pulls.filter((p) => p.ref === 'registry.test/once:v1').length;
    const before = pullsOfOnce();
    await h.restartAgent();
    await waitForPod(h.api, 'keep', isReady);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(pullsOfOnce(), before, 'the finished pod is adopted, not run again');
    assert.equal(statusOf(h.api.store.get('pods', 'default', 'once')).phase, 'Succeeded');
    assert.ok(h.agent.pods().some((p) => p.name === 'keep' && p.actors.length === 1));
  });

  it('refuses pods beyond its pod capacity (OutOfpods)', async () => {
    const active = h.agent.pods().filter((p) => !['completed', 'error', 'failed'].includes(p.state)).length;
    await h.restartAgent({ maxPods: active });
    h.puller.set('registry.test/one-too-many:v1', (await toolboxActor({ name: 'one-too-many', caps: [] })).bytes);
    h.api.store.create('pods', podManifest('one-too-many', { containers: [{ name: 'app', image: 'registry.test/one-too-many:v1' }] }));
    const pod = await waitForPod(h.api, 'one-too-many', phaseIs('Failed'));
    assert.equal(statusOf(pod).reason, 'OutOfpods');
    await h.restartAgent({ maxPods: 110 });
  });

  it('brings 50 pods applied at once to Ready', async () => {
    const bytes = await compileWat(toolboxWat());
    const actors: SignedTestActor[] = Array.from({ length: 50 }, (_, i) => signTestActor(bytes, { name: `bulk-${i}`, caps: ['wascc:logging'] }));
    actors.forEach((a, i) => h.puller.set(`registry.test/bulk-${i}:v1`, a.bytes));
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      h.api.store.create('pods', podManifest(`bulk-${i}`, { annotations: { 'wasmlet.dev/capabilities': 'logging' }, containers: [{ name: 'app', image: `registry.test/bulk-${i}:v1` }] }));
    }
    await Promise.all(actors.map((_, i) => waitForPod(h.api, `bulk-${i}`, isReady, 60_000)));
    const ms = Date.now() - started;
    actors.forEach((a, i) => assert.equal(h.host.actor(instanceOf(`bulk-${i}`))?.module, a.id, `bulk-${i} runs`));
    assert.ok(ms < 60_000);
    for (let i = 0; i < 50; i++) h.api.store.delete('pods', 'default', `bulk-${i}`, { gracePeriodSeconds: 30 });
    await Promise.all(actors.map((_, i) => waitForGone(h.api, `bulk-${i}`, 60_000)));
    actors.forEach((_, i) => assert.equal(h.host.actor(instanceOf(`bulk-${i}`)), undefined));
  });
});
