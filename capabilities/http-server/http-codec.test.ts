import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, encode } from '../../host/index.ts';
import { encodeHttpRequest, headerValue, requestHeaders } from './http-codec.ts';

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
    const asObject: Record<string, string> = Object.create(null);
    for (let i = 0; i < header.length; i += 2) asObject[header[i]!] = header[i + 1]!;
    const expected = { method, path: q < 0 ? url : url.slice(0, q), queryString: q < 0 ? '' : url.slice(q + 1), header: asObject, body };
    const got = decode<Record<string, unknown>>(encodeHttpRequest(method, url, header, body));
    const want = decode<Record<string, unknown>>(encode(expected));
    assert.deepEqual({ ...got, header: { ...(got.header as object) } }, { ...want, header: { ...(want.header as object) } }, `${method} ${url.slice(0, 40)}`);
    assert.deepEqual(Object.keys(got), ['method', 'path', 'queryString', 'header', 'body'], 'field order of the waSCC codec');
  }
  // Repeated fields are joined (all of them, in order), names lower-cased, each name once.
  assert.deepEqual(requestHeaders(['X-Dup', 'one', 'Host', 'h', 'x-dup', 'two', 'X-DUP', 'three']), ['x-dup', 'one, two, three', 'host', 'h']);
  assert.deepEqual((decode(encodeHttpRequest('GET', '/', requestHeaders(['X-Dup', 'one', 'x-dup', 'two']), new Uint8Array(0))) as { header: object }).header, { 'x-dup': 'one, two' });
  assert.equal(headerValue(requestHeaders(['Content-Length', '12']), 'content-length'), '12');
  assert.equal(headerValue(requestHeaders(['Content-Length', '12']), 'transfer-encoding'), undefined);
});
