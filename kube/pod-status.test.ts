import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerRecord, PodContext } from './pod-machine.ts';
import { PodStatusBuilder, podPhase } from './pod-status.ts';

const rec = (over: Partial<ContainerRecord> = {}): ContainerRecord => ({
  name: 'app',
  init: false,
  image: 'img:v1',
  imageID: 'img@sha256:1',
  containerID: '',
  state: { waiting: { reason: 'ContainerCreating' } },
  ready: false,
  started: false,
  restartCount: 0,
  everStarted: false,
  ...over,
});
const ctx = (containers: ContainerRecord[], over: Partial<PodContext> = {}): PodContext => ({
  restartPolicy: 'Always',
  containers,
  imagePullBackoff: { baseMs: 1, maxMs: 1 },
  crashLoopBackoff: { baseMs: 1, maxMs: 1 },
  backoffResetMs: 1,
  pullFailures: 0,
  crashes: 0,
  toStart: [],
  lastStartMs: 0,
  ...over,
});
const running = rec({ containerID: 'wasmlet://M1', state: { running: { startedAt: Date.UTC(2024, 0, 1) } }, ready: true, started: true, everStarted: true });

describe('pod status', () => {
  it('is Pending before any container started, Running after, Succeeded/Failed at the end', () => {
    const base = { nodeAddress: '10.0.0.1', startTimeMs: 0 };
    assert.equal(podPhase({ ...base, state: 'imagePull', context: ctx([rec()]) }), 'Pending');
    assert.equal(podPhase({ ...base, state: 'running', context: ctx([running]) }), 'Running');
    assert.equal(podPhase({ ...base, state: 'crashLoopBackoff', context: ctx([rec({ everStarted: true })]) }), 'Running');
    assert.equal(podPhase({ ...base, state: 'completed', context: ctx([running]) }), 'Succeeded');
    assert.equal(podPhase({ ...base, state: 'failed', context: ctx([rec()]) }), 'Failed');
    assert.equal(podPhase({ ...base, state: 'terminating', context: ctx([running]), previousPhase: 'Running' }), 'Running');
  });

  it('builds conditions, container statuses, pod IP and start time', () => {
    const b = new PodStatusBuilder();
    const s = b.build({ state: 'running', context: ctx([running]), nodeAddress: '10.0.0.1', podIP: '127.10.0.2', startTimeMs: Date.UTC(2024, 0, 1, 12) });
    assert.deepEqual(s.conditions.map((c) => [c.type, c.status]), [['Initialized', 'True'], ['Ready', 'True'], ['ContainersReady', 'True'], ['PodScheduled', 'True']]);
    assert.deepEqual([s.podIP, s.podIPs, s.hostIP, s.startTime, s.phase], ['127.10.0.2', [{ ip: '127.10.0.2' }], '10.0.0.1', '2024-01-01T12:00:00Z', 'Running']);
    const pending = b.build({ state: 'imagePull', context: ctx([rec()]), nodeAddress: '10.0.0.1', startTimeMs: 0 });
    assert.equal('podIP' in pending, false, 'no pod IP before the pod has one');
    assert.deepEqual(s.containerStatuses[0], {
      name: 'app',
      image: 'img:v1',
      imageID: 'img@sha256:1',
      containerID: 'wasmlet://M1',
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: '2024-01-01T00:00:00Z' } },
      lastState: {},
    });
  });

  it('keeps a condition transition time while its status stays, and moves it on a change', async () => {
    const b = new PodStatusBuilder();
    const first = b.build({ state: 'starting', context: ctx([rec()]), nodeAddress: 'x', startTimeMs: 0 });
    const notReady = first.conditions.find((c) => c.type === 'Ready')!;
    assert.equal(notReady.status, 'False');
    assert.match(notReady.message!, /unready status: \[app\]/);
    await new Promise((r) => setTimeout(r, 1100));
    const again = b.build({ state: 'starting', context: ctx([rec()]), nodeAddress: 'x', startTimeMs: 0 }).conditions.find((c) => c.type === 'Ready')!;
    assert.equal(again.lastTransitionTime, notReady.lastTransitionTime);
    const ready = b.build({ state: 'running', context: ctx([running]), nodeAddress: 'x', startTimeMs: 0 }).conditions.find((c) => c.type === 'Ready')!;
    assert.notEqual(ready.lastTransitionTime, notReady.lastTransitionTime);
  });

  it('shows why a pod failed, and PodCompleted for finished pods', () => {
    const b = new PodStatusBuilder();
    const failed = b.build({ state: 'failed', context: ctx([rec({ state: { terminated: { exitCode: 128, reason: 'LinkNotClaimed', finishedAt: 0 } } })], { reason: 'LinkNotClaimed', message: 'no claim' }), nodeAddress: 'x', startTimeMs: 0 });
    assert.deepEqual([failed.phase, failed.reason, failed.message], ['Failed', 'LinkNotClaimed', 'no claim']);
    assert.equal(failed.conditions.find((c) => c.type === 'Ready')!.reason, 'PodCompleted');
    const init = b.build({ state: 'initializing', context: ctx([rec({ name: 'setup', init: true }), rec()]), nodeAddress: 'x', startTimeMs: 0 });
    assert.equal(init.conditions.find((c) => c.type === 'Initialized')!.reason, 'ContainersNotInitialized');
    assert.equal(init.initContainerStatuses.length, 1);
    assert.equal(init.reason, null);
  });
});
