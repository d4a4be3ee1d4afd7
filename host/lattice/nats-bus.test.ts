import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { connect, type NatsConnection } from 'nats';
import { startNatsCluster, startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import { generateKeyPair } from '../claims/keys.ts';
import { encode } from '../codec.ts';
import { InvocationError, isInvocationError } from '../errors.ts';
import { actorTarget, providerTarget, type BusHandler } from '../bus.ts';
import { connectNats } from './connection.ts';
import { encodeEnvelope, hostKeyFromSeed } from './envelope.ts';
import { NatsBus, type LatticeInvocation, type NatsBusOptionsInput } from './nats-bus.ts';
import { rpcSubject } from './subjects.ts';

const silent = pino({ level: 'silent' });
const ACTOR = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

interface TestHost {
  bus: NatsBus;
  nc: NatsConnection;
  seed: string;
  close(): Promise<void>;
}

const opened: TestHost[] = [];
/** Each test gets a lattice of its own, so hosts a failed test left behind cannot interfere. */
let lattice = 'test0';
beforeEach(() => {
  lattice = `test${opened.length}x${Math.random().toString(36).slice(2, 8)}`;
});

async function host(servers: string[], options: Partial<NatsBusOptionsInput> = {}): Promise<TestHost> {
  const nc = await connectNats({ servers, randomize: false, reconnect: { waitMs: 50, jitterMs: 0 } }, silent);
  const seed = generateKeyPair('server').seed;
  const bus = new NatsBus(nc, { lattice, hostSeed: seed, ...options }, silent);
  const h: TestHost = {
    bus,
    nc,
    seed,
    async close() {
      await bus.close();
      await nc.close();
    },
  };
  opened.push(h);
  return h;
}

after(async () => {
  await Promise.all(opened.map((h) => h.close().catch(() => undefined)));
});

const echo: BusHandler = async (inv) => enc(`${inv.operation}:${dec(inv.msg)}`);

function call(h: TestHost, target: string, text: string, deadlineMs = 3000) {
  return h.bus.request({ origin: ACTOR, target, operation: 'Echo', msg: enc(text), deadline: Date.now() + deadlineMs });
}

async function rejectsCode(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<InvocationError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    assert.ok(isInvocationError(err), `expected an InvocationError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
  return caught as InvocationError;
}

async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms: ${String(last)}`, { cause: last });
}

describe('NATS bus on one server', () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer({ jetstream: false });
  });
  after(async () => {
    await server?.stop();
  });

  test('a call crosses hosts and carries every field, verified', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    let seen: LatticeInvocation | undefined;
    b.bus.serve(providerTarget('wasmlet:keyvalue', 'default'), async (inv) => {
      seen = inv as LatticeInvocation;
      return enc('ok');
    });
    await b.bus.flush();
    const before = Date.now();
    const out = await a.bus.request({
      origin: ACTOR,
      target: providerTarget('wasmlet:keyvalue', 'default'),
      operation: 'Add',
      msg: encode({ key: 'k', value: 1 }),
      deadline: before + 2000,
      actor: ACTOR,
      linkName: 'default',
    });
    assert.equal(dec(out), 'ok');
    assert.ok(seen);
    assert.equal(seen.origin, ACTOR);
    assert.equal(seen.operation, 'Add');
    assert.equal(seen.actor, ACTOR);
    assert.equal(seen.linkName, 'default');
    assert.equal(seen.fromHost, a.bus.hostId);
    assert.deepEqual(Buffer.from(seen.msg), Buffer.from(encode({ key: 'k', value: 1 })));
    assert.ok(seen.deadline > before + 1500 && seen.deadline <= Date.now() + 2000, `deadline budget kept: ${seen.deadline - before}`);
    assert.notEqual(a.bus.hostId, b.bus.hostId);
    assert.equal(a.bus.hostId, hostKeyFromSeed(a.seed).publicKey);
    // Empty results are results.
    b.bus.serve(actorTarget(ACTOR), async () => new Uint8Array(0));
    await b.bus.flush();
    assert.equal((await call(a, actorTarget(ACTOR), 'x')).length, 0);
    await a.close();
    await b.close();
  });

  test('targets with dots, colons, spaces and wildcards in link names are served', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    const odd = providerTarget('wascc:keyvalue', 'my link.*>/%');
    const plain = providerTarget('wascc:keyvalue', 'my link');
    b.bus.serve(odd, async () => enc('odd'));
    b.bus.serve(plain, async () => enc('plain'));
    await b.bus.flush();
    assert.equal(dec(await call(a, odd, '')), 'odd');
    assert.equal(dec(await call(a, plain, '')), 'plain');
    await a.close();
    await b.close();
  });

  test('many concurrent calls are matched to their own replies', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    b.bus.serve(actorTarget(ACTOR), async (inv) => {
      // Answer out of order.
      await new Promise((r) => setTimeout(r, Math.random() * 20));
      return inv.msg;
    });
    await b.bus.flush();
    const n = 500;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => call(a, actorTarget(ACTOR), `m${i}`)));
    results.forEach((r, i) => assert.equal(dec(r), `m${i}`));
    assert.equal(a.bus.stats().pending, 0);
    await a.close();
    await b.close();
  });

  test('queue group: two hosts serving one actor share the load', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    const c = await host([server.url]);
    const counts = { b: 0, c: 0 };
    b.bus.serve(actorTarget(ACTOR), async () => (counts.b++, enc('b')));
    c.bus.serve(actorTarget(ACTOR), async () => (counts.c++, enc('c')));
    await Promise.all([b.bus.flush(), c.bus.flush()]);
    const n = 200;
    const answers = await Promise.all(Array.from({ length: n }, () => call(a, actorTarget(ACTOR), 'x').then(dec)));
    assert.equal(counts.b + counts.c, n, 'each call served exactly once');
    assert.equal(answers.filter((x) => x === 'b').length, counts.b);
    assert.ok(counts.b >= 30 && counts.c >= 30, `both hosts served: ${JSON.stringify(counts)}`);
    // Once one host stops serving, the other takes everything.
    const sub = (await host([server.url])).bus; // an unrelated host does not change the group
    void sub;
    await c.close();
    const after = await Promise.all(Array.from({ length: 20 }, () => call(a, actorTarget(ACTOR), 'x').then(dec)));
    assert.deepEqual(new Set(after), new Set(['b']));
    await a.close();
    await b.close();
  });

  test('deadline: a slow target fails with DEADLINE_EXCEEDED near the deadline', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    b.bus.serve(actorTarget(ACTOR), () => new Promise((r) => setTimeout(() => r(enc('late')), 1500)));
    await b.bus.flush();
    const t0 = Date.now();
    await rejectsCode(call(a, actorTarget(ACTOR), 'x', 200), 'DEADLINE_EXCEEDED', /did not answer Echo in time/);
    const took = Date.now() - t0;
    assert.ok(took >= 190 && took < 600, `took ${took} ms`);
    assert.equal(a.bus.stats().pending, 0);
    // A deadline already passed fails without a round trip.
    await rejectsCode(a.bus.request({ origin: ACTOR, target: actorTarget(ACTOR), operation: 'x', msg: enc(''), deadline: Date.now() - 1 }), 'DEADLINE_EXCEEDED');
    await a.close();
    await b.close();
  });

  test('nothing serves the target: ACTOR_NOT_FOUND at once, not at the deadline', async () => {
    const a = await host([server.url]);
    const t0 = Date.now();
    await rejectsCode(call(a, actorTarget('MNOBODY'), 'x', 5000), 'ACTOR_NOT_FOUND', /nothing on the lattice serves actor\.MNOBODY/);
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    await a.close();
  });

  test('errors cross hosts with their code and message', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    b.bus.serve(actorTarget(ACTOR), async () => {
      throw new InvocationError('TRAP', 'guest trapped: unreachable');
    });
    const kv = providerTarget('wasmlet:keyvalue', 'default');
    b.bus.serve(kv, async () => {
      throw Object.assign(new Error('Push "k": WRONGTYPE Operation against a key holding the wrong kind of value'), { code: 'BAD_REQUEST' });
    });
    b.bus.serve(actorTarget('MSYNC'), () => {
      throw new Error('handler threw synchronously');
    });
    await b.bus.flush();
    await rejectsCode(call(a, actorTarget(ACTOR), 'x'), 'TRAP', /^guest trapped: unreachable$/);
    const err = await rejectsCode(call(a, kv, 'x'), 'PROVIDER_ERROR', /WRONGTYPE/);
    assert.deepEqual(err.cause, { code: 'BAD_REQUEST' });
    await rejectsCode(call(a, actorTarget('MSYNC'), 'x'), 'GUEST_ERROR', /handler threw synchronously/);
    await a.close();
    await b.close();
  });

  test('forged, garbled, misrouted and stale messages are dropped, never answered; the bus keeps serving', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    let calls = 0;
    const target = actorTarget(ACTOR);
    b.bus.serve(target, async (inv) => (calls++, inv.msg));
    await b.bus.flush();
    const raw = await connect({ servers: server.url });
    const subject = rpcSubject(lattice, target);
    const mallory = hostKeyFromSeed(generateKeyPair('server').seed);
    const base = { id: 'x', origin: ACTOR, target, operation: 'Echo', msg: enc('evil'), deadline: Date.now() + 5000, sent: Date.now() };
    // Signed by Mallory but claiming to come from host a.
    const forgedBody = encodeEnvelope({ ...base, hostId: mallory.publicKey }, mallory);
    const forged = forgedBody.slice();
    // Swap hostId text inside the body for a's key (same length), keeping Mallory's signature.
    Buffer.from(forged.buffer, forged.byteOffset, forged.byteLength).write(a.bus.hostId, Buffer.from(forged).indexOf(mallory.publicKey), 'latin1');
    const garbage = Uint8Array.from([1, ...new Uint8Array(80).fill(0xc1)]);
    const misrouted = encodeEnvelope({ ...base, target: actorTarget('MOTHER'), hostId: a.bus.hostId }, hostKeyFromSeed(a.seed));
    const stale = encodeEnvelope({ ...base, sent: Date.now() - 3_600_000, deadline: Date.now() + 5000, hostId: a.bus.hostId }, hostKeyFromSeed(a.seed));
    for (const payload of [forged, garbage, misrouted, stale, new Uint8Array(0)]) {
      await assert.rejects(raw.request(subject, payload, { timeout: 300 }), (err: Error & { code?: string }) => err.code === 'TIMEOUT', 'never answered');
    }
    assert.equal(calls, 0, 'the handler never ran');
    assert.equal(b.bus.stats().dropped, 5);
    // Legit traffic still flows.
    assert.equal(dec(await call(a, target, 'fine')), 'fine');
    assert.equal(calls, 1);
    // A garbled reply to a pending call fails it with BAD_PAYLOAD rather than hanging.
    const slowTarget = actorTarget('MSLOW');
    const intercept = raw.subscribe(rpcSubject(lattice, slowTarget), { callback: (_e, m) => m.respond(Uint8Array.from([9, 9])) });
    await raw.flush();
    await rejectsCode(call(a, slowTarget, 'x'), 'BAD_PAYLOAD', /garbled reply/);
    intercept.unsubscribe();
    await raw.close();
    await a.close();
    await b.close();
  });

  test('allow-list: a host outside it is not served', async () => {
    const a = await host([server.url]);
    const friend = await host([server.url]);
    const b = await host([server.url], { allowedHosts: [friend.bus.hostId] });
    b.bus.serve(actorTarget(ACTOR), async () => enc('ok'));
    await b.bus.flush();
    assert.equal(dec(await call(friend, actorTarget(ACTOR), 'x')), 'ok');
    await rejectsCode(call(a, actorTarget(ACTOR), 'x', 300), 'DEADLINE_EXCEEDED');
    assert.equal(b.bus.stats().dropped, 1);
    await Promise.all([a.close(), friend.close(), b.close()]);
  });

  test('closed bus: calls fail with STOPPING, in-flight calls too', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    b.bus.serve(actorTarget(ACTOR), () => new Promise((r) => setTimeout(() => r(enc('late')), 1000)));
    await b.bus.flush();
    const inflight = rejectsCode(call(a, actorTarget(ACTOR), 'x'), 'STOPPING');
    await new Promise((r) => setTimeout(r, 50));
    await a.bus.close();
    await inflight;
    await rejectsCode(call(a, actorTarget(ACTOR), 'x'), 'STOPPING');
    assert.throws(() => a.bus.serve(actorTarget(ACTOR), echo), (err: unknown) => isInvocationError(err) && err.code === 'STOPPING');
    await a.close();
    await b.close();
  });

  test('server restarted mid-flight: calls fail fast with UNAVAILABLE, then work again without restarting anything', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    b.bus.serve(actorTarget(ACTOR), async (inv) => {
      if (dec(inv.msg) === 'slow') await new Promise((r) => setTimeout(r, 2000));
      return inv.msg;
    });
    await b.bus.flush();
    assert.equal(dec(await call(a, actorTarget(ACTOR), 'before')), 'before');
    const t0 = Date.now();
    const inflight = rejectsCode(call(a, actorTarget(ACTOR), 'slow', 10_000), 'UNAVAILABLE', /disconnected.*may or may not have run/);
    await new Promise((r) => setTimeout(r, 100));
    await server.kill();
    await inflight;
    assert.ok(Date.now() - t0 < 2000, `in-flight call failed after ${Date.now() - t0} ms, not at its deadline`);
    // During the outage: fail at once.
    const t1 = Date.now();
    await rejectsCode(call(a, actorTarget(ACTOR), 'during', 10_000), 'UNAVAILABLE', /disconnected/);
    assert.ok(Date.now() - t1 < 100, `failed in ${Date.now() - t1} ms`);
    assert.equal(a.bus.connected, false);
    await server.restart();
    const out = await eventually(() => call(a, actorTarget(ACTOR), 'after', 1000), 10_000, 'calls after restart');
    assert.equal(dec(out), 'after');
    assert.equal(a.bus.connected, true);
    await a.close();
    await b.close();
  });
});

