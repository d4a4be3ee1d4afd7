import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode, InvocationError } from '../../host/index.ts';
import type { InvocationErrorCode } from '../../host/index.ts';
import type { WasccRequest } from './http-codec.ts';
import { parseHttpServerOptions, type HttpServerOptions } from './options.ts';
import { HttpServerProvider } from './provider.ts';
import { ACTOR, fakeContext, freePort, link, rawExchange, rawSocket } from './test-support.ts';
import { until } from '../../test/helpers/wait.ts';
import type { Invoke } from './test-support.ts';

const echoBody: Invoke = async (_a, _o, msg) => {
  const req = decode<WasccRequest>(msg);
  return encode({ statusCode: 200, status: 'OK', header: {}, body: req.body });
};

async function serve(invoke: Invoke, options: HttpServerOptions = {}) {
  const f = fakeContext(invoke);
  const provider = new HttpServerProvider(options);
  await provider.start(f.ctx);
  const port = await freePort();
  await provider.putLink(link(port));
  return { provider, port, ...f, [Symbol.asyncDispose]: () => provider.stop() };
}

/** Status code and body of a raw HTTP/1.1 response. */
function parse(raw: string): { status: number; headers: string; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
  return { status: m ? Number(m[1]) : 0, headers: head.toLowerCase(), body: end < 0 ? '' : raw.slice(end + 4) };
}

async function get(port: number, path = '/'): Promise<{ status: number; body: string; contentType: string | null }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: await r.text(), contentType: r.headers.get('content-type') };
}

test('a Content-Length over maxBodyBytes is answered 413 at once, without reading the body, and the connection closes', async () => {
  await using s = await serve(echoBody, { maxBodyBytes: 1000 });
  // The body is never sent: the answer must come from the header alone.
  const raw = await rawExchange(s.port, 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n');
  const r = parse(raw);
  assert.equal(r.status, 413);
  assert.match(r.headers, /connection: close/);
  assert.equal(r.body, 'request body too large\n');
  assert.equal(s.calls.count, 0);
});

test('Expect: 100-continue with an oversized body gets 413 instead of 100 Continue', async () => {
  await using s = await serve(echoBody, { maxBodyBytes: 1000 });
  const raw = await rawExchange(s.port, 'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n');
  assert.doesNotMatch(raw, /100 Continue/);
  assert.equal(parse(raw).status, 413);
  assert.equal(s.calls.count, 0);
  // A body within the limit gets 100 Continue and is served.
  const sock = await rawSocket(s.port);
  sock.socket.write('POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: 3\r\n\r\n');
  await until(() => sock.received().includes('100 Continue'), '100 Continue', 5000);
  sock.socket.write('abc');
  await sock.closed;
  assert.match(sock.received(), /HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nabc$/);
});

test('a chunked body is answered 413 as soon as it passes maxBodyBytes, then the connection closes', async () => {
  await using s = await serve(echoBody, { maxBodyBytes: 1000 });
  const sock = await rawSocket(s.port);
  sock.socket.write('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  sock.socket.write(`258\r\n${'a'.repeat(600)}\r\n`);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sock.received(), '', 'under the limit: no answer yet');
  sock.socket.write(`258\r\n${'b'.repeat(600)}\r\n`); // 1200 > 1000; no terminating chunk is ever sent
  await sock.closed;
  const r = parse(sock.received());
  assert.equal(r.status, 413);
  assert.match(r.headers, /connection: close/);
  assert.equal(s.calls.count, 0);
});

test('bodies of exactly maxBodyBytes arrive intact, with Content-Length or chunked', async () => {
  await using s = await serve(echoBody, { maxBodyBytes: 1000 });
  const body = Buffer.alloc(1000, 'z');
  const fixed = await fetch(`http://127.0.0.1:${s.port}/`, { method: 'POST', body });
  assert.equal(fixed.status, 200);
  assert.deepEqual(Buffer.from(await fixed.arrayBuffer()), body);
  const raw = await rawExchange(
    s.port,
    `POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n1f4\r\n${'z'.repeat(500)}\r\n1f4\r\n${'z'.repeat(500)}\r\n0\r\n\r\n`,
  );
  const r = parse(raw);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'z'.repeat(1000));
  assert.equal(s.calls.count, 2);
});

test('headers sent too slowly time out with 408 and never reach the actor', async () => {
  await using s = await serve(echoBody, { headersTimeoutMs: 300, requestTimeoutMs: 1000 });
  const sock = await rawSocket(s.port);
  const t0 = Date.now();
  sock.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
  // Keep the connection busy with a header line every 50 ms; the headers never end.
  const drip = setInterval(() => sock.socket.writable && sock.socket.write('X-Slow: 1\r\n'), 50);
  await sock.closed;
  clearInterval(drip);
  const took = Date.now() - t0;
  assert.equal(parse(sock.received()).status, 408);
  assert.ok(took >= 250 && took < 3000, `timed out after ${took} ms`);
  assert.equal(s.calls.count, 0);
  // The server is fine afterwards.
  assert.equal((await get(s.port)).status, 200);
});

test('malformed requests get 400 from the server and never reach the actor', async () => {
  await using s = await serve(echoBody);
  const bad = [
    'GARBAGE\r\n\r\n',
    'GET / HTTP/1.1\r\nBad Header: x\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n',
    'GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n',
  ];
  for (const text of bad) {
    const r = parse(await rawExchange(s.port, text));
    assert.equal(r.status, 400, JSON.stringify(text));
  }
  assert.equal(s.calls.count, 0);
  assert.equal((await get(s.port)).status, 200);
  assert.equal(s.calls.count, 1);
});

test('an invalid actor response is answered 502 with a plain-text reason, logged, and the server keeps serving', async () => {
  const responses: Record<string, Uint8Array> = {
    '/not-msgpack': new Uint8Array([0xc1]),
    '/empty': new Uint8Array(0),
    '/not-a-map': encode('hello'),
    '/no-status': encode({ status: 'OK', header: {}, body: 'x' }),
    '/string-status': encode({ statusCode: '200', header: {}, body: 'x' }),
    '/status-out-of-range': encode({ statusCode: 42, header: {}, body: 'x' }),
    '/bad-header-name': encode({ statusCode: 200, header: { 'bad name': 'x' }, body: 'x' }),
    '/bad-header-value': encode({ statusCode: 200, header: { 'x-a': 'one\r\nInjected: yes' }, body: 'x' }),
    '/header-not-string': encode({ statusCode: 200, header: { 'x-a': { nested: true } }, body: 'x' }),
    '/bad-status-text': encode({ statusCode: 200, status: 'OK\r\nInjected: yes', header: {}, body: 'x' }),
    '/body-not-bytes': encode({ statusCode: 200, header: {}, body: 12 }),
    '/good': encode({ statusCode: 200, status: 'OK', header: { 'x-ok': 'yes' }, body: 'fine' }),
  };
  await using s = await serve(async (_a, _o, msg) => responses[decode<WasccRequest>(msg).path]!);
  for (const path of Object.keys(responses)) {
    const r = await get(s.port, path);
    if (path === '/good') {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'fine');
      continue;
    }
    assert.equal(r.status, 502, path);
    assert.equal(r.contentType, 'text/plain; charset=utf-8');
    assert.equal(r.body, 'bad gateway: the actor returned an invalid response\n');
  }
  const logged = s.lines.filter((l) => l.statusCode === 502);
  assert.equal(logged.length, Object.keys(responses).length - 1);
  assert.ok(logged.every((l) => l.actor === ACTOR));
});

