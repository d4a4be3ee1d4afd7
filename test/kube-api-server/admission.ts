/**
 * What the real API server does to objects on their way in, per resource: defaults, reset of
 * server-owned fields, and the validation that clients actually run into (names, metadata types,
 * pod containers, pod spec immutability). Failures are 422 `Invalid` with field causes.
 */
import { admitWorkload } from './workload-admission.ts';
import { badRequest, invalid, type FieldCause } from './api-error.ts';
import type { ResourceDef } from './resources.ts';
import { isLabelValue, isQualifiedName } from './selectors.ts';
import { clone, deepEqual, isPlainObject, type KubeObject } from './types.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && DNS_SUBDOMAIN.test(s);
}

/** Names the real server accepts for this resource. */
export function validateName(def: ResourceDef, name: string): string | undefined {
  if (def.plural === 'namespaces') {
    return isDnsLabel(name) ? undefined : `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character`;
  }
  if (def.plural === 'events' || def.plural === 'leases') {
    // Event and lease names are only required to be valid path segments upstream.
    return name === '.' || name === '..' || /[/%]/.test(name) ? `may not be '.', '..' or contain '/' or '%'` : undefined;
  }
  return isDnsSubdomain(name) ? undefined : `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`;
}

/** Shape checks for metadata fields that clients set; wrong types are 400s since they cannot be decoded upstream. */
export function checkMetadataTypes(obj: KubeObject): void {
  const m = obj.metadata;
  const stringMap = (field: 'labels' | 'annotations') => {
    const v = m[field];
    if (v === undefined || v === null) return;
    if (!isPlainObject(v) || !Object.values(v).every((x) => typeof x === 'string')) {
      throw badRequest(`metadata.${field} must be a map of strings`);
    }
  };
  stringMap('labels');
  stringMap('annotations');
  if (m.finalizers != null && (!Array.isArray(m.finalizers) || !m.finalizers.every((f) => typeof f === 'string'))) {
    throw badRequest('metadata.finalizers must be a list of strings');
  }
  for (const f of ['name', 'generateName', 'namespace', 'resourceVersion', 'uid'] as const) {
    if (m[f] != null && typeof m[f] !== 'string') throw badRequest(`metadata.${f} must be a string`);
  }
}

function validateMetadata(obj: KubeObject): FieldCause[] {
  const causes: FieldCause[] = [];
  for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
    if (!isQualifiedName(k)) causes.push({ field: 'metadata.labels', message: `Invalid value: ${JSON.stringify(k)}: name part must consist of alphanumeric characters, '-', '_' or '.'` });
    else if (!isLabelValue(v)) causes.push({ field: 'metadata.labels', message: `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` });
  }
  for (const k of Object.keys(obj.metadata.annotations ?? {})) {
    if (!isQualifiedName(k)) causes.push({ field: 'metadata.annotations', message: `Invalid value: ${JSON.stringify(k)}: name part must consist of alphanumeric characters, '-', '_' or '.'` });
  }
  return causes;
}

function imagePullPolicy(image: unknown): string {
  if (typeof image !== 'string') return 'IfNotPresent';
  const ref = image.split('@')[0]!;
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const tag = colon > lastSlash ? ref.slice(colon + 1) : '';
  return image.includes('@') ? 'IfNotPresent' : tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultContainers(list: unknown): void {
  if (!Array.isArray(list)) return;
  for (const c of list) {
    if (!isPlainObject(c)) continue;
    c.imagePullPolicy ??= imagePullPolicy(c.image);
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
    if (Array.isArray(c.ports)) for (const p of c.ports) if (isPlainObject(p)) p.protocol ??= 'TCP';
  }
}

const DEFAULT_TOLERATIONS = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
];

