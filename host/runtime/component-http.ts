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

function strHeaderBytes(len: number): number {
  return len < 32 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
}

/**
 * `encode(fromWitResponse(res))`, written directly: one exact-size buffer that owns its memory
 * (msgpackr hands out views into a shared buffer, and posting a view to the host copies the
 * whole buffer) and no intermediate objects.
 */
export function encodeWitResponse(res: WitResponse): Uint8Array {
  const status = STATUS_CODES[res.status] ?? '';
  // Header names in first-seen order, each with its values.
  const names: string[] = [];
  const values = new Map<string, string[]>();
  for (const [name, value] of res.headers) {
    const list = values.get(name);
    if (list) list.push(value);
    else {
      values.set(name, [value]);
      names.push(name);
    }
  }
  const code = res.status;
  const bodyLen = res.body.byteLength;
  // fixmap(4) + the four keys as fixstr ("statusCode", "status", "header", "body"), then the values.
  let size = 1 + 11 + 7 + 7 + 5;
  size += code < 0x80 ? 1 : code < 0x100 ? 2 : 3;
  size += (bodyLen < 0x100 ? 2 : bodyLen < 0x10000 ? 3 : 5) + bodyLen;
  const statusLen = Buffer.byteLength(status);
  size += strHeaderBytes(statusLen) + statusLen;
  size += names.length < 16 ? 1 : names.length < 0x10000 ? 3 : 5;
  for (const name of names) {
    const n = Buffer.byteLength(name);
    size += strHeaderBytes(n) + n;
    const list = values.get(name)!;
    if (list.length > 1) size += list.length < 16 ? 1 : list.length < 0x10000 ? 3 : 5;
    for (const v of list) {
      const len = Buffer.byteLength(v);
      size += strHeaderBytes(len) + len;
    }
  }
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  const str = (s: string, len = Buffer.byteLength(s)) => {
    if (len < 32) out[at++] = 0xa0 | len;
    else if (len < 0x100) {
      out[at++] = 0xd9;
      out[at++] = len;
    } else if (len < 0x10000) {
      out[at++] = 0xda;
      out.writeUInt16BE(len, at);
      at += 2;
    } else {
      out[at++] = 0xdb;
      out.writeUInt32BE(len, at);
      at += 4;
    }
    at += out.write(s, at, len, 'utf8');
  };
  const container = (n: number, fix: number, c16: number, c32: number) => {
    if (n < 16) out[at++] = fix | n;
    else if (n < 0x10000) {
      out[at++] = c16;
      out.writeUInt16BE(n, at);
      at += 2;
    } else {
      out[at++] = c32;
      out.writeUInt32BE(n, at);
      at += 4;
    }
  };
  out[at++] = 0x84;
  str('statusCode', 10);
  if (code < 0x80) out[at++] = code;
  else if (code < 0x100) {
    out[at++] = 0xcc;
    out[at++] = code;
  } else {
    out[at++] = 0xcd;
    out.writeUInt16BE(code, at);
    at += 2;
  }
  str('status', 6);
  str(status, statusLen);
  str('header', 6);
  container(names.length, 0x80, 0xde, 0xdf);
  for (const name of names) {
    str(name);
    const list = values.get(name)!;
    if (list.length === 1) str(list[0]!);
    else {
      container(list.length, 0x90, 0xdc, 0xdd);
      for (const v of list) str(v);
    }
  }
  str('body', 4);
  if (bodyLen < 0x100) {
    out[at++] = 0xc4;
    out[at++] = bodyLen;
  } else if (bodyLen < 0x10000) {
    out[at++] = 0xc5;
    out.writeUInt16BE(bodyLen, at);
    at += 2;
  } else {
    out[at++] = 0xc6;
    out.writeUInt32BE(bodyLen, at);
    at += 4;
  }
  out.set(res.body, at);
  at += bodyLen;
  if (at !== size) throw new Error(`HandleRequest response encoder wrote ${at} of ${size} bytes`);
  return out;
}
