import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { decode, encode, HTTP_SERVER, canonicalContract, isOptionsError } from '../../host/index.ts';
import { isLinkError, isOperationError } from '../errors.ts';
import type { WasccRequest } from './http-codec.ts';
import { HttpServerProvider } from './provider.ts';
import { ACTOR, OTHER_ACTOR, fakeContext, freePort, link } from './test-support.ts';
import type { Invoke } from './test-support.ts';

interface Reply {
  status: number;
  message: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  reusedSocket: boolean;
}

function send(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: Uint8Array; agent?: Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, message: res.statusMessage!, headers: res.headers, body: Buffer.concat(chunks), reusedSocket: req.reusedSocket }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const ok: Invoke = async () => encode({ statusCode: 200, status: 'OK', header: {}, body: Buffer.from('hi') });

async function started(invoke: Invoke = ok, options = {}) {
  const f = fakeContext(invoke);
  const provider = new HttpServerProvider(options);
  await provider.start(f.ctx);
  return { provider, ...f };
}

test('serves the HTTP server contract under its canonical id and aliases', () => {
  const p = new HttpServerProvider();
  assert.equal(p.contract, HTTP_SERVER);
  assert.equal(canonicalContract('wascc:http_server'), p.contract);
  assert.equal(canonicalContract('wasmcloud:httpserver'), p.contract);
});

test('a request arrives decoded exactly and the actor response is returned exactly', async () => {
  let seen: WasccRequest | undefined;
  let seenOp: string | undefined;
  let seenOptions: unknown;
  const body = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 10, 13]);
  const outBody = Buffer.from([255, 0, 7, 0x7f, 0xc1]);
  const { provider } = await started(async (actor, operation, msg, options) => {
    assert.equal(actor, ACTOR);
    seenOp = operation;
    seenOptions = options;
    seen = decode<WasccRequest>(msg);
    return encode({ statusCode: 201, status: 'Made It', header: { 'X-Out': 'yes', 'Content-Type': 'application/octet-stream', 'Set-Cookie': ['a=1', 'b=2'] }, body: outBody });
  });
  const port = await freePort();
  await provider.putLink(link(port));
  try {
    const r = await send(port, {
      method: 'POST',
      path: '/a/b%20c?x=1&y=two&x=3',
      headers: { 'X-Multi': ['one', 'two'], 'Content-Type': 'application/x-thing', 'X-Empty': '' },
      body,
    });
    assert.equal(seenOp, 'HandleRequest');
    assert.deepEqual(seenOptions, { linkName: 'default' });
    assert.ok(seen);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/a/b%20c');
    assert.equal(seen.queryString, 'x=1&y=two&x=3');
    assert.ok(seen.body instanceof Uint8Array, 'body arrives as bin');
    assert.deepEqual(Buffer.from(seen.body), body);
    assert.deepEqual({ ...seen.header }, {
      host: `127.0.0.1:${port}`,
      'x-multi': 'one, two',
      'content-type': 'application/x-thing',
      'x-empty': '',
      'content-length': String(body.length),
      connection: 'keep-alive',
    });
    assert.equal(r.status, 201);
    assert.equal(r.message, 'Made It');
    assert.equal(r.headers['x-out'], 'yes');
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(r.headers['content-length'], String(outBody.length));
    assert.deepEqual(r.body, outBody);
  } finally {
    await provider.stop();
  }
});

test('a request without body or query string arrives with empty body and query; connections are kept alive', async () => {
  const seen: WasccRequest[] = [];
  const { provider } = await started(async (_a, _o, msg) => {
    seen.push(decode<WasccRequest>(msg));
    return encode({ statusCode: 200, status: '', header: { 'content-length': '999' }, body: 'text body' });
  });
  const port = await freePort();
  await provider.putLink(link(port));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await send(port, { path: '/only/path', agent });
    const second = await send(port, { method: 'DELETE', path: '/x?', agent });
    assert.equal(seen[0]!.method, 'GET');
    assert.equal(seen[0]!.path, '/only/path');
    assert.equal(seen[0]!.queryString, '');
    assert.ok(seen[0]!.body instanceof Uint8Array);
    assert.equal(seen[0]!.body.byteLength, 0);
    assert.equal(seen[1]!.method, 'DELETE');
    assert.equal(seen[1]!.path, '/x');
    // The body may come back as a string; the actor's content-length is replaced by the real one.
    assert.equal(first.body.toString(), 'text body');
    assert.equal(first.headers['content-length'], '9');
    assert.equal(first.message, 'OK', 'an empty status gets the standard reason phrase');
    assert.equal(first.headers.connection, 'keep-alive');
    assert.equal(second.reusedSocket, true);
  } finally {
    agent.destroy();
    await provider.stop();
  }
});