export function defaultPod(pod: KubeObject): void {
  const spec = pod.spec as Record<string, unknown>;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.priority ??= 0;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  defaultContainers(spec.containers);
  defaultContainers(spec.initContainers);
  // The DefaultTolerationSeconds admission plugin's additions.
  const tolerations = Array.isArray(spec.tolerations) ? spec.tolerations : [];
  for (const t of DEFAULT_TOLERATIONS) {
    if (!tolerations.some((x) => isPlainObject(x) && x.key === t.key && (x.effect === undefined || x.effect === t.effect))) tolerations.push({ ...t });
  }
  spec.tolerations = tolerations;
}

export function validatePod(pod: KubeObject): FieldCause[] {
  const causes: FieldCause[] = [];
  const spec = pod.spec;
  if (!isPlainObject(spec)) return [{ field: 'spec', message: 'Required value', reason: 'FieldValueRequired' }];
  const checkContainers = (field: string, list: unknown, required: boolean) => {
    if (list === undefined && !required) return;
    if (!Array.isArray(list) || (required && list.length === 0)) {
      causes.push({ field: `spec.${field}`, message: 'Required value', reason: 'FieldValueRequired' });
      return;
    }
    const names = new Set<string>();
    list.forEach((c, i) => {
      const at = `spec.${field}[${i}]`;
      if (!isPlainObject(c)) return causes.push({ field: at, message: 'Invalid value: must be an object' });
      if (typeof c.name !== 'string' || !isDnsLabel(c.name)) causes.push({ field: `${at}.name`, message: `Invalid value: ${JSON.stringify(c.name ?? '')}: must be a DNS label` });
      else if (names.has(c.name)) causes.push({ field: `${at}.name`, message: `Duplicate value: ${JSON.stringify(c.name)}`, reason: 'FieldValueDuplicate' });
      else names.add(c.name);
      if (typeof c.image !== 'string' || c.image.trim() === '') causes.push({ field: `${at}.image`, message: 'Required value', reason: 'FieldValueRequired' });
    });
  };
  checkContainers('containers', spec.containers, true);
  checkContainers('initContainers', spec.initContainers, false);
  if (!['Always', 'OnFailure', 'Never'].includes(spec.restartPolicy as string)) {
    causes.push({ field: 'spec.restartPolicy', message: `Unsupported value: ${JSON.stringify(spec.restartPolicy)}: supported values: "Always", "OnFailure", "Never"`, reason: 'FieldValueNotSupported' });
  }
  if (spec.nodeName !== undefined && typeof spec.nodeName !== 'string') causes.push({ field: 'spec.nodeName', message: 'Invalid value: must be a string' });
  return causes;
}

const POD_UPDATE_FORBIDDEN =
  'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

/** Pod spec is immutable but for images, activeDeadlineSeconds and added tolerations. */
function validatePodUpdate(pod: KubeObject, old: KubeObject): FieldCause[] {
  const spec = clone(pod.spec) as Record<string, unknown>;
  const oldSpec = clone(old.spec) as Record<string, unknown>;
  if (!isPlainObject(spec) || !isPlainObject(oldSpec)) return [];
  for (const field of ['containers', 'initContainers']) {
    const now = spec[field];
    const before = oldSpec[field];
    if (Array.isArray(now) && Array.isArray(before) && now.length === before.length) {
      now.forEach((c, i) => {
        if (isPlainObject(c) && isPlainObject(before[i])) (before[i] as Record<string, unknown>).image = c.image;
      });
    }
  }
  oldSpec.activeDeadlineSeconds = spec.activeDeadlineSeconds;
  const oldTolerations = Array.isArray(oldSpec.tolerations) ? oldSpec.tolerations : [];
  const newTolerations = Array.isArray(spec.tolerations) ? spec.tolerations : [];
  const kept = oldTolerations.every((t) => newTolerations.some((n) => deepEqual(n, t)));
  if (kept) oldSpec.tolerations = spec.tolerations;
  for (const s of [spec, oldSpec]) for (const k of Object.keys(s)) if (s[k] === undefined) delete s[k];
  return deepEqual(spec, oldSpec) ? [] : [{ field: 'spec', message: POD_UPDATE_FORBIDDEN, reason: 'FieldValueForbidden' }];
}

