/**
 * Field validation (`?fieldValidation=Strict|Warn|Ignore`, which kubectl sends as Strict by
 * default): fields a kind does not have are refused (Strict, 400 as the real server words it) or
 * reported in `Warning` headers (Warn). The schema is the typed model of `@kubernetes/client-node`
 * (every generated class lists its attributes and their types), so it covers every field of the
 * kinds it knows, nested objects and lists included.
 */
import * as models from '@kubernetes/client-node';
import { badRequest } from './api-error.ts';
import { apiVersionOf, type ResourceDef } from './resources.ts';
import { isPlainObject } from './types.ts';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

interface Attribute {
  name: string;
  baseName: string;
  type: string;
}

type ModelClass = { getAttributeTypeMap(): Attribute[] };

const registry = models as unknown as Record<string, ModelClass | undefined>;

function modelOf(type: string): Map<string, string> | undefined {
  const cls = registry[type];
  if (!cls || typeof cls.getAttributeTypeMap !== 'function') return undefined;
  return new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
}

const cache = new Map<string, Map<string, string> | undefined>();
function attributes(type: string): Map<string, string> | undefined {
  if (!cache.has(type)) cache.set(type, modelOf(type));
  return cache.get(type);
}

/** `V1Pod` for `v1`/`Pod`, `V1Deployment` for `apps/v1`/`Deployment`. */
function modelName(def: ResourceDef): string {
  return `${def.version.charAt(0).toUpperCase()}${def.version.slice(1)}${def.kind}`;
}

const PATCH_DIRECTIVE = /^\$(patch|retainKeys|deleteFromPrimitiveList\/.*|setElementOrder\/.*)$/;

/** The paths of fields `value` has that `type` does not. */
function unknownFields(value: unknown, type: string, path: string, out: string[], patch: boolean): void {
  if (value === null || value === undefined) return;
  const list = /^Array<(.+)>$/.exec(type);
  if (list) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, list[1]!, `${path}[${i}]`, out, patch));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, `${path}[${k}]`, out, patch);
    return;
  }
  const attrs = attributes(type);
  if (!attrs || !isPlainObject(value)) return; // scalars, IntOrString, Quantity, any
  for (const [key, v] of Object.entries(value)) {
    if (patch && PATCH_DIRECTIVE.test(key)) continue;
    const t = attrs.get(key);
    const at = path ? `${path}.${key}` : key;
    if (t === undefined) out.push(at);
    else unknownFields(v, t, at, out, patch);
  }
}

export function parseFieldValidation(value: string | undefined): FieldValidation {
  if (value === undefined || value === '') return 'Warn';
  if (value === 'Strict' || value === 'Warn' || value === 'Ignore') return value;
  throw badRequest(`fieldValidation: Unsupported value: ${JSON.stringify(value)}: supported values: "Ignore", "Strict", "Warn"`);
}

/**
 * Checks `body` (an object, or a merge/strategic patch of one) against the kind's schema. Strict:
 * throws the 400 the real server answers. Warn: returns the warnings to send. Kinds without a
 * model are not checked.
 */
export function validateFields(def: ResourceDef, body: unknown, mode: FieldValidation, options: { patch?: boolean } = {}): string[] {
  if (mode === 'Ignore' || !isPlainObject(body)) return [];
  const model = modelName(def);
  if (!attributes(model)) return [];
  const unknown: string[] = [];
  unknownFields(body, model, '', unknown, options.patch ?? false);
  if (unknown.length === 0) return [];
  const messages = unknown.map((p) => `unknown field "${p}"`);
  if (mode === 'Strict') {
    const what = options.patch ? 'error applying patch' : `${def.kind} in version "${apiVersionOf(def).split('/').pop()}" cannot be handled as a ${def.kind}`;
    throw badRequest(`${what}: strict decoding error: ${messages.join(', ')}`);
  }
  return messages;
}