test('invalid link values are refused with LinkError and nothing is kept', async () => {
  const { provider } = await started();
  try {
    for (const PORT of ['0', '65536', '-1', '80.5', 'abc', '', ' 8080', '1e3', '0x50']) {
      await assert.rejects(provider.putLink(link(PORT)), (e: unknown) => isLinkError(e) && /PORT/.test(e.message), `PORT ${JSON.stringify(PORT)}`);
      assert.equal(provider.boundAddress(ACTOR), undefined);
    }
    await assert.rejects(provider.putLink({ actor: ACTOR, contract: HTTP_SERVER, linkName: 'default', values: {} }), (e: unknown) => isLinkError(e) && /needs a PORT/.test(e.message));
    const port = await freePort();
    await assert.rejects(provider.putLink(link(port, ACTOR, { ADDRESS: 'not an address!' })), (e: unknown) => isLinkError(e) && /ADDRESS/.test(e.message));
    await assert.rejects(provider.putLink({ ...link(port), contract: 'wascc:keyvalue' }), isLinkError);
    assert.equal(provider.boundAddress(ACTOR), undefined);
    // The port was not taken by any of the failures.
    await provider.putLink(link(port));
    assert.deepEqual(provider.boundAddress(ACTOR), { address: '127.0.0.1', port });
  } finally {
    await provider.stop();
  }
});

test('a port in use is refused with a LinkError naming the port; the existing server keeps serving', async () => {
  const { provider } = await started();
  const port = await freePort();
  await provider.putLink(link(port, ACTOR));
  try {
    await assert.rejects(provider.putLink(link(port, OTHER_ACTOR)), (e: unknown) => isLinkError(e) && e.message.includes(`port ${port}`) && /in use/.test(e.message));
    assert.equal(provider.boundAddress(OTHER_ACTOR), undefined);
    assert.equal((await send(port)).status, 200);
    // A port held by something else on the machine: same answer.
    const foreign = createNetServer();
    const foreignPort = await new Promise<number>((r) => foreign.listen(0, '127.0.0.1', () => r((foreign.address() as { port: number }).port)));
    await assert.rejects(provider.putLink(link(foreignPort, OTHER_ACTOR)), (e: unknown) => isLinkError(e) && e.message.includes(`port ${foreignPort}`));
    foreign.close();
  } finally {
    await provider.stop();
  }
});

test('putting the same link again keeps the server; a new PORT moves it', async () => {
  const { provider } = await started();
  const [p1, p2] = [await freePort(), await freePort()];
  try {
    await provider.putLink(link(p1));
    await provider.putLink(link(p1));
    assert.equal((await send(p1)).status, 200);
    await provider.putLink(link(p2));
    assert.deepEqual(provider.boundAddress(ACTOR), { address: '127.0.0.1', port: p2 });
    assert.equal((await send(p2)).status, 200);
    await assert.rejects(send(p1), /ECONNREFUSED/);
    // A failed move keeps the old server.
    const foreign = createNetServer();
    const taken = await new Promise<number>((r) => foreign.listen(0, '127.0.0.1', () => r((foreign.address() as { port: number }).port)));
    await assert.rejects(provider.putLink(link(taken)), isLinkError);
    foreign.close();
    assert.equal((await send(p2)).status, 200);
  } finally {
    await provider.stop();
  }
});

test('deleteLink stops accepting, lets an in-flight request finish, then closes', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started_ = false;
  const { provider } = await started(async () => {
    started_ = true;
    await gate;
    return encode({ statusCode: 200, status: 'OK', header: {}, body: 'late' });
  });
  const port = await freePort();
  await provider.putLink(link(port));
  const inflight = send(port);
  while (!started_) await new Promise((r) => setTimeout(r, 5));
  let deleted = false;
  const deleting = provider.deleteLink(link(port)).then(() => (deleted = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(deleted, false, 'waits for the in-flight request');
  await assert.rejects(send(port), /ECONNREFUSED/);
  release();
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'late');
  assert.equal(r.headers.connection, 'close');
  await deleting;
  assert.equal(provider.boundAddress(ACTOR), undefined);
  await provider.stop();
});

test('deleteLink destroys connections still busy after drainTimeoutMs', async () => {
  const { provider } = await started(() => new Promise<Uint8Array>(() => {}), { drainTimeoutMs: 100 });
  const port = await freePort();
  await provider.putLink(link(port));
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  await provider.deleteLink(link(port));
  const took = Date.now() - t0;
  assert.ok(took >= 90 && took < 3000, `drained in ${took} ms`);
  await closed;
  await provider.stop();
});

test('actors cannot call the HTTP server contract; bad options and an unstarted provider are refused', async () => {
  const { provider } = await started();
  await assert.rejects(provider.handle({ actor: ACTOR, linkName: 'default', operation: 'HandleRequest', msg: encode({}) }), isOperationError);
  assert.throws(() => new HttpServerProvider({ maxBodyBytes: -1 }), isOptionsError);
  assert.throws(() => new HttpServerProvider({ headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 }), isOptionsError);
  assert.throws(() => new HttpServerProvider({ port: 80 } as never), isOptionsError);
  await assert.rejects(new HttpServerProvider().putLink(link(await freePort())), isLinkError);
});
