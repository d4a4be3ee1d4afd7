import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { NatsConnection } from 'nats';
import { startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import { generateKeyPair } from '../claims/keys.ts';
import { signActor } from '../claims/claims.ts';
import { isWasmletError } from '../errors.ts';
import { connectNats } from './connection.ts';
import { ControlClient, ControlServer, CTL_NO_HOST, CTL_TIMEOUT, type CloudEvent } from './control.ts';
import { LatticeTrust } from './membership.ts';
import { FakeHost, TestIssuer, TEST_ACTOR as ACTOR } from './test-support.ts';
import { NatsClaimsStore } from './nats-claims-store.ts';
import { NatsLinkStore } from './nats-link-store.ts';
import { sealRecord } from './signed-record.ts';
import { signMessage } from './signed-message.ts';
import { ctlSubject, eventSubject, latticeBucket } from './subjects.ts';

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
  issuer: TestIssuer;
  ctlTrust: LatticeTrust;
  client: ControlClient;
  hosts: { host: FakeHost; ctl: ControlServer; trust: LatticeTrust }[];
}

async function lattice(hostCount: number, options: { heartbeatIntervalMs?: number; maxRequestBytes?: number } = {}): Promise<Lattice> {
  const id = `ctl${n++}`;
  const issuer = TestIssuer.create(id);
  const hosts: Lattice['hosts'] = [];
  for (let i = 0; i < hostCount; i++) {
    const nc = await conn();
    const trust = await issuer.trust('host');
    const links = await NatsLinkStore.open(nc, trust, {}, silent);
    const host = new FakeHost(links, `z${i}`, trust.self!.hostId);
    const ctl = new ControlServer(nc, trust, host, { heartbeatIntervalMs: options.heartbeatIntervalMs ?? 0, version: '9.9.9', ...(options.maxRequestBytes ? { maxRequestBytes: options.maxRequestBytes } : {}) }, silent);
    await ctl.start();
    cleanups.push(async () => {
      await ctl.stop();
      await links.close();
    });
    hosts.push({ host, ctl, trust });
  }
  const ctlTrust = await issuer.trust('ctl');
  const client = new ControlClient(await conn(), ctlTrust, { gatherMs: 300, timeoutMs: 2000 });
  return { id, issuer, ctlTrust, client, hosts };
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
  const late = await NatsLinkStore.open(await conn(), await empty.issuer.trust('host'), {}, silent);
  assert.equal(late.get(ACTOR, 'wasmlet:logging', 'audit')?.linkName, 'audit');
  await late.close();
  assert.deepEqual(await empty.client.deleteLink(ACTOR, 'wasmlet:logging', 'audit'), { deleted: true, via: 'store' });
});

test('claims recorded by hosts are listed by get claims; records by anyone else, or not matching their key, are ignored', async () => {
  const L = await lattice(1);
  const nc = await conn();
  const account = generateKeyPair('account');
  const signed = signActor(Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0]), { account: account.seed, name: 'Key Value Counter', caps: ['wascc:keyvalue'] });
  const store = await NatsClaimsStore.open(nc, L.hosts[0]!.trust, {}, silent);
  await store.record(signed.token, signed.claims);
  assert.deepEqual(await L.client.getClaims(), [signed.claims]);
  // A provider member, a ctl member and a plain client write claims straight into the bucket: ignored.
  const kv = await nc.jetstream().views.kv(latticeBucket(L.id, L.ctlTrust.scope, 'claims'));
  const other = signActor(Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0]), { account: account.seed, name: 'impostor', caps: ['wascc:http_server'] });
  const bucket = latticeBucket(L.id, L.ctlTrust.scope, 'claims');
  await kv.put(other.claims.sub, sealRecord(await L.issuer.trust('provider'), bucket, other.claims.sub, { token: other.token }));
  await kv.put(other.claims.sub, JSON.stringify(other.claims));
  // A host member's record whose token is for another actor, under this actor's key.
  await kv.put(other.claims.sub, sealRecord(L.hosts[0]!.trust, bucket, other.claims.sub, { token: signed.token }));
  assert.deepEqual((await L.client.getClaims()).map((c) => c.sub), [signed.claims.sub]);
  await store.close();
});

