/**
 * The scheduler: binds each pod without a node (and with schedulerName `default-scheduler`) to a
 * node that fits it, through the binding subresource, and records `Scheduled`. A node fits when it
 * is Ready and schedulable, its labels satisfy the pod's nodeSelector and required node affinity,
 * the pod tolerates its NoSchedule/NoExecute taints, and it has room (pod count, cpu and memory
 * requests against allocatable). Among fitting nodes it takes the one with the fewest pods. A pod
 * that fits nowhere gets `PodScheduled=False` (Unschedulable) and a `FailedScheduling` Event
 * worded as the real scheduler words it, and is tried again whenever nodes or pods change.
 */
import type { Logger } from 'pino';
import type { KubeStore } from '../kube-store.ts';
import { matchesLabels } from '../selectors.ts';
import { isPlainObject, kubeTime, type KubeObject, type StoreEvent } from '../types.ts';
import { conditionOf, Controller, keyOf, selectorRequirements, setStatus, splitKey } from './queue.ts';

interface Taint {
  key: string;
  value?: string;
  effect: string;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isPlainObject(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** A resource quantity in base units (cores, bytes); undefined when unreadable. */
export function parseQuantity(q: unknown): number | undefined {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return undefined;
  const m = /^([0-9.]+(?:e[0-9]+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/.exec(q.trim());
  if (!m) return undefined;
  const scale: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };
  return Number(m[1]) * (m[2] ? scale[m[2]]! : 1);
}

function podRequests(pod: KubeObject): { cpu: number; memory: number } {
  let cpu = 0;
  let memory = 0;
  for (const c of arr(obj(pod.spec).containers)) {
    const req = obj(obj(obj(c).resources).requests);
    cpu += parseQuantity(req.cpu) ?? 0;
    memory += parseQuantity(req.memory) ?? 0;
  }
  return { cpu, memory };
}

function tolerates(pod: KubeObject, taint: Taint): boolean {
  return arr(obj(pod.spec).tolerations).some((raw) => {
    const t = obj(raw);
    if (t.effect && t.effect !== taint.effect) return false;
    if (t.operator === 'Exists') return !t.key || t.key === taint.key;
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
  });
}

/** Taints as the scheduler sees them: the node's own, plus not-ready and unschedulable. */
function effectiveTaints(node: KubeObject): Taint[] {
  const taints = arr(obj(node.spec).taints).map((t) => obj(t) as unknown as Taint);
  if (conditionOf(node, 'Ready')?.status !== 'True') taints.push({ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' });
  if (obj(node.spec).unschedulable === true) taints.push({ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' });
  return taints;
}

function matchesAffinity(pod: KubeObject, node: KubeObject): boolean {
  const labels = node.metadata.labels ?? {};
  const selector = obj(obj(pod.spec).nodeSelector);
  if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) return false;
  const required = obj(obj(obj(obj(pod.spec).affinity).nodeAffinity).requiredDuringSchedulingIgnoredDuringExecution);
  const terms = arr(required.nodeSelectorTerms);
  if (terms.length === 0) return true;
  // Terms are ORed; within a term, expressions (and fields) are ANDed.
  return terms.some((raw) => {
    const term = obj(raw);
    const reqs = selectorRequirements({ matchExpressions: term.matchExpressions }) ?? [];
    const fields = arr(term.matchFields).every((f) => {
      const e = obj(f);
      const values = arr(e.values).map(String);
      return e.key !== 'metadata.name' || (e.operator === 'In' ? values.includes(node.metadata.name ?? '') : !values.includes(node.metadata.name ?? ''));
    });
    return (reqs.length > 0 || arr(term.matchFields).length > 0) && matchesLabels(reqs, labels) && fields;
  });
}

export class Scheduler extends Controller {
  /** Last FailedScheduling message per pod uid: an unchanged verdict is not written again. */
  readonly #told = new Map<string, string>();
  #seq = 0;

  constructor(
    store: KubeStore,
    private readonly logger: Logger,
  ) {
    super(store, logger, 'scheduler', 'pods');
  }

  protected keysFor(e: StoreEvent): string[] {
    // Room or nodes changed: pending pods may fit now.
    if (e.resource === 'nodes' || (e.resource === 'pods' && e.type !== 'ADDED' && obj(e.object.spec).nodeName)) return this.#pending().map(keyOf);
    if (e.resource !== 'pods') return [];
    if (e.type === 'DELETED') this.#told.delete(e.object.metadata.uid ?? '');
    return e.type !== 'DELETED' && this.#wants(e.object) ? [keyOf(e.object)] : [];
  }

  #wants(pod: KubeObject): boolean {
    const spec = obj(pod.spec);
    return !spec.nodeName && !pod.metadata.deletionTimestamp && (spec.schedulerName ?? 'default-scheduler') === 'default-scheduler';
  }

  #pending(): KubeObject[] {
    return this.store.list('pods').filter((p) => this.#wants(p));
  }

  /** Why `node` does not fit `pod` (the scheduler's wording), or undefined when it does. */
  #misfit(pod: KubeObject, node: KubeObject, podsOn: KubeObject[]): string | undefined {
    if (!matchesAffinity(pod, node)) return "node(s) didn't match Pod's node affinity/selector";
    const taint = effectiveTaints(node).find((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerates(pod, t));
    if (taint) return taint.key === 'node.kubernetes.io/unschedulable' ? 'node(s) were unschedulable' : `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
    const alloc = obj(obj(node.status).allocatable);
    const maxPods = parseQuantity(alloc.pods) ?? 110;
    if (podsOn.length + 1 > maxPods) return 'Too many pods';
    const used = podsOn.map(podRequests).reduce((a, b) => ({ cpu: a.cpu + b.cpu, memory: a.memory + b.memory }), { cpu: 0, memory: 0 });
    const want = podRequests(pod);
    const cpu = parseQuantity(alloc.cpu);
    const memory = parseQuantity(alloc.memory);
    if (cpu !== undefined && want.cpu > 0 && used.cpu + want.cpu > cpu) return 'Insufficient cpu';
    if (memory !== undefined && want.memory > 0 && used.memory + want.memory > memory) return 'Insufficient memory';
    return undefined;
  }

  protected sync(key: string): void {
    const [ns, name] = splitKey(key);
    const pod = this.store.get('pods', ns, name);
    if (!pod || !this.#wants(pod)) return;
    const nodes = this.store.list('nodes');
    const bound = this.store.list('pods').filter((p) => obj(p.spec).nodeName && !['Succeeded', 'Failed'].includes(String(obj(p.status).phase)));
    const reasons = new Map<string, number>();
    let best: { node: KubeObject; load: number } | undefined;
    for (const node of nodes) {
      const podsOn = bound.filter((p) => obj(p.spec).nodeName === node.metadata.name);
      const why = this.#misfit(pod, node, podsOn);
      if (why) reasons.set(why, (reasons.get(why) ?? 0) + 1);
      else if (!best || podsOn.length < best.load) best = { node, load: podsOn.length };
    }
    if (best) {
      const target = best.node.metadata.name!;
      this.store.bind(ns, name, target);
      this.#told.delete(pod.metadata.uid ?? '');
      this.#event(pod, 'Normal', 'Scheduled', `Successfully assigned ${ns}/${name} to ${target}`);
      return;
    }
    const n = nodes.length;
    const message =
      n === 0
        ? 'no nodes available to schedule pods'
        : `0/${n} nodes are available: ${[...reasons].map(([why, count]) => `${count} ${why}`).sort().join(', ')}. preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`;
    if (this.#told.get(pod.metadata.uid ?? '') === message) return;
    this.#told.set(pod.metadata.uid ?? '', message);
    const status = obj(pod.status);
    const conditions = arr(status.conditions).filter((c) => obj(c).type !== 'PodScheduled');
    conditions.push({ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastProbeTime: null, lastTransitionTime: kubeTime() });
    setStatus(this.store, 'pods', pod, { ...status, conditions });
    this.#event(pod, 'Warning', 'FailedScheduling', message);
    this.logger.info({ pod: key, message }, 'pod does not fit any node');
  }

  #event(pod: KubeObject, type: string, reason: string, message: string): void {
    const now = kubeTime();
    this.store.create('events', {
      // Named as the real recorders name them: the object, then the time in hex, so names sort by time.
      metadata: { namespace: pod.metadata.namespace, name: `${pod.metadata.name}.${(BigInt(Date.now()) * 1_000_000n + BigInt(this.#seq++)).toString(16)}` },
      involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid },
      reason,
      message,
      type,
      source: { component: 'default-scheduler' },
      reportingComponent: 'default-scheduler',
      reportingInstance: 'default-scheduler',
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  }
}
