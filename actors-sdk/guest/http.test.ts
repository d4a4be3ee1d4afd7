import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytes, HeaderMap, HttpRequest, json, parseQuery, status, text, toRawResponse } from './http.ts';
import { ActorError, attempt, toCapabilityError, unwrap } from './result.ts';

const raw = (over: Partial<ConstructorParameters<typeof HttpRequest>[0]> = {}) => ({
  method: 'GET',
  path: '/p',
  query: '',
  headers: [] as Array<[string, string]>,
  body: new Uint8Array(),
  ...over,
});

describe('SDK HTTP', () => {
  it('reads headers case-insensitively and joins repeats', () => {
    const h = new HeaderMap([['Accept', 'a'], ['accept', 'b'], ['X-One', '1']]);
    assert.equal(h.get('ACCEPT'), 'a, b');
    assert.equal(h.has('x-one'), true);
    assert.equal(h.get('missing'), undefined);
    assert.deepEqual(h.toJSON(), { accept: 'a, b', 'x-one': '1' });
  });

  it('parses query strings, decoding escapes and keeping malformed ones', () => {
    assert.deepEqual([...parseQuery('a=1&b=x+y&a=%32&c&d=%zz&&')], [['a', ['1', '2']], ['b', ['x y']], ['c', ['']], ['d', ['%zz']]]);
    const req = new HttpRequest(raw({ query: 'q=1&q=2' }));
    assert.equal(req.query('q'), '1');
    assert.deepEqual(req.queryAll('q'), ['1', '2']);
    assert.deepEqual(req.queryAll('none'), []);
  });

  it('reads the body as text or JSON, JSON errors as values', () => {
    const req = new HttpRequest(raw({ body: new TextEncoder().encode('{"a":1}') }));
    assert.equal(req.text(), '{"a":1}');
    assert.deepEqual(req.json(), { ok: true, value: { a: 1 } });
    const bad = new HttpRequest(raw({ body: new TextEncoder().encode('{') })).json();
    assert.equal(bad.ok, false);
  });

  it('builds responses with a content type unless one is given', () => {
    assert.deepEqual(toRawResponse(json({ a: 1 }, { status: 201 })), { status: 201, headers: [['content-type', 'application/json']], body: new TextEncoder().encode('{"a":1}') });
    assert.deepEqual(toRawResponse(text('hi', { headers: { 'Content-Type': 'text/html', 'set-cookie': ['a', 'b'] } })).headers, [['Content-Type', 'text/html'], ['set-cookie', 'a'], ['set-cookie', 'b']]);
    assert.deepEqual(toRawResponse(bytes(new Uint8Array([1]))).headers, [['content-type', 'application/octet-stream']]);
    assert.deepEqual(toRawResponse(status(204)), { status: 204, headers: [], body: new Uint8Array() });
  });

  it('refuses bad answers with a TypeError naming the problem', () => {
    assert.throws(() => toRawResponse(null as never), /response object, got null/);
    assert.throws(() => toRawResponse(Promise.resolve() as never), /returned a Promise/);
    assert.throws(() => toRawResponse({ status: 42 }), /status must be an integer from 100 to 999/);
    assert.throws(() => toRawResponse({ status: 200, body: 5 as never }), /body must be a string or a Uint8Array/);
  });
});

describe('SDK results', () => {
  it('turns thrown component errors into error values', () => {
    const failing = Object.assign(new Error('x'), { payload: { code: 'not-linked', message: 'no link' } });
    assert.deepEqual(attempt(() => { throw failing; }), { ok: false, error: { code: 'not-linked', message: 'no link' } });
    assert.deepEqual(attempt(() => 3), { ok: true, value: 3 });
    assert.deepEqual(toCapabilityError(new TypeError('bad arg')), { code: 'bad-request', message: 'bad arg' });
  });

  it('unwraps ok values and throws ActorError for errors', () => {
    assert.equal(unwrap({ ok: true, value: 1 }), 1);
    assert.throws(() => unwrap({ ok: false, error: { code: 'timeout', message: 'slow' } }, 'keyvalue add'), (e) => e instanceof ActorError && e.message === 'keyvalue add failed (timeout): slow');
  });
});
