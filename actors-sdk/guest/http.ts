/**
 * HTTP for actors: the request an actor's handler receives, the response it answers, and
 * helpers to build responses. Pure code (no imports of the world), so it is unit-tested in Node.
 */

/** A request's header fields; names are matched case-insensitively. */
export class HeaderMap {
  readonly #fields = new Map<string, string>();

  constructor(fields: Iterable<readonly [string, string]> = []) {
    for (const [name, value] of fields) this.append(name, value);
  }

  get(name: string): string | undefined {
    return this.#fields.get(name.toLowerCase());
  }

  has(name: string): boolean {
    return this.#fields.has(name.toLowerCase());
  }

  /** Repeated fields are joined with ", ", as HTTP allows. */
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const prev = this.#fields.get(key);
    this.#fields.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }

  entries(): IterableIterator<[string, string]> {
    return this.#fields.entries();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#fields.entries();
  }

  toJSON(): Record<string, string> {
    return Object.fromEntries(this.#fields);
  }
}

/** The raw request of the world (`http-types.request`). */
export interface RawRequest {
  method: string;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

/** The raw response of the world (`http-types.response`). */
export interface RawResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s; // a malformed escape is kept as written rather than failing the request
  }
}

/** Parses `a=1&b=2&a=3` into name → values, in order. */
export function parseQuery(query: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = decodeComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeComponent(part.slice(eq + 1));
    const list = out.get(name);
    if (list) list.push(value);
    else out.set(name, [value]);
  }
  return out;
}

/** Something with a byte body (a request, a message, a response): read as text or JSON. */
export class WithBody {
  constructor(readonly body: Uint8Array) {}

  /** The body as UTF-8 text. */
  text(): string {
    return utf8d.decode(this.body);
  }

  /** The body parsed as JSON; an error value when it is not JSON. */
  json<T = unknown>(): { ok: true; value: T } | { ok: false; error: string } {
    try {
      return { ok: true, value: JSON.parse(this.text()) as T };
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }
}

export class HttpRequest extends WithBody {
  readonly method: string;
  /** The path, without the query string. */
  readonly path: string;
  /** The raw query string, without `?`. */
  readonly queryString: string;
  readonly headers: HeaderMap;
  #query: Map<string, string[]> | undefined;

  constructor(raw: RawRequest) {
    super(raw.body);
    this.method = raw.method;
    this.path = raw.path;
    this.queryString = raw.query;
    this.headers = new HeaderMap(raw.headers);
  }

  /** The first value of a query parameter. */
  query(name: string): string | undefined {
    this.#query ??= parseQuery(this.queryString);
    return this.#query.get(name)?.[0];
  }

  /** Every value of a query parameter. */
  queryAll(name: string): string[] {
    this.#query ??= parseQuery(this.queryString);
    return this.#query.get(name) ?? [];
  }

}

export type HeadersInit = Record<string, string | readonly string[]> | ReadonlyArray<readonly [string, string]>;

/** What a handler answers. `body` may be text or bytes. */
export interface HttpResponse {
  status: number;
  headers?: HeadersInit;
  body?: string | Uint8Array;
}

export interface ResponseInit {
  status?: number;
  headers?: HeadersInit;
}

export type HttpHandler = (request: HttpRequest) => HttpResponse;

/** Identity, for typing: `export default handler((req) => text('hi'))`. */
export function handler(fn: HttpHandler): HttpHandler {
  return fn;
}

function withContentType(headers: HeadersInit | undefined, type: string): HeadersInit {
  const list = headerList(headers);
  if (!list.some(([n]) => n.toLowerCase() === 'content-type')) list.push(['content-type', type]);
  return list;
}

/** A text response (default 200, `text/plain; charset=utf-8`). */
export function text(body: string, init: ResponseInit = {}): HttpResponse {
  return { status: init.status ?? 200, headers: withContentType(init.headers, 'text/plain; charset=utf-8'), body };
}

/** A JSON response (default 200, `application/json`). */
export function json(value: unknown, init: ResponseInit = {}): HttpResponse {
  return { status: init.status ?? 200, headers: withContentType(init.headers, 'application/json'), body: JSON.stringify(value) };
}

/** A bytes response (default 200, `application/octet-stream`). */
export function bytes(body: Uint8Array, init: ResponseInit = {}): HttpResponse {
  return { status: init.status ?? 200, headers: withContentType(init.headers, 'application/octet-stream'), body };
}

/** A response with a status and an optional text body, e.g. `status(404)`. */
export function status(code: number, body = ''): HttpResponse {
  return body ? text(body, { status: code }) : { status: code, body: '' };
}

/** Header fields as a list of pairs, from any `HeadersInit`. */
export function headerList(headers: HeadersInit | undefined): Array<[string, string]> {
  if (!headers) return [];
  if (Array.isArray(headers)) return (headers as ReadonlyArray<readonly [string, string]>).map(([n, v]) => [String(n), String(v)]);
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers as Record<string, string | readonly string[]>)) {
    if (Array.isArray(value)) for (const v of value) out.push([name, String(v)]);
    else out.push([name, String(value)]);
  }
  return out;
}

/** Checks a handler's answer and lowers it to the world's response; throws TypeError naming what is wrong. */
export function toRawResponse(r: HttpResponse): RawResponse {
  if (r === null || typeof r !== 'object') throw new TypeError(`the HTTP handler must return a response object, got ${r === null ? 'null' : typeof r}`);
  if (typeof (r as { then?: unknown }).then === 'function') {
    throw new TypeError('the HTTP handler returned a Promise: handlers answer synchronously (every capability call is synchronous)');
  }
  const code = r.status;
  if (!Number.isInteger(code) || code < 100 || code > 999) throw new TypeError(`the response status must be an integer from 100 to 999, got ${String(code)}`);
  const body = r.body === undefined ? new Uint8Array(0) : typeof r.body === 'string' ? utf8.encode(r.body) : r.body;
  if (!(body instanceof Uint8Array)) throw new TypeError('the response body must be a string or a Uint8Array');
  return { status: code, headers: headerList(r.headers), body };
}