test('invocation errors map to 504 / 500 / 503 with short plain-text bodies, each logged with the actor', async () => {
  const expected: Record<InvocationErrorCode | 'PLAIN' | 'SYNC', number> = {
    DEADLINE_EXCEEDED: 504,
    TRAP: 500,
    GUEST_ERROR: 500,
    UNAVAILABLE: 503,
    STOPPING: 503,
    ACTOR_NOT_FOUND: 503,
    NOT_CLAIMED: 500,
    NOT_LINKED: 500,
    NO_PROVIDER: 500,
    PROVIDER_ERROR: 500,
    BAD_PAYLOAD: 500,
    PAYLOAD_TOO_LARGE: 502,
    PLAIN: 500,
    SYNC: 500,
  };
  const secret = 'secret detail from inside the actor';
  const invoke: Invoke = (_a, _o, msg) => {
    const code = decode<WasccRequest>(msg).path.slice(1);
    if (code === 'SYNC') throw new Error(secret); // an invoker that throws instead of rejecting
    if (code === 'PLAIN') return Promise.reject(new Error(secret));
    return Promise.reject(new InvocationError(code as InvocationErrorCode, secret));
  };
  await using s = await serve(invoke);
  for (const [code, status] of Object.entries(expected)) {
    const r = await get(s.port, `/${code}`);
    assert.equal(r.status, status, code);
    assert.equal(r.contentType, 'text/plain; charset=utf-8');
    assert.ok(r.body.length > 0 && r.body.length < 100, `short reason for ${code}: ${r.body}`);
    assert.ok(!r.body.includes(secret) && !/\bat .*:\d+/.test(r.body), `no detail or stack for ${code}`);
    const line = s.lines.at(-1)!;
    assert.equal(line.actor, ACTOR);
    assert.equal(line.statusCode, status);
  }
  assert.equal((await get(s.port, '/DEADLINE_EXCEEDED')).body, 'gateway timeout: the actor did not answer in time\n');
  assert.equal((await get(s.port, '/STOPPING')).body, 'service unavailable: the actor is not available\n');
});

test('a 5xx answered by the actor itself is passed through and logged with the actor', async () => {
  await using s = await serve(async () => encode({ statusCode: 503, status: 'Busy', header: { 'retry-after': '1' }, body: 'try later' }));
  const r = await get(s.port, '/');
  assert.equal(r.status, 503);
  assert.equal(r.body, 'try later');
  assert.ok(s.lines.some((l) => l.actor === ACTOR && l.statusCode === 503));
});

test('an actor response past maxResponseBytes is answered 502 without being decoded; the server keeps serving', async () => {
  const big = encode({ statusCode: 200, status: 'OK', header: {}, body: new Uint8Array(4096) });
  await using s = await serve(async (_a, _o, msg) => (decode<WasccRequest>(msg).path === '/big' ? big : encode({ statusCode: 200, status: 'OK', header: {}, body: 'fine' })), { maxResponseBytes: 2048 });
  const r = await get(s.port, '/big');
  assert.equal(r.status, 502);
  assert.equal(r.body, "bad gateway: the actor's response is too large\n");
  assert.ok(s.lines.some((l) => l.statusCode === 502 && l.actor === ACTOR));
  assert.equal((await get(s.port, '/small')).status, 200);
  assert.throws(() => parseHttpServerOptions({ maxResponseBytes: 10 }), /maxResponseBytes/);
});
