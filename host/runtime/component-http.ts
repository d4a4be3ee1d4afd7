/**
 * The HTTP server contract's payloads (waSCC's `HandleRequest`: msgpack
 * `{method, path, queryString, header, body}` in, `{statusCode, status, header, body}` out) to
 * and from the world's typed `http-types.request` / `http-types.response`.
 */
import { STATUS_CODES } from 'node:http';
import { asBytes, decode } from '../codec.ts';
import { Writer as MsgpackWriter, sizeBin, sizeHeader, sizeNum, sizeStr } from '../msgpack-writer.ts';
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

/** A string field of an operation's payload (`bin` read as UTF-8, nil as ""); GuestError otherwise. */
export function payloadText(value: unknown, op: string, field: string): string {
  if (value == null) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  throw new GuestError(`bad ${op} payload: ${field} is not a string`);
}

function text(value: unknown, field: string): string {
  return payloadText(value, OP_HANDLE_REQUEST, field);
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

const RESPONSE_KEY_BYTES = ['statusCode', 'status', 'header', 'body'].reduce((n, k) => n + sizeStr(k), 0);

/**
 * `encode(fromWitResponse(res))`, written directly: one exact-size buffer that owns its memory
 * (msgpackr hands out views into a shared buffer, and posting a view to the host copies the
 * whole buffer) and no intermediate objects.
 */
export function encodeWitResponse(res: WitResponse): Uint8Array {
  const code = res.status;
  const status = STATUS_CODES[code] ?? '';
  // Header names in first-seen order, each with its values (most responses repeat no name).
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
  let size = sizeHeader(4) + RESPONSE_KEY_BYTES + sizeNum(code) + sizeStr(status) + sizeBin(res.body.byteLength) + sizeHeader(names.length);
  for (const name of names) {
    const list = values.get(name)!;
    size += sizeStr(name);
    if (list.length > 1) size += sizeHeader(list.length);
    for (const v of list) size += sizeStr(v);
  }
  const w = new MsgpackWriter(size, true);
  w.mapHeader(4).str('statusCode').num(code).str('status').str(status).str('header').mapHeader(names.length);
  for (const name of names) {
    const list = values.get(name)!;
    w.str(name);
    if (list.length === 1) w.str(list[0]!);
    else {
      w.arrayHeader(list.length);
      for (const v of list) w.str(v);
    }
  }
  return w.str('body').bin(res.body).done();
}
