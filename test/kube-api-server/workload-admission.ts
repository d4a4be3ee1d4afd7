/**
 * Admission for Services, Deployments and ReplicaSets: the defaults the real server fills in and
 * the validation clients run into (a selector that selects the template's labels, a pod template
 * that is a valid pod). A Service gets a cluster IP from 10.96.0.0/16 and keeps it; nothing
 * routes it here (no kube-proxy): clients reach pods through EndpointSlices or port-forward.
 */
import { randomInt } from 'node:crypto';
import { defaultPod, validatePod } from './admission.ts';
import type { FieldCause } from './api-error.ts';
import type { ResourceDef } from './resources.ts';
import { isPlainObject, type KubeObject } from './types.ts';

type Obj = Record<string, unknown>;

function defaultService(svc: KubeObject, old: KubeObject | undefined): FieldCause[] {
  const causes: FieldCause[] = [];
  if (!isPlainObject(svc.spec)) return [{ field: 'spec', message: 'Required value', reason: 'FieldValueRequired' }];
  const spec = svc.spec;
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  spec.internalTrafficPolicy ??= 'Cluster';
  spec.ipFamilies ??= ['IPv4'];
  spec.ipFamilyPolicy ??= 'SingleStack';
  const oldIP = isPlainObject(old?.spec) ? old.spec.clusterIP : undefined;
  if (typeof oldIP === 'string') {
    if (spec.clusterIP !== undefined && spec.clusterIP !== oldIP) causes.push({ field: 'spec.clusterIP', message: 'Invalid value: field is immutable', reason: 'FieldValueInvalid' });
    spec.clusterIP = oldIP;
  } else if (spec.clusterIP !== 'None') {
    spec.clusterIP ??= `10.96.${randomInt(0, 256)}.${randomInt(1, 255)}`;
  }
  spec.clusterIPs = [spec.clusterIP];
  if (!Array.isArray(spec.ports)) spec.ports = [];
  (spec.ports as unknown[]).forEach((p, i) => {
    if (!isPlainObject(p)) return;
    p.protocol ??= 'TCP';
    if (typeof p.port !== 'number' || p.port < 1 || p.port > 65535) causes.push({ field: `spec.ports[${i}].port`, message: 'Invalid value: must be between 1 and 65535, inclusive' });
    p.targetPort ??= p.port;
  });
  svc.status ??= { loadBalancer: {} };
  return causes;
}

/** A selector's matchLabels must all be in the template's labels. */
function selectsTemplate(spec: Obj, field: string): FieldCause[] {
  const selector = isPlainObject(spec.selector) ? spec.selector : undefined;
  const template = isPlainObject(spec.template) ? spec.template : undefined;
  if (!selector) return [{ field: `${field}.selector`, message: 'Required value', reason: 'FieldValueRequired' }];
  if (!template) return [{ field: `${field}.template`, message: 'Required value', reason: 'FieldValueRequired' }];
  const labels = (isPlainObject(template.metadata) && isPlainObject(template.metadata.labels) ? template.metadata.labels : {}) as Record<string, unknown>;
  const match = (isPlainObject(selector.matchLabels) ? selector.matchLabels : {}) as Record<string, unknown>;
  if (Object.keys(match).length === 0 && !Array.isArray(selector.matchExpressions)) {
    return [{ field: `${field}.selector`, message: 'Invalid value: empty selector is invalid for deployment' }];
  }
  if (Object.entries(match).some(([k, v]) => labels[k] !== v)) {
    return [{ field: `${field}.template.metadata.labels`, message: `Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\`` }];
  }
  return [];
}

/** Defaults the pod template as a pod, and validates it as one (`spec.template.spec…` in causes). */
function podTemplate(spec: Obj, field: string): FieldCause[] {
  const template = spec.template as Obj;
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: (template.metadata ?? {}) as KubeObject['metadata'], spec: template.spec } as KubeObject;
  if (isPlainObject(pod.spec)) defaultPod(pod);
  template.spec = pod.spec;
  return validatePod(pod).map((c) => ({ ...c, field: `${field}.template.${c.field}` }));
}

function defaultReplicated(obj: KubeObject, deployment: boolean): FieldCause[] {
  if (!isPlainObject(obj.spec)) return [{ field: 'spec', message: 'Required value', reason: 'FieldValueRequired' }];
  const spec = obj.spec;
  spec.replicas ??= 1;
  if (typeof spec.replicas !== 'number' || !Number.isInteger(spec.replicas) || spec.replicas < 0) return [{ field: 'spec.replicas', message: 'Invalid value: must be greater than or equal to 0' }];
  if (deployment) {
    spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
    spec.revisionHistoryLimit ??= 10;
    spec.progressDeadlineSeconds ??= 600;
  }
  spec.minReadySeconds ??= 0;
  const causes = selectsTemplate(spec, 'spec');
  if (causes.length) return causes;
  obj.status ??= {};
  return podTemplate(spec, 'spec');
}

/** Defaults and validation of the workload kinds; other kinds pass untouched. */
export function admitWorkload(def: ResourceDef, obj: KubeObject, old: KubeObject | undefined): FieldCause[] {
  switch (def.plural) {
    case 'services':
      return defaultService(obj, old);
    case 'deployments':
      return defaultReplicated(obj, true);
    case 'replicasets':
      return defaultReplicated(obj, false);
    default:
      return [];
  }
}
