/**
 * What the kubelet API reaches in a pod: where a container's log is (and why there is none), and
 * where port-forward may connect (the pod's IP and its own ports). Pure functions of a pod's
 * running containers and its machine's records.
 */
import type { V1Container } from '@kubernetes/client-node';
import type { ContainerRecord } from './pod-machine.ts';

/** Where a container's log is, for the kubelet API. */
export interface LogTarget {
  logId: string | undefined;
  running: boolean;
  waitingReason?: string;
  /** Why a container that never started ended (`reason: message`), e.g. a pod refused before anything ran. */
  neverStarted?: string;
}

interface RunningContainer {
  spec: V1Container;
  actor?: { links: { values: Record<string, string> }[] };
}

/** The pod's IP and its ports (containers' TCP ports and HTTP servers' PORTs), while an actor runs. */
export function portForwardTarget(containers: Iterable<RunningContainer>, podIP: string | undefined): { podIP: string; ports: number[] } | undefined {
  const running = [...containers].filter((rt) => rt.actor);
  if (!podIP || running.length === 0) return undefined;
  const ports = new Set<number>();
  for (const rt of running) {
    for (const p of rt.spec.ports ?? []) if ((p.protocol ?? 'TCP') === 'TCP') ports.add(p.containerPort);
    for (const l of rt.actor!.links) if (l.values.PORT && /^\d+$/.test(l.values.PORT)) ports.add(Number(l.values.PORT));
  }
  return { podIP, ports: [...ports].sort((a, b) => a - b) };
}

export function logTarget(logId: string | undefined, record: ContainerRecord | undefined): LogTarget {
  const running = record !== undefined && 'running' in record.state;
  const waitingReason = record && 'waiting' in record.state ? record.state.waiting.reason : undefined;
  const ended = record && !record.everStarted && 'terminated' in record.state ? record.state.terminated : undefined;
  const neverStarted = ended ? `${ended.reason}${ended.message ? `: ${ended.message}` : ''}` : undefined;
  return { logId, running, ...(waitingReason ? { waitingReason } : {}), ...(neverStarted ? { neverStarted } : {}) };
}
