import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import { PodError } from './errors.ts';
import { podMachine, restarts, type ContainerExit, type PodMachineInput, type StopCause } from './pod-machine.ts';

type Impl = {
  pull?: () => Promise<Record<string, string>>;
  runInit?: (name: string, self: () => Actor<typeof podMachine>) => Promise<ContainerExit>;
  start?: (names: string[], self: () => Actor<typeof podMachine>) => Promise<void>;
  stop?: (cause: StopCause | 'failed') => Promise<void>;
};

function run(input: Partial<PodMachineInput>, impl: Impl) {
  const calls: string[] = [];
  let actor!: Actor<typeof podMachine>;
  const self = () => actor;
  const machine = podMachine.provide({
    actors: {
      pull: fromPromise(async () => {
        calls.push('pull');
        return impl.pull ? impl.pull() : { app: 'img@sha256:1' };
      }),
      runInit: fromPromise(async ({ input }) => {
        calls.push(`init:${input.name}`);
        return impl.runInit!(input.name, self);
      }),
      start: fromPromise(async ({ input }) => {
        calls.push(`start:${input.names.join(',')}`);
        if (impl.start) return impl.start(input.names, self);
        for (const n of input.names) self().send({ type: 'CONTAINER_STARTED', name: n, containerID: `wasmlet://${n}` });
      }),
      stop: fromPromise(async ({ input }) => {
        calls.push(`stop:${input.cause}`);
        await impl.stop?.(input.cause);
      }),
    },
  });
  actor = createActor(machine, {
    input: {
      restartPolicy: 'Always',
      containers: [{ name: 'app', init: false, image: 'img:v1' }],
      imagePullBackoff: { baseMs: 10, maxMs: 40 },
      crashLoopBackoff: { baseMs: 10, maxMs: 40 },
      backoffResetMs: 60_000,
      ...input,
    },
  }).start();
  return { actor, calls };
}

const state = (a: Actor<typeof podMachine>, s: string) => waitFor(a, (snap) => snap.value === s, { timeout: 2000 });
const record = (a: Actor<typeof podMachine>, name = 'app') => a.getSnapshot().context.containers.find((c) => c.name === name)!;

