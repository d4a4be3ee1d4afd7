/**
 * Two hosts on one NATS lattice, as two processes would run them (one process here, separate
 * connections): host A runs the unmodified waSCC kvcounter actor and nothing else; host B runs
 * only providers (HTTP server, key-value on NATS KV). A request crosses the lattice twice:
 * HTTP on B → kvcounter on A → Add on B's key-value provider → back. Driven through the control
 * interface, and through a NATS outage.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { NatsConnection } from 'nats';
import { HttpServerProvider, KeyValueProvider } from '../capabilities/index.ts';
import { NatsKeyValueStore, natsBackend } from '../capabilities/index.ts';
import { generateKeyPair, Host } from '../host/index.ts';
import { connectNats } from '../host/index.ts';
import { ControlClient, ControlServer, type CloudEvent } from '../host/index.ts';
import { hostControl } from '../host/index.ts';
import { NatsBus } from '../host/index.ts';
import { NatsClaimsStore } from '../host/index.ts';
import { NatsLinkStore } from '../host/index.ts';
import { freePort, startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { eventually } from './helpers/wait.ts';

const logger = pino({ level: 'silent' });
const kvcounterPath = fileURLToPath(new URL('../../shared/fixtures/wascc/kvcounter.wasm', import.meta.url));
const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const LATTICE = 'e2e';

interface LatticeHost {
  host: Host;
  nc: NatsConnection;
  ctl: ControlServer;
  stop(): Promise<void>;
}

async function latticeHost(server: NatsServer, workers: number): Promise<LatticeHost> {
  const nc = await connectNats({ servers: [server.url], reconnect: { waitMs: 100, jitterMs: 0 } }, logger);
  const bus = new NatsBus(nc, { lattice: LATTICE, hostSeed: generateKeyPair('server').seed }, logger);
  const links = await NatsLinkStore.open(nc, { lattice: LATTICE }, logger);
  const claims = await NatsClaimsStore.open(nc, { lattice: LATTICE });
  const host = await Host.start({ workers, lattice: LATTICE, hostId: bus.hostId, deadlineMs: 2000, labels: { role: workers ? 'actors' : 'providers' } }, { logger, bus, links });
  const ctl = new ControlServer(nc, hostControl(host, { load: (ref) => readFile(ref) }), { lattice: LATTICE, heartbeatIntervalMs: 0 }, logger, { claims });
  await ctl.start();
  return {
    host,
    nc,
    ctl,
    async stop() {
      await ctl.stop();
      await host.stop();
      await bus.close();
      await links.close();
      await nc.close();
    },
  };
}

async function count(port: number, path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text}`);
  return (JSON.parse(text) as { counter: number }).counter;
}

describe('a lattice of two hosts over NATS', () => {
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
    client = new ControlClient(clientNc, { lattice: LATTICE, gatherMs: 300 });
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
