import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { NatsConnection } from 'nats';
import { startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import { generateKeyPair } from '../claims/keys.ts';
import { isWasmletError } from '../errors.ts';
import { connectNats } from './connection.ts';
import { ControlClient, ControlServer, CTL_NO_HOST, type CloudEvent } from './control.ts';
import { FakeHost, TEST_ACTOR as ACTOR } from './test-support.ts';
import { NatsClaimsStore } from './nats-claims-store.ts';
import { NatsLinkStore } from './nats-link-store.ts';
import { ctlSubject } from './subjects.ts';

const silent = pino({ level: 'silent' });

let server: NatsServer;
const conns: NatsConnection[] = [];
const cleanups: (() => Promise<void>)[] = [];
let n = 0;

before(async () => {
  server = await startNatsServer();
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  await server?.stop();
});

async function conn(): Promise<NatsConnection> {
  const nc = await connectNats({ servers: [server.url] }, silent);
  conns.push(nc);
  return nc;
}

interface Lattice {
  id: string;
  client: ControlClient;
  hosts: { host: FakeHost; ctl: ControlServer }[];
}

async function lattice(hostCount: number, options: { heartbeatIntervalMs?: number } = {}): Promise<Lattice> {
  const id = `ctl${n++}`;
  const hosts: Lattice['hosts'] = [];
  for (let i = 0; i < hostCount; i++) {
    const nc = await conn();
    const links = await NatsLinkStore.open(nc, { lattice: id }, silent);
    const claims = await NatsClaimsStore.open(nc, { lattice: id });
    const host = new FakeHost(links, `z${i}`);
    const ctl = new ControlServer(nc, host, { lattice: id, heartbeatIntervalMs: options.heartbeatIntervalMs ?? 0, version: '9.9.9' }, silent, { claims });
    await ctl.start();
    cleanups.push(async () => {
      await ctl.stop();
      await links.close();
    });
    hosts.push({ host, ctl });
  }
  const client = new ControlClient(await conn(), { lattice: id, gatherMs: 300, timeoutMs: 2000 });
  return { id, client, hosts };
}

async function rejectsCode(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isWasmletError(err), String(err));
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

test('get hosts gathers every host; an empty lattice gives none', async () => {
  const L = await lattice(2);
  const hosts = await L.client.getHosts();
  assert.deepEqual(hosts.map((h) => h.hostId), L.hosts.map((h) => h.host.id).sort());
  for (const h of hosts) {
    assert.equal(h.lattice, L.id);
    assert.equal(h.version, '9.9.9');
    assert.match(h.labels.zone!, /^z[01]$/);
    assert.equal(h.providers, 1);
    assert.ok(h.uptimeMs >= 0);
  }
  const empty = await lattice(0);
  assert.deepEqual(await empty.client.getHosts(), []);
});

test('inventory of every host or of one; an unknown host is CTL_NO_HOST', async () => {
  const L = await lattice(2);
  const [a, b] = L.hosts as [Lattice['hosts'][0], Lattice['hosts'][0]];
  await L.client.startActor({ ref: 'kvcounter.wasm' }, a.host.id);
  const all = await L.client.getInventory();
  assert.equal(all.length, 2);
  assert.deepEqual(all.find((i) => i.hostId === a.host.id)?.actors.map((x) => x.id), [ACTOR]);
  assert.deepEqual(all.find((i) => i.hostId === b.host.id)?.actors, []);
  const one = await L.client.getInventory(b.host.id);
  assert.equal(one.length, 1);
  assert.equal(one[0]!.hostId, b.host.id);
  assert.equal(one[0]!.labels.zone, 'z1');
  await rejectsCode(L.client.getInventory(generateKeyPair('server').publicKey), CTL_NO_HOST, /no host N[A-Z2-7]+ on lattice/);
});

test('start actor on a chosen host or any host; a refusal keeps its code and is announced', async () => {
  const L = await lattice(2);
  const [a, b] = L.hosts as [Lattice['hosts'][0], Lattice['hosts'][0]];
  const events: CloudEvent[] = [];
  const stream = L.client.watch({ types: ['actor_start_failed'] });
  const collecting = (async () => {
    for await (const e of stream) events.push(e);
  })();
  await L.client.flush();
  const started = await L.client.startActor({ ref: '/srv/kvcounter.wasm', config: { A: '1' } }, b.host.id);
  assert.equal(started.hostId, b.host.id);
  assert.equal(started.actor.id, ACTOR);
  assert.deepEqual(b.host.actors.get(ACTOR)?.config, { A: '1' });
  assert.deepEqual((await L.client.getClaims()).map((c) => c.wascap.name), ['/srv/kvcounter.wasm'], 'claims of an actor started through ctl are recorded');
  assert.equal(a.host.actors.size, 0);
  const anywhere = await L.client.startActor({ ref: 'echo.wasm' });
  assert.ok([a.host.id, b.host.id].includes(anywhere.hostId));
  await rejectsCode(L.client.startActor({ ref: 'unsigned.wasm' }, a.host.id), 'CLAIMS_MISSING', /carries no jwt section/);
  await new Promise((r) => setTimeout(r, 100));
  stream.close();
  await collecting;
  assert.equal(events.length, 1);
  assert.equal(events[0]!.type, 'dev.wasmlet.actor_start_failed');
  assert.deepEqual((events[0]!.data as { ref: string }).ref, 'unsigned.wasm');
});

test('stop actor: everywhere it runs, or on one host; not running there is ACTOR_NOT_FOUND', async () => {
  const L = await lattice(3);
  const [a, b, c] = L.hosts as [Lattice['hosts'][0], Lattice['hosts'][0], Lattice['hosts'][0]];
  await L.client.startActor({ ref: 'x.wasm' }, a.host.id);
  await L.client.startActor({ ref: 'x.wasm' }, b.host.id);
  assert.deepEqual(await L.client.stopActor(ACTOR), [a.host.id, b.host.id].sort());
  assert.equal(a.host.actors.size + b.host.actors.size + c.host.actors.size, 0);
  assert.deepEqual(await L.client.stopActor(ACTOR), [], 'nobody runs it any more');
  await rejectsCode(L.client.stopActor(ACTOR, c.host.id), 'ACTOR_NOT_FOUND', /not running on host/);
  await L.client.startActor({ ref: 'x.wasm' }, c.host.id);
  assert.deepEqual(await L.client.stopActor(ACTOR, c.host.id), [c.host.id]);
});

test('link put/del through a host, visible to get links; errors keep their code; with no host, straight to the bucket', async () => {
  const L = await lattice(2);
  const put = await L.client.putLink({ actor: ACTOR, contract: 'wascc:keyvalue', values: { BUCKET: 'b', N: 3 } });
  assert.equal(put.via, 'host');
  assert.deepEqual(put.link, { actor: ACTOR, contract: 'wasmlet:keyvalue', linkName: 'default', values: { BUCKET: 'b', N: '3' } });
  // Every host's store learns it through the bucket.
  for (const h of L.hosts) {
    const deadline = Date.now() + 3000;
    while (!h.host.links.get(ACTOR, 'wasmlet:keyvalue') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(h.host.links.get(ACTOR, 'wasmlet:keyvalue'));
  }
  assert.deepEqual(await L.client.getLinks(), [put.link]);
  await rejectsCode(L.client.putLink({ actor: ACTOR, contract: 'wasmlet:httpserver', values: { PORT: 'nope' } }), 'LINK_INVALID', /PORT must be a port number/);
  assert.equal((await L.client.getLinks()).length, 1, 'a refused link is not kept');
  assert.deepEqual(await L.client.deleteLink(ACTOR, 'wascc:keyvalue'), { deleted: true, via: 'host' });
  assert.deepEqual(await L.client.deleteLink(ACTOR, 'wascc:keyvalue'), { deleted: false, via: 'host' });
  assert.deepEqual(await L.client.getLinks(), []);

  // No host up: the link waits in the bucket for hosts that join later.
  const empty = await lattice(0);
  const stored = await empty.client.putLink({ actor: ACTOR, contract: 'wasmlet:logging', linkName: 'audit', values: {} });
  assert.equal(stored.via, 'store');
  const late = await NatsLinkStore.open(await conn(), { lattice: empty.id }, silent);
  assert.equal(late.get(ACTOR, 'wasmlet:logging', 'audit')?.linkName, 'audit');
  await late.close();
  assert.deepEqual(await empty.client.deleteLink(ACTOR, 'wasmlet:logging', 'audit'), { deleted: true, via: 'store' });
});

test('claims recorded by hosts are listed by get claims', async () => {
  const L = await lattice(1);
  const claims = { jti: 'j', iat: 1, iss: 'AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5', sub: ACTOR, wascap: { name: 'Key Value Counter', hash: 'H', caps: ['wascc:keyvalue'] } };
  await L.hosts[0]!.ctl.actorStarted({ id: ACTOR, name: 'Key Value Counter', state: 'running' }, claims);
  assert.deepEqual(await L.client.getClaims(), [claims]);
});

test('watch: lifecycle CloudEvents and heartbeats, filtered by type, closable', async () => {
  const id = `ctl${n++}`;
  const client = new ControlClient(await conn(), { lattice: id });
  const all: CloudEvent[] = [];
  const stream = client.watch();
  const collecting = (async () => {
    for await (const e of stream) all.push(e);
  })();
  const beats = client.watch({ types: ['host_heartbeat'] });
  await client.flush();
  const nc = await conn();
  const links = await NatsLinkStore.open(nc, { lattice: id }, silent);
  const host = new FakeHost(links, 'w');
  const ctl = new ControlServer(nc, host, { lattice: id, heartbeatIntervalMs: 100 }, silent);
  await ctl.start();
  let beatCount = 0;
  for await (const e of beats) {
    assert.equal(e.type, 'dev.wasmlet.host_heartbeat');
    assert.equal((e.data as { hostId: string }).hostId, host.id);
    if (++beatCount === 3) break; // leaving the loop closes the stream
  }
  await ctl.actorStarted({ id: ACTOR, name: 'kv', state: 'running' });
  ctl.actorStopped(ACTOR);
  await ctl.stop();
  await links.close();
  await new Promise((r) => setTimeout(r, 200));
  stream.close();
  await collecting;
  const types = all.map((e) => e.type.replace('dev.wasmlet.', ''));
  assert.equal(types[0], 'host_started');
  assert.ok(types.filter((t) => t === 'host_heartbeat').length >= 3);
  const tail = types.filter((t) => t !== 'host_heartbeat');
  assert.deepEqual(tail, ['host_started', 'actor_started', 'actor_stopped', 'host_stopped']);
  for (const e of all) {
    assert.equal(e.specversion, '1.0');
    assert.equal(e.source, `wasmlet://${id}/${host.id}`);
    assert.ok(!Number.isNaN(Date.parse(e.time)));
    assert.match(e.id, /^[0-9a-f-]{36}$/);
    assert.equal(e.datacontenttype, 'application/json');
  }
  assert.equal(new Set(all.map((e) => e.id)).size, all.length, 'event ids are unique');
  // After stop the host answers nothing.
  assert.deepEqual(await new ControlClient(nc, { lattice: id, gatherMs: 200 }).getHosts(), []);
});

test('malformed control requests get BAD_REQUEST; the server keeps serving', async () => {
  const L = await lattice(1);
  const raw = await conn();
  const ask = async (subject: string, body: string) => JSON.parse(new TextDecoder().decode((await raw.request(subject, new TextEncoder().encode(body), { timeout: 2000 })).data));
  const notJson = await ask(ctlSubject(L.id, 'link', 'put'), '{nope');
  assert.deepEqual(notJson.ok, false);
  assert.equal(notJson.error.code, 'BAD_REQUEST');
  assert.match(notJson.error.message, /not JSON/);
  const missing = await ask(ctlSubject(L.id, 'actor', 'start'), '{"config":{}}');
  assert.equal(missing.error.code, 'BAD_REQUEST');
  assert.match(missing.error.message, /ref/);
  const extra = await ask(ctlSubject(L.id, 'link', 'del'), JSON.stringify({ actor: ACTOR, contract: 'c', bogus: 1 }));
  assert.match(extra.error.message, /bogus/);
  assert.equal((await L.client.getHosts()).length, 1);
});
