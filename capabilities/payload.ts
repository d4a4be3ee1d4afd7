/**
 * Reading the msgpack maps actors send (wascc-codec: named, camelCase fields), for the providers
 * that take a few fields each. Every failure is an OperationError `BAD_REQUEST` naming the
 * operation and the field, which is what the actor sees.
 */
import { asBytes, decode } from '../host/index.ts';
import { OperationError } from './errors.ts';

export type RequestMap = Record<string, unknown>;

/** The payload as a map; positional payloads (rmp-serde's struct-as-array) take `fields` in order. */
export function decodeRequest(op: string, msg: Uint8Array, fields: readonly string[] = []): RequestMap {
  let value: unknown;
  try {
    value = decode(msg);
  } catch (err) {
    throw new OperationError('BAD_REQUEST', `${op}: payload is not msgpack: ${(err as Error).message}`, { cause: err });
  }
  if (Array.isArray(value) && fields.length > 0) {
    const out: RequestMap = {};
    fields.forEach((f, i) => {
      if (i < value.length) out[f] = value[i];
    });
    return out;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new OperationError('BAD_REQUEST', `${op}: payload must be a map`);
  }
  return value as RequestMap;
}

export function typeName(v: unknown): string {
  if (v === null) return 'nil';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** A string field; `bin` is read as UTF-8. Missing: `fallback` when given, else an error. */
export function stringField(op: string, req: RequestMap, name: string, fallback?: string): string {
  const v = req[name];
  if (v == null && fallback !== undefined) return fallback;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be a string, got ${v === undefined ? 'nothing' : typeName(v)}`);
}

/** An integer field in [min, max] (64-bit integers arrive as bigint). */
export function integerField(op: string, req: RequestMap, name: string, min: number, max: number, fallback?: number): number {
  const v = req[name] == null && fallback !== undefined ? fallback : req[name];
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be an integer in [${min}, ${max}], got ${v === undefined ? 'nothing' : typeName(v) === 'number' || typeof v === 'bigint' ? String(v) : typeName(v)}`);
  }
  return n;
}

/** A bytes field (`bin`, a string as UTF-8, or an array of numbers); missing or nil = empty. */
export function bytesField(op: string, req: RequestMap, name: string): Uint8Array {
  try {
    return asBytes(req[name]);
  } catch {
    throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be bytes, got ${typeName(req[name])}`);
  }
}

/** A string-to-string map field (waSCC's `header`); a list value is joined with ", "; missing = empty. */
export function stringMapField(op: string, req: RequestMap, name: string): Array<[string, string]> {
  const v = req[name];
  if (v == null) return [];
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
    throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be a map of strings`);
  }
  const out: Array<[string, string]> = [];
  for (const [k, raw] of Object.entries(v as Record<string, unknown>)) {
    const list = Array.isArray(raw) ? raw : [raw];
    const parts = list.map((x) => {
      if (typeof x === 'string') return x;
      if (typeof x === 'number' || typeof x === 'boolean') return String(x);
      throw new OperationError('BAD_REQUEST', `${op}: field "${name}" entry "${k}" must be a string`);
    });
    out.push([k, parts.join(', ')]);
  }
  return out;
}

/** Throws UNKNOWN_OPERATION naming the contract and what it has. */
export function unknownOperation(contract: string, op: string, known: readonly string[]): never {
  throw new OperationError('UNKNOWN_OPERATION', `${contract} has no operation "${op}" (it has ${known.join(', ')})`);
}
