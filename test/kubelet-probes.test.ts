/**
 * Probes on actor pods: readiness drives Ready/ContainersReady and containerStatuses[].ready,
 * liveness failures kill and restart the container (Unhealthy and Killing Events, restartCount,
 * lastState), a startup probe gates the others, and exec probes fail the pod as unsupported.
 * Periods are Kubernetes' minimum (1 s), so each case takes a few seconds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HTTP_SERVER } from '../host/index.ts';
import { condition, eventsFor, instanceOf, isReady, loopbackCidr, podManifest, startKubeletHarness, statusOf, waitForPod, type KubeletHarness } from './helpers/kubelet-harness.ts';
import { toolboxActor } from './helpers/wat.ts';

const probed = (name: string, probes: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  podManifest(name, { containers: [{ name: 'app', image: 'registry.test/toolbox:v1', ports: [{ name: 'http', containerPort: 8080 }], ...probes }], ...extra });

/** A path the toolbox actor answers with bytes that are not a response (HTTP 502): a failing health check that traps nothing. */
const FAILING = '/^';

describe('node agent: probes', () => {
  let h: KubeletHarness;

  before(async () => {
    h = await startKubeletHarness({ agent: { podCidr: loopbackCidr().cidr } });
    h.puller.set('registry.test/toolbox:v1', (await toolboxActor({ name: 'toolbox', caps: ['wascc:http_server'] })).bytes);
  });
  after(async () => h?.close());

  it('readiness: Ready follows the probe both ways', async () => {
    h.api.store.create('pods', probed('ready-probe', { readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1, failureThreshold: 1 } }));
    const running = await waitForPod(h.api, 'ready-probe', (p) => statusOf(p).containerStatuses?.[0]?.state?.running !== undefined);
    assert.equal(statusOf(running).containerStatuses![0].ready, false, 'not ready before the first probe passed');
    const ready = await waitForPod(h.api, 'ready-probe', isReady);
    assert.equal(condition(ready, 'ContainersReady'), 'True');
    assert.equal(statusOf(ready).containerStatuses![0].ready, true);
    // The server goes away (its link removed): the probe fails, the pod is no longer Ready.
    const id = instanceOf('ready-probe');
    const link = h.host.links.get(id, HTTP_SERVER)!;
    await h.host.deleteLink(id, HTTP_SERVER);
    const unready = await waitForPod(h.api, 'ready-probe', (p) => condition(p, 'Ready') === 'False');
    assert.equal(condition(unready, 'ContainersReady'), 'False');
    assert.equal(statusOf(unready).containerStatuses![0].ready, false);
    assert.equal(statusOf(unready).containerStatuses![0].restartCount, 0, 'readiness never restarts');
    assert.equal(statusOf(unready).phase, 'Running');
    await h.host.putLink(link);
    await waitForPod(h.api, 'ready-probe', isReady);
    await h.agent.settled();
    const unhealthy = eventsFor(h.api, 'ready-probe').filter((e) => e.reason === 'Unhealthy');
    assert.ok(unhealthy.length >= 1 && unhealthy.every((e) => e.type === 'Warning'));
    assert.match(unhealthy[0]!.message, /^Readiness probe failed: Get "http:\/\/127\.\d+\.\d+\.\d+:8080\/healthz": dial tcp .*connection refused$/);
  });

  it('liveness: a failing probe kills the container, which restarts with backoff', async () => {
    h.api.store.create('pods', probed('live-probe', { livenessProbe: { httpGet: { path: FAILING, port: 8080 }, periodSeconds: 1, failureThreshold: 2 } }));
    const restarted = await waitForPod(h.api, 'live-probe', (p) => (statusOf(p).containerStatuses?.[0]?.restartCount ?? 0) >= 1, 20_000);
    const cs = statusOf(restarted).containerStatuses![0];
    assert.equal(cs.lastState.terminated?.exitCode, 137);
    assert.equal(cs.lastState.terminated?.message, 'Container app failed liveness probe, will be restarted');
    await h.agent.settled();
    const events = eventsFor(h.api, 'live-probe');
    const unhealthy = events.find((e) => e.reason === 'Unhealthy');
    assert.equal(unhealthy?.type, 'Warning');
    assert.equal(unhealthy?.message, 'Liveness probe failed: HTTP probe failed with statuscode: 502');
    assert.ok(events.some((e) => e.reason === 'Killing' && e.message === 'Container app failed liveness probe, will be restarted'), JSON.stringify(events));
    assert.equal(h.host.actor(instanceOf('live-probe'))?.traps ?? 0, 0, 'a failing health check is not a trap');
  });

  it('liveness under restartPolicy Never: the pod fails', async () => {
    h.api.store.create('pods', probed('live-never', { livenessProbe: { tcpSocket: { port: 9999 }, periodSeconds: 1, failureThreshold: 1 } }, { restartPolicy: 'Never' }));
    const failed = await waitForPod(h.api, 'live-never', (p) => statusOf(p).phase === 'Failed', 20_000);
    assert.equal(statusOf(failed).containerStatuses![0].state.terminated?.message, 'Container app failed liveness probe');
    assert.equal(h.host.actor(instanceOf('live-never')), undefined);
  });

  it('startup: the other probes wait for it; started and ready follow it', async () => {
    h.api.store.create(
      'pods',
      probed('slow-start', {
        startupProbe: { tcpSocket: { port: 9998 }, periodSeconds: 1, failureThreshold: 30 },
        readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
        livenessProbe: { httpGet: { path: FAILING, port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
      }),
    );
    await waitForPod(h.api, 'slow-start', (p) => statusOf(p).containerStatuses?.[0]?.state?.running !== undefined);
    await new Promise((r) => setTimeout(r, 2500));
    await h.agent.settled();
    const pod = h.api.store.get('pods', 'default', 'slow-start')!;
    assert.deepEqual([statusOf(pod).containerStatuses![0].started, statusOf(pod).containerStatuses![0].ready, statusOf(pod).containerStatuses![0].restartCount], [false, false, 0]);
    const reasons = eventsFor(h.api, 'slow-start').filter((e) => e.reason === 'Unhealthy').map((e) => e.message);
    assert.ok(reasons.length >= 1 && reasons.every((m) => m.startsWith('Startup probe failed: dial tcp')), reasons.join('\n'));
  });

  it('startup that passes: started, then ready once readiness passes', async () => {
    h.api.store.create('pods', probed('started', { startupProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 }, readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 } }));
    const pod = await waitForPod(h.api, 'started', isReady);
    assert.equal(statusOf(pod).containerStatuses![0].started, true);
  });

  it('exec probes fail the pod as unsupported, with an Event, before anything is pulled', async () => {
    const pulls = h.puller.pulls.length;
    h.api.store.create('pods', probed('exec-probe', { livenessProbe: { exec: { command: ['cat', '/tmp/healthy'] } } }));
    const pod = await waitForPod(h.api, 'exec-probe', (p) => statusOf(p).phase === 'Failed');
    assert.equal(statusOf(pod).reason, 'UnsupportedProbe');
    assert.match(statusOf(pod).message!, /exec probes are not supported for wasm workloads/);
    assert.equal(h.puller.pulls.length, pulls);
    await h.agent.settled();
    assert.ok(eventsFor(h.api, 'exec-probe').some((e) => e.reason === 'UnsupportedProbe' && e.type === 'Warning'));
  });
});