test('watch: lifecycle CloudEvents and heartbeats, filtered by type, closable', async () => {
  const id = `ctl${n++}`;
  const issuer = TestIssuer.create(id);
  const client = new ControlClient(await conn(), await issuer.trust('ctl'));
  const all: CloudEvent[] = [];
  const stream = client.watch();
  const collecting = (async () => {
    for await (const e of stream) all.push(e);
  })();
  const beats = client.watch({ types: ['host_heartbeat'] });
  await client.flush();
  const nc = await conn();
  const trust = await issuer.trust('host');
  const links = await NatsLinkStore.open(nc, trust, {}, silent);
  const host = new FakeHost(links, 'w', trust.self!.hostId);
  const ctl = new ControlServer(nc, trust, host, { heartbeatIntervalMs: 100 }, silent);
  await ctl.start();
  let beatCount = 0;
  for await (const e of beats) {
    assert.equal(e.type, 'dev.wasmlet.host_heartbeat');
    assert.equal((e.data as { hostId: string }).hostId, host.id);
    assert.equal((e.data as { insecure?: boolean }).insecure, undefined);
    if (++beatCount === 3) break; // leaving the loop closes the stream
  }
  ctl.actorStarted({ id: ACTOR, name: 'kv', state: 'running' });
  ctl.actorStopped(ACTOR);
  // Events nobody admitted signed (a plain client, a ctl member, another lattice's host) are skipped.
  const raw = await conn();
  const fake = new TextEncoder().encode(JSON.stringify({ specversion: '1.0', id: 'x', source: 's', type: 'dev.wasmlet.actor_started', data: {} }));
  const subject = eventSubject(trust.prefix, 'actor_started');
  raw.publish(subject, fake);
  raw.publish(subject, fake, { headers: signMessage(await issuer.trust('ctl'), subject, undefined, fake)! });
  raw.publish(subject, fake, { headers: signMessage(await TestIssuer.create(id).trust('host'), subject, undefined, fake)! });
  await raw.flush();
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
  assert.ok(client.skipped >= 3, `skipped ${client.skipped}`);
  for (const e of all) {
    assert.equal(e.specversion, '1.0');
    assert.equal(e.source, `wasmlet://${id}/${host.id}`);
    assert.ok(!Number.isNaN(Date.parse(e.time)));
    assert.match(e.id, /^[0-9a-f-]{36}$/);
    assert.equal(e.datacontenttype, 'application/json');
  }
  assert.equal(new Set(all.map((e) => e.id)).size, all.length, 'event ids are unique');
  // After stop the host answers nothing.
  assert.deepEqual(await new ControlClient(nc, await issuer.trust('ctl'), { gatherMs: 200 }).getHosts(), []);
});

test('malformed control requests from a ctl member get BAD_REQUEST; the server keeps serving', async () => {
  const L = await lattice(1);
  const raw = await conn();
  const ask = async (subject: string, body: string) => {
    const data = new TextEncoder().encode(body);
    const inbox = `_INBOX.${Math.random().toString(36).slice(2)}`;
    const sub = raw.subscribe(inbox, { max: 1 });
    raw.publish(subject, data, { reply: inbox, headers: signMessage(L.ctlTrust, subject, inbox, data)! });
    for await (const m of sub) return JSON.parse(new TextDecoder().decode(m.data));
  };
  const P = L.ctlTrust.prefix;
  const notJson = await ask(ctlSubject(P, 'link', 'put'), '{nope');
  assert.deepEqual(notJson.ok, false);
  assert.equal(notJson.error.code, 'BAD_REQUEST');
  assert.match(notJson.error.message, /not JSON/);
  const missing = await ask(ctlSubject(P, 'actor', 'start'), '{"config":{}}');
  assert.equal(missing.error.code, 'BAD_REQUEST');
  assert.match(missing.error.message, /ref/);
  const extra = await ask(ctlSubject(P, 'link', 'del'), JSON.stringify({ actor: ACTOR, contract: 'c', bogus: 1 }));
  assert.match(extra.error.message, /bogus/);
  assert.equal((await L.client.getHosts()).length, 1);
});