function prepareSecret(secret: KubeObject): FieldCause[] {
  const causes: FieldCause[] = [];
  secret.type ??= 'Opaque';
  const data = (secret.data ?? {}) as Record<string, unknown>;
  if (!isPlainObject(data)) return [{ field: 'data', message: 'Invalid value: must be a map' }];
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
      throw badRequest(`Secret in version "v1" cannot be handled as a Secret: illegal base64 data in data[${JSON.stringify(k)}]`);
    }
  }
  const stringData = secret.stringData;
  if (stringData !== undefined) {
    if (!isPlainObject(stringData)) return [{ field: 'stringData', message: 'Invalid value: must be a map of strings' }];
    for (const [k, v] of Object.entries(stringData)) {
      if (typeof v !== 'string') causes.push({ field: `stringData[${k}]`, message: 'Invalid value: must be a string' });
      else data[k] = Buffer.from(v, 'utf8').toString('base64');
    }
    delete secret.stringData;
  }
  if (Object.keys(data).length) secret.data = data;
  for (const k of Object.keys(data)) if (!CONFIG_KEY.test(k)) causes.push({ field: `data[${k}]`, message: `Invalid value: ${JSON.stringify(k)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'` });
  return causes;
}

function validateConfigMap(cm: KubeObject): FieldCause[] {
  const causes: FieldCause[] = [];
  for (const field of ['data', 'binaryData'] as const) {
    const d = cm[field];
    if (d === undefined || d === null) continue;
    if (!isPlainObject(d)) {
      causes.push({ field, message: 'Invalid value: must be a map of strings' });
      continue;
    }
    for (const [k, v] of Object.entries(d)) {
      if (!CONFIG_KEY.test(k)) causes.push({ field: `${field}[${k}]`, message: `Invalid value: ${JSON.stringify(k)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'` });
      if (typeof v !== 'string') causes.push({ field: `${field}[${k}]`, message: 'Invalid value: must be a string' });
    }
  }
  return causes;
}

/** Defaults and validation for a new object; throws 422 on invalid input. */
export function admitCreate(def: ResourceDef, obj: KubeObject): void {
  const causes = validateMetadata(obj);
  switch (def.plural) {
    case 'pods':
      if (isPlainObject(obj.spec)) defaultPod(obj);
      causes.push(...validatePod(obj));
      obj.status = { phase: 'Pending', qosClass: 'BestEffort' };
      break;
    case 'namespaces':
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
      break;
    case 'secrets':
      causes.push(...prepareSecret(obj));
      break;
    case 'configmaps':
      causes.push(...validateConfigMap(obj));
      break;
    default:
      causes.push(...admitWorkload(def, obj, undefined));
  }
  if (causes.length) throw invalid(def.kind, obj.metadata.name ?? '', causes, def.group);
}

/** Defaults and validation for a new version of an existing object; throws 422 on invalid input. */
export function admitUpdate(def: ResourceDef, obj: KubeObject, old: KubeObject): void {
  const causes = validateMetadata(obj);
  if (old.metadata.deletionTimestamp) {
    const before = new Set(old.metadata.finalizers ?? []);
    if ((obj.metadata.finalizers ?? []).some((f) => !before.has(f))) {
      causes.push({ field: 'metadata.finalizers', message: 'Forbidden: no new finalizers can be added if the object is being deleted', reason: 'FieldValueForbidden' });
    }
  }
  switch (def.plural) {
    case 'pods':
      if (isPlainObject(obj.spec)) defaultPod(obj);
      causes.push(...validatePod(obj));
      if (!causes.length) causes.push(...validatePodUpdate(obj, old));
      break;
    case 'secrets':
      causes.push(...prepareSecret(obj));
      break;
    case 'configmaps':
      causes.push(...validateConfigMap(obj));
      break;
    default:
      causes.push(...admitWorkload(def, obj, old));
  }
  if (causes.length) throw invalid(def.kind, obj.metadata.name ?? '', causes, def.group);
}
