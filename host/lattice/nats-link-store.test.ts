import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { NatsConnection } from 'nats';
import { startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import type { LinkEvent } from '../links.ts';
import { isWasmletError } from '../errors.ts';
import { generateKeyPair } from '../claims/keys.ts';
import { signActor } from '../claims/claims.ts';
import { connectNats } from './connection.ts';
import { LatticeTrust } from './membership.ts';
import { NatsClaimsStore } from './nats-claims-store.ts';
import { LATTICE_STORE_UNAVAILABLE, linkKvKey, NatsLinkStore } from './nats-link-store.ts';
import { sealRecord } from './signed-record.ts';
import { latticeBucket } from './subjects.ts';
import { TestIssuer } from './test-support.ts';
import { until } from '../../test/helpers/wait.ts';

const silent = pino({ level: 'silent' });
const A1 = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const A2 = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';

let server: NatsServer;
const conns: NatsConnection[] = [];
const stores: NatsLinkStore[] = [];
let n = 0;

before(async () => {
  server = await startNatsServer();
});
after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  await server?.stop();
});

async function conn(): Promise<NatsConnection> {
  const nc = await connectNats({ servers: [server.url], reconnect: { waitMs: 50, jitterMs: 0 } }, silent);
  conns.push(nc);
  return nc;
}

const issuers = new Map<string, TestIssuer>();
function issuerOf(lattice: string): TestIssuer {
  let i = issuers.get(lattice);
  if (!i) issuers.set(lattice, (i = TestIssuer.create(lattice)));
  return i;
}

/** A link store of a host member (or of `trust`) of `lattice`. */
async function open(lattice: string, trust?: LatticeTrust): Promise<NatsLinkStore> {
  const s = await NatsLinkStore.open(await conn(), trust ?? (await issuerOf(lattice).trust('host')), {}, silent);
  stores.push(s);
  return s;
}

function lattice(): string {
  return `links${n++}`;
}

test('put/get/list/delete, canonical forms, read-your-writes', async () => {
  const L = lattice();
  const s = await open(L);
  assert.match(s.bucket, new RegExp(`^wasmlet_${L}_i[0-9a-f]{16}_links$`));
  await s.put({ actor: A1, contract: 'wascc:keyvalue', linkName: '', values: { URL: 'redis://x' } } as never);
  // Synchronous get right after the write sees it, under the canonical contract id and any alias.
  assert.deepEqual(s.get(A1, 'wasmlet:keyvalue'), { actor: A1, contract: 'wasmlet:keyvalue', linkName: 'default', values: { URL: 'redis://x' } });
  assert.ok(s.get(A1, 'wascc:keyvalue', 'default'));
  assert.equal(s.get(A1, 'wasmlet:keyvalue', 'other'), undefined);
  await s.put({ actor: A1, contract: 'wasmlet:httpserver', linkName: 'default', values: { PORT: '8080' } });
  assert.equal(s.list().length, 2);
  const removed = await s.delete(A1, 'wascc:keyvalue');
  assert.deepEqual(removed?.values, { URL: 'redis://x' });
  assert.equal(s.get(A1, 'wasmlet:keyvalue'), undefined);
  assert.equal(await s.delete(A1, 'wascc:keyvalue'), undefined, 'deleting twice finds nothing');
  assert.equal(s.list().length, 1);
});

test('a store created later learns earlier links; changes from any host reach subscribers', async () => {
  const L = lattice();
  const first = await open(L);
  await first.put({ actor: A1, contract: 'wasmlet:keyvalue', linkName: 'default', values: { BUCKET: 'b1' } });
  await first.put({ actor: A2, contract: 'wasmlet:httpserver', linkName: 'web', values: { PORT: '8081' } });
  await first.put({ actor: A2, contract: 'wasmlet:httpserver', linkName: 'gone', values: {} });
  await first.delete(A2, 'wasmlet:httpserver', 'gone');

  const late = await open(L);
  assert.deepEqual(
    late.list().map((l) => `${l.actor}/${l.contract}/${l.linkName}`).sort(),
    [`${A1}/wasmlet:keyvalue/default`, `${A2}/wasmlet:httpserver/web`].sort(),
  );
  assert.equal(late.get(A2, 'wasmlet:httpserver', 'web')?.values.PORT, '8081');

  const seenByLate: LinkEvent[] = [];
  const seenByFirst: LinkEvent[] = [];
  late.subscribe((e) => seenByLate.push(e));
  first.subscribe((e) => seenByFirst.push(e));
  await first.put({ actor: A1, contract: 'wasmlet:keyvalue', linkName: 'default', values: { BUCKET: 'b2' } });
  await until(() => late.get(A1, 'wasmlet:keyvalue')?.values.BUCKET === 'b2', 'put propagation', 5000);
  await late.delete(A2, 'wasmlet:httpserver', 'web');
  await until(() => first.get(A2, 'wasmlet:httpserver', 'web') === undefined, 'delete propagation', 5000);
  await until(() => seenByFirst.length === 2 && seenByLate.length === 2, 'both watchers see both changes');
  for (const seen of [seenByFirst, seenByLate]) {
    assert.deepEqual(seen.map((e) => `${e.type}:${e.link.actor}:${e.link.linkName}`), [`put:${A1}:default`, `delete:${A2}:web`]);
    assert.equal(seen[0]!.type === 'put' && seen[0]!.link.values.BUCKET, 'b2');
    assert.equal(seen[1]!.link.values.PORT, '8081', 'a delete event carries the removed link');
  }
});

