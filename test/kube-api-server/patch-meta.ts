/**
 * Strategic merge patch metadata: which lists merge (rather than replace) and by which key, as
 * the `patchStrategy`/`patchMergeKey` tags of the Kubernetes Go types declare them, for the kinds
 * this server serves. Paths are dotted, with `[]` for "each item of a list".
 */

export interface ListMergeMeta {
  /** Absent for lists of primitives that merge as sets (e.g. `metadata.finalizers`). */
  mergeKey?: string;
}

const COMMON: Record<string, ListMergeMeta> = {
  'metadata.finalizers': {},
  'metadata.ownerReferences': { mergeKey: 'uid' },
};

function containerLists(prefix: string): Record<string, ListMergeMeta> {
  return {
    [prefix]: { mergeKey: 'name' },
    [`${prefix}[].env`]: { mergeKey: 'name' },
    [`${prefix}[].ports`]: { mergeKey: 'containerPort' },
    [`${prefix}[].volumeMounts`]: { mergeKey: 'mountPath' },
    [`${prefix}[].volumeDevices`]: { mergeKey: 'devicePath' },
  };
}

/** The lists of a pod spec, at `prefix` (`spec` for a Pod, `spec.template.spec` for a template). */
function podSpecLists(prefix: string): Record<string, ListMergeMeta> {
  return {
    ...containerLists(`${prefix}.containers`),
    ...containerLists(`${prefix}.initContainers`),
    ...containerLists(`${prefix}.ephemeralContainers`),
    [`${prefix}.volumes`]: { mergeKey: 'name' },
    [`${prefix}.imagePullSecrets`]: { mergeKey: 'name' },
    [`${prefix}.hostAliases`]: { mergeKey: 'ip' },
    [`${prefix}.topologySpreadConstraints`]: { mergeKey: 'topologyKey' },
    [`${prefix}.resourceClaims`]: { mergeKey: 'name' },
    [`${prefix}.schedulingGates`]: { mergeKey: 'name' },
  };
}

const WORKLOAD = { ...podSpecLists('spec.template.spec'), 'status.conditions': { mergeKey: 'type' } };

const BY_KIND: Record<string, Record<string, ListMergeMeta>> = {
  Deployment: WORKLOAD,
  ReplicaSet: WORKLOAD,
  Service: { 'spec.ports': { mergeKey: 'port' } },
  Pod: {
    ...podSpecLists('spec'),
    'status.conditions': { mergeKey: 'type' },
    'status.podIPs': { mergeKey: 'ip' },
    'status.hostIPs': { mergeKey: 'ip' },
    'status.resourceClaimStatuses': { mergeKey: 'name' },
  },
  Node: {
    'spec.podCIDRs': {},
    'status.conditions': { mergeKey: 'type' },
    'status.addresses': { mergeKey: 'type' },
  },
  Namespace: { 'status.conditions': { mergeKey: 'type' } },
  ServiceAccount: { secrets: { mergeKey: 'name' }, imagePullSecrets: { mergeKey: 'name' } },
};

/** Merge metadata for the list at `path` in an object of `kind`, or undefined when the list is replaced whole. */
export function listMergeMeta(kind: string, path: string): ListMergeMeta | undefined {
  return COMMON[path] ?? BY_KIND[kind]?.[path];
}
