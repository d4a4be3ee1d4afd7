import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { NatsConnection } from 'nats';
import { startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import type { LinkEvent } from '../links.ts';
import { isWasmletError } from '../errors.ts';
import { connectNats } from './connection.ts';
import { NatsClaimsStore } from './nats-claims-store.ts';
import { LATTICE_STORE_UNAVAILABLE, linkKvKey, linksBucketName, NatsLinkStore } from './nats-link-store.ts';
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

async function open(lattice: string): Promise<NatsLinkStore> {
  const s = await NatsLinkStore.open(await conn(), { lattice }, silent);
  stores.push(s);
  return s;
}

function lattice(): string {
  return `links${n++}`;
}

test('put/get/list/delete, canonical forms, read-your-writes', async () => {
  const s = await open(lattice());
  assert.equal(s.bucket, linksBucketName('links0'));
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

test('malformed values written into the bucket by someone else are ignored', async () => {
  const L = lattice();
  const s = await open(L);
  const kv = await (await conn()).jetstream().views.kv(linksBucketName(L));
  await kv.put(linkKvKey(A1, 'wasmlet:keyvalue', 'default'), 'not json');
  await kv.put(linkKvKey(A1, 'wasmlet:keyvalue', 'x'), JSON.stringify({ actor: A2, contract: 'wasmlet:keyvalue', linkName: 'x', values: {} }));
  await s.put({ actor: A2, contract: 'wasmlet:logging', linkName: 'default', values: {} });
  assert.equal(s.list().length, 1, 'only the well-formed link under its own key');
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

test('claims: put, get, list, delete', async () => {
  const nc = await conn();
  const L = lattice();
  const claims = await NatsClaimsStore.open(nc, { lattice: L });
  const c1 = { jti: 'j1', iat: 1, iss: 'AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5', sub: A1, wascap: { name: 'Key Value Counter', hash: 'H1', caps: ['wascc:keyvalue'] } };
  const c2 = { ...c1, jti: 'j2', sub: A2, wascap: { name: 'Echo Actor', hash: 'H2', caps: ['wascc:http_server'] } };
  await claims.put(c1);
  await claims.put(c2);
  assert.deepEqual(await claims.get(A1), c1);
  const later = await NatsClaimsStore.open(await conn(), { lattice: L });
  assert.deepEqual((await later.list()).map((c) => c.wascap.name).sort(), ['Echo Actor', 'Key Value Counter']);
  await later.delete(A1);
  assert.equal(await claims.get(A1), undefined);
  assert.deepEqual((await claims.list()).map((c) => c.sub), [A2]);
  await assert.rejects(claims.put({ ...c1, sub: '' }), /without a subject/);
});

test('a server without JetStream: a clear error', async () => {
  const plain = await startNatsServer({ jetstream: false });
  try {
    const nc = await connectNats({ servers: [plain.url] }, silent);
    try {
      await assert.rejects(NatsLinkStore.open(nc, { lattice: 'x' }, silent), (err: unknown) => {
        assert.ok(isWasmletError(err));
        assert.equal(err.code, LATTICE_STORE_UNAVAILABLE);
        assert.match(err.message, /wasmlet_x_links.*JetStream/);
        return true;
      });
    } finally {
      await nc.close();
    }
  } finally {
    await plain.stop();
  }
});
