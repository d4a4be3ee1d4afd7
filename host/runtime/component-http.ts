/**
 * The HTTP server contract's payloads (waSCC's `HandleRequest`: msgpack
 * `{method, path, queryString, header, body}` in, `{statusCode, status, header, body}` out) to
 * and from the world's typed `http-types.request` / `http-types.response`.
 */
import { STATUS_CODES } from 'node:http';
import { asBytes, decode } from '../codec.ts';
import { GuestError } from './runtime.ts';

export const OP_HANDLE_REQUEST = 'HandleRequest';

export interface WitRequest {
  method: string;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

export interface WitResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

function text(value: unknown, field: string): string {
  if (value == null) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  throw new GuestError(`bad HandleRequest payload: ${field} is not a string`);
}

/** Decodes a HandleRequest payload. Throws GuestError (the instance is untouched) when it is not one. */
export function toWitRequest(payload: Uint8Array): WitRequest {
  let value: unknown;
  try {
    value = decode(payload);
  } catch (e) {
    throw new GuestError(`bad HandleRequest payload: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new GuestError('bad HandleRequest payload: not a map');
  }
  const r = value as Record<string, unknown>;
  const headers: Array<[string, string]> = [];
  if (r.header != null) {
    if (typeof r.header !== 'object' || Array.isArray(r.header)) throw new GuestError('bad HandleRequest payload: header is not a map');
    for (const [name, v] of Object.entries(r.header as Record<string, unknown>)) {
      if (Array.isArray(v)) headers.push([name.toLowerCase(), v.map((x) => text(x, `header ${name}`)).join(', ')]);
      else headers.push([name.toLowerCase(), text(v, `header ${name}`)]);
    }
  }
  let body: Uint8Array;
  try {
    body = asBytes(r.body);
  } catch {
    throw new GuestError('bad HandleRequest payload: body is not bytes');
  }
  return { method: text(r.method, 'method'), path: text(r.path, 'path'), query: text(r.queryString, 'queryString'), headers, body };
}

/** The waSCC response map for a typed response; repeated header names become lists. See also `encodeWitResponse`. */
export function fromWitResponse(res: WitResponse): { statusCode: number; status: string; header: Record<string, string | string[]>; body: Uint8Array } {
  const header: Record<string, string | string[]> = Object.create(null);
  for (const [name, value] of res.headers) {
    const prev = header[name];
    header[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return { statusCode: res.status, status: STATUS_CODES[res.status] ?? '', header, body: res.body };
}

/** UTF-8 length of `s`; a plain loop beats a call into C++ for the short strings of a response. */
function utf8Length(s: string): number {
  if (s.length > 64) return Buffer.byteLength(s, 'utf8');
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a surrogate pair: 4 bytes for 2 units
      i++;
    } else n += 2; // 3 bytes (a lone surrogate is written as U+FFFD, also 3)
  }
  return n;
}

function strHeaderBytes(len: number): number {
  return len < 32 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
}

function lengthHeaderBytes(n: number): number {
  return n < 16 ? 1 : n < 0x10000 ? 3 : 5;
}

/** Writes msgpack into an exact-size buffer (plain methods: no closures made per response). */
class MsgpackWriter {
  readonly out: Buffer;
  at = 0;
  constructor(size: number) {
    this.out = Buffer.allocUnsafeSlow(size);
  }
  byte(b: number): void {
    this.out[this.at++] = b;
  }
  u16(n: number): void {
    this.out.writeUInt16BE(n, this.at);
    this.at += 2;
  }
  u32(n: number): void {
    this.out.writeUInt32BE(n, this.at);
    this.at += 4;
  }
  str(s: string, len: number): void {
    if (len < 32) this.byte(0xa0 | len);
    else if (len < 0x100) {
      this.byte(0xd9);
      this.byte(len);
    } else if (len < 0x10000) {
      this.byte(0xda);
      this.u16(len);
    } else {
      this.byte(0xdb);
      this.u32(len);
    }
    if (len === s.length && len <= 64) {
      // ASCII: one byte per unit.
      const out = this.out;
      let at = this.at;
      for (let i = 0; i < len; i++) out[at++] = s.charCodeAt(i);
      this.at = at;
    } else this.at += this.out.write(s, this.at, len, 'utf8');
  }
  /** A map or array header: fix form below 16 entries, else the 16- or 32-bit form. */
  length(n: number, fix: number, c16: number, c32: number): void {
    if (n < 16) this.byte(fix | n);
    else if (n < 0x10000) {
      this.byte(c16);
      this.u16(n);
    } else {
      this.byte(c32);
      this.u32(n);
    }
  }
  uint(n: number): void {
    if (n < 0x80) this.byte(n);
    else if (n < 0x100) {
      this.byte(0xcc);
      this.byte(n);
    } else {
      this.byte(0xcd);
      this.u16(n);
    }
  }
  bin(bytes: Uint8Array): void {
    const len = bytes.byteLength;
    if (len < 0x100) {
      this.byte(0xc4);
      this.byte(len);
    } else if (len < 0x10000) {
      this.byte(0xc5);
      this.u16(len);
    } else {
      this.byte(0xc6);
      this.u32(len);
    }
    this.out.set(bytes, this.at);
    this.at += len;
  }
}

/**
 * `encode(fromWitResponse(res))`, written directly: one exact-size buffer that owns its memory
 * (msgpackr hands out views into a shared buffer, and posting a view to the host copies the
 * whole buffer) and no intermediate objects.
 */
export function encodeWitResponse(res: WitResponse): Uint8Array {
  const code = res.status;
  const status = STATUS_CODES[code] ?? '';
  const statusLen = utf8Length(status);
  // Header names in first-seen order, each with its values (most responses repeat no name).
  const names: string[] = [];
  const values = new Map<string, string[]>();
  // fixmap(4), the four keys as fixstr ("statusCode", "status", "header", "body"), then the values.
  let size = 1 + 11 + 7 + 7 + 5;
  size += code < 0x80 ? 1 : code < 0x100 ? 2 : 3;
  size += strHeaderBytes(statusLen) + statusLen;
  const bodyLen = res.body.byteLength;
  size += (bodyLen < 0x100 ? 2 : bodyLen < 0x10000 ? 3 : 5) + bodyLen;
  for (const [name, value] of res.headers) {
    const list = values.get(name);
    const valueLen = utf8Length(value);
    size += strHeaderBytes(valueLen) + valueLen;
    if (list) {
      list.push(value);
      if (list.length === 2) size += 1; // now a fixarray
      else if (list.length === 16) size += 2; // now an array16
      else if (list.length === 0x10000) size += 2; // now an array32
    } else {
      values.set(name, [value]);
      names.push(name);
      const nameLen = utf8Length(name);
      size += strHeaderBytes(nameLen) + nameLen;
    }
  }
  size += lengthHeaderBytes(names.length);
  const w = new MsgpackWriter(size);
  w.byte(0x84);
  w.str('statusCode', 10);
  w.uint(code);
  w.str('status', 6);
  w.str(status, statusLen);
  w.str('header', 6);
  w.length(names.length, 0x80, 0xde, 0xdf);
  for (const name of names) {
    w.str(name, utf8Length(name));
    const list = values.get(name)!;
    if (list.length === 1) w.str(list[0]!, utf8Length(list[0]!));
    else {
      w.length(list.length, 0x90, 0xdc, 0xdd);
      for (const v of list) w.str(v, utf8Length(v));
    }
  }
  w.str('body', 4);
  w.bin(res.body);
  if (w.at !== size) throw new Error(`HandleRequest response encoder wrote ${w.at} of ${size} bytes`);
  return w.out;
}
