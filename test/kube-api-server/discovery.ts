/**
 * Discovery documents (`/version`, `/api`, `/api/v1`, `/apis`, group and group-version resource
 * lists) in their legacy (unaggregated) form: kubectl asks for aggregated discovery first and
 * falls back to these when the answer's content type is plain `application/json`.
 */
import { RESOURCES, servedGroups, type ResourceDef } from './resources.ts';
import type { JsonObject } from './types.ts';

export const SERVER_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0' };

export function versionInfo(): JsonObject {
  return {
    major: SERVER_VERSION.major,
    minor: SERVER_VERSION.minor,
    gitVersion: SERVER_VERSION.gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2024-12-11T00:00:00Z',
    goVersion: 'go1.23.0',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function apiVersions(serverAddress: string): JsonObject {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupEntry(group: string, versions: string[]): JsonObject {
  const vs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0]! };
}

export function apiGroupList(): JsonObject {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: servedGroups().map((g) => groupEntry(g.group, g.versions)) };
}

/** `/apis/{group}`, or undefined for a group not served. */
export function apiGroup(group: string): JsonObject | undefined {
  const g = servedGroups().find((x) => x.group === group);
  return g && { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g.group, g.versions) };
}

const MAIN_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function subresourceEntry(def: ResourceDef, sub: string): JsonObject {
  const base = { name: `${def.plural}/${sub}`, singularName: '', namespaced: def.namespaced };
  switch (sub) {
    case 'status':
      return { ...base, kind: def.kind, verbs: ['get', 'patch', 'update'] };
    case 'log':
      return { ...base, kind: def.kind, verbs: ['get'] };
    case 'binding':
      return { ...base, kind: 'Binding', verbs: ['create'] };
    case 'finalize':
      return { ...base, kind: def.kind, verbs: ['update'] };
    default:
      return { ...base, kind: def.kind, verbs: ['get'] };
  }
}

/** `/api/v1` or `/apis/{group}/{version}`, or undefined when nothing is served there. */
export function apiResourceList(group: string, version: string): JsonObject | undefined {
  const defs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (!defs.length) return undefined;
  const resources: JsonObject[] = [];
  for (const def of defs) {
    const entry: JsonObject = {
      name: def.plural,
      singularName: def.singular,
      namespaced: def.namespaced,
      kind: def.kind,
      verbs: def.plural === 'namespaces' ? MAIN_VERBS.filter((v) => v !== 'deletecollection') : MAIN_VERBS,
    };
    if (def.shortNames.length) entry.shortNames = def.shortNames;
    if (def.categories.length) entry.categories = def.categories;
    resources.push(entry);
    for (const sub of def.subresources) resources.push(subresourceEntry(def, sub));
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}
