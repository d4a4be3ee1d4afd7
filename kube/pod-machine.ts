/**
 * The lifecycle of one pod on this node, with Krustlet's states:
 *
 *   registered → imagePull ⇄ imagePullBackoff → initializing (init containers, in order)
 *     → starting ⇄ startBackoff → running ⇄ crashLoopBackoff → starting …
 *   running → completed (every container exited 0, no restart due) | error (one failed)
 *   any failure the pod cannot recover from (bad annotation, unclaimed link, rejected actor) → failed
 *   DELETE / REMOVED / SHUTDOWN from anywhere → terminating → terminated (final)
 *
 * The machine holds every container's record (state, ready, restartCount…), so pod status is a
 * pure function of a snapshot (pod-status.ts). The work (pull, run, start, stop) is done by
 * promise actors the pod controller provides; it reports containers starting and exiting with
 * CONTAINER_STARTED / CONTAINER_EXITED.
 */
import { assign, fromPromise, setup } from 'xstate';
import { backoffDelay, type Backoff } from './backoff.ts';

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export type ContainerState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: number } }
  | { terminated: { exitCode: number; reason: string; message?: string; startedAt?: number; finishedAt: number; containerID?: string } };

export interface ContainerRecord {
  name: string;
  init: boolean;
  image: string;
  imageID: string;
  containerID: string;
  state: ContainerState;
  lastState?: ContainerState;
  ready: boolean;
  started: boolean;
  restartCount: number;
  /** Started at least once by this agent (a later start is a restart). */
  everStarted: boolean;
}

export interface ContainerExit {
  exitCode: number;
  /** `Completed`, `Error`, `OOMKilled`… Default: Completed for 0, else Error. */
  reason?: string;
  message?: string;
}

export type StopCause = 'deleted' | 'removed' | 'shutdown';

export interface PodMachineInput {
  restartPolicy: RestartPolicy;
  containers: { name: string; init: boolean; image: string; restartCount?: number }[];
  imagePullBackoff: Backoff;
  crashLoopBackoff: Backoff;
  backoffResetMs: number;
  /** A pod that already finished before this agent started (or that it refuses): adopt it as it is. */
  adopt?: 'Succeeded' | 'Failed';
  /** With adopt Failed: the pod's reason and message. */
  reason?: string;
  message?: string;
}

export interface PodContext {
  restartPolicy: RestartPolicy;
  containers: ContainerRecord[];
  imagePullBackoff: Backoff;
  crashLoopBackoff: Backoff;
  backoffResetMs: number;
  adopt?: 'Succeeded' | 'Failed';
  pullFailures: number;
  crashes: number;
  /** Main containers the next `starting` starts. */
  toStart: string[];
  lastStartMs: number;
  /** Pod-level reason and message (Failed pods). */
  reason?: string;
  message?: string;
  stopCause?: StopCause;
}

export type PodEvent =
  | { type: 'CONTAINER_STARTED'; name: string; containerID: string; ready?: boolean; started?: boolean }
  /** A probe's verdict on a running container: readiness, or a startup probe that passed. */
  | { type: 'CONTAINER_PROBED'; name: string; ready?: boolean; started?: boolean }
  | { type: 'CONTAINER_EXITED'; name: string; exit: ContainerExit }
  | { type: 'DELETE' }
  | { type: 'REMOVED' }
  | { type: 'SHUTDOWN' };

/** A failed pull/start: `fatal` fails the pod; `reason` is what container status shows. */
export interface StepError {
  fatal: boolean;
  reason: string;
  message: string;
  container?: string;
}

export function toStepError(err: unknown, fallbackReason: string): StepError {
  const e = err as { fatal?: unknown; reason?: unknown; message?: unknown; container?: unknown };
  return {
    fatal: e?.fatal === true,
    reason: typeof e?.reason === 'string' ? e.reason : fallbackReason,
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.container === 'string' ? { container: e.container } : {}),
  };
}

const main = (c: PodContext) => c.containers.filter((r) => !r.init);
const terminated = (r: ContainerRecord) => ('terminated' in r.state ? r.state.terminated : undefined);

/** Whether a container that exited with `exitCode` is started again under `policy`. */
export function restarts(policy: RestartPolicy, exitCode: number): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
}

