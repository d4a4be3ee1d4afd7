/**
 * The four patch formats of the API server: JSON merge patch (RFC 7386), strategic merge patch
 * (with `$patch`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…` and `$retainKeys`
 * directives), JSON patch (RFC 6902, via fast-json-patch) and a simplified server-side apply.
 * A malformed patch is a 400; a well-formed one that cannot be applied is a 422, as upstream.
 */
import jsonpatch from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { ApiError, badRequest, unsupportedMediaType } from './api-error.ts';
import { listMergeMeta, type ListMergeMeta } from './patch-meta.ts';
import { clone, deepEqual, isPlainObject } from './types.ts';

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

const CONTENT_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
  'application/apply-patch+cbor': 'apply',
};

export function patchTypeOf(contentType: string | undefined): PatchType {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const t = CONTENT_TYPES[mediaType];
  if (!t || mediaType === 'application/apply-patch+cbor') throw unsupportedMediaType(contentType ?? '');
  return t;
}

type Obj = Record<string, unknown>;

/** RFC 7386: objects merge recursively, `null` deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return clone(patch);
  const result: Obj = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = mergePatch(result[k], v);
  }
  return result;
}

const DELETE = Symbol('delete');
const SET_ORDER = '$setElementOrder/';
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/';

function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Applies a strategic merge patch to `original` (an object of `kind`). */
export function strategicMergePatch(original: unknown, patch: unknown, kind: string): Obj {
  if (!isPlainObject(patch)) throw badRequest('strategic merge patch must be a JSON object');
  const result = mergeMap(isPlainObject(original) ? original : {}, patch, '', kind);
  if (result === DELETE) throw new ApiError(422, 'Invalid', 'a strategic merge patch cannot delete the whole object');
  return result;
}

function mergeMap(orig: Obj, patch: Obj, path: string, kind: string): Obj | typeof DELETE {
  const directive = patch.$patch;
  if (directive !== undefined) {
    if (directive === 'delete') return DELETE;
    if (directive === 'replace') {
      const { $patch: _, ...rest } = patch;
      return mergeMap({}, rest, path, kind) as Obj;
    }
    if (directive !== 'merge') throw badRequest(`unknown patch type: ${JSON.stringify(directive)} in strategic merge patch at ${path || '<root>'}`);
  }
  const result: Obj = { ...orig };
  for (const [key, value] of Object.entries(patch)) {
    if (!key.startsWith(DELETE_PRIMITIVE)) continue;
    const field = key.slice(DELETE_PRIMITIVE.length);
    if (!Array.isArray(value)) throw badRequest(`${key} must be a list`);
    const current = result[field];
    if (Array.isArray(current)) result[field] = current.filter((x) => !value.some((v) => deepEqual(v, x)));
  }
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys' || key.startsWith(SET_ORDER) || key.startsWith(DELETE_PRIMITIVE)) continue;
    const cp = childPath(path, key);
    if (value === null) {
      delete result[key];
    } else if (isPlainObject(value)) {
      const current = result[key];
      const merged = mergeMap(isPlainObject(current) ? current : {}, value, cp, kind);
      if (merged === DELETE) delete result[key];
      else result[key] = merged;
    } else if (Array.isArray(value)) {
      const meta = listMergeMeta(kind, cp);
      const current = result[key];
      result[key] = meta ? mergeList(Array.isArray(current) ? current : [], value, cp, kind, meta) : clone(value);
    } else {
      result[key] = value;
    }
  }
  for (const [key, order] of Object.entries(patch)) {
    if (!key.startsWith(SET_ORDER)) continue;
    const field = key.slice(SET_ORDER.length);
    if (!Array.isArray(order)) throw badRequest(`${key} must be a list`);
    const list = result[field];
    if (Array.isArray(list)) result[field] = reorder(list, order, listMergeMeta(kind, childPath(path, field)));
  }
  const retain = patch.$retainKeys;
  if (retain !== undefined) {
    if (!Array.isArray(retain) || !retain.every((k) => typeof k === 'string')) throw badRequest('$retainKeys must be a list of strings');
    for (const k of Object.keys(result)) if (!retain.includes(k)) delete result[k];
  }
  return result;
}

