import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, encode } from '../codec.ts';
import { fromWitResponse, toWitRequest } from './component-http.ts';
import { GuestError } from './runtime.ts';

describe('component HTTP payloads', () => {
  it('turns a waSCC HandleRequest map into the typed request', () => {
    const req = toWitRequest(encode({ method: 'POST', path: '/a', queryString: 'x=1', header: { 'Content-Type': 'text/plain', Accept: ['a', 'b'] }, body: Buffer.from('hi') }));
    assert.deepEqual({ ...req, body: Buffer.from(req.body).toString() }, {
      method: 'POST',
      path: '/a',
      query: 'x=1',
      headers: [['content-type', 'text/plain'], ['accept', 'a, b']],
      body: 'hi',
    });
  });

  it('accepts missing optional fields and trailing bytes, as waSCC hosts did', () => {
    const bytes = new Uint8Array([...encode({ method: 'GET', path: '/' }), 0xff, 0x00]);
    const req = toWitRequest(bytes);
    assert.deepEqual(req.headers, []);
    assert.equal(req.query, '');
    assert.equal(req.body.byteLength, 0);
  });

  it('refuses what is not a request with a GuestError naming why', () => {
    for (const [bytes, why] of [
      [new Uint8Array(0), /empty msgpack/],
      [encode([1, 2]), /not a map/],
      [encode({ method: 5 }), /method is not a string/],
      [encode({ header: 'x' }), /header is not a map/],
      [encode({ body: { a: 1 } }), /body is not bytes/],
    ] as const) {
      assert.throws(() => toWitRequest(bytes), (e) => e instanceof GuestError && why.test(e.message));
    }
  });

  it('turns the typed response into the waSCC map, repeated headers as lists', () => {
    const out = fromWitResponse({ status: 404, headers: [['set-cookie', 'a'], ['set-cookie', 'b'], ['x', 'y']], body: Buffer.from('no') });
    const back = decode<Record<string, unknown>>(encode(out));
    assert.equal(back.statusCode, 404);
    assert.equal(back.status, 'Not Found');
    assert.deepEqual(back.header, { 'set-cookie': ['a', 'b'], x: 'y' });
    assert.equal(Buffer.from(back.body as Uint8Array).toString(), 'no');
    assert.equal(fromWitResponse({ status: 799, headers: [], body: new Uint8Array() }).status, '');
  });
});