function needingRestart(c: PodContext): string[] {
  return main(c)
    .filter((r) => {
      const t = terminated(r);
      return t !== undefined && restarts(c.restartPolicy, t.exitCode);
    })
    .map((r) => r.name);
}

function update(c: PodContext, names: readonly string[], fn: (r: ContainerRecord) => ContainerRecord): ContainerRecord[] {
  return c.containers.map((r) => (names.includes(r.name) ? fn(r) : r));
}

/** Sets a waiting state, keeping the last terminated state as `lastState`. */
function waitingRecord(r: ContainerRecord, reason: string, message?: string): ContainerRecord {
  const lastState = 'terminated' in r.state ? r.state : r.lastState;
  return { ...r, state: { waiting: { reason, ...(message ? { message } : {}) } }, ready: false, started: false, ...(lastState ? { lastState } : {}) };
}

function notProvided<O, I>(what: string) {
  return fromPromise<O, I>(async () => {
    throw new Error(`pod machine: ${what} not provided`);
  });
}

export const podMachine = setup({
  types: {
    context: {} as PodContext,
    events: {} as PodEvent,
    input: {} as PodMachineInput,
  },
  actors: {
    /** Pulls every image; resolves with the imageID of each container. */
    pull: notProvided<Record<string, string>, { containers: ContainerRecord[] }>('pull'),
    /** Runs one init container to completion. */
    runInit: notProvided<ContainerExit, { name: string }>('runInit'),
    /** Starts these main containers (rolling back what it started when it fails). */
    start: notProvided<void, { names: string[] }>('start'),
    /** Stops whatever runs (pod deleted, gone, agent shutting down, or the pod failed). */
    stop: notProvided<void, { cause: StopCause | 'failed' }>('stop'),
  },
  guards: {
    adoptedSucceeded: ({ context }) => context.adopt === 'Succeeded',
    adoptedFailed: ({ context }) => context.adopt === 'Failed',
    hasPendingInit: ({ context }) => context.containers.some((r) => r.init && terminated(r)?.exitCode !== 0),
    someNeedRestart: ({ context }) => needingRestart(context).length > 0,
    allSucceeded: ({ context }) => main(context).every((r) => terminated(r)?.exitCode === 0),
    allExited: ({ context }) => main(context).every((r) => terminated(r) !== undefined),
  },
  delays: {
    pullBackoff: ({ context }) => backoffDelay(context.pullFailures - 1, context.imagePullBackoff),
    crashBackoff: ({ context }) => backoffDelay(context.crashes - 1, context.crashLoopBackoff),
  },
  actions: {
    recordStart: assign(({ context, event }) => {
      if (event.type !== 'CONTAINER_STARTED') return {};
      const now = Date.now();
      return {
        lastStartMs: now,
        containers: update(context, [event.name], (r) => {
          const lastState = 'terminated' in r.state ? r.state : r.lastState;
          return {
            ...r,
            containerID: event.containerID,
            state: { running: { startedAt: now } },
            ...(lastState ? { lastState } : {}),
            ready: event.ready ?? true,
            started: event.started ?? true,
            restartCount: r.everStarted ? r.restartCount + 1 : r.restartCount,
            everStarted: true,
          };
        }),
      };
    }),
    recordProbe: assign(({ context, event }) => {
      if (event.type !== 'CONTAINER_PROBED') return {};
      // Only a running container can be ready or started; a late verdict after it stopped is dropped.
      return {
        containers: update(context, [event.name], (r) =>
          'running' in r.state ? { ...r, ...(event.ready !== undefined ? { ready: event.ready } : {}), ...(event.started !== undefined ? { started: event.started } : {}) } : r,
        ),
      };
    }),
    recordExit: assign(({ context, event }) => {
      if (event.type !== 'CONTAINER_EXITED') return {};
      return {
        containers: update(context, [event.name], (r) => ({
          ...r,
          state: {
            terminated: {
              exitCode: event.exit.exitCode,
              reason: event.exit.reason ?? (event.exit.exitCode === 0 ? 'Completed' : 'Error'),
              ...(event.exit.message ? { message: event.exit.message } : {}),
              ...('running' in r.state ? { startedAt: r.state.running.startedAt } : {}),
              finishedAt: Date.now(),
              ...(r.containerID ? { containerID: r.containerID } : {}),
            },
          },
          ready: false,
          started: false,
        })),
      };
    }),
    /** A fatal error: the pod fails; the container concerned (or those being started) terminate with its reason. */
    fail: assign(({ context, event }) => {
      const e = toStepError((event as { error?: unknown }).error, 'CreateContainerError');
      const names = e.container ? [e.container] : context.toStart;
      const now = Date.now();
      return {
        reason: e.reason,
        message: e.message,
        containers: update(context, names, (r) => ({
          ...r,
          // A container that never ran started and ended at once (clients print startedAt unconditionally).
          state: { terminated: { exitCode: 128, reason: e.reason, message: e.message, startedAt: 'running' in r.state ? r.state.running.startedAt : now, finishedAt: now } },
          ready: false,
          started: false,
        })),
      };
    }),
    stopping: assign(({ context, event }) => ({
      stopCause: event.type === 'REMOVED' ? 'removed' : event.type === 'SHUTDOWN' ? 'shutdown' : 'deleted',
      containers: context.containers.map((r) => ({ ...r, ready: false })),
    })),
  },
}).createMachine({
  id: 'pod',
  initial: 'registered',
  context: ({ input }) => ({
    restartPolicy: input.restartPolicy,
    imagePullBackoff: input.imagePullBackoff,
    crashLoopBackoff: input.crashLoopBackoff,
    backoffResetMs: input.backoffResetMs,
    ...(input.adopt ? { adopt: input.adopt } : {}),
    ...(input.reason ? { reason: input.reason } : {}),
    ...(input.message ? { message: input.message } : {}),
    pullFailures: 0,
    crashes: 0,
    toStart: input.containers.filter((c) => !c.init).map((c) => c.name),
    lastStartMs: 0,
    containers: input.containers.map((c) => ({
      name: c.name,
      init: c.init,
      image: c.image,
      imageID: '',
      containerID: '',
      state: { waiting: { reason: 'ContainerCreating' } },
      ready: false,
      started: false,
      restartCount: c.restartCount ?? 0,
      everStarted: (c.restartCount ?? 0) > 0,
    })),
  }),
  on: {
    CONTAINER_STARTED: { actions: 'recordStart' },
    CONTAINER_PROBED: { actions: 'recordProbe' },
    CONTAINER_EXITED: { actions: 'recordExit' },
    DELETE: { target: '.terminating', actions: 'stopping' },
    REMOVED: { target: '.terminating', actions: 'stopping' },
    SHUTDOWN: { target: '.terminating', actions: 'stopping' },
  },
  states: {
    registered: {
      always: [{ guard: 'adoptedSucceeded', target: 'completed' }, { guard: 'adoptedFailed', target: 'error' }, { target: 'imagePull' }],
    },
    imagePull: {
      invoke: {
        src: 'pull',
        input: ({ context }) => ({ containers: context.containers }),
        onDone: {
          target: 'initCheck',
          actions: assign(({ context, event }) => ({
            pullFailures: 0,
            containers: context.containers.map((r) => ({ ...r, imageID: event.output[r.name] ?? r.imageID })),
          })),
        },
        onError: [
          { guard: ({ event }) => toStepError(event.error, '').fatal, target: 'failed', actions: 'fail' },
          {
            target: 'imagePullBackoff',
            actions: assign(({ context, event }) => {
              const e = toStepError(event.error, 'ErrImagePull');
              const names = context.containers.filter((r) => !r.imageID && (!e.container || r.name === e.container)).map((r) => r.name);
              return { pullFailures: context.pullFailures + 1, containers: update(context, names, (r) => waitingRecord(r, e.reason, e.message)) };
            }),
          },
        ],
      },
    },
    imagePullBackoff: {
      entry: assign(({ context }) => {
        const names = context.containers.filter((r) => !r.imageID && 'waiting' in r.state && r.state.waiting.reason === 'ErrImagePull').map((r) => r.name);
        const last = (r: ContainerRecord) => ('waiting' in r.state && r.state.waiting.message ? `; last error: ${r.state.waiting.message}` : '');
        return { containers: update(context, names, (r) => waitingRecord(r, 'ImagePullBackOff', `Back-off pulling image "${r.image}"${last(r)}`)) };
      }),
      after: { pullBackoff: 'imagePull' },
    },
    initCheck: {
      always: [{ guard: 'hasPendingInit', target: 'initializing' }, { target: 'starting' }],
    },
    initializing: {
      invoke: {
        src: 'runInit',
        input: ({ context }) => ({ name: context.containers.find((r) => r.init && terminated(r)?.exitCode !== 0)!.name }),
        onDone: [
          {
            guard: ({ event }) => event.output.exitCode === 0,
            target: 'initCheck',
          },
          { guard: ({ context }) => context.restartPolicy === 'Never', target: 'error', actions: assign({ reason: 'InitContainerFailed', message: 'an init container failed and restartPolicy is Never' }) },
          { target: 'initBackoff', actions: assign(({ context }) => ({ crashes: context.crashes + 1 })) },
        ],
        onError: [
          { guard: ({ event }) => toStepError(event.error, '').fatal, target: 'failed', actions: 'fail' },
          { target: 'initBackoff', actions: assign(({ context }) => ({ crashes: context.crashes + 1 })) },
        ],
      },
    },
    initBackoff: {
      entry: assign(({ context }) => {
        const name = context.containers.find((r) => r.init && terminated(r)?.exitCode !== 0)?.name;
        return { containers: update(context, name ? [name] : [], (r) => waitingRecord(r, 'CrashLoopBackOff', `back-off restarting failed init container ${r.name}`)) };
      }),
      after: { crashBackoff: 'initCheck' },
    },
    starting: {
      invoke: {
        src: 'start',
        input: ({ context }) => ({ names: context.toStart }),
        onDone: { target: 'running', actions: assign({ toStart: [] }) },
        onError: [
          { guard: ({ event }) => toStepError(event.error, '').fatal, target: 'failed', actions: 'fail' },
          {
            target: 'startBackoff',
            actions: assign(({ context, event }) => {
              const e = toStepError(event.error, 'RunContainerError');
              return { crashes: context.crashes + 1, containers: update(context, context.toStart, (r) => waitingRecord(r, e.reason, e.message)) };
            }),
          },
        ],
      },
    },
    startBackoff: {
      after: { crashBackoff: 'starting' },
    },
    running: {
      always: [
        { guard: 'someNeedRestart', target: 'crashLoopBackoff' },
        { guard: 'allSucceeded', target: 'completed' },
        { guard: 'allExited', target: 'error' },
      ],
    },
    crashLoopBackoff: {
      entry: assign(({ context }) => {
        const names = needingRestart(context);
        // A container that ran long enough before this crash starts its backoff over.
        const crashes = Date.now() - context.lastStartMs >= context.backoffResetMs ? 1 : context.crashes + 1;
        const delay = backoffDelay(crashes - 1, context.crashLoopBackoff);
        return {
          crashes,
          toStart: names,
          containers: update(context, names, (r) => waitingRecord(r, 'CrashLoopBackOff', `back-off ${Math.round(delay / 1000)}s restarting failed container=${r.name}`)),
        };
      }),
      after: { crashBackoff: 'starting' },
    },
    completed: {},
    error: {},
    failed: {
      // Whatever still runs (other containers of the pod) stops: a failed pod runs nothing.
      invoke: { src: 'stop', input: { cause: 'failed' } },
    },
    terminating: {
      on: { DELETE: {}, REMOVED: {}, SHUTDOWN: {}, CONTAINER_PROBED: {} },
      invoke: {
        src: 'stop',
        input: ({ context }) => ({ cause: context.stopCause ?? 'deleted' }),
        onDone: 'terminated',
        onError: 'terminated',
      },
    },
    terminated: {
      type: 'final',
      on: { DELETE: {}, REMOVED: {}, SHUTDOWN: {} },
    },
  },
});

export type PodMachine = typeof podMachine;
export type PodStateValue = 'registered' | 'imagePull' | 'imagePullBackoff' | 'initCheck' | 'initializing' | 'initBackoff' | 'starting' | 'startBackoff' | 'running' | 'crashLoopBackoff' | 'completed' | 'error' | 'failed' | 'terminating' | 'terminated';
