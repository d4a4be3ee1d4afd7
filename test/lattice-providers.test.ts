/**
 * Messaging, extras and the HTTP client as lattice provider processes (`wasmlet provider
 * messaging|extras|httpclient`) serving actors on a host in this process, over a nats-server the
 * test starts. A message crosses the lattice twice: publisher (host) → Publish/Request → the
 * messaging process → DeliverMessage → subscriber (host) → Publish to replyTo → back.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from 'nats';
import pino from 'pino';
import { EXTRAS_REQUESTS, HttpServerProvider, KeyValueProvider, performRequest, readExtrasReply } from '../capabilities/index.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNats, decode, encode, EXTRAS, generateKeyPair, Host, HTTP_CLIENT, LatticeTrust, MESSAGING, mintMemberCredentials, NatsBus, NatsClaimsStore, NatsLinkStore } from '../host/index.ts';
import { freePort, startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { eventually } from './helpers/wait.ts';
import { runWasmlet, startWasmlet, type WasmletProcess } from './helpers/wasmlet-process.ts';
import { publisherActor, subscriberActor } from './helpers/wascc-actors.ts';
import { toolboxActor, type SignedTestActor } from './helpers/wat.ts';

const logger = pino({ level: 'silent' });
const LATTICE = 'providers';

describe('messaging, extras and HTTP client as lattice provider processes', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let host: Host;
  let links: NatsLinkStore;
  let kv: KeyValueProvider;
  let port: number;
  let publisher: SignedTestActor;
  let subscriber: SignedTestActor;
  let toolbox: SignedTestActor;
  const procs: WasmletProcess[] = [];
  let dir: string;
  let ctlCreds: string;
  let claims: NatsClaimsStore;

  before(async () => {
    nats = await startNatsServer();
    // A closed lattice: the host here and each provider process hold a credential of its issuer.
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-lattice-providers-'));
    const issuer = generateKeyPair('account');
    ctlCreds = join(dir, 'ctl.creds');
    const mint = (role: 'host' | 'provider' | 'ctl') => mintMemberCredentials({ lattice: LATTICE, issuer: issuer.publicKey, issuerSeed: issuer.seed }, { role });
    await writeFile(ctlCreds, (await mint('ctl')).creds, { mode: 0o600 });
    for (const name of ['messaging', 'extras', 'httpclient']) {
      const file = join(dir, `${name}.creds`);
      await writeFile(file, (await mint('provider')).creds, { mode: 0o600 });
      procs.push(startWasmlet(['provider', name, '--log-level', 'warn', '--heartbeat-ms', '0'], { NATS_URL: nats.url, WASMLET_LATTICE_CREDS: file }));
    }
    nc = await connectNats({ servers: [nats.url] }, logger);
    const trust = LatticeTrust.closed(await mint('host'));
    const bus = new NatsBus(nc, trust, {}, logger);
    links = await NatsLinkStore.open(nc, trust, {}, logger);
    claims = await NatsClaimsStore.open(nc, trust, {}, logger);
    host = await Host.start({ workers: 2, lattice: LATTICE, hostId: bus.hostId }, { logger, bus, links, claims });
    kv = new KeyValueProvider();
    await host.addProvider(new HttpServerProvider());
    await host.addProvider(kv);
    [publisher, subscriber, toolbox] = [await publisherActor(), await subscriberActor(), await toolboxActor({ caps: ['wascc:extras', 'wascc:http_client'] })];
    for (const a of [publisher, subscriber, toolbox]) await host.startActor(a.bytes);
    port = await freePort();
    await Promise.all(procs.map((p, i) => p.waitFor(`wasmlet provider ${['messaging', 'extras', 'httpclient'][i]} is up`, 45_000)));
    await host.putLink({ actor: publisher.id, contract: 'wascc:http_server', values: { PORT: String(port), ADDRESS: '127.0.0.1' } });
    await host.putLink({ actor: publisher.id, contract: 'wascc:messaging', values: {} });
    await host.putLink({ actor: subscriber.id, contract: 'wascc:messaging', values: { SUBSCRIPTION: 'demo.requests, demo.echo' } });
    await host.putLink({ actor: subscriber.id, contract: 'wascc:keyvalue', values: {} });
    await host.putLink({ actor: toolbox.id, contract: EXTRAS, values: {} });
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 8000)));
    await host?.stop();
    await links?.close();
    await claims?.close();
    await nc?.close();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const counter = async (key: string) => {
    // Read through the subscriber's own link: it counts in the bucket that link gives it.
    const r = decode<{ value: string; exists: boolean }>(await kv.handle({ actor: subscriber.id, linkName: 'default', operation: 'Get', msg: encode({ key }) }));
    return r.exists ? Number(r.value) : 0;
  };
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, text: await res.text() };
  };

  it('publish and request/reply cross the lattice to the messaging process and back', async () => {
    // The provider process learns the links from the lattice's bucket; retry until it has.
    await eventually(async () => assert.deepEqual(await get('/over/the/lattice?request=1'), { status: 200, text: '/over/the/lattice' }), 'a request answered through the provider process', 20_000);
    const before = await counter('demo.requests');
    for (let i = 0; i < 3; i++) assert.equal((await get('/counted')).status, 200);
    await eventually(async () => assert.equal(await counter('demo.requests'), before + 3), 'three deliveries counted');
  });

  it('the subscription follows a link deleted and put on the lattice', async () => {
    await host.deleteLink(subscriber.id, MESSAGING);
    await eventually(async () => assert.equal((await get('/gone?request=1')).status, 500), 'requests fail once the subscription is gone', 10_000);
    await host.putLink({ actor: subscriber.id, contract: MESSAGING, values: { SUBSCRIPTION: 'demo.requests, demo.echo' } });
    await eventually(async () => assert.equal((await get('/back?request=1')).text, '/back'), 'answered again', 10_000);
  });

  it('extras in their own process: one sequence for every instance of the actor', async () => {
    const ask = async (op: 'RequestSequence' | 'RequestGuid', msg: Uint8Array) => readExtrasReply(op, decode(await host.invokeActor(toolbox.id, `wascc:extras/${op}`, msg)));
    await eventually(() => ask('RequestGuid', EXTRAS_REQUESTS.enum.RequestGuid()), 'the extras process serves', 10_000);
    const seq = (await Promise.all(Array.from({ length: 20 }, () => ask('RequestSequence', EXTRAS_REQUESTS.struct.RequestSequence())))).map(Number);
    assert.equal(new Set(seq).size, 20, 'no number repeated');
    const first = Math.min(...seq);
    assert.deepEqual([...seq].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => first + i), 'no number skipped');
  });

  it('the HTTP client in its own process: allowed hosts only', async () => {
    const server: Server = createServer((req, res) => res.end(`hello ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    try {
      await host.putLink({ actor: toolbox.id, contract: HTTP_CLIENT, values: {} });
      await eventually(() => assert.rejects(host.invokeActor(toolbox.id, 'wascc:http_client/PerformRequest', performRequest(url)), /set ALLOWED_HOSTS/), 'refused without ALLOWED_HOSTS', 10_000);
      await host.putLink({ actor: toolbox.id, contract: HTTP_CLIENT, values: { ALLOWED_HOSTS: '127.0.0.1' } });
      const res = await eventually(async () => decode<{ statusCode: number; body: Uint8Array }>(await host.invokeActor(toolbox.id, 'wascc:http_client/PerformRequest', performRequest(url))), 'allowed', 10_000);
      assert.equal(res.statusCode, 200);
      assert.equal(Buffer.from(res.body).toString(), 'hello /x');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('ctl get inventory lists the three providers', async () => {
    const r = await runWasmlet(['ctl', 'get', 'inventory', '--json'], { NATS_URL: nats.url, WASMLET_LATTICE_CREDS: ctlCreds });
    assert.equal(r.code, 0, r.stderr);
    const inventory = JSON.parse(r.stdout) as { providers: { name: string; contract: string; state: string }[] }[];
    const providers = inventory.flatMap((h) => h.providers).map((p) => `${p.name} ${p.contract} ${p.state}`).sort();
    for (const want of ['extras wasmlet:extras running', 'httpclient wasmlet:httpclient running', 'messaging wasmlet:messaging running']) assert.ok(providers.includes(want), `${want} in ${providers.join('; ')}`);
  });
});
