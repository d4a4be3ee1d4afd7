/**
 * Two hosts on one closed NATS lattice, as two processes would run them (one process here,
 * separate connections, each with a member credential of its own): host A runs the unmodified
 * waSCC kvcounter actor and nothing else; host B runs only providers (HTTP server, key-value on
 * NATS KV). A request crosses the lattice twice: HTTP on B → kvcounter on A → Add on B's
 * key-value provider → back. Driven through the control interface, through a NATS outage, and
 * attacked: every message of a request replayed, links written into the bucket by hand, links
 * for contracts an actor does not claim.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { connect, type NatsConnection } from 'nats';
import { HttpServerProvider, KeyValueProvider } from '../capabilities/index.ts';
import { NatsKeyValueStore, natsBackend } from '../capabilities/index.ts';
import { generateKeyPair, Host, isWasmletError, LatticeTrust, latticeBucket, mintMemberCredentials, type MemberRole } from '../host/index.ts';
import { connectNats } from '../host/index.ts';
import { ControlClient, ControlServer, type CloudEvent } from '../host/index.ts';
import { hostControl } from '../host/index.ts';
import { NatsBus } from '../host/index.ts';
import { NatsClaimsStore } from '../host/index.ts';
import { NatsLinkStore } from '../host/index.ts';
import { freePort, startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { toolboxActor } from './helpers/wat.ts';
import { eventually } from './helpers/wait.ts';

const logger = pino({ level: 'silent' });
const kvcounterPath = fileURLToPath(new URL('../../shared/fixtures/wascc/kvcounter.wasm', import.meta.url));
const echoPath = fileURLToPath(new URL('../../shared/fixtures/wascc/echo.wasm', import.meta.url));
const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const ECHO = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const LATTICE = 'e2e';
const issuerKey = generateKeyPair('account');
const issuer = { lattice: LATTICE, issuer: issuerKey.publicKey, issuerSeed: issuerKey.seed };
const trustOf = async (role: MemberRole) => LatticeTrust.closed(await mintMemberCredentials(issuer, { role }));

interface LatticeHost {
  host: Host;
  nc: NatsConnection;
  ctl: ControlServer;
  trust: LatticeTrust;
  stop(): Promise<void>;
}

async function latticeHost(server: NatsServer, workers: number): Promise<LatticeHost> {
  const nc = await connectNats({ servers: [server.url], reconnect: { waitMs: 100, jitterMs: 0 } }, logger);
  const trust = await trustOf('host');
  const bus = new NatsBus(nc, trust, {}, logger);
  const links = await NatsLinkStore.open(nc, trust, {}, logger);
  const claims = await NatsClaimsStore.open(nc, trust, {}, logger);
  const host = await Host.start({ workers, lattice: LATTICE, hostId: bus.hostId, deadlineMs: 2000, labels: { role: workers ? 'actors' : 'providers' } }, { logger, bus, links, claims });
  const ctl = new ControlServer(nc, trust, hostControl(host, { load: (ref) => readFile(ref) }), { heartbeatIntervalMs: 0 }, logger);
  await ctl.start();
  return {
    host,
    nc,
    ctl,
    trust,
    async stop() {
      await ctl.stop();
      await host.stop();
      await bus.close();
      await links.close();
      await claims.close();
      await nc.close();
    },
  };
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

async function count(port: number, path: string): Promise<number> {
  const r = await get(port, path);
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body}`);
  return (JSON.parse(r.body) as { counter: number }).counter;
}

describe('a closed lattice of two hosts over NATS', () => {
  let server: NatsServer;
  let a: LatticeHost;
  let b: LatticeHost;
  let client: ControlClient;
  let clientNc: NatsConnection;
  let port: number;
  const events: CloudEvent[] = [];
  let stream: ReturnType<ControlClient['watch']>;

  before(async () => {
    server = await startNatsServer();
    a = await latticeHost(server, 2);
    b = await latticeHost(server, 0);
    await b.host.addProvider(new HttpServerProvider());
    await b.host.addProvider(new KeyValueProvider({}, { nats: natsBackend({ connection: b.nc }) }));
    clientNc = await connectNats({ servers: [server.url] }, logger);
    client = new ControlClient(clientNc, await trustOf('ctl'), { gatherMs: 300 });
    stream = client.watch();
    void (async () => {
      for await (const e of stream) events.push(e);
    })();
    await client.flush();
    port = await freePort();
  });

  after(async () => {
    stream?.close();
    await clientNc?.close();
    await b?.stop();
    await a?.stop();
    await server?.stop();
  });

  it('ctl starts the actor on A and links it to providers on B; HTTP on B counts through A into NATS KV', async () => {
    await assert.rejects(client.startActor({ ref: kvcounterPath }, b.host.id), /runs no actors/);
    const started = await client.startActor({ ref: kvcounterPath, maxConcurrency: 1, maxMemoryMiB: 32 }, a.host.id);
    assert.equal(started.actor.id, KVCOUNTER);
    assert.deepEqual([started.actor.maxConcurrency, started.actor.maxMemoryMiB], [1, 32], 'the per-actor limits reached the host');
    await client.putLink({ actor: KVCOUNTER, contract: 'wascc:http_server', values: { PORT: String(port), ADDRESS: '127.0.0.1' } });
    await client.putLink({ actor: KVCOUNTER, contract: 'wascc:keyvalue', values: { BACKEND: 'nats', BUCKET: 'e2e_counters' } });

    // Whichever host took the link requests, both learn them through the lattice bucket.
    assert.equal(await eventually(() => count(port, '/a/b'), 'first count', 10_000), 1);
    assert.equal(await count(port, '/a/b'), 2);
    assert.equal(await count(port, '/other'), 1);
    const store = await NatsKeyValueStore.open(clientNc, 'e2e_counters');
    assert.deepEqual(await store.get(':a:b'), { value: '2', exists: true }, 'the counter lives in NATS KV');
    await store.close();
  });

  it('ctl sees both hosts, their inventories, links, claims and the lifecycle events', async () => {
    const hosts = await client.getHosts();
    assert.deepEqual(hosts.map((h) => h.hostId).sort(), [a.host.id, b.host.id].sort());
    const inv = await client.getInventory();
    assert.deepEqual(inv.find((i) => i.hostId === a.host.id)?.actors.map((x) => x.id), [KVCOUNTER]);
    assert.deepEqual(inv.find((i) => i.hostId === b.host.id)?.providers.map((p) => p.contract).sort(), ['wasmlet:httpserver', 'wasmlet:keyvalue']);
    assert.deepEqual((await client.getLinks()).map((l) => l.contract).sort(), ['wasmlet:httpserver', 'wasmlet:keyvalue']);
    assert.deepEqual((await client.getClaims()).map((c) => c.wascap.name), ['Key Value Counter']);
    const types = events.map((e) => e.type);
    assert.ok(types.includes('dev.wasmlet.actor_started'), types.join(', '));
    assert.equal(types.filter((t) => t === 'dev.wasmlet.link_put').length, 2, 'each link put announced once');
  });

  it('replay: every message on the lattice during one request, republished five times, moves the counter by exactly one', async () => {
    const before = await count(port, '/replay');
    const raw = await connect({ servers: server.url });
    const captured: { subject: string; data: Uint8Array; reply?: string }[] = [];
    for (const s of [`${a.trust.prefix}.>`, '_INBOX.>']) {
      raw.subscribe(s, { callback: (_e, m) => captured.push({ subject: m.subject, data: m.data, ...(m.reply ? { reply: m.reply } : {}) }) });
    }
    await raw.flush();
    assert.equal(await count(port, '/replay'), before + 1);
    await raw.flush();
    const subjects = new Set(captured.map((c) => c.subject.split('.').slice(0, 5).join('.')));
    assert.ok(captured.length >= 4, `captured ${captured.length} messages: ${[...subjects].join(', ')}`);
    for (let i = 0; i < 5; i++) for (const c of captured) raw.publish(c.subject, c.data, c.reply ? { reply: c.reply } : undefined);
    await raw.flush();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await count(port, '/replay'), before + 2, 'only the next genuine request counted');
    await raw.close();
  });

  it('links written into the bucket by hand, or for contracts the actor does not claim, are refused whoever answers', async () => {
    await client.startActor({ ref: echoPath }, a.host.id);
    await eventually(async () => assert.ok(b.host.claimsOf(ECHO), 'B learns the claims of an actor A runs'), 'claims propagation', 5000);
    // echo claims only the HTTP server: a key-value link is refused, by A (which runs it) or by B.
    for (let i = 0; i < 4; i++) {
      await assert.rejects(client.putLink({ actor: ECHO, contract: 'wascc:keyvalue', values: {} }), (err: unknown) => isWasmletError(err) && err.code === 'LINK_NOT_CLAIMED' && /does not claim wasmlet:keyvalue/.test(err.message));
    }
    // A plain client writes an HTTP link for echo straight into the bucket: no member takes it.
    // (The ctl's NATS connection writes it: what a plain NATS client could, with no credential in the record.)
    const kv = await clientNc.jetstream().views.kv(latticeBucket(LATTICE, a.trust.scope, 'links'));
    const echoPort = await freePort();
    await kv.put(`${ECHO}.wasmlet:httpserver.default`.replace(/:/g, '=3A'), JSON.stringify({ actor: ECHO, contract: 'wasmlet:httpserver', linkName: 'default', values: { PORT: String(echoPort), ADDRESS: '127.0.0.1' } }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.host.links.get(ECHO, 'wasmlet:httpserver'), undefined);
    await assert.rejects(get(echoPort, '/'), 'nothing listens for it');
    // A ctl member's link for an actor whose claims lack the HTTP server, written into the bucket
    // directly (not through a host): B's HTTP provider never serves it.
    const narrow = await toolboxActor({ name: 'kv only', caps: ['wascc:keyvalue'] });
    const narrowPort = await freePort();
    await a.host.startActor(narrow.bytes);
    await eventually(async () => assert.ok(b.host.claimsOf(narrow.id), 'B learns the claims of the narrow actor'), 'claims of the narrow actor', 5000);
    const store = await NatsLinkStore.open(clientNc, client.trust, {}, logger);
    await store.put({ actor: narrow.id, contract: 'wasmlet:httpserver', linkName: 'default', values: { PORT: String(narrowPort), ADDRESS: '127.0.0.1' } });
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(get(narrowPort, '/'), 'the HTTP provider does not serve an actor that does not claim it');
    await store.delete(narrow.id, 'wasmlet:httpserver');
    await store.close();
  });

  it('a NATS outage turns requests into fast 503s; after the restart the count goes on where it was', async () => {
    assert.equal(await count(port, '/outage'), 1);
    await server.kill();
    const t0 = Date.now();
    const res = await fetch(`http://127.0.0.1:${port}/outage`, { signal: AbortSignal.timeout(5000) });
    await res.text();
    assert.equal(res.status, 503);
    assert.ok(Date.now() - t0 < 1000, `answered after ${Date.now() - t0} ms`);
    await server.restart();
    assert.equal(await eventually(() => count(port, '/outage'), 'count after the restart', 15_000), 2);
  });
});
