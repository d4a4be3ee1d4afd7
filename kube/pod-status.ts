/**
 * Pod status from a pod machine snapshot: phase, conditions (with transition times kept across
 * updates), container statuses, the pod's IP (once it has one) and the node's, start time. Pure apart from the
 * remembered transition times.
 */
import { kubeTime } from './kube-client.ts';
import type { ContainerRecord, ContainerState, PodContext, PodStateValue } from './pod-machine.ts';

/** The pod status body the agent writes (JSON as the API takes it; times are strings). */
export interface PodStatusBody {
  phase: string;
  conditions: { type: string; status: string; reason?: string; message?: string; lastProbeTime: null; lastTransitionTime: string }[];
  containerStatuses: unknown[];
  initContainerStatuses: unknown[];
  hostIP: string;
  hostIPs: { ip: string }[];
  podIP?: string;
  podIPs?: { ip: string }[];
  startTime: string;
  qosClass: string;
  reason: string | null;
  message: string | null;
}

export interface PodStatusInput {
  state: PodStateValue;
  context: PodContext;
  nodeAddress: string;
  /** The pod's address, once it has one. */
  podIP?: string;
  startTimeMs: number;
  /** The phase last written, kept while the pod terminates. */
  previousPhase?: string;
}

const terminated = (r: ContainerRecord) => ('terminated' in r.state ? r.state.terminated : undefined);

export function podPhase(input: PodStatusInput): string {
  const { state, context } = input;
  if (state === 'completed') return 'Succeeded';
  if (state === 'error' || state === 'failed') return 'Failed';
  if ((state === 'terminating' || state === 'terminated') && input.previousPhase) return input.previousPhase;
  return context.containers.some((r) => !r.init && r.everStarted) ? 'Running' : 'Pending';
}

function stateJson(s: ContainerState): Record<string, unknown> {
  if ('waiting' in s) return { waiting: { reason: s.waiting.reason, ...(s.waiting.message ? { message: s.waiting.message } : {}) } };
  if ('running' in s) return { running: { startedAt: kubeTime(s.running.startedAt) } };
  const t = s.terminated;
  return {
    terminated: {
      exitCode: t.exitCode,
      reason: t.reason,
      ...(t.message ? { message: t.message } : {}),
      ...(t.startedAt ? { startedAt: kubeTime(t.startedAt) } : {}),
      finishedAt: kubeTime(t.finishedAt),
      ...(t.containerID ? { containerID: t.containerID } : {}),
    },
  };
}

export function containerStatus(r: ContainerRecord): Record<string, unknown> {
  return {
    name: r.name,
    image: r.image,
    imageID: r.imageID,
    ...(r.containerID ? { containerID: r.containerID } : {}),
    ready: r.ready,
    started: r.started,
    restartCount: r.restartCount,
    state: stateJson(r.state),
    lastState: r.lastState ? stateJson(r.lastState) : {},
  };
}

/** Builds statuses for one pod, remembering when each condition last changed. */
export class PodStatusBuilder {
  readonly #since = new Map<string, { status: string; time: string }>();

  build(input: PodStatusInput): PodStatusBody {
    const { context, state } = input;
    const now = kubeTime();
    const cond = (type: string, ok: boolean, reason?: string, message?: string) => {
      const status = ok ? 'True' : 'False';
      const prev = this.#since.get(type);
      const time = prev && prev.status === status ? prev.time : now;
      this.#since.set(type, { status, time });
      return { type, status, ...(reason ? { reason } : {}), ...(message ? { message } : {}), lastProbeTime: null, lastTransitionTime: time };
    };
    const inits = context.containers.filter((r) => r.init);
    const mains = context.containers.filter((r) => !r.init);
    const incomplete = inits.filter((r) => terminated(r)?.exitCode !== 0).map((r) => r.name);
    const unready = mains.filter((r) => !r.ready).map((r) => r.name);
    const finished = state === 'completed' || ((state === 'error' || state === 'failed') && mains.every((r) => terminated(r)));
    const readyReason = finished ? 'PodCompleted' : 'ContainersNotReady';
    const readyMessage = finished ? undefined : `containers with unready status: [${unready.join(' ')}]`;
    const ready = unready.length === 0 && state !== 'terminating' && state !== 'terminated';
    const phase = podPhase(input);
    return {
      phase,
      conditions: [
        cond('Initialized', incomplete.length === 0, incomplete.length ? 'ContainersNotInitialized' : undefined, incomplete.length ? `containers with incomplete status: [${incomplete.join(' ')}]` : undefined),
        cond('Ready', ready, ready ? undefined : readyReason, ready ? undefined : readyMessage),
        cond('ContainersReady', ready, ready ? undefined : readyReason, ready ? undefined : readyMessage),
        cond('PodScheduled', true),
      ],
      containerStatuses: mains.map(containerStatus),
      initContainerStatuses: inits.map(containerStatus),
      hostIP: input.nodeAddress,
      hostIPs: [{ ip: input.nodeAddress }],
      ...(input.podIP ? { podIP: input.podIP, podIPs: [{ ip: input.podIP }] } : {}),
      startTime: kubeTime(input.startTimeMs),
      qosClass: 'BestEffort',
      reason: phase === 'Failed' ? (context.reason ?? null) : null,
      message: phase === 'Failed' ? (context.message ?? null) : null,
    };
  }
}
