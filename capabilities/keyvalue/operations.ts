/**
 * The key-value contract's operations, once: how each request (wascc-codec 0.6: msgpack maps with
 * camelCase fields, or rmp-serde's positional arrays) becomes a store method call, and how the
 * method's result becomes the reply. The provider runs them against any store (async); actor
 * workers run them against the shared-memory table (sync), so both answer byte for byte alike.
 */
import type { WorkerRouteContext } from '../../host/index.ts';
import { OperationError, isOperationError } from '../errors.ts';
import type { KeyValueStore } from './store.ts';

type Request = Record<string, unknown>;

/** Store method names an operation may call. */
type Method = Exclude<keyof KeyValueStore, 'close'>;

interface Operation {
  /** The request's fields in wascc-codec's struct order (for positional payloads). */
  fields: readonly string[];
  method: Method;
  /** The method's arguments, validated. */
  args(req: Request): unknown[];
  /** The reply map, from the method's result and the arguments. */
  reply(result: unknown, args: unknown[]): unknown;
}

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

function field(op: string, req: Request, name: string): unknown {
  const v = req[name];
  if (v === undefined) throw new OperationError('BAD_REQUEST', `${op}: missing field "${name}"`);
  return v;
}

function str(op: string, req: Request, name: string): string {
  const v = field(op, req, name);
  if (typeof v !== 'string') throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be a string, got ${typeName(v)}`);
  return v;
}

function int(op: string, req: Request, name: string, min: number, max: number, fallback?: number): number {
  const v = req[name] === undefined && fallback !== undefined ? fallback : field(op, req, name);
  // msgpackr decodes 64-bit integers as bigint.
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be an integer in [${min}, ${max}], got ${typeName(v)}`);
  }
  return n;
}

function strList(op: string, req: Request, name: string): string[] {
  const v = field(op, req, name);
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new OperationError('BAD_REQUEST', `${op}: field "${name}" must be an array of strings`);
  }
  return v as string[];
}

function typeName(v: unknown): string {
  if (v === null) return 'nil';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object' && !isPlainObject(v)) return `${v.constructor?.name ?? 'object'} value`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return typeof v;
}

/** A decoded msgpack map (msgpackr decodes the reserved byte 0xc1 to an object of its own, for one). */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const keyOnly = (op: string) => (r: Request) => [str(op, r, 'key')];
const keyValue = (op: string) => (r: Request) => [str(op, r, 'key'), str(op, r, 'value')];
const newCount = (n: unknown) => ({ newCount: n });
const values = (v: unknown) => ({ values: v });

const operations = new Map<string, Operation>([
  ['Get', { fields: ['key'], method: 'get', args: keyOnly('Get'), reply: (res) => res }],
  [
    'Set',
    {
      fields: ['key', 'value', 'expires'],
      method: 'set',
      args: (r) => [str('Set', r, 'key'), str('Set', r, 'value'), int('Set', r, 'expires', 0, 0xffffffff, 0)],
      reply: (_, [, value]) => ({ value }),
    },
  ],
  ['Del', { fields: ['key'], method: 'del', args: keyOnly('Del'), reply: (_, [key]) => ({ key }) }],
  [
    'Add',
    {
      fields: ['key', 'value'],
      method: 'add',
      args: (r) => [str('Add', r, 'key'), int('Add', r, 'value', I32_MIN, I32_MAX)],
      reply: (n, [key]) => {
        if ((n as number) < I32_MIN || (n as number) > I32_MAX) {
          throw new OperationError('BAD_REQUEST', `Add ${JSON.stringify(key)}: result ${n} does not fit the contract's 32-bit integer`);
        }
        return { value: n };
      },
    },
  ],
  ['Clear', { fields: ['key'], method: 'clear', args: keyOnly('Clear'), reply: (_, [key]) => ({ key }) }],
  [
    'Range',
    {
      fields: ['key', 'start', 'stop'],
      method: 'range',
      args: (r) => [str('Range', r, 'key'), int('Range', r, 'start', I32_MIN, I32_MAX), int('Range', r, 'stop', I32_MIN, I32_MAX)],
      reply: values,
    },
  ],
  ['Push', { fields: ['key', 'value'], method: 'push', args: keyValue('Push'), reply: newCount }],
  ['ListItemDelete', { fields: ['key', 'value'], method: 'listItemDelete', args: keyValue('ListItemDelete'), reply: newCount }],
  ['SetAdd', { fields: ['key', 'value'], method: 'setAdd', args: keyValue('SetAdd'), reply: newCount }],
  ['SetRemove', { fields: ['key', 'value'], method: 'setRemove', args: keyValue('SetRemove'), reply: newCount }],
  ['SetUnion', { fields: ['keys'], method: 'setUnion', args: (r) => [strList('SetUnion', r, 'keys')], reply: values }],
  ['SetIntersection', { fields: ['keys'], method: 'setIntersection', args: (r) => [strList('SetIntersection', r, 'keys')], reply: values }],
  ['SetQuery', { fields: ['key'], method: 'setQuery', args: keyOnly('SetQuery'), reply: values }],
  ['KeyExists', { fields: ['key'], method: 'keyExists', args: keyOnly('KeyExists'), reply: (exists) => ({ value: '', exists }) }],
]);

