/**
 * The limits a pod sets for its actors reach the host: `wasmlet.dev/max-concurrency` (the actor's
 * share of the node's workers) and a container's `resources.limits.memory` (linear memory of
 * one instance); a pod whose actor cannot run within its memory limit, or with a malformed
 * limit, fails with the reason.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { isReady, podManifest, startKubeletHarness, statusOf, waitForPod, type KubeletHarness } from './helpers/kubelet-harness.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);
/** A pod container's actor instance id. */
const instance = (pod: string) => `default/${pod}/app`;
const failed = (p: Parameters<typeof isReady>[0]) => statusOf(p).phase === 'Failed';

describe('node agent: actor limits', () => {
  let h: KubeletHarness;
  before(async () => {
    h = await startKubeletHarness({ workers: 3 });
    h.puller.set('registry.test/echo:v1', readFileSync(new URL('wascc/echo.wasm', fixtures)));
  });
  after(async () => h?.close());

  it('defaults: the host’s share (workers less one) and memory limit', async () => {
    h.api.store.create('pods', podManifest('plain', { containers: [{ name: 'app', image: 'registry.test/echo:v1' }] }));
    await waitForPod(h.api, 'plain', isReady);
    const info = h.host.actor(instance('plain'))!;
    assert.deepEqual([info.maxConcurrency, info.maxMemoryMiB], [2, 64]);
  });

  it('takes wasmlet.dev/max-concurrency and resources.limits.memory', async () => {
    h.api.store.create(
      'pods',
      podManifest('limited', {
        annotations: { 'wasmlet.dev/max-concurrency': '1' },
        containers: [{ name: 'app', image: 'registry.test/echo:v1', resources: { limits: { memory: '24Mi' } } }],
      }),
    );
    await waitForPod(h.api, 'limited', isReady);
    const info = h.host.actor(instance('limited'))!;
    assert.deepEqual([info.maxConcurrency, info.maxMemoryMiB], [1, 24]);
  });

  it('fails a pod whose actor starts past its memory limit, or whose limit is malformed, with the reason', async () => {
    // echo.wasm's memory starts at 17 pages (1.06 MiB): 1Mi is too little.
    h.api.store.create('pods', podManifest('tiny', { containers: [{ name: 'app', image: 'registry.test/echo:v1', resources: { limits: { memory: '1Mi' } } }] }));
    const tiny = await waitForPod(h.api, 'tiny', failed);
    assert.equal(statusOf(tiny).reason, 'ActorRejected');
    assert.match(statusOf(tiny).message ?? '', /memory starts at 1\.06 MiB, more than the actor's limit of 1 MiB/);
    h.api.store.create('pods', podManifest('bad', { annotations: { 'wasmlet.dev/max-concurrency': 'lots' }, containers: [{ name: 'app', image: 'registry.test/echo:v1' }] }));
    const bad = await waitForPod(h.api, 'bad', failed);
    assert.equal(statusOf(bad).reason, 'InvalidCapabilityAnnotation');
    assert.match(statusOf(bad).message ?? '', /wasmlet\.dev\/max-concurrency/);
    assert.equal(h.host.actor(instance('tiny')), undefined, 'nothing kept running');
    assert.equal(h.host.actor(instance('bad')), undefined);
  });
});
