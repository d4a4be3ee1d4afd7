/**
 * TypeScript component actors on the new contracts, through the SDK: messaging (publish, request,
 * a `handleMessage` export) talking with waPC actors that speak waSCC's codec, the HTTP client
 * (allowed hosts only, errors as values) and extras.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { BuiltActor } from '../actors-sdk/index.ts';
import { ExtrasProvider, HttpClientProvider, HttpServerProvider, KeyValueProvider, MessagingProvider } from '../capabilities/index.ts';
import { decode, encode, EXTRAS, Host, HTTP_CLIENT, HTTP_SERVER, KEY_VALUE, MESSAGING, wapcRuntime } from '../host/index.ts';
import { buildTestActor, testComponentRuntime, toolboxProject } from './helpers/component-actors.ts';
import { freePort } from './helpers/nats-server.ts';
import { eventually } from './helpers/wait.ts';
import { publisherActor, subscriberActor } from './helpers/wascc-actors.ts';
import type { SignedTestActor } from './helpers/wat.ts';

const logger = pino({ level: 'silent' });

describe('component actors on messaging, HTTP client and extras', () => {
  let host: Host;
  let kv: KeyValueProvider;
  let toolbox: BuiltActor;
  let subscriber: SignedTestActor;
  let publisher: SignedTestActor;
  let port: number;
  let pubPort: number;
  let server: Server;
  let serverUrl: string;

  before(async () => {
    server = createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`${req.method} ${req.url} from ${req.headers['x-from'] ?? '?'}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    toolbox = await buildTestActor(toolboxProject);
    host = await Host.start({ workers: 2, deadlineMs: 5000 }, { logger, runtimes: [wapcRuntime, testComponentRuntime()] });
    kv = new KeyValueProvider();
    for (const p of [new HttpServerProvider(), kv, new MessagingProvider(), new HttpClientProvider(), new ExtrasProvider()]) await host.addProvider(p);
    subscriber = await subscriberActor();
    publisher = await publisherActor({ subject: 'to.component', requestSubject: 'component.svc' });
    await host.startActor(toolbox.bytes);
    await host.startActor(subscriber.bytes);
    await host.startActor(publisher.bytes);
    [port, pubPort] = [await freePort(), await freePort()];
    const id = toolbox.subject;
    await host.putLink({ actor: id, contract: HTTP_SERVER, values: { PORT: String(port), ADDRESS: '127.0.0.1' } });
    await host.putLink({ actor: id, contract: KEY_VALUE, values: {} });
    await host.putLink({ actor: id, contract: MESSAGING, values: { SUBSCRIPTION: 'to.component, component.svc' } });
    await host.putLink({ actor: id, contract: HTTP_CLIENT, values: { ALLOWED_HOSTS: '127.0.0.1' } });
    await host.putLink({ actor: id, contract: EXTRAS, values: {} });
    await host.putLink({ actor: subscriber.id, contract: MESSAGING, values: { SUBSCRIPTION: 'to.wapc' } });
    await host.putLink({ actor: subscriber.id, contract: KEY_VALUE, values: {} });
    await host.putLink({ actor: publisher.id, contract: MESSAGING, values: {} });
    await host.putLink({ actor: publisher.id, contract: HTTP_SERVER, values: { PORT: String(pubPort), ADDRESS: '127.0.0.1' } });
  });

  after(async () => {
    await host?.stop();
    server?.close();
  });

  const call = async (path: string, body?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, body === undefined ? {} : { method: 'POST', body });
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  const counter = async (key: string) => {
    const r = decode<{ value: string; exists: boolean }>(await kv.handle({ actor: subscriber.id, linkName: 'default', operation: 'Get', msg: encode({ key }) }));
    return r.exists ? Number(r.value) : 0;
  };

  it('a component publishes; the waPC subscriber receives it (waSCC codec both ways)', async () => {
    assert.deepEqual(await call('/publish?subject=to.wapc', 'from a component'), { ok: true });
    await eventually(async () => assert.equal(await counter('to.wapc'), 1), 'the waPC subscriber counted it');
  });

  it('a waPC publisher publishes; the component\'s handleMessage receives it', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`http://127.0.0.1:${pubPort}/p${i}`)).status, 200);
    await eventually(async () => assert.equal(await counter('msg:to.component'), 3), 'the component counted three');
  });

  it('request/reply both ways between a component and a waPC actor', async () => {
    // waPC publisher → Request → the component answers `got <path>`.
    const res = await fetch(`http://127.0.0.1:${pubPort}/asked?request=1`);
    assert.equal(await res.text(), 'got /asked');
    // The component → Request → the waPC subscriber echoes the body.
    await host.putLink({ actor: subscriber.id, contract: MESSAGING, values: { SUBSCRIPTION: 'to.wapc, wapc.echo' } });
    assert.deepEqual(await call('/request?subject=wapc.echo', 'echo me'), { ok: true, text: 'echo me' });
    const none = await call('/request?subject=nobody.home', 'x');
    assert.equal(none.ok, false);
    assert.equal((none.error as { code: string }).code, 'unavailable');
    const bad = await call('/request?subject=wapc.echo&timeoutMs=0', 'x');
    assert.equal((bad.error as { code: string }).code, 'bad-request');
  });

  it('a message the component fails is logged; the next ones arrive', async () => {
    const before = await counter('msg:to.component');
    await call('/publish?subject=to.component', 'fail');
    await call('/publish?subject=to.component', 'fine');
    await eventually(async () => assert.equal(await counter('msg:to.component'), before + 1), 'the next message counted');
  });

  it('httpClient.fetch reaches allowed hosts, and errors are values', async () => {
    const ok = await call(`/fetch?url=${encodeURIComponent(`${serverUrl}/x?y=1`)}&method=post`, 'b');
    assert.deepEqual(ok, { ok: true, status: 200, type: 'text/plain', text: 'POST /x?y=1 from toolbox' });
    const refused = await call(`/fetch?url=${encodeURIComponent('http://localhost:9/')}`);
    assert.equal(refused.ok, false);
    assert.equal((refused.error as { code: string }).code, 'not-allowed');
    const badUrl = await call(`/fetch?url=${encodeURIComponent('ftp://127.0.0.1/')}`);
    assert.equal((badUrl.error as { code: string }).code, 'bad-request');
  });

  it('extras: guid and random in the actor, the sequence from the provider', async () => {
    const a = (await call('/extras')) as { guid: string; random: { ok: boolean; value: number }; sequence: { ok: boolean; value: number }; bad: { ok: boolean; error: { code: string } } };
    assert.match(a.guid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(a.random.ok && a.random.value >= 5 && a.random.value < 10);
    assert.deepEqual(a.bad.error.code, 'bad-request');
    const b = (await call('/extras')) as typeof a;
    assert.deepEqual([a.sequence, b.sequence], [{ ok: true, value: 0 }, { ok: true, value: 1 }]);
  });
});