test('control requests that are unsigned, forged, replayed, from another lattice or from a member that is not ctl are dropped: nothing changes, nothing answers', async () => {
  const L = await lattice(1, { maxRequestBytes: 4096 });
  const [h] = L.hosts as [Lattice['hosts'][0]];
  await L.client.startActor({ ref: 'kv.wasm' }, h.host.id);
  const raw = await conn();
  const P = L.ctlTrust.prefix;
  const subject = ctlSubject(P, 'actor', 'stop');
  const body = new TextEncoder().encode(JSON.stringify({ actor: ACTOR }));
  const silentFor = async (headers: ReturnType<typeof signMessage>, label: string, reply = `_INBOX.${Math.random().toString(36).slice(2)}`, data = body) => {
    const sub = raw.subscribe(reply, { max: 1 });
    raw.publish(subject, data, { reply, ...(headers ? { headers } : {}) });
    const got = await Promise.race([(async () => { for await (const _ of sub) return 'answered'; return 'closed'; })(), new Promise((r) => setTimeout(() => r('silent'), 400))]);
    sub.unsubscribe();
    assert.equal(got, 'silent', label);
    assert.equal(h.host.actors.size, 1, `${label}: the actor still runs`);
  };
  await silentFor(undefined, 'unsigned');
  await silentFor(signMessage(await L.issuer.trust('provider'), subject, '_INBOX.p', body), 'a provider credential', '_INBOX.p');
  await silentFor(signMessage(await L.issuer.trust('host'), subject, '_INBOX.h', body), 'a host credential', '_INBOX.h');
  await silentFor(signMessage(await TestIssuer.create(L.id).trust('ctl'), subject, '_INBOX.o', body), "another issuer's ctl", '_INBOX.o');
  const expired = LatticeTrust.closed(await L.issuer.creds('ctl', { expiresInSeconds: 60, now: Date.now() - 3_600_000 }));
  await silentFor(signMessage(expired, subject, '_INBOX.e', body), 'an expired ctl credential', '_INBOX.e');
  // Signed for another reply subject, or another host's subject: the signature covers both.
  await silentFor(signMessage(L.ctlTrust, subject, '_INBOX.mine', body), 'moved to another reply subject', '_INBOX.theirs');
  // A genuine request works once; the same message again does nothing.
  const genuine = signMessage(L.ctlTrust, subject, '_INBOX.g', body)!;
  const sub = raw.subscribe('_INBOX.g', { max: 1 });
  raw.publish(subject, body, { reply: '_INBOX.g', headers: genuine });
  for await (const m of sub) assert.equal(JSON.parse(new TextDecoder().decode(m.data)).ok, true);
  assert.equal(h.host.actors.size, 0);
  await L.client.startActor({ ref: 'kv.wasm' }, h.host.id);
  await silentFor(genuine, 'replayed', '_INBOX.g');
  // An oversized request is dropped before it is checked or parsed.
  const huge = new Uint8Array(4097).fill(0x20);
  await silentFor(signMessage(L.ctlTrust, subject, '_INBOX.big', huge), 'an oversized request (validly signed)', '_INBOX.big', huge);
  assert.equal(h.ctl.dropped, 8);
  // Answers not signed by a member are not believed by the client: a plain responder on a host's subject.
  const impostor = raw.subscribe(ctlSubject(P, 'host', 'NIMPOSTOR', 'inventory'), { callback: (_e, m) => m.respond(new TextEncoder().encode('{"ok":true,"inventory":{"hostId":"NIMPOSTOR","actors":[],"providers":[]}}')) });
  await raw.flush();
  await assert.rejects(L.client.getInventory('NIMPOSTOR'), (err: unknown) => isWasmletError(err) && err.code === CTL_TIMEOUT);
  impostor.unsubscribe();
});