test('each write produces exactly one event on the writing store', async () => {
  const s = await open(lattice());
  const events: LinkEvent[] = [];
  s.subscribe((e) => events.push(e));
  await s.put({ actor: A1, contract: 'wasmlet:logging', linkName: 'default', values: {} });
  await s.put({ actor: A1, contract: 'wasmlet:logging', linkName: 'default', values: { LEVEL: 'debug' } });
  await s.delete(A1, 'wasmlet:logging');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(events.map((e) => e.type), ['put', 'put', 'delete']);
});

test('links written into the bucket by anyone but a ctl or host member, or rolled back, or deleted without a record, are ignored', async () => {
  const L = lattice();
  const issuer = issuerOf(L);
  const s = await open(L);
  const bucket = s.bucket;
  const kv = await (await conn()).jetstream().views.kv(bucket);
  const key = linkKvKey(A1, 'wasmlet:httpserver', 'default');
  const link = { actor: A1, contract: 'wasmlet:httpserver', linkName: 'default', values: { PORT: '8080' } };
  // A plain client, a provider member, another issuer's ctl, a malformed record, a link stored under another key.
  await kv.put(key, JSON.stringify(link));
  await kv.put(key, 'not json');
  await kv.put(key, sealRecord(await issuer.trust('provider'), bucket, key, link));
  await kv.put(key, sealRecord(await TestIssuer.create(L).trust('ctl'), bucket, key, link));
  await kv.put(linkKvKey(A1, 'wasmlet:keyvalue', 'x'), sealRecord(await issuer.trust('ctl'), bucket, linkKvKey(A1, 'wasmlet:keyvalue', 'x'), { ...link, linkName: 'y' }));
  await s.put({ actor: A2, contract: 'wasmlet:logging', linkName: 'default', values: {} });
  assert.deepEqual(s.list().map((l) => l.actor), [A2], 'none of them is a link');
  // A ctl member's record is a link; a host member's too.
  const ctl = await issuer.trust('ctl');
  const old = sealRecord(ctl, bucket, key, link, Date.now() - 1000);
  await kv.put(key, sealRecord(ctl, bucket, key, { ...link, values: { PORT: '9090' } }));
  await until(() => s.get(A1, 'wasmlet:httpserver')?.values.PORT === '9090', 'a ctl record is taken');
  // Its older record written again (a rollback) is ignored by a member that saw the newer one.
  await kv.put(key, old);
  await s.put({ actor: A2, contract: 'wasmlet:logging', linkName: 'default', values: { N: '2' } });
  assert.equal(s.get(A1, 'wasmlet:httpserver')?.values.PORT, '9090');
  // A bare KV delete or purge is not a deletion on a closed lattice.
  await kv.delete(key);
  await kv.purge(key);
  await s.put({ actor: A2, contract: 'wasmlet:logging', linkName: 'default', values: { N: '3' } });
  assert.equal(s.get(A1, 'wasmlet:httpserver')?.values.PORT, '9090', 'still linked');
  // A signed deletion is, and it reaches every member.
  const other = await open(L);
  assert.equal(other.get(A1, 'wasmlet:httpserver'), undefined, 'a member that joined after the purge never learned the link');
  assert.equal((await s.delete(A1, 'wasmlet:httpserver'))?.values.PORT, '9090');
  assert.equal(s.get(A1, 'wasmlet:httpserver'), undefined);
});