describe('pod machine', () => {
  it('pulls, starts and runs; records imageID, containerID and the running state', async () => {
    const { actor, calls } = run({}, {});
    await state(actor, 'running');
    const r = record(actor);
    assert.deepEqual([r.imageID, r.containerID, r.ready, r.started, r.restartCount, 'running' in r.state], ['img@sha256:1', 'wasmlet://app', true, true, 0, true]);
    assert.deepEqual(calls, ['pull', 'start:app']);
  });

  it('backs off a failed pull (ErrImagePull → ImagePullBackOff) and tries again', async () => {
    let n = 0;
    const { actor } = run({}, { pull: async () => (++n < 3 ? Promise.reject(Object.assign(new Error('refused'), { reason: 'ErrImagePull', container: 'app' })) : { app: 'img@sha256:2' }) });
    const backoff = await state(actor, 'imagePullBackoff');
    const w = backoff.context.containers[0]!.state as { waiting: { reason: string; message?: string } };
    assert.equal(w.waiting.reason, 'ImagePullBackOff');
    await state(actor, 'running');
    assert.equal(n, 3);
    assert.equal(actor.getSnapshot().context.pullFailures, 0);
  });

  it('fails the pod on a fatal start error, terminating the container with the reason', async () => {
    const { actor, calls } = run({}, { start: async () => Promise.reject(new PodError('LINK_NOT_CLAIMED', 'no keyvalue claim', { reason: 'LinkNotClaimed', fatal: true, container: 'app' })) });
    const s = await state(actor, 'failed');
    assert.equal(s.context.reason, 'LinkNotClaimed');
    const t = (record(actor).state as { terminated: { reason: string; exitCode: number } }).terminated;
    assert.deepEqual([t.reason, t.exitCode], ['LinkNotClaimed', 128]);
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(calls.includes('stop:failed'), 'whatever runs is stopped');
  });

  it('retries a non-fatal start error with backoff, keeping its waiting reason', async () => {
    let n = 0;
    const { actor } = run({}, {
      start: async (names, self) => {
        if (++n === 1) throw new PodError('CONFIG_MISSING', 'configmap "x" not found', { reason: 'CreateContainerConfigError', fatal: false });
        for (const name of names) self().send({ type: 'CONTAINER_STARTED', name, containerID: 'wasmlet://x' });
      },
    });
    const s = await state(actor, 'startBackoff');
    assert.equal((s.context.containers[0]!.state as { waiting: { reason: string } }).waiting.reason, 'CreateContainerConfigError');
    await state(actor, 'running');
    assert.equal(record(actor).restartCount, 0, 'never started before: no restart counted');
  });

  it('completes when every container exits 0 and no restart is due; fails on a non-zero exit', async () => {
    for (const [policy, code, end] of [['Never', 0, 'completed'], ['OnFailure', 0, 'completed'], ['Never', 3, 'error']] as const) {
      const { actor } = run({ restartPolicy: policy }, {});
      await state(actor, 'running');
      actor.send({ type: 'CONTAINER_EXITED', name: 'app', exit: { exitCode: code } });
      await state(actor, end);
      const t = (record(actor).state as { terminated: { exitCode: number; reason: string } }).terminated;
      assert.deepEqual([t.exitCode, t.reason], [code, code === 0 ? 'Completed' : 'Error']);
    }
  });

  it('restarts after CrashLoopBackOff, counting restarts and keeping the last state', async () => {
    const { actor } = run({ restartPolicy: 'OnFailure' }, {});
    await state(actor, 'running');
    actor.send({ type: 'CONTAINER_EXITED', name: 'app', exit: { exitCode: 1, message: 'boom' } });
    const backoff = await state(actor, 'crashLoopBackoff');
    assert.equal((backoff.context.containers[0]!.state as { waiting: { reason: string } }).waiting.reason, 'CrashLoopBackOff');
    await waitFor(actor, (s) => s.value === 'running' && s.context.containers[0]!.restartCount === 1, { timeout: 2000 });
    const r = record(actor);
    assert.equal((r.lastState as { terminated: { message: string } }).terminated.message, 'boom');
    actor.send({ type: 'CONTAINER_EXITED', name: 'app', exit: { exitCode: 1 } });
    await state(actor, 'crashLoopBackoff');
    assert.equal(actor.getSnapshot().context.crashes, 2, 'backoff grows with consecutive crashes');
  });

  it('runs init containers one by one before the main containers; a failing one fails the pod under Never', async () => {
    const containers = [
      { name: 'i1', init: true, image: 'a' },
      { name: 'i2', init: true, image: 'b' },
      { name: 'app', init: false, image: 'c' },
    ];
    const ok = run({ restartPolicy: 'Never', containers }, {
      pull: async () => ({ i1: 'a', i2: 'b', app: 'c' }),
      runInit: async (name, self) => {
        self().send({ type: 'CONTAINER_STARTED', name, containerID: name });
        self().send({ type: 'CONTAINER_EXITED', name, exit: { exitCode: 0 } });
        return { exitCode: 0 };
      },
    });
    await state(ok.actor, 'running');
    assert.deepEqual(ok.calls, ['pull', 'init:i1', 'init:i2', 'start:app']);
    const bad = run({ restartPolicy: 'Never', containers }, {
      pull: async () => ({ i1: 'a', i2: 'b', app: 'c' }),
      runInit: async (name, self) => {
        self().send({ type: 'CONTAINER_EXITED', name, exit: { exitCode: 2 } });
        return { exitCode: 2 };
      },
    });
    await state(bad.actor, 'error');
    assert.deepEqual(bad.calls, ['pull', 'init:i1']);
  });

  it('stops from any state on DELETE, REMOVED or SHUTDOWN, remembering why', async () => {
    for (const type of ['DELETE', 'REMOVED', 'SHUTDOWN'] as const) {
      const { actor, calls } = run({}, { pull: () => new Promise(() => {}) });
      await state(actor, 'imagePull');
      actor.send({ type });
      await state(actor, 'terminated');
      const cause = { DELETE: 'deleted', REMOVED: 'removed', SHUTDOWN: 'shutdown' }[type];
      assert.equal(actor.getSnapshot().context.stopCause, cause);
      assert.deepEqual(calls, ['pull', `stop:${cause}`]);
    }
  });

  it('adopts a pod that already finished without running it', async () => {
    const { actor, calls } = run({ adopt: 'Succeeded' }, {});
    await state(actor, 'completed');
    assert.deepEqual(calls, []);
  });

  it('decides restarts per policy', () => {
    assert.deepEqual([restarts('Always', 0), restarts('OnFailure', 0), restarts('OnFailure', 1), restarts('Never', 1)], [true, false, true, false]);
  });
});
