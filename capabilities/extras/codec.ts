/**
 * waSCC's extras contract on the wire. Operations `RequestGuid`, `RequestSequence`,
 * `RequestRandom`; the payloads changed shape between wascc-codec releases, and both shapes are
 * served, each answered in its own shape:
 *
 * - wascc-codec 0.6 (rmp-serde 0.14): `GeneratorRequest {typ}` where `typ` is an enum written
 *   as a one-entry map `{variant: data}`: `{0: nil}` Guid, `{1: nil}` SequenceNumber,
 *   `{2: [min, max]}` RandomNumber. The reply is `GeneratorResult {value}` with `value` the
 *   same kind of enum: `{0: "<uuid>"}`, `{1: n}`, `{2: n}`. Later rmp-serde releases name the
 *   variant instead of numbering it (`"Guid"`, `{"RandomNumber": [min, max]}`); a request
 *   written that way is answered that way.
 * - wascc-codec 0.7 and later: `GeneratorRequest {guid, sequence, random, min, max}` (flags
 *   and bounds), answered with `GeneratorResult {guid, sequenceNumber, randomNumber}` (the
 *   fields not asked for are nil / 0, as waSCC's host answered).
 *
 * `RequestRandom` draws from [min, max) as waSCC's provider did (Rust `gen_range(min, max)`);
 * `min >= max` is refused.
 */
import { OperationError } from '../errors.ts';
import { decodeRequest, integerField, typeName, type RequestMap } from '../payload.ts';

export const OP_REQUEST_GUID = 'RequestGuid';
export const OP_REQUEST_SEQUENCE = 'RequestSequence';
export const OP_REQUEST_RANDOM = 'RequestRandom';
export const EXTRAS_OPERATIONS = [OP_REQUEST_GUID, OP_REQUEST_SEQUENCE, OP_REQUEST_RANDOM] as const;
export type ExtrasOperation = (typeof EXTRAS_OPERATIONS)[number];

/** The enum variants of wascc-codec 0.6, by index. */
const VARIANTS: Record<ExtrasOperation, { index: number; request: string; result: string }> = {
  RequestGuid: { index: 0, request: 'Guid', result: 'Guid' },
  RequestSequence: { index: 1, request: 'SequenceNumber', result: 'SequenceNumber' },
  RequestRandom: { index: 2, request: 'RandomNumber', result: 'RandomNumber' },
};

const U32_MAX = 0xffffffff;

/** A decoded request: which shape it came in, and the bounds for `RequestRandom`. */
export interface ExtrasRequest {
  shape: 'enum-index' | 'enum-name' | 'struct';
  min: number;
  max: number;
}

export function isExtrasOperation(op: string): op is ExtrasOperation {
  return Object.hasOwn(VARIANTS, op);
}

function bounds(op: string, req: RequestMap): { min: number; max: number } {
  return { min: integerField(op, req, 'min', 0, U32_MAX, 0), max: integerField(op, req, 'max', 0, U32_MAX, 0) };
}

/** Reads an enum value written by rmp-serde: `{variant: data}`, or a bare variant for unit variants. */
function enumValue(op: string, typ: unknown): { variant: string | number; data: unknown; byName: boolean } {
  if (typeof typ === 'string') return { variant: typ, data: null, byName: true };
  if (typeof typ === 'number') return { variant: typ, data: null, byName: false };
  if (typ === null || typeof typ !== 'object' || Array.isArray(typ) || typ instanceof Uint8Array) {
    throw new OperationError('BAD_REQUEST', `${op}: field "typ" must be a generator type, got ${typeName(typ)}`);
  }
  const entries = Object.entries(typ as Record<string, unknown>);
  if (entries.length !== 1) throw new OperationError('BAD_REQUEST', `${op}: field "typ" must name one generator type`);
  const [key, data] = entries[0]!;
  return /^\d+$/.test(key) ? { variant: Number(key), data, byName: false } : { variant: key, data, byName: true };
}

export function parseExtrasRequest(op: ExtrasOperation, msg: Uint8Array): ExtrasRequest {
  const req = decodeRequest(op, msg, ['guid', 'sequence', 'random', 'min', 'max']);
  if (!Object.hasOwn(req, 'typ')) return { shape: 'struct', ...bounds(op, req) };
  const { variant, data, byName } = enumValue(op, req.typ);
  const expected = VARIANTS[op];
  if (variant !== (byName ? expected.request : expected.index)) {
    throw new OperationError('BAD_REQUEST', `${op}: the request asks for generator type ${String(variant)}, not ${expected.request}`);
  }
  const shape = byName ? 'enum-name' : 'enum-index';
  if (op !== OP_REQUEST_RANDOM) return { shape, min: 0, max: 0 };
  if (!Array.isArray(data) || data.length !== 2) throw new OperationError('BAD_REQUEST', `${op}: RandomNumber must carry [min, max]`);
  return { shape, ...bounds(op, { min: data[0], max: data[1] }) };
}

/** Checks the bounds of a random request. */
export function checkRandomBounds(req: ExtrasRequest): void {
  if (req.min >= req.max) throw new OperationError('BAD_REQUEST', `${OP_REQUEST_RANDOM}: min (${req.min}) must be less than max (${req.max}); the number is drawn from [min, max)`);
}

/** The reply, in the shape the request came in. */
export function extrasReply(op: ExtrasOperation, req: ExtrasRequest, value: string | number): unknown {
  if (req.shape === 'struct') {
    return {
      guid: op === OP_REQUEST_GUID ? value : null,
      sequenceNumber: op === OP_REQUEST_SEQUENCE ? value : 0,
      randomNumber: op === OP_REQUEST_RANDOM ? value : 0,
    };
  }
  const v = VARIANTS[op];
  // A Map keeps the integer key an integer on the wire.
  return { value: req.shape === 'enum-index' ? new Map([[v.index, value]]) : { [v.result]: value } };
}

/** What a reply carries, whichever shape (for tests and typed callers). */
export function readExtrasReply(op: ExtrasOperation, reply: unknown): string | number {
  const r = reply as Record<string, unknown> | null;
  if (r === null || typeof r !== 'object') throw new Error(`${op}: the reply is not a map`);
  const pick = (x: unknown): string | number => {
    const n = typeof x === 'bigint' ? Number(x) : x;
    if (typeof n === 'string' || typeof n === 'number') return n;
    throw new Error(`${op}: the reply carries ${typeName(x)}`);
  };
  if (Object.hasOwn(r, 'value')) {
    const inner = r.value as Record<string, unknown>;
    const entries = inner instanceof Map ? [...inner.entries()] : Object.entries(inner ?? {});
    if (entries.length !== 1) throw new Error(`${op}: the reply's value is not one generator result`);
    return pick(entries[0]![1]);
  }
  if (op === OP_REQUEST_GUID) return pick(r.guid);
  return pick(op === OP_REQUEST_SEQUENCE ? r.sequenceNumber : r.randomNumber);
}
