/**
 * Deployments and ReplicaSets, as the real controllers run them (simplified):
 * - A ReplicaSet keeps `spec.replicas` active pods made from its template (named
 *   `<replicaset>-<random>`, owned by it); extra pods are deleted, unscheduled and unready first.
 * - A Deployment keeps one ReplicaSet per pod template (`<deployment>-<pod-template-hash>`): the
 *   current one is scaled to `spec.replicas`, older ones down as the new pods become available (a
 *   rolling update without maxSurge/maxUnavailable arithmetic). Status (replicas, updated, ready,
 *   available, conditions Available and Progressing) follows, so `kubectl rollout status` and
 *   `kubectl wait --for=condition=Available` work.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeStore } from '../kube-store.ts';
import { matchesLabels } from '../selectors.ts';
import { clone, isPlainObject, kubeTime, type KubeObject, type StoreEvent } from '../types.ts';
import { Controller, controllerOf, isPodActive, isPodReady, keyOf, ownerReference, selectorRequirements, setStatus, splitKey } from './queue.ts';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isPlainObject(v) ? v : {});
const HASH_LABEL = 'pod-template-hash';
const REVISION = 'deployment.kubernetes.io/revision';
/** The alphabet Kubernetes uses for generated suffixes (no vowels, no look-alikes). */
const SAFE = 'bcdfghjklmnpqrstvwxz2456789';

export function podTemplateHash(template: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(template)).digest();
  let out = '';
  for (let i = 0; i < 10; i++) out += SAFE[digest[i]! % SAFE.length];
  return out;
}

function owned(store: KubeStore, resource: string, owner: KubeObject, kind: string): KubeObject[] {
  return store.list(resource, { namespace: owner.metadata.namespace }).filter((o) => controllerOf(o, kind)?.uid === owner.metadata.uid);
}

/** A condition list with `type` set, keeping its transition time when its status did not change. */
function withCondition(conditions: unknown, type: string, status: string, reason: string, message: string): unknown[] {
  const list = (Array.isArray(conditions) ? conditions : []).filter((c) => obj(c).type !== type);
  const old = (Array.isArray(conditions) ? conditions : []).map(obj).find((c) => c.type === type);
  const now = kubeTime();
  const same = old && old.status === status && old.reason === reason && old.message === message;
  list.push(same ? old : { type, status, reason, message, lastUpdateTime: now, lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now });
  return list;
}

export class ReplicaSetController extends Controller {
  constructor(store: KubeStore, logger: Logger) {
    super(store, logger, 'replicaset', 'replicasets');
  }

  protected keysFor(e: StoreEvent): string[] {
    if (e.resource === 'replicasets') return [keyOf(e.object)];
    const rs = e.resource === 'pods' ? controllerOf(e.object, 'ReplicaSet') : undefined;
    return rs ? [`${e.object.metadata.namespace}/${rs.name}`] : [];
  }

  protected sync(key: string): void {
    const [ns, name] = splitKey(key);
    const rs = this.store.get('replicasets', ns, name);
    if (!rs || rs.metadata.deletionTimestamp) return;
    const spec = obj(rs.spec);
    const desired = typeof spec.replicas === 'number' ? spec.replicas : 1;
    const selector = selectorRequirements(spec.selector) ?? [];
    const active = owned(this.store, 'pods', rs, 'ReplicaSet').filter((p) => isPodActive(p) && matchesLabels(selector, p.metadata.labels));
    if (active.length < desired) {
      const template = obj(spec.template);
      const meta = obj(template.metadata);
      for (let i = active.length; i < Math.min(desired, active.length + 500); i++) {
        this.store.create('pods', {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { ...clone(meta), generateName: `${name}-`, namespace: ns, ownerReferences: [ownerReference(rs)] },
          spec: clone(template.spec),
        });
      }
    } else if (active.length > desired) {
      // Unscheduled first, then unready, then the newest.
      const rank = (p: KubeObject) => (obj(p.spec).nodeName ? 0 : 2) + (isPodReady(p) ? 0 : 1);
      const doomed = [...active].sort((a, b) => rank(b) - rank(a) || String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp))).slice(0, active.length - desired);
      for (const p of doomed) this.store.delete('pods', ns, p.metadata.name!);
    }
    const pods = owned(this.store, 'pods', rs, 'ReplicaSet').filter(isPodActive);
    const ready = pods.filter(isPodReady).length;
    setStatus(this.store, 'replicasets', rs, {
      replicas: pods.length,
      fullyLabeledReplicas: pods.length,
      readyReplicas: ready,
      availableReplicas: ready,
      observedGeneration: rs.metadata.generation ?? 1,
    });
  }
}