describe('NATS bus on a 3-server cluster', () => {
  test('buses on different servers talk; killing one server, calls keep working after reconnect', async () => {
    const cluster = await startNatsCluster(3);
    try {
      const [s0, s1, s2] = cluster.servers as [NatsServer, NatsServer, NatsServer];
      // a prefers s0, b prefers s1; both know every server.
      const a = await host([s0.url, s2.url, s1.url]);
      const b = await host([s1.url, s2.url, s0.url]);
      assert.equal(a.nc.getServer(), `127.0.0.1:${s0.port}`);
      assert.equal(b.nc.getServer(), `127.0.0.1:${s1.port}`);
      b.bus.serve(actorTarget(ACTOR), async (inv) => inv.msg);
      a.bus.serve(actorTarget('MA'), async () => enc('from a'));
      await Promise.all([a.bus.flush(), b.bus.flush()]);
      // Interest crosses the routes asynchronously.
      assert.equal(dec(await eventually(() => call(a, actorTarget(ACTOR), 'hello'), 5000, 'route interest')), 'hello');
      assert.equal(dec(await eventually(() => call(b, actorTarget('MA'), ''), 5000, 'route interest')), 'from a');

      // Kill a's server: a fails over to another server and calls resume.
      await s0.kill();
      const seen = new Set<string>();
      const out = await eventually(
        () =>
          call(a, actorTarget(ACTOR), 'again', 1000).catch((err: unknown) => {
            if (isInvocationError(err)) seen.add(err.code);
            throw err;
          }),
        15_000,
        'calls after failover',
      );
      assert.equal(dec(out), 'again');
      assert.notEqual(a.nc.getServer(), `127.0.0.1:${s0.port}`);
      for (const code of seen) assert.ok(['UNAVAILABLE', 'ACTOR_NOT_FOUND'].includes(code), `unexpected failure during failover: ${code}`);

      // Kill b's server: the serving side fails over too, and b's subscription follows it.
      await s1.kill();
      assert.equal(dec(await eventually(() => call(a, actorTarget(ACTOR), 'third', 1000), 15_000, 'calls after serving side failover')), 'third');
      assert.equal(b.nc.getServer(), `127.0.0.1:${s2.port}`);
      assert.equal(dec(await eventually(() => call(b, actorTarget('MA'), ''), 5000, 'b → a')), 'from a');
      await a.close();
      await b.close();
    } finally {
      await cluster.stop();
    }
  });
});

describe('NATS bus with antiforgery off', () => {
  test('hosts without antiforgery talk unsigned; a host that requires signatures drops their calls', async () => {
    const server = await startNatsServer({ jetstream: false });
    try {
      const a = await host([server.url], { antiforgery: false });
      const b = await host([server.url], { antiforgery: false });
      const strict = await host([server.url]);
      b.bus.serve(actorTarget(ACTOR), async (inv) => inv.msg);
      strict.bus.serve(actorTarget('MSTRICT'), async (inv) => inv.msg);
      await Promise.all([b.bus.flush(), strict.bus.flush()]);
      assert.equal(dec(await call(a, actorTarget(ACTOR), 'unsigned')), 'unsigned');
      // A signing host can still call a host that does not verify.
      assert.equal(dec(await call(strict, actorTarget(ACTOR), 'signed')), 'signed');
      await rejectsCode(call(a, actorTarget('MSTRICT'), 'x', 300), 'DEADLINE_EXCEEDED');
      assert.equal(strict.bus.stats().dropped, 1);
      await Promise.all([a.close(), b.close(), strict.close()]);
    } finally {
      await server.stop();
    }
  });
});
