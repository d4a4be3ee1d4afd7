/**
 * The waSCC HTTP server codec (wascc-codec 0.6 `http` module): what goes to an actor's
 * `HandleRequest` and what comes back, as msgpack maps with camelCase names.
 *
 *   Request  {method, path, queryString, header: map<string,string>, body: bin}
 *   Response {statusCode, status, header: map<string,string>, body: bin}
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { asBytes, MsgpackWriter, sizeBin, sizeHeader, sizeStr } from '../../host/index.ts';

export const OP_HANDLE_REQUEST = 'HandleRequest';

export interface WasccRequest {
  method: string;
  path: string;
  queryString: string;
  header: Record<string, string>;
  body: Uint8Array;
}

export interface WasccResponse {
  statusCode: number;
  status: string;
  header: Record<string, string | string[]>;
  body: Uint8Array;
}

/**
 * Request headers as a flat list `[name, value, name, value…]`: names lower-cased, each name once,
 * repeated fields joined with ", " (all of them, unlike `req.headers`, which drops repeats of some
 * fields). A list rather than an object keyed by header names: it is written straight into the
 * `HandleRequest` map, and a field named like an Object.prototype member (`__proto__`) stays data.
 */
export type HeaderList = string[];

export function requestHeaders(raw: readonly string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    let j = 0;
    while (j < out.length && out[j] !== name) j += 2;
    if (j < out.length) out[j + 1] = `${out[j + 1]}, ${raw[i + 1]!}`;
    else out.push(name, raw[i + 1]!);
  }
  return out;
}

/** The value of lower-cased header `name` in a list, or undefined. */
export function headerValue(list: HeaderList, name: string): string | undefined {
  for (let j = 0; j < list.length; j += 2) if (list[j] === name) return list[j + 1];
  return undefined;
}

const KEYS = ['method', 'path', 'queryString', 'header', 'body'] as const;
const KEY_BYTES = KEYS.reduce((n, k) => n + sizeStr(k), 0);

/**
 * The `HandleRequest` payload `{method, path, queryString, header, body}` for a request line's
 * method and target (path and query split at the first `?`), written in one pass: the same
 * value `encode()` would write for the object, without building it.
 */
export function encodeHttpRequest(method: string, url: string, header: HeaderList, body: Uint8Array): Uint8Array {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const queryString = q < 0 ? '' : url.slice(q + 1);
  const count = header.length >> 1;
  let size = 1 + KEY_BYTES + sizeStr(method) + sizeStr(path) + sizeStr(queryString) + sizeBin(body.byteLength) + sizeHeader(count);
  for (let i = 0; i < header.length; i++) size += sizeStr(header[i]!);
  const w = new MsgpackWriter(size).mapHeader(5);
  w.str('method').str(method).str('path').str(path).str('queryString').str(queryString).str('header').mapHeader(count);
  for (let i = 0; i < header.length; i++) w.str(header[i]!);
  return w.str('body').bin(body).done();
}

/** Why an actor's response cannot be sent; becomes a 502. */
export class BadActorResponse extends Error {}

/**
 * Check a decoded actor response and turn it into what `writeHead`/`end` take. Everything is
 * validated here, before anything is written, so a bad response can still be answered with 502.
 */
export function toHttpResponse(value: unknown): { statusCode: number; status: string | undefined; headers: Record<string, string | string[] | number>; body: Uint8Array } {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array || Array.isArray(value)) {
    throw new BadActorResponse('actor response is not a map');
  }
  const r = value as Partial<Record<keyof WasccResponse, unknown>>;
  const statusCode = r.statusCode;
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 200 || statusCode > 999) {
    throw new BadActorResponse(`actor response has no valid statusCode (${JSON.stringify(statusCode)})`);
  }
  let status: string | undefined;
  if (typeof r.status === 'string' && r.status !== '') {
    try {
      validateHeaderValue('status', r.status); // same character rules as a status line
    } catch {
      throw new BadActorResponse('actor response status text has invalid characters');
    }
    status = r.status;
  }
  let body: Uint8Array;
  try {
    body = asBytes(r.body);
  } catch {
    throw new BadActorResponse('actor response body is not bytes');
  }
  const noBody = statusCode === 204 || statusCode === 304;
  const headers: Record<string, string | string[] | number> = {};
  const header = r.header;
  if (header != null) {
    if (typeof header !== 'object' || Array.isArray(header) || header instanceof Uint8Array) {
      throw new BadActorResponse('actor response header is not a map');
    }
    for (const name in header) {
      if (!Object.hasOwn(header, name)) continue;
      const lower = name.toLowerCase();
      // The provider frames the body itself.
      if (lower === 'content-length' || lower === 'transfer-encoding') continue;
      let v = (header as Record<string, unknown>)[name];
      if (typeof v === 'number') v = String(v);
      else if (!(typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string')))) {
        throw new BadActorResponse(`actor response header ${JSON.stringify(name)} is not a string`);
      }
      try {
        validateHeaderName(name);
        if (typeof v === 'string') validateHeaderValue(name, v);
        else for (const item of v as string[]) validateHeaderValue(name, item);
      } catch {
        throw new BadActorResponse(`actor response header ${JSON.stringify(name)} is invalid`);
      }
      headers[name] = v as string | string[];
    }
  }
  if (noBody) return { statusCode, status, headers, body: EMPTY };
  headers['content-length'] = body.byteLength;
  return { statusCode, status, headers, body };
}

export const EMPTY = new Uint8Array(0);