export class DeploymentController extends Controller {
  constructor(store: KubeStore, logger: Logger) {
    super(store, logger, 'deployment', 'deployments');
  }

  protected keysFor(e: StoreEvent): string[] {
    if (e.resource === 'deployments') return [keyOf(e.object)];
    const d = e.resource === 'replicasets' ? controllerOf(e.object, 'Deployment') : undefined;
    return d ? [`${e.object.metadata.namespace}/${d.name}`] : [];
  }

  protected sync(key: string): void {
    const [ns, name] = splitKey(key);
    const d = this.store.get('deployments', ns, name);
    if (!d || d.metadata.deletionTimestamp) return;
    const spec = obj(d.spec);
    const desired = typeof spec.replicas === 'number' ? spec.replicas : 1;
    const template = obj(spec.template);
    const hash = podTemplateHash(template);
    let all = owned(this.store, 'replicasets', d, 'Deployment');
    let current = all.find((rs) => rs.metadata.labels?.[HASH_LABEL] === hash);
    if (!current) {
      const revision = Math.max(0, ...all.map((rs) => Number(rs.metadata.annotations?.[REVISION] ?? 0))) + 1;
      const labels = { ...(obj(template.metadata).labels as Record<string, string> | undefined), [HASH_LABEL]: hash };
      const selector = obj(spec.selector);
      current = this.store.create('replicasets', {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: `${name}-${hash}`, namespace: ns, labels, annotations: { [REVISION]: String(revision) }, ownerReferences: [ownerReference(d)] },
        spec: {
          replicas: desired,
          minReadySeconds: spec.minReadySeconds ?? 0,
          selector: { ...selector, matchLabels: { ...obj(selector.matchLabels), [HASH_LABEL]: hash } },
          template: { ...clone(template), metadata: { ...clone(obj(template.metadata)), labels } },
        },
      });
      all = [...all, current];
    } else if (obj(current.spec).replicas !== desired) {
      current = this.store.update('replicasets', { ...current, spec: { ...obj(current.spec), replicas: desired } });
    }
    // Older ReplicaSets give way as the current one's pods become available.
    const newAvailable = Number(obj(current.status).availableReplicas ?? 0);
    for (const rs of all) {
      if (rs.metadata.uid === current.metadata.uid) continue;
      const now = Number(obj(rs.spec).replicas ?? 0);
      const target = Math.max(0, Math.min(now, desired - newAvailable));
      if (target !== now) this.store.update('replicasets', { ...rs, spec: { ...obj(rs.spec), replicas: target } });
    }
    const sum = (field: string) => all.reduce((n, rs) => n + Number(obj(rs.status)[field] ?? 0), 0);
    const available = sum('availableReplicas');
    const updated = Number(obj(current.status).replicas ?? 0);
    const maxUnavailable = Math.floor(desired * 0.25);
    const status = obj(d.status);
    let conditions = withCondition(
      status.conditions,
      'Available',
      available >= desired - maxUnavailable ? 'True' : 'False',
      available >= desired - maxUnavailable ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
      available >= desired - maxUnavailable ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.',
    );
    const complete = updated === desired && available >= desired && Number(obj(current.status).availableReplicas ?? 0) >= desired;
    conditions = withCondition(
      conditions,
      'Progressing',
      'True',
      complete ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated',
      complete ? `ReplicaSet "${current.metadata.name}" has successfully progressed.` : `ReplicaSet "${current.metadata.name}" is progressing.`,
    );
    const next = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas: sum('replicas'),
      updatedReplicas: updated,
      readyReplicas: sum('readyReplicas'),
      availableReplicas: available,
      ...(desired - available > 0 ? { unavailableReplicas: desired - available } : {}),
      conditions,
    };
    setStatus(this.store, 'deployments', d, next);
  }
}
