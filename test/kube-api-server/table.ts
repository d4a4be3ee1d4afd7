/**
 * Server-side printing (`meta.k8s.io` Table), which kubectl asks for when it prints objects for
 * people (`kubectl get pods`). Columns follow the real server's printers for the served kinds.
 */
import type { ResourceDef } from './resources.ts';
import { isPlainObject, type JsonObject, type KubeObject } from './types.ts';

interface Column {
  name: string;
  type: 'string' | 'integer' | 'date';
  format?: string;
  priority?: number;
  cell: (o: KubeObject) => string | number;
}

/** kubectl's HumanDuration. */
export function humanAge(created: string | undefined, now = Date.now()): string {
  if (!created) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (s < 120) return `${s}s`;
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (h < 3) return `${m}m`;
  if (h < 8) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  if (h < 48) return `${h}h`;
  if (d < 8) return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

const get = (o: unknown, ...keys: string[]): unknown => {
  let cur = o;
  for (const k of keys) cur = isPlainObject(cur) ? cur[k] : undefined;
  return cur;
};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown, fallback = '<none>'): string => (typeof v === 'string' && v ? v : fallback);

function podStatus(o: KubeObject): string {
  if (o.metadata.deletionTimestamp) return 'Terminating';
  let reason = str(get(o, 'status', 'reason'), str(get(o, 'status', 'phase'), 'Pending'));
  for (const cs of list(get(o, 'status', 'containerStatuses'))) {
    const waiting = get(cs, 'state', 'waiting', 'reason');
    const terminated = get(cs, 'state', 'terminated', 'reason');
    if (typeof waiting === 'string' && waiting) reason = waiting;
    else if (typeof terminated === 'string' && terminated) reason = terminated;
  }
  return reason;
}

function nodeAddress(o: KubeObject, type: string): string {
  return str(get(list(get(o, 'status', 'addresses')).find((a) => get(a, 'type') === type), 'address'));
}

const NAME: Column = { name: 'Name', type: 'string', format: 'name', cell: (o) => o.metadata.name ?? '' };
const AGE: Column = { name: 'Age', type: 'string', cell: (o) => humanAge(o.metadata.creationTimestamp) };

