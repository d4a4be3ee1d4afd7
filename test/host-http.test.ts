/**
 * Issue-level behaviour over real HTTP: the unmodified waSCC actors behind the built-in
 * providers, Redis-backed counters, traps, deadlines, bad actor responses, limits.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { HttpServerProvider, KeyValueProvider, LoggingProvider } from '../capabilities/index.ts';
import { encode, Host, HTTP_SERVER, KEY_VALUE, LOGGING } from '../host/index.ts';
import { freePort, startRedisServer, type RedisServer } from './helpers/redis-server.ts';
import { toolboxActor, TOOLBOX_HTTP_BODY, type SignedTestActor } from './helpers/wat.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);
const echoBytes = readFileSync(new URL('wascc/echo.wasm', fixtures));
const kvcounterBytes = readFileSync(new URL('wascc/kvcounter.wasm', fixtures));
const ECHO = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const logger = pino({ level: 'silent' });

async function get(port: number, path: string, init?: RequestInit) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('waSCC actors over HTTP', () => {
  let host: Host;
  let redis: RedisServer;
  let toolbox: SignedTestActor;
  const ports: Record<string, number> = {};

  before(async () => {
    redis = await startRedisServer();
    host = await Host.start({ workers: 3, deadlineMs: 1500 }, { logger });
    await host.addProvider(new HttpServerProvider({ maxBodyBytes: 64 * 1024 }));
    await host.addProvider(new KeyValueProvider());
    await host.addProvider(new LoggingProvider());
    toolbox = await toolboxActor({ caps: ['wascc:http_server', 'wascc:logging'] });
    await host.startActor(echoBytes);
    await host.startActor(kvcounterBytes);
    await host.startActor(toolbox.bytes, { maxInstances: 1 });
    for (const name of ['echo', 'kvcounter', 'toolbox']) ports[name] = await freePort();
    await host.putLink({ actor: ECHO, contract: 'wascc:http_server', values: { PORT: String(ports.echo), ADDRESS: '127.0.0.1' } });
    await host.putLink({ actor: KVCOUNTER, contract: 'wascc:http_server', values: { PORT: String(ports.kvcounter), ADDRESS: '127.0.0.1' } });
    await host.putLink({ actor: KVCOUNTER, contract: 'wascc:keyvalue', values: { URL: redis.url } });
    await host.putLink({ actor: toolbox.id, contract: HTTP_SERVER, values: { PORT: String(ports.toolbox), ADDRESS: '127.0.0.1' } });
    await host.putLink({ actor: toolbox.id, contract: LOGGING, values: {} });
  });

  after(async () => {
    await host.stop();
    await redis.stop();
  });

  it('echo answers any request with what it decoded', async () => {
    const r = await get(ports.echo!, '/some/path?x=1&y=2', { method: 'POST', body: 'payload', headers: { 'x-test': 'yes' } });
    assert.equal(r.status, 200);
    const body = JSON.parse(r.text);
    assert.equal(body.method, 'POST');
    assert.equal(body.path, '/some/path');
    assert.equal(body.query_string, 'x=1&y=2');
    assert.equal(body.headers['x-test'], 'yes');
    assert.deepEqual(body.body, [...Buffer.from('payload')]);
  });

  it('kvcounter counts per path in Redis, one higher each time', async () => {
    const first = JSON.parse((await get(ports.kvcounter!, '/a/b')).text);
    const second = JSON.parse((await get(ports.kvcounter!, '/a/b')).text);
    assert.equal(second.counter, first.counter + 1);
    assert.deepEqual(JSON.parse((await get(ports.kvcounter!, '/other')).text), { counter: 1 });
    // The counter really lives in Redis under waSCC's key (path with / replaced by :).
    const client = new Redis(redis.url);
    try {
      assert.equal(await client.get(':a:b'), String(second.counter));
    } finally {
      client.disconnect();
    }
  });

  it('counts exactly under concurrent requests', async () => {
    const rs = await Promise.all(Array.from({ length: 60 }, () => get(ports.kvcounter!, '/concurrent')));
    const counters = rs.map((r) => JSON.parse(r.text).counter as number).sort((a, b) => a - b);
    assert.deepEqual(counters, Array.from({ length: 60 }, (_, i) => i + 1));
  });

  it('answers 500 on a trap and serves the next request', async () => {
    const trapped = await get(ports.toolbox!, '/boom!');
    assert.equal(trapped.status, 500);
    assert.doesNotMatch(trapped.text, /at .*\.ts/, 'no stack in the body');
    const next = await get(ports.toolbox!, '/fine');
    assert.equal(next.status, 200);
    assert.equal(next.text, TOOLBOX_HTTP_BODY);
  });

  it('answers 502 when the actor answers bytes that are not a response', async () => {
    const r = await get(ports.toolbox!, '/bad^');
    assert.equal(r.status, 502);
  });

  it('answers 5xx for a looping actor at its deadline while another actor keeps answering', async () => {
    const started = Date.now();
    const looping = get(ports.toolbox!, '/spin~');
    let answered = 0;
    while (Date.now() - started < 1200) {
      const r = await get(ports.echo!, '/during');
      assert.equal(r.status, 200);
      answered++;
    }
    const r = await looping;
    assert.ok(r.status >= 500 && r.status < 600, `status ${r.status}`);
    assert.ok(Date.now() - started >= 1500, 'answered at the deadline, not before');
    assert.ok(answered >= 10, `echo answered ${answered} times during the loop`);
    assert.equal((await get(ports.toolbox!, '/again')).status, 200);
  });

  it('refuses an oversized body with 413 before the actor sees it', async () => {
    const r = await get(ports.echo!, '/big', { method: 'POST', body: Buffer.alloc(128 * 1024, 1) });
    assert.equal(r.status, 413);
  });

  it('routes WriteLog and console lines to the actor\'s own log', async () => {
    await host.invokeActor(toolbox.id, 'wascc:logging/WriteLog', encode({ level: 2, body: 'careful now' }));
    const lines = [];
    for await (const l of host.logs.read(toolbox.id)) lines.push(l);
    assert.ok(lines.some((l) => l.stream === 'log' && l.level === 'warn' && l.msg === 'careful now'), JSON.stringify(lines.slice(-3)));
    assert.ok(lines.some((l) => l.stream === 'console' && l.msg === 'handling'));
    const echoLines = [];
    for await (const l of host.logs.read(ECHO)) echoLines.push(l);
    assert.ok(echoLines.every((l) => !l.msg.includes('careful')), 'lines stay with their actor');
  });

  it('keeps kvcounter on the memory backend when the link has no URL', async () => {
    const h = await Host.start({ workers: 1 }, { logger });
    try {
      await h.addProvider(new HttpServerProvider());
      await h.addProvider(new KeyValueProvider());
      await h.startActor(kvcounterBytes);
      const port = await freePort();
      await h.putLink({ actor: KVCOUNTER, contract: KEY_VALUE, values: {} });
      await h.putLink({ actor: KVCOUNTER, contract: HTTP_SERVER, values: { PORT: String(port), ADDRESS: '127.0.0.1' } });
      assert.deepEqual(JSON.parse((await get(port, '/m')).text), { counter: 1 });
      assert.deepEqual(JSON.parse((await get(port, '/m')).text), { counter: 2 });
    } finally {
      await h.stop();
    }
  });
});