function mergeList(orig: unknown[], patch: unknown[], path: string, kind: string, meta: ListMergeMeta): unknown[] {
  const key = meta.mergeKey;
  if (key === undefined) {
    const result = [...orig];
    for (const v of patch) {
      if (isPlainObject(v)) throw badRequest(`${path}: expected a list of primitives in strategic merge patch`);
      if (!result.some((x) => deepEqual(x, v))) result.push(v);
    }
    return result;
  }
  if (patch.some((it) => isPlainObject(it) && it.$patch === 'replace' && Object.keys(it).length === 1)) {
    return patch
      .filter((it) => !(isPlainObject(it) && it.$patch === 'replace' && Object.keys(it).length === 1))
      .map((it) => mergeMap({}, asMap(it, path), `${path}[]`, kind));
  }
  const result: unknown[] = orig.map((x) => x);
  for (const raw of patch) {
    const item = asMap(raw, path);
    if (!(key in item)) throw badRequest(`${path}: map ${JSON.stringify(item)} does not contain declared merge key: ${key}`);
    const idx = result.findIndex((o) => isPlainObject(o) && deepEqual(o[key], item[key]));
    if (item.$patch === 'delete') {
      if (idx >= 0) result.splice(idx, 1);
      continue;
    }
    const merged = mergeMap(idx >= 0 ? (result[idx] as Obj) : {}, item, `${path}[]`, kind);
    if (merged === DELETE) {
      if (idx >= 0) result.splice(idx, 1);
    } else if (idx >= 0) result[idx] = merged;
    else result.push(merged);
  }
  return result;
}

function asMap(v: unknown, path: string): Obj {
  if (!isPlainObject(v)) throw badRequest(`${path}: expected a list of objects in strategic merge patch`);
  return v;
}

/** `$setElementOrder`: items named in `order` come first in that order; the rest keep their relative order after them. */
function reorder(list: unknown[], order: unknown[], meta: ListMergeMeta | undefined): unknown[] {
  const key = meta?.mergeKey;
  const identity = (x: unknown) => (key !== undefined && isPlainObject(x) ? x[key] : x);
  const wanted = order.map(identity);
  const rank = (x: unknown) => wanted.findIndex((w) => deepEqual(w, identity(x)));
  const listed = list.filter((x) => rank(x) >= 0).sort((a, b) => rank(a) - rank(b));
  return [...listed, ...list.filter((x) => rank(x) < 0)];
}

/** RFC 6902 JSON patch. */
export function jsonPatch(document: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw badRequest('json patch must be a JSON array of operations');
  const firstLine = (err: unknown) => (err instanceof Error ? err.message.split('\n')[0]! : String(err));
  let problem: jsonpatch.JsonPatchError | undefined;
  try {
    problem = jsonpatch.validate(patch as jsonpatch.Operation[], clone(document));
  } catch (err) {
    // fast-json-patch throws a plain TypeError for __proto__/constructor paths.
    throw badRequest(`invalid json patch: ${firstLine(err)}`);
  }
  if (problem && !APPLY_ERRORS.has(problem.name)) throw badRequest(`invalid json patch: ${firstLine(problem)}`);
  try {
    return jsonpatch.applyPatch(clone(document), patch as jsonpatch.Operation[], true, true, true).newDocument;
  } catch (err) {
    if (err instanceof jsonpatch.JsonPatchError && APPLY_ERRORS.has(err.name)) {
      throw new ApiError(422, 'Invalid', `json patch could not be applied: ${firstLine(err)}`, undefined, { cause: err });
    }
    throw badRequest(`invalid json patch: ${firstLine(err)}`);
  }
}

/** Errors about the document rather than the patch's own form (upstream answers these with 422). */
const APPLY_ERRORS = new Set([
  'OPERATION_PATH_CANNOT_ADD',
  'OPERATION_PATH_UNRESOLVABLE',
  'OPERATION_FROM_UNRESOLVABLE',
  'OPERATION_PATH_ILLEGAL_ARRAY_INDEX',
  'OPERATION_VALUE_OUT_OF_BOUNDS',
  'TEST_OPERATION_FAILED',
]);

/** Parses a server-side apply body (YAML or JSON) into the applied configuration. */
export function parseApplyConfiguration(body: string): Obj {
  let doc: unknown;
  try {
    doc = parseYaml(body);
  } catch (err) {
    throw badRequest(`error decoding YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isPlainObject(doc)) throw badRequest('apply patch must be a YAML or JSON object');
  return doc;
}

/**
 * Simplified server-side apply: the applied configuration is merged into the live object with
 * strategic merge rules. Field ownership (and the removal of fields a manager stopped applying)
 * is not tracked.
 */
export function applyConfiguration(live: unknown, applied: Obj, kind: string): Obj {
  return strategicMergePatch(live, applied, kind);
}
