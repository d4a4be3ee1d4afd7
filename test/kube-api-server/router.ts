/**
 * Maps request paths onto API endpoints: discovery, OpenAPI, and resource paths in all their
 * forms (`/api/v1/namespaces/{ns}/{plural}/{name}/{sub}`, cluster-scoped, all-namespaces lists,
 * `/apis/{group}/{version}/…`, and the legacy `/…/watch/…` prefix).
 */
import { ApiError, badRequest } from './api-error.ts';
import { findResource, RESOURCES, type ResourceDef } from './resources.ts';

export type Route =
  | { kind: 'health' }
  | { kind: 'version' }
  | { kind: 'apiVersions' }
  | { kind: 'groupList' }
  | { kind: 'group'; group: string }
  | { kind: 'resourceList'; group: string; version: string }
  | { kind: 'openapiRoot' }
  | { kind: 'openapi'; gv: string }
  | { kind: 'resource'; def: ResourceDef; namespace?: string; name?: string; subresource?: string; watch: boolean };

export function pathNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource');
}

function isNamespacedPlural(group: string, version: string, plural: string | undefined): boolean {
  return plural !== undefined && RESOURCES.some((r) => r.namespaced && r.group === group && r.version === version && r.plural === plural);
}

/** The route for a URL path; throws 404 for paths the server does not serve. */
export function route(pathname: string): Route {
  let segs: string[];
  try {
    segs = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    throw badRequest(`malformed path: ${pathname}`);
  }
  const [top] = segs;
  if (segs.length === 1 && (top === 'healthz' || top === 'livez' || top === 'readyz')) return { kind: 'health' };
  if (segs.length === 1 && top === 'version') return { kind: 'version' };
  if (top === 'openapi' && segs[1] === 'v3') {
    if (segs.length === 2) return { kind: 'openapiRoot' };
    return { kind: 'openapi', gv: segs.slice(2).join('/') };
  }
  let group: string;
  let version: string;
  let rest: string[];
  if (top === 'api') {
    if (segs.length === 1) return { kind: 'apiVersions' };
    group = '';
    version = segs[1]!;
    rest = segs.slice(2);
  } else if (top === 'apis') {
    if (segs.length === 1) return { kind: 'groupList' };
    if (segs.length === 2) return { kind: 'group', group: segs[1]! };
    group = segs[1]!;
    version = segs[2]!;
    rest = segs.slice(3);
  } else {
    throw pathNotFound();
  }
  if (rest.length === 0) return { kind: 'resourceList', group, version };
  const watch = rest[0] === 'watch';
  if (watch) rest = rest.slice(1);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && isNamespacedPlural(group, version, rest[2])) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, subresource, ...extra] = rest;
  const def = plural === undefined ? undefined : findResource(group, version, plural);
  if (!def || extra.length) throw pathNotFound();
  // Namespaced objects are only addressed inside their namespace; cluster-scoped ones never are.
  if (def.namespaced && namespace === undefined && name !== undefined) throw pathNotFound();
  if (!def.namespaced && namespace !== undefined) throw pathNotFound();
  if (subresource !== undefined && (watch || !def.subresources.includes(subresource))) throw pathNotFound();
  return { kind: 'resource', def, namespace, name, subresource, watch };
}
