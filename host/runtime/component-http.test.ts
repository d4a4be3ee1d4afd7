import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, encode } from '../codec.ts';
import { encodeWitResponse, fromWitResponse, toWitRequest, type WitResponse } from './component-http.ts';
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

  it('encodes the response map directly, as msgpackr would, into a buffer of its own', () => {
    const many = Array.from({ length: 20 }, (_, i) => [`x-h${i}`, `v${i}`] as [string, string]);
    const cases: WitResponse[] = [
      { status: 200, headers: [['content-type', 'application/json']], body: Buffer.from('{"counter":1}') },
      { status: 404, headers: [['set-cookie', 'a'], ['set-cookie', 'b'], ['x', 'y']], body: new Uint8Array() },
      { status: 65535, headers: [], body: new Uint8Array(70_000).fill(7) },
      { status: 99, headers: [['x-long', 'é'.repeat(200)], ['x-longer', 'z'.repeat(70_000)]], body: new Uint8Array(300).fill(1) },
      { status: 201, headers: [...many, ...Array.from({ length: 17 }, () => ['set-cookie', 'c=1'] as [string, string])], body: Buffer.from('ünïcode ✓') },
      { status: 200, headers: [['x-emoji', 'a😀b'], ['x-lone', 'a\ud800b'], ['x-lone-low', '\udc00'], ['x-é', `${'😀'.repeat(40)}\ud83d`]], body: new Uint8Array(0) },
    ];
    for (const res of cases) {
      const bytes = encodeWitResponse(res);
      assert.equal(bytes.byteOffset, 0);
      assert.equal(bytes.buffer.byteLength, bytes.byteLength, 'owns an exact-size buffer');
      const back = decode<Record<string, unknown>>(bytes);
      const want = fromWitResponse(res);
      assert.equal(back.statusCode, want.statusCode);
      assert.equal(back.status, want.status);
      // UTF-8 has no lone surrogates (a guest's strings never hold one): they come back as U+FFFD.
      const utf8 = (v: string | string[]) => (Array.isArray(v) ? v.map((x) => Buffer.from(x).toString()) : Buffer.from(v).toString());
      assert.deepEqual({ ...(back.header as object) }, Object.fromEntries(Object.entries(want.header).map(([k, v]) => [k, utf8(v)])));
      assert.deepEqual(Buffer.from(back.body as Uint8Array), Buffer.from(want.body));
      assert.deepEqual(Object.keys(back), ['statusCode', 'status', 'header', 'body']);
    }
  });
});
