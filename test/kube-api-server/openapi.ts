/**
 * A minimal OpenAPI v3 document per group-version. kubectl reads it for two things: whether
 * PATCH of a kind accepts the `fieldValidation` query parameter (then it leaves validation to
 * the server instead of downloading the protobuf OpenAPI v2 schema), and whether strategic merge
 * patch is accepted. No component schema carries a group-version-kind, so kubectl computes
 * `apply` patches from its built-in types, as it does for servers without schemas.
 */
import { createHash } from 'node:crypto';
import { RESOURCES, type ResourceDef } from './resources.ts';
import type { JsonObject } from './types.ts';

const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'];
const OBJECT_REF = { $ref: '#/components/schemas/io.k8s.wasmlet.Object' };

function query(name: string, description: string): JsonObject {
  return { name, in: 'query', description, schema: { type: 'string', uniqueItems: true } };
}

const WRITE_PARAMS = [
  query('dryRun', 'When present, indicates that modifications should not be persisted.'),
  query('fieldManager', 'The name of the actor or entity making these changes.'),
  query('fieldValidation', 'How the server handles unknown or duplicate fields: Ignore, Warn or Strict.'),
];

function op(def: ResourceDef, action: string, id: string, extra: JsonObject = {}): JsonObject {
  return {
    operationId: id,
    responses: { '200': { description: 'OK', content: { 'application/json': { schema: OBJECT_REF } } } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group: def.group, version: def.version, kind: def.kind },
    ...extra,
  };
}

function body(types: string[]): JsonObject {
  return { required: true, content: Object.fromEntries(types.map((t) => [t, { schema: OBJECT_REF }])) };
}

function pathsFor(def: ResourceDef): Record<string, JsonObject> {
  const prefix = def.group ? `/apis/${def.group}/${def.version}` : `/api/${def.version}`;
  const collection = def.namespaced ? `${prefix}/namespaces/{namespace}/${def.plural}` : `${prefix}/${def.plural}`;
  const item = `${collection}/{name}`;
  const id = def.kind;
  const paths: Record<string, JsonObject> = {
    [collection]: {
      get: op(def, 'list', `list${id}`),
      post: op(def, 'post', `create${id}`, { parameters: WRITE_PARAMS, requestBody: body(['application/json']) }),
      delete: op(def, 'deletecollection', `deleteCollection${id}`),
    },
    [item]: {
      get: op(def, 'get', `read${id}`),
      put: op(def, 'put', `replace${id}`, { parameters: WRITE_PARAMS, requestBody: body(['application/json']) }),
      patch: op(def, 'patch', `patch${id}`, { parameters: [...WRITE_PARAMS, query('force', 'Force is going to force Apply requests.')], requestBody: body(PATCH_TYPES) }),
      delete: op(def, 'delete', `delete${id}`),
    },
  };
  if (def.subresources.includes('status')) {
    paths[`${item}/status`] = {
      get: op(def, 'get', `read${id}Status`),
      put: op(def, 'put', `replace${id}Status`, { parameters: WRITE_PARAMS, requestBody: body(['application/json']) }),
      patch: op(def, 'patch', `patch${id}Status`, { parameters: WRITE_PARAMS, requestBody: body(PATCH_TYPES) }),
    };
  }
  return paths;
}

function gvKey(def: ResourceDef): string {
  return def.group ? `apis/${def.group}/${def.version}` : `api/${def.version}`;
}

/** The document for `api/v1` or `apis/{group}/{version}`, or undefined. */
export function openApiDocument(gv: string): JsonObject | undefined {
  const defs = RESOURCES.filter((d) => gvKey(d) === gv);
  if (!defs.length) return undefined;
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.0' },
    paths: Object.assign({}, ...defs.map(pathsFor)),
    components: { schemas: { 'io.k8s.wasmlet.Object': { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } },
  };
}

/** `/openapi/v3`: where each group-version's document lives, with a content hash for caching. */
export function openApiRoot(): JsonObject {
  const paths: JsonObject = {};
  for (const gv of new Set(RESOURCES.map(gvKey))) {
    const hash = createHash('sha512').update(JSON.stringify(openApiDocument(gv))).digest('hex').toUpperCase().slice(0, 128);
    paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${hash}` };
  }
  return { paths };
}
