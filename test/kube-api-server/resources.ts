/**
 * The resources the test API server serves, with what discovery, routing, field selectors and
 * the table printer need to know about each. Plurals are unique across the served groups, so a
 * plural alone names a resource in the store.
 */
import type { KubeObject } from './types.ts';

export type FieldGetter = (obj: KubeObject) => string | undefined;

export interface ResourceDef {
  /** API group; `''` is the core (legacy) group served under `/api`. */
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Subresources beyond the object itself, e.g. `status`, `log`, `binding`. */
  subresources: string[];
  /** Field selector keys supported beyond `metadata.name` and `metadata.namespace`. */
  fields: Record<string, FieldGetter>;
  /** Has a `status` subresource: writes to the object keep the stored status. */
  statusSubresource: boolean;
  /** Tracks `metadata.generation` (bumped when anything outside metadata and status changes). */
  generation: boolean;
  /** DELETE answers with the object (as pods and namespaces do) instead of a `Status`. */
  returnDeletedObject: boolean;
}

export function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

/** The name the real server uses in messages: `pods`, `leases.coordination.k8s.io`. */
export function qualifiedResource(def: ResourceDef): string {
  return def.group ? `${def.plural}.${def.group}` : def.plural;
}

function path(obj: KubeObject, ...keys: string[]): unknown {
  let cur: unknown = obj;
  for (const k of keys) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** A field selector value: missing fields select as the empty string, like the real server. */
function field(...keys: string[]): FieldGetter {
  return (obj) => {
    const v = path(obj, ...keys);
    if (v === undefined || v === null) return '';
    return typeof v === 'string' ? v : String(v);
  };
}

const base = {
  version: 'v1',
  shortNames: [] as string[],
  categories: [] as string[],
  subresources: [] as string[],
  fields: {} as Record<string, FieldGetter>,
  statusSubresource: false,
  generation: false,
  returnDeletedObject: false,
};

export const RESOURCES: readonly ResourceDef[] = [
  {
    ...base,
    group: '',
    kind: 'Namespace',
    plural: 'namespaces',
    singular: 'namespace',
    namespaced: false,
    shortNames: ['ns'],
    subresources: ['status', 'finalize'],
    fields: { 'status.phase': field('status', 'phase') },
    statusSubresource: true,
    returnDeletedObject: true,
  },
  {
    ...base,
    group: '',
    kind: 'Pod',
    plural: 'pods',
    singular: 'pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    subresources: ['status', 'log', 'binding', 'exec', 'attach', 'portforward'],
    fields: {
      'spec.nodeName': field('spec', 'nodeName'),
      'spec.restartPolicy': field('spec', 'restartPolicy'),
      'spec.schedulerName': field('spec', 'schedulerName'),
      'spec.serviceAccountName': field('spec', 'serviceAccountName'),
      'spec.hostNetwork': (o) => String(path(o, 'spec', 'hostNetwork') === true),
      'status.phase': field('status', 'phase'),
      'status.podIP': field('status', 'podIP'),
      'status.nominatedNodeName': field('status', 'nominatedNodeName'),
    },
    statusSubresource: true,
    generation: true,
    returnDeletedObject: true,
  },
  {
    ...base,
    group: '',
    kind: 'Node',
    plural: 'nodes',
    singular: 'node',
    namespaced: false,
    shortNames: ['no'],
    subresources: ['status'],
    fields: { 'spec.unschedulable': (o) => String(path(o, 'spec', 'unschedulable') === true) },
    statusSubresource: true,
  },
  { ...base, group: '', kind: 'ConfigMap', plural: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'] },
  {
    ...base,
    group: '',
    kind: 'Secret',
    plural: 'secrets',
    singular: 'secret',
    namespaced: true,
    fields: { type: field('type') },
  },
  {
    ...base,
    group: '',
    kind: 'Event',
    plural: 'events',
    singular: 'event',
    namespaced: true,
    shortNames: ['ev'],
    fields: {
      'involvedObject.kind': field('involvedObject', 'kind'),
      'involvedObject.namespace': field('involvedObject', 'namespace'),
      'involvedObject.name': field('involvedObject', 'name'),
      'involvedObject.uid': field('involvedObject', 'uid'),
      'involvedObject.apiVersion': field('involvedObject', 'apiVersion'),
      'involvedObject.resourceVersion': field('involvedObject', 'resourceVersion'),
      'involvedObject.fieldPath': field('involvedObject', 'fieldPath'),
      reason: field('reason'),
      reportingComponent: field('reportingComponent'),
      source: field('source', 'component'),
      type: field('type'),
    },
  },
  { ...base, group: '', kind: 'ServiceAccount', plural: 'serviceaccounts', singular: 'serviceaccount', namespaced: true, shortNames: ['sa'] },
  { ...base, group: 'coordination.k8s.io', kind: 'Lease', plural: 'leases', singular: 'lease', namespaced: true, generation: false },
  {
    ...base,
    group: '',
    kind: 'Service',
    plural: 'services',
    singular: 'service',
    namespaced: true,
    shortNames: ['svc'],
    categories: ['all'],
    subresources: ['status'],
    fields: { 'spec.clusterIP': field('spec', 'clusterIP'), 'spec.type': field('spec', 'type') },
    statusSubresource: true,
  },
  { ...base, group: '', kind: 'Endpoints', plural: 'endpoints', singular: 'endpoints', namespaced: true, shortNames: ['ep'] },
  {
    ...base,
    group: 'discovery.k8s.io',
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    singular: 'endpointslice',
    namespaced: true,
    fields: { addressType: field('addressType') },
  },
  {
    ...base,
    group: 'apps',
    kind: 'Deployment',
    plural: 'deployments',
    singular: 'deployment',
    namespaced: true,
    shortNames: ['deploy'],
    categories: ['all'],
    subresources: ['status'],
    statusSubresource: true,
    generation: true,
  },
  {
    ...base,
    group: 'apps',
    kind: 'ReplicaSet',
    plural: 'replicasets',
    singular: 'replicaset',
    namespaced: true,
    shortNames: ['rs'],
    categories: ['all'],
    subresources: ['status'],
    statusSubresource: true,
    generation: true,
  },
];

const byPlural = new Map(RESOURCES.map((r) => [r.plural, r]));

export function resourceByPlural(plural: string): ResourceDef | undefined {
  return byPlural.get(plural);
}

/** The resource for `(group, version, plural)` as it appears in a URL, if served. */
export function findResource(group: string, version: string, plural: string): ResourceDef | undefined {
  const def = byPlural.get(plural);
  return def && def.group === group && def.version === version ? def : undefined;
}

/** Groups other than core, with their versions, for `/apis`. */
export function servedGroups(): Array<{ group: string; versions: string[] }> {
  const out = new Map<string, Set<string>>();
  for (const r of RESOURCES) {
    if (!r.group) continue;
    const s = out.get(r.group) ?? new Set<string>();
    s.add(r.version);
    out.set(r.group, s);
  }
  return [...out].map(([group, versions]) => ({ group, versions: [...versions] }));
}

/** The value of a field selector key for an object, or undefined when the resource does not support the key. */
export function fieldValue(def: ResourceDef, obj: KubeObject, key: string): string | undefined {
  if (key === 'metadata.name') return obj.metadata.name ?? '';
  if (key === 'metadata.namespace') return def.namespaced ? (obj.metadata.namespace ?? '') : '';
  const getter = def.fields[key];
  return getter ? getter(obj) : undefined;
}

export function supportsField(def: ResourceDef, key: string): boolean {
  return key === 'metadata.name' || key === 'metadata.namespace' || key in def.fields;
}
