/**
 * The HTTP client capability (`wasmlet:httpclient`): a fetch-like call whose failures are error
 * values. The link's `ALLOWED_HOSTS` decides which hosts are reachable (none until it names
 * some); a refused host is the error code `not-allowed`.
 *
 *   const res = httpClient.fetch('https://api.example.com/items', { method: 'POST', body: '{}' });
 *   if (res.ok) return json(res.value.json());
 */
/// <reference path="./world.d.ts" />
import * as raw from 'wasmlet:actor/http-client@0.1.0';
import { HeaderMap, headerList, WithBody, type HeadersInit } from './http.ts';
import { attempt, type Result } from './result.ts';

const utf8 = new TextEncoder();

export interface FetchInit {
  /** Default GET. */
  method?: string;
  headers?: HeadersInit;
  body?: string | Uint8Array;
}

export class FetchResponse extends WithBody {
  readonly status: number;
  readonly headers: HeaderMap;

  constructor(raw: { status: number; headers: Array<[string, string]>; body: Uint8Array }) {
    super(raw.body);
    this.status = raw.status;
    this.headers = new HeaderMap(raw.headers);
  }

  /** Whether the status is 2xx. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }
}

export interface HttpClient {
  /** Sends a request; an HTTP error status is a response, not an error. */
  fetch(url: string, init?: FetchInit): Result<FetchResponse>;
}


function bind(link: string): HttpClient {
  return {
    fetch: (url, init = {}) =>
      attempt(() => {
        const body = init.body === undefined ? new Uint8Array(0) : typeof init.body === 'string' ? utf8.encode(init.body) : init.body;
        return new FetchResponse(raw.send(link, { method: (init.method ?? 'GET').toUpperCase(), url, headers: headerList(init.headers), body }));
      }),
  };
}

/** The HTTP client of the default link; `.link(name)` for a named link. */
export const httpClient: HttpClient & { link(name: string): HttpClient } = Object.assign(bind(''), { link: (name: string) => bind(name) });
