import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, encode } from '../../host/index.ts';
import { encodeHttpRequest, requestHeaders } from './http-codec.ts';

test('HandleRequest payload: the same value the general encoder writes for the request object', () => {
  const cases: [string, string, string[], Uint8Array][] = [
    ['GET', '/', [], new Uint8Array(0)],
    ['GET', '/bench/counter', ['Host', '127.0.0.1:8080', 'Connection', 'keep-alive'], new Uint8Array(0)],
    ['POST', '/a/b?x=1&y=%20z?w', ['Content-Type', 'application/json', 'X-Name', 'Zoë ☃', 'x-dup', 'one', 'X-Dup', 'two'], new TextEncoder().encode('{"k":1}')],
    ['PUT', `/${'p'.repeat(300)}?${'q'.repeat(70_000)}`, ['__proto__', 'kept as data', 'constructor', 'too', 'Long', 'v'.repeat(40_000)], new Uint8Array(100_000).fill(7)],
    ['DELETE', '/only?', ['Accept', '*/*'], Uint8Array.from([0, 1, 2])],
  ];
  for (const [method, url, raw, body] of cases) {
    const header = requestHeaders(raw);
    const q = url.indexOf('?');
    const expected = { method, path: q < 0 ? url : url.slice(0, q), queryString: q < 0 ? '' : url.slice(q + 1), header: { ...header }, body };
    const got = decode<Record<string, unknown>>(encodeHttpRequest(method, url, header, body));
    const want = decode<Record<string, unknown>>(encode(expected));
    assert.deepEqual({ ...got, header: { ...(got.header as object) } }, { ...want, header: { ...(want.header as object) } }, `${method} ${url.slice(0, 40)}`);
    assert.deepEqual(Object.keys(got), ['method', 'path', 'queryString', 'header', 'body'], 'field order of the waSCC codec');
  }
  // Repeated fields are joined, names lower-cased.
  assert.deepEqual((decode(encodeHttpRequest('GET', '/', requestHeaders(['X-Dup', 'one', 'x-dup', 'two']), new Uint8Array(0))) as { header: object }).header, { 'x-dup': 'one, two' });
});
