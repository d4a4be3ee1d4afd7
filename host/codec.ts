/**
 * The msgpack codec shared by waPC actors, providers and the lattice: maps with string keys,
 * byte strings as `bin`. Decoding is lenient the way rmp-serde is: the first msgpack value is
 * read and any bytes after it are ignored (some waSCC-era actors emit trailing bytes).
 */
import { Packr, Unpackr } from 'msgpackr';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/**
 * Encodes `value`. The result is a view into a buffer msgpackr shares between results (8 KiB
 * blocks, never overwritten): posting it to a worker copies that block once per message.
 */
export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export class DecodeError extends Error {
  readonly code = 'DECODE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DecodeError';
  }
}

/** Decode the first msgpack value of `bytes`, ignoring trailing bytes. Throws DecodeError. */
export function decode<T = unknown>(bytes: Uint8Array): T {
  if (bytes.byteLength === 0) throw new DecodeError('empty msgpack payload');
  // 0xC1 is reserved ("never used") in msgpack; msgpackr would hand back a marker object.
  if (bytes[0] === 0xc1) throw new DecodeError('invalid msgpack payload: reserved byte 0xC1');
  let first: unknown;
  let seen = false;
  try {
    unpackr.unpackMultiple(bytes as Buffer, (value: unknown) => {
      first = value;
      seen = true;
      return false;
    });
  } catch (err) {
    if (!seen) throw new DecodeError(`invalid msgpack payload: ${(err as Error).message}`, { cause: err });
  }
  if (!seen) throw new DecodeError('invalid msgpack payload');
  return first as T;
}

/** Bytes from a decoded `bin` (Buffer/Uint8Array), a string, or an array of numbers. */
export function asBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (Array.isArray(value)) return Uint8Array.from(value as number[]);
  if (value == null) return new Uint8Array(0);
  throw new DecodeError(`expected bytes, got ${typeof value}`);
}
