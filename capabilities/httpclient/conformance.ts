/**
 * The HTTP client contract's conformance suite, against a loopback server it starts: waSCC's
 * `PerformRequest` shapes, ALLOWED_HOSTS (nothing reachable by default, every redirect hop
 * checked), redirects, the deadline and the response-size cap.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decode, encode } from '../../host/index.ts';
import { isOperationError } from '../errors.ts';
import type { ProviderHarness } from '../harness.ts';
import { rejectsWith } from '../keyvalue/conformance.ts';

const ACTOR = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';

interface WasccResponse {
  statusCode: number;
  status: string;
  header: Record<string, string>;
  body: Uint8Array;
}

/** A waSCC `Request` for `url`. */
export function performRequest(url: string, init: { method?: string; queryString?: string; header?: Record<string, string>; body?: string } = {}): Uint8Array {
  return encode({ method: init.method ?? 'GET', path: url, queryString: init.queryString ?? '', header: init.header ?? {}, body: Buffer.from(init.body ?? '') });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The loopback server the suite talks to. */
function route(req: IncomingMessage, res: ServerResponse, base: () => string): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/echo') {
    void readBody(req).then((body) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-repeated', ['a', 'b']);
      res.end(JSON.stringify({ method: req.method, path: url.pathname, query: url.search, headers: req.headers, body }));
    });
  } else if (url.pathname === '/status') {
    res.statusCode = Number(url.searchParams.get('code') ?? 200);
    res.end('status body');
  } else if (url.pathname === '/redirect') {
    res.statusCode = Number(url.searchParams.get('code') ?? 302);
    res.setHeader('location', url.searchParams.get('to') ?? `${base()}/echo`);
    res.end();
  } else if (url.pathname === '/loop') {
    res.statusCode = 302;
    res.setHeader('location', '/loop');
    res.end();
  } else if (url.pathname === '/big') {
    // No content-length: the cap must hold on a streamed body.
    const n = Number(url.searchParams.get('n') ?? 0);
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let sent = 0;
    const more = () => {
      while (sent < n) {
        const part = chunk.subarray(0, Math.min(chunk.length, n - sent));
        sent += part.length;
        if (!res.write(part)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  } else if (url.pathname === '/slow') {
    const t = setTimeout(() => res.end('late'), Number(url.searchParams.get('ms') ?? 5000));
    res.on('close', () => clearTimeout(t));
  } else {
    res.statusCode = 404;
    res.end();
  }
}


export function runHttpClientConformance(name: string, open: () => Promise<ProviderHarness>): void {
  describe(`HTTP client conformance: ${name}`, () => {
    let server: Server;
    let base = '';
    const requests: string[] = [];
    before(async () => {
      server = createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        route(req, res, () => base);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    const withHarness = (values: () => Record<string, string>, fn: (h: ProviderHarness, call: (msg: Uint8Array) => Promise<WasccResponse>) => Promise<void>) => async () => {
      const h = await open();
      try {
        await h.putLink(ACTOR, values());
        await fn(h, async (msg) => decode<WasccResponse>(await h.call(ACTOR, 'PerformRequest', msg)));
      } finally {
        await h.close();
      }
    };
    const loopback = () => ({ ALLOWED_HOSTS: '127.0.0.1' });

    test('nothing is reachable until ALLOWED_HOSTS names it; the request never leaves', withHarness(() => ({}), async (h) => {
      const before = requests.length;
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base}/echo`)), 'BAD_REQUEST', /no host is allowed for this link: set ALLOWED_HOSTS/);
      assert.equal(requests.length, before);
    }));

    test('hosts outside ALLOWED_HOSTS are refused (another host, another port, a wildcard that does not match)', withHarness(() => ({ ALLOWED_HOSTS: 'localhost:1, *.example.com, 10.0.0.1' }), async (h) => {
      const before = requests.length;
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base}/echo`)), 'BAD_REQUEST', /host 127\.0\.0\.1:\d+ is not in this link's ALLOWED_HOSTS/);
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base.replace('127.0.0.1', 'localhost')}/echo`)), 'BAD_REQUEST', /not in this link's ALLOWED_HOSTS/);
      assert.equal(requests.length, before);
    }));

    test('PerformRequest sends method, URL, query, headers and body and answers waSCC\'s Response', withHarness(loopback, async (_h, call) => {
      const res = await call(performRequest(`${base}/echo?a=1`, { method: 'post', queryString: 'b=2', header: { 'X-Trace': 't1', Host: 'evil.example' }, body: 'hello' }));
      assert.equal(res.statusCode, 200);
      assert.equal(res.status, 'OK');
      assert.equal(res.header['content-type'], 'application/json');
      assert.equal(res.header['x-repeated'], 'a, b');
      assert.ok(res.body instanceof Uint8Array);
      const echoed = JSON.parse(Buffer.from(res.body).toString()) as { method: string; query: string; headers: Record<string, string>; body: string };
      assert.equal(echoed.method, 'POST');
      assert.equal(echoed.query, '?a=1&b=2');
      assert.equal(echoed.headers['x-trace'], 't1');
      assert.match(echoed.headers.host!, /^127\.0\.0\.1:\d+$/, 'an actor cannot set Host');
      assert.equal(echoed.body, 'hello');
    }));

    test('error statuses are answers, not failures', withHarness(loopback, async (_h, call) => {
      const res = await call(performRequest(`${base}/status?code=503`));
      assert.equal(res.statusCode, 503);
      assert.equal(res.status, 'Service Unavailable');
      assert.equal(Buffer.from(res.body).toString(), 'status body');
    }));

    test('redirects are handed to the actor unless the link follows them', withHarness(loopback, async (_h, call) => {
      const res = await call(performRequest(`${base}/redirect`));
      assert.equal(res.statusCode, 302);
      assert.equal(res.header.location, `${base}/echo`);
    }));

    test('FOLLOW_REDIRECTS follows (303 becomes GET), checks every hop against ALLOWED_HOSTS and stops at the limit', withHarness(() => ({ ...loopback(), FOLLOW_REDIRECTS: 'true' }), async (h, call) => {
      const res = await call(performRequest(`${base}/redirect?code=303`, { method: 'POST', body: 'x' }));
      assert.equal(res.statusCode, 200);
      assert.equal((JSON.parse(Buffer.from(res.body).toString()) as { method: string }).method, 'GET');
      const before = requests.length;
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base}/redirect?to=${encodeURIComponent('http://localhost:9/x')}`)), 'BAD_REQUEST', /host localhost:9 is not in this link's ALLOWED_HOSTS/);
      assert.equal(requests.length, before + 1, 'the disallowed hop was never requested');
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base}/loop`)), 'BACKEND_ERROR', /more than \d+ redirects/);
    }));

    test('a response larger than the cap is cut off, streamed or declared', withHarness(() => ({ ...loopback(), MAX_RESPONSE_BYTES: '100000' }), async (h, call) => {
      const ok = await call(performRequest(`${base}/big?n=100000`));
      assert.equal(ok.body.byteLength, 100000);
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base}/big?n=100001`)), 'BACKEND_ERROR', /larger than 100000 bytes/);
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base}/big?n=50000000`)), 'BACKEND_ERROR', /larger than 100000 bytes/);
    }));

    test('a slow server meets the deadline', withHarness(() => ({ ...loopback(), TIMEOUT_MS: '200' }), async (h) => {
      const t0 = Date.now();
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base}/slow?ms=5000`)), 'BACKEND_ERROR', /timed out after 200 ms/);
      assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    }));

    test('a closed port is an error value', withHarness(() => ({ ALLOWED_HOSTS: '127.0.0.1' }), async (h) => {
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as AddressInfo).port;
      await new Promise((r) => closed.close(r));
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`http://127.0.0.1:${port}/`)), 'BACKEND_ERROR', /ECONNREFUSED/);
    }));

    test('bad requests are refused before anything is sent', withHarness(loopback, async (h) => {
      const before = requests.length;
      const bad = (msg: Uint8Array, pattern: RegExp) => rejectsWith(h.call(ACTOR, 'PerformRequest', msg), 'BAD_REQUEST', pattern);
      await bad(performRequest('/relative'), /absolute http:\/\/ or https:\/\/ URL/);
      await bad(performRequest('file:///etc/passwd'), /only http:\/\/ and https:\/\/ URLs/);
      await bad(performRequest(`${base.replace('http://', 'http://u:p@')}/echo`), /credentials in the URL/);
      await bad(performRequest(`${base}/echo`, { method: 'CONNECT' }), /method "CONNECT" is not allowed/);
      await bad(performRequest(`${base}/echo`, { method: 'GE T' }), /is not allowed/);
      await bad(performRequest(`${base}/echo`, { body: 'x' }), /GET request cannot have a body/);
      await bad(encode({ method: 'GET' }), /field "path" must be a string/);
      await bad(new Uint8Array([0xc1]), /not msgpack/);
      await assert.rejects(h.call(ACTOR, 'Fetch', performRequest(`${base}/echo`)), (e: unknown) => isOperationError(e) && e.code === 'UNKNOWN_OPERATION');
      assert.equal(requests.length, before);
    }));

    test('invalid link values are refused when the link is put', async () => {
      const h = await open();
      try {
        await assert.rejects(h.putLink(ACTOR, { ALLOWED_HOSTS: 'a*b' }), /ALLOWED_HOSTS/);
        await assert.rejects(h.putLink(ACTOR, { ALLOWED_HOSTS: '127.0.0.1', TIMEOUT_MS: 'soon' }), /TIMEOUT_MS must be a positive integer/);
        await assert.rejects(h.putLink(ACTOR, { ALLOWED_HOSTS: '127.0.0.1', FOLLOW_REDIRECTS: 'maybe' }), /FOLLOW_REDIRECTS must be true or false/);
      } finally {
        await h.close();
      }
    });

    test('a deleted link stops the actor\'s requests', withHarness(loopback, async (h, call) => {
      assert.equal((await call(performRequest(`${base}/status`))).statusCode, 200);
      await h.deleteLink(ACTOR);
      await rejectsWith(h.call(ACTOR, 'PerformRequest', performRequest(`${base}/status`)), 'NOT_LINKED', /no HTTP client link/);
    }));
  });
}
