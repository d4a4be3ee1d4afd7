/**
 * Actors that talk through messaging, on one host: a waPC publisher behind the HTTP server and a
 * waPC subscriber that counts what it receives in key-value and answers requests (test actors
 * that speak waSCC's messaging codec, see helpers/wascc-actors.ts). Run on the in-process
 * broker, then on a real nats-server where plain NATS clients join in. Extras and the HTTP
 * client are driven by the toolbox actor with waSCC's payloads.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { EXTRAS_REQUESTS, ExtrasProvider, HttpClientProvider, HttpServerProvider, KeyValueProvider, MessagingProvider, performRequest, readExtrasReply } from '../capabilities/index.ts';
import { decode, encode, EXTRAS, Host, HTTP_CLIENT, HTTP_SERVER, LOGGING, MESSAGING } from '../host/index.ts';
import { freePort, startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { eventually } from './helpers/wait.ts';
import { publisherActor, subscriberActor } from './helpers/wascc-actors.ts';
import { toolboxActor, type SignedTestActor } from './helpers/wat.ts';

const logger = pino({ level: 'silent' });
/** An actor id that only reads the counters (a link, no module). */

interface Setup {
  host: Host;
  kv: KeyValueProvider;
  port: number;
  publisher: SignedTestActor;
  subscriber: SignedTestActor;
  toolbox: SignedTestActor;
}

async function setUp(messagingValues: Record<string, string>): Promise<Setup> {
  const host = await Host.start({ workers: 2, deadlineMs: 3000 }, { logger });
  const kv = new KeyValueProvider();
  await host.addProvider(new HttpServerProvider());
  await host.addProvider(kv);
  await host.addProvider(new MessagingProvider());
  await host.addProvider(new ExtrasProvider());
  await host.addProvider(new HttpClientProvider({ timeoutMs: 2000 }));
  const publisher = await publisherActor();
  const subscriber = await subscriberActor();
  const toolbox = await toolboxActor({ caps: ['wascc:extras', 'wascc:http_client', 'wascc:messaging', 'wascc:logging'] });
  for (const a of [publisher, subscriber, toolbox]) await host.startActor(a.bytes);
  const port = await freePort();
  await host.putLink({ actor: publisher.id, contract: 'wascc:http_server', values: { PORT: String(port), ADDRESS: '127.0.0.1' } });
  await host.putLink({ actor: publisher.id, contract: 'wascc:messaging', values: messagingValues });
  await host.putLink({ actor: subscriber.id, contract: 'wascc:messaging', values: { ...messagingValues, SUBSCRIPTION: 'demo.requests, demo.echo|responders' } });
  await host.putLink({ actor: subscriber.id, contract: 'wascc:keyvalue', values: {} });
  await new Promise((r) => setTimeout(r, 100));
  return { host, kv, port, publisher, subscriber, toolbox };
}

async function counter(s: Setup, key: string): Promise<number> {
  const r = decode<{ value: string; exists: boolean }>(await s.kv.handle({ actor: s.subscriber.id, linkName: 'default', operation: 'Get', msg: encode({ key }) }));
  return r.exists ? Number(r.value) : 0;
}

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