test('an open lattice (--insecure) keeps plain links, in buckets of its own', async () => {
  const L = lattice();
  const open1 = await open(L, LatticeTrust.insecure(L));
  const closed = await open(L);
  assert.equal(open1.bucket, `wasmlet_${L}_open_links`);
  assert.notEqual(open1.bucket, closed.bucket);
  await open1.put({ actor: A1, contract: 'wasmlet:keyvalue', linkName: 'default', values: {} });
  const kv = await (await conn()).jetstream().views.kv(open1.bucket);
  assert.deepEqual(JSON.parse((await kv.get(linkKvKey(A1, 'wasmlet:keyvalue', 'default')))!.string()), { actor: A1, contract: 'wasmlet:keyvalue', linkName: 'default', values: {} });
  assert.equal(closed.list().length, 0);
  await kv.delete(linkKvKey(A1, 'wasmlet:keyvalue', 'default'));
  await until(() => open1.list().length === 0, 'an open lattice takes a bare delete');
});

test('links survive a server restart; the watch resumes and sees later changes', async () => {
  const L = lattice();
  const s = await open(L);
  await s.put({ actor: A1, contract: 'wasmlet:keyvalue', linkName: 'default', values: { BUCKET: 'kept' } });
  await server.restart();
  const late = await (async () => {
    // JetStream needs a moment after a restart before KV calls are served.
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        return await open(L);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  })();
  assert.equal(late.get(A1, 'wasmlet:keyvalue')?.values.BUCKET, 'kept', 'data on disk survived');
  // The store that lived through the restart follows later changes again.
  await late.put({ actor: A2, contract: 'wasmlet:keyvalue', linkName: 'default', values: { BUCKET: 'after' } });
  await until(() => s.get(A2, 'wasmlet:keyvalue')?.values.BUCKET === 'after', 'watch after restart', 20_000);
  await s.delete(A1, 'wasmlet:keyvalue');
  await until(() => late.get(A1, 'wasmlet:keyvalue') === undefined, 'delete after restart', 5000);
});

test('claims: recorded by a host, learned by every member (later ones too), each verified', async () => {
  const L = lattice();
  const issuer = issuerOf(L);
  const claims = await NatsClaimsStore.open(await conn(), await issuer.trust('host'), {}, silent);
  const account = generateKeyPair('account');
  const wasm = Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0]);
  const c1 = signActor(wasm, { account: account.seed, name: 'Key Value Counter', caps: ['wascc:keyvalue'] });
  const c2 = signActor(wasm, { account: account.seed, name: 'Echo Actor', caps: ['wascc:http_server'] });
  const learned: string[] = [];
  claims.subscribe((c) => learned.push(c.wascap.name!));
  await claims.record(c1.token, c1.claims);
  await claims.record(c2.token, c2.claims);
  assert.deepEqual(claims.get(c1.claims.sub), c1.claims);
  assert.deepEqual(learned, ['Key Value Counter', 'Echo Actor']);
  const later = await NatsClaimsStore.open(await conn(), await issuer.trust('ctl'), {}, silent);
  assert.deepEqual(later.list().map((c) => c.wascap.name).sort(), ['Echo Actor', 'Key Value Counter']);
  await assert.rejects(claims.record(c1.token, { ...c1.claims, sub: '' }), /without a subject/);
  // A token whose signature was tampered with is refused by readers.
  const [h, p] = c1.token.split('.');
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...c1.claims, wascap: { ...c1.claims.wascap, caps: ['wascc:keyvalue', 'wascc:http_server'] } })).toString('base64url')}.${c1.token.split('.')[2]}`;
  void p;
  const bucket = latticeBucket(L, later.bucket.split('_')[2]!, 'claims');
  const kv = await (await conn()).jetstream().views.kv(bucket);
  await kv.put(c1.claims.sub, sealRecord(await issuer.trust('host'), bucket, c1.claims.sub, { token: forged }));
  await claims.record(c2.token, c2.claims);
  assert.deepEqual(later.get(c1.claims.sub)?.wascap.caps, ['wascc:keyvalue'], 'the forged caps were not taken');
  await claims.close();
  await later.close();
});

test('a server without JetStream: a clear error', async () => {
  const plain = await startNatsServer({ jetstream: false });
  try {
    const nc = await connectNats({ servers: [plain.url] }, silent);
    try {
      await assert.rejects(NatsLinkStore.open(nc, LatticeTrust.insecure('x'), {}, silent), (err: unknown) => {
        assert.ok(isWasmletError(err));
        assert.equal(err.code, LATTICE_STORE_UNAVAILABLE);
        assert.match(err.message, /wasmlet_x_open_links.*JetStream/);
        return true;
      });
    } finally {
      await nc.close();
    }
  } finally {
    await plain.stop();
  }
});