const COLUMNS: Record<string, Column[]> = {
  pods: [
    NAME,
    {
      name: 'Ready',
      type: 'string',
      cell: (o) => `${list(get(o, 'status', 'containerStatuses')).filter((c) => get(c, 'ready') === true).length}/${list(get(o, 'spec', 'containers')).length}`,
    },
    { name: 'Status', type: 'string', cell: podStatus },
    { name: 'Restarts', type: 'integer', cell: (o) => list(get(o, 'status', 'containerStatuses')).reduce<number>((n, c) => n + (Number(get(c, 'restartCount')) || 0), 0) },
    AGE,
    { name: 'IP', type: 'string', priority: 1, cell: (o) => str(get(o, 'status', 'podIP')) },
    { name: 'Node', type: 'string', priority: 1, cell: (o) => str(get(o, 'spec', 'nodeName')) },
  ],
  nodes: [
    NAME,
    {
      name: 'Status',
      type: 'string',
      cell: (o) => {
        const ready = list(get(o, 'status', 'conditions')).find((c) => get(c, 'type') === 'Ready');
        const base = get(ready, 'status') === 'True' ? 'Ready' : get(ready, 'status') === undefined ? 'Unknown' : 'NotReady';
        return get(o, 'spec', 'unschedulable') === true ? `${base},SchedulingDisabled` : base;
      },
    },
    { name: 'Roles', type: 'string', cell: () => '<none>' },
    AGE,
    { name: 'Version', type: 'string', cell: (o) => str(get(o, 'status', 'nodeInfo', 'kubeletVersion'), '') },
    { name: 'Internal-IP', type: 'string', priority: 1, cell: (o) => nodeAddress(o, 'InternalIP') },
    { name: 'External-IP', type: 'string', priority: 1, cell: (o) => nodeAddress(o, 'ExternalIP') },
    { name: 'OS-Image', type: 'string', priority: 1, cell: (o) => str(get(o, 'status', 'nodeInfo', 'osImage'), '<unknown>') },
    { name: 'Kernel-Version', type: 'string', priority: 1, cell: (o) => str(get(o, 'status', 'nodeInfo', 'kernelVersion'), '<unknown>') },
    { name: 'Container-Runtime', type: 'string', priority: 1, cell: (o) => str(get(o, 'status', 'nodeInfo', 'containerRuntimeVersion'), '<unknown>') },
  ],
  namespaces: [NAME, { name: 'Status', type: 'string', cell: (o) => str(get(o, 'status', 'phase'), '') }, AGE],
  configmaps: [NAME, { name: 'Data', type: 'integer', cell: (o) => Object.keys(get(o, 'data') ?? {}).length + Object.keys(get(o, 'binaryData') ?? {}).length }, AGE],
  secrets: [NAME, { name: 'Type', type: 'string', cell: (o) => str(get(o, 'type'), '') }, { name: 'Data', type: 'integer', cell: (o) => Object.keys(get(o, 'data') ?? {}).length }, AGE],
  events: [
    { name: 'Last Seen', type: 'string', cell: (o) => humanAge(str(get(o, 'lastTimestamp'), '') || str(get(o, 'eventTime'), '') || o.metadata.creationTimestamp) },
    { name: 'Type', type: 'string', cell: (o) => str(get(o, 'type'), '') },
    { name: 'Reason', type: 'string', cell: (o) => str(get(o, 'reason'), '') },
    { name: 'Object', type: 'string', cell: (o) => `${String(get(o, 'involvedObject', 'kind') ?? '').toLowerCase()}/${String(get(o, 'involvedObject', 'name') ?? '')}` },
    { name: 'Message', type: 'string', cell: (o) => str(get(o, 'message'), '') },
  ],
  leases: [NAME, { name: 'Holder', type: 'string', cell: (o) => str(get(o, 'spec', 'holderIdentity'), '') }, AGE],
  serviceaccounts: [NAME, { name: 'Secrets', type: 'integer', cell: (o) => list(get(o, 'secrets')).length }, AGE],
  services: [
    NAME,
    { name: 'Type', type: 'string', cell: (o) => str(get(o, 'spec', 'type'), 'ClusterIP') },
    { name: 'Cluster-IP', type: 'string', cell: (o) => str(get(o, 'spec', 'clusterIP')) },
    { name: 'External-IP', type: 'string', cell: () => '<none>' },
    { name: 'Port(s)', type: 'string', cell: (o) => list(get(o, 'spec', 'ports')).map((p) => `${String(get(p, 'port'))}/${str(get(p, 'protocol'), 'TCP')}`).join(',') || '<none>' },
    AGE,
    { name: 'Selector', type: 'string', priority: 1, cell: (o) => Object.entries((get(o, 'spec', 'selector') as Record<string, string> | undefined) ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>' },
  ],
  endpoints: [
    NAME,
    {
      name: 'Endpoints',
      type: 'string',
      cell: (o) => list(get(o, 'subsets')).flatMap((ss) => list(get(ss, 'addresses')).flatMap((a) => list(get(ss, 'ports')).map((p) => `${String(get(a, 'ip'))}:${String(get(p, 'port'))}`))).join(',') || '<none>',
    },
    AGE,
  ],
  endpointslices: [
    NAME,
    { name: 'AddressType', type: 'string', cell: (o) => str(get(o, 'addressType'), '') },
    { name: 'Ports', type: 'string', cell: (o) => list(get(o, 'ports')).map((p) => String(get(p, 'port'))).join(',') || '<unset>' },
    { name: 'Endpoints', type: 'string', cell: (o) => list(get(o, 'endpoints')).flatMap((e) => list(get(e, 'addresses'))).join(',') || '<unset>' },
    AGE,
  ],
  deployments: [
    NAME,
    { name: 'Ready', type: 'string', cell: (o) => `${Number(get(o, 'status', 'readyReplicas') ?? 0)}/${Number(get(o, 'spec', 'replicas') ?? 1)}` },
    { name: 'Up-to-date', type: 'integer', cell: (o) => Number(get(o, 'status', 'updatedReplicas') ?? 0) },
    { name: 'Available', type: 'integer', cell: (o) => Number(get(o, 'status', 'availableReplicas') ?? 0) },
    AGE,
  ],
  replicasets: [
    NAME,
    { name: 'Desired', type: 'integer', cell: (o) => Number(get(o, 'spec', 'replicas') ?? 1) },
    { name: 'Current', type: 'integer', cell: (o) => Number(get(o, 'status', 'replicas') ?? 0) },
    { name: 'Ready', type: 'integer', cell: (o) => Number(get(o, 'status', 'readyReplicas') ?? 0) },
    AGE,
  ],
};

/** A Table of `objects`; `version` is the `meta.k8s.io` version the client asked for. */
export function toTable(def: ResourceDef, objects: readonly KubeObject[], resourceVersion: string, version = 'v1'): JsonObject {
  const columns = COLUMNS[def.plural] ?? [NAME, AGE];
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${version}`,
    metadata: { resourceVersion },
    columnDefinitions: columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: '', priority: c.priority ?? 0 })),
    rows: objects.map((o) => ({
      cells: columns.map((c) => c.cell(o)),
      object: { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${version}`, metadata: JSON.parse(JSON.stringify(o.metadata)) as JsonObject },
    })),
  };
}