function behaviour(name: string, values: () => Record<string, string>, extra?: (s: () => Setup) => void): void {
  describe(`messaging between actors: ${name}`, () => {
    let s: Setup;
    before(async () => {
      s = await setUp(values());
    });
    after(async () => {
      await s?.host.stop();
    });

    it('each HTTP request\'s path is published, delivered to the subscriber and counted in key-value', async () => {
      for (let i = 0; i < 5; i++) assert.deepEqual(await get(s.port, '/orders/1'), { status: 200, text: '/orders/1' });
      await get(s.port, '/other');
      await eventually(async () => assert.equal(await counter(s, 'demo.requests'), 6), 'six messages counted');
      // Console lines come back with each call's result, just after its key-value Add.
      await eventually(async () => {
        const lines: string[] = [];
        for await (const r of s.host.logs.read(s.subscriber.id)) lines.push(r.msg);
        assert.equal(lines.filter((l) => l === 'demo.requests').length, 6, 'the subscriber logged each subject');
      }, 'six console lines');
    });

    it('request/reply between actors: the publisher\'s Request is answered by the subscriber', async () => {
      assert.deepEqual(await get(s.port, '/ask/me?request=1'), { status: 200, text: '/ask/me' });
    });

    it('a Request nobody answers is the publisher\'s error: HTTP 500, fast', async () => {
      await s.host.deleteLink(s.subscriber.id, MESSAGING);
      await new Promise((r) => setTimeout(r, 100));
      try {
        const t0 = Date.now();
        const r = await get(s.port, '/ask?request=1');
        assert.equal(r.status, 500);
        assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
      } finally {
        await s.host.putLink({ actor: s.subscriber.id, contract: MESSAGING, values: { ...values(), SUBSCRIPTION: 'demo.requests, demo.echo|responders' } });
        await new Promise((r) => setTimeout(r, 100));
      }
    });

    it('an actor without the messaging claim cannot publish, whatever its links', async () => {
      const plain = await toolboxActor({ name: 'no-messaging', caps: ['wascc:logging'] });
      await s.host.startActor(plain.bytes);
      await assert.rejects(s.host.putLink({ actor: plain.id, contract: MESSAGING, values: {} }), /does not claim wasmlet:messaging/);
      await assert.rejects(s.host.invokeActor(plain.id, 'wascc:messaging/Publish', encode({ subject: 'demo.requests', replyTo: '', body: Buffer.from('x') })), /not allowed to call wascc:messaging/);
      await s.host.stopActor(plain.id);
    });

    it('extras through a waPC actor: both codec generations, a sequence shared by all instances', async () => {
      await s.host.putLink({ actor: s.toolbox.id, contract: EXTRAS, values: {} });
      const ask = async (op: 'RequestGuid' | 'RequestSequence' | 'RequestRandom', msg: Uint8Array) => readExtrasReply(op, decode(await s.host.invokeActor(s.toolbox.id, `wascc:extras/${op}`, msg)));
      assert.match(String(await ask('RequestGuid', EXTRAS_REQUESTS.enum.RequestGuid())), /^[0-9a-f-]{36}$/);
      const r = Number(await ask('RequestRandom', EXTRAS_REQUESTS.struct.RequestRandom(10, 20)));
      assert.ok(r >= 10 && r < 20);
      // Two instances in two workers, calls in parallel: one sequence.
      const seq = await Promise.all(Array.from({ length: 40 }, (_, i) => ask('RequestSequence', i % 2 ? EXTRAS_REQUESTS.enum.RequestSequence() : EXTRAS_REQUESTS.struct.RequestSequence())));
      assert.deepEqual(seq.map(Number).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i));
    });

    it('the HTTP client through a waPC actor: allowed hosts only', async () => {
      const server: Server = createServer((req, res) => res.end(`you asked ${req.url}`));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hi`;
      try {
        await s.host.putLink({ actor: s.toolbox.id, contract: HTTP_CLIENT, values: {} });
        await assert.rejects(s.host.invokeActor(s.toolbox.id, 'wascc:http_client/PerformRequest', performRequest(url)), /set ALLOWED_HOSTS/);
        await s.host.putLink({ actor: s.toolbox.id, contract: HTTP_CLIENT, values: { ALLOWED_HOSTS: '127.0.0.1' } });
        const res = decode<{ statusCode: number; body: Uint8Array }>(await s.host.invokeActor(s.toolbox.id, 'wascc:http_client/PerformRequest', performRequest(url, { queryString: 'x=1' })));
        assert.equal(res.statusCode, 200);
        assert.equal(Buffer.from(res.body).toString(), 'you asked /hi?x=1');
      } finally {
        await new Promise((r) => server.close(r));
      }
    });

    extra?.(() => s);
  });
}

behaviour('in-process broker', () => ({}));

let nats: NatsServer;
before(async () => {
  nats = await startNatsServer();
});
after(async () => {
  await nats?.stop();
});

behaviour('NATS', () => ({ URL: nats.url }), (s) => {
  it('plain NATS clients: they see what actors publish, and actors get what they publish', async () => {
    const nc: NatsConnection = await connect({ servers: nats.url });
    try {
      const seen: string[] = [];
      nc.subscribe('demo.requests', { callback: (_e, m) => seen.push(new TextDecoder().decode(m.data)) });
      await nc.flush();
      const before = await counter(s(), 'demo.requests');
      assert.equal((await get(s().port, '/seen/by/nats')).status, 200);
      await eventually(() => assert.deepEqual(seen, ['/seen/by/nats']), 'the NATS client got the message');
      await eventually(async () => assert.equal(await counter(s(), 'demo.requests'), before + 1), 'the subscriber counted the actor\'s message');
      nc.publish('demo.requests', new TextEncoder().encode('from a plain client'));
      await eventually(async () => assert.equal(await counter(s(), 'demo.requests'), before + 2), 'the subscriber counted the client\'s');
      const answer = await nc.request('demo.echo', new TextEncoder().encode('ping'), { timeout: 2000 });
      assert.equal(new TextDecoder().decode(answer.data), 'ping', 'the subscriber answers NATS requests too');
    } finally {
      await nc.close();
    }
  });
});

// Keep unused contract ids referenced for readers: these are the aliases the actors claim.
void [HTTP_SERVER, LOGGING];