/** The operation names the key-value contract has (wascc-codec's keyvalue operations). */
export const KEY_VALUE_OPERATIONS: readonly string[] = [...operations.keys()];

/** A parsed call: the store method to run, its arguments, and how to encode its result. */
export interface PreparedOperation {
  method: Method;
  args: unknown[];
  /** The reply bytes for the method's result (throws BAD_REQUEST when the result does not fit the contract). */
  encode(result: unknown): Uint8Array;
}

/** The msgpack codec (the host's; handed in, so that workers need not load the host part). */
export type Codec = WorkerRouteContext;

/** Parses a call; throws OperationError (UNKNOWN_OPERATION, BAD_REQUEST) for a bad one. */
export function prepareOperation(operation: string, msg: Uint8Array, codec: Codec): PreparedOperation {
  const op = operations.get(operation);
  if (op === undefined) {
    throw new OperationError('UNKNOWN_OPERATION', `unknown key-value operation "${operation}" (known: ${KEY_VALUE_OPERATIONS.join(', ')})`);
  }
  return new Prepared(op, op.args(request(operation, msg, op.fields, codec)), codec);
}

/**
 * A class rather than an object with an arrow function: the TypeScript loader names every arrow
 * it sees assigned (`Object.defineProperty(fn, 'name', …)`), which turned each call's closure into
 * a dictionary-mode object: ~11% of an actor worker's CPU in a key-value benchmark.
 */
class Prepared implements PreparedOperation {
  readonly method: Method;
  constructor(
    private readonly op: Operation,
    readonly args: unknown[],
    private readonly codec: Codec,
  ) {
    this.method = op.method;
  }

  encode(result: unknown): Uint8Array {
    return this.codec.encode(this.op.reply(result, this.args));
  }
}

/** A store error that is not an OperationError becomes BACKEND_ERROR, naming the operation. */
export function asOperationError(operation: string, err: unknown): OperationError {
  if (isOperationError(err)) return err;
  return new OperationError('BACKEND_ERROR', `${operation}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** The request map: the first msgpack value of `msg` (trailing bytes ignored). */
function request(operation: string, msg: Uint8Array, fields: readonly string[], codec: Codec): Request {
  let value: unknown;
  try {
    value = codec.decode(msg);
  } catch (err) {
    throw new OperationError('BAD_REQUEST', `${operation}: ${(err as Error).message}`, { cause: err });
  }
  if (Array.isArray(value)) {
    // rmp-serde's compact struct form: fields by position.
    const req: Request = {};
    fields.forEach((name, i) => {
      if (i < value.length) req[name] = value[i];
    });
    return req;
  }
  if (!isPlainObject(value)) {
    throw new OperationError('BAD_REQUEST', `${operation}: payload must be a msgpack map, got ${typeName(value)}`);
  }
  return value as Request;
}
