import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { connect, createInbox, type NatsConnection } from 'nats';
import { startNatsCluster, startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import { generateKeyPair } from '../claims/keys.ts';
import { encode } from '../codec.ts';
import { InvocationError, isInvocationError } from '../errors.ts';
import { actorTarget, providerTarget, type BusHandler } from '../bus.ts';
import { decode } from '../codec.ts';
import { connectNats } from './connection.ts';
import { encodeBatch, ENVELOPE_MACS, ENVELOPE_SIGNED, hostKeyFromSeed, OPEN_AUTH, type BatchAuth, type BatchItem, type HostKey } from './envelope.ts';
import { LatticeTrust, type MemberCredentials, type MemberRole } from './membership.ts';
import { errorPayload, frameReplyBatch, readReplyBatch, REPLY_DECLINED, REPLY_OK } from './replies.ts';
import { NatsBus, type LatticeInvocation, type NatsBusOptionsInput } from './nats-bus.ts';
import { rpcSubject } from './subjects.ts';
import { TestIssuer } from './test-support.ts';
import { eventually } from '../../test/helpers/wait.ts';

const silent = pino({ level: 'silent' });
const ACTOR = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

interface TestHost {
  bus: NatsBus;
  nc: NatsConnection;
  /** Undefined on an open lattice. */
  creds: MemberCredentials | undefined;
  key: HostKey;
  close(): Promise<void>;
}

const opened: TestHost[] = [];
/** Each test gets a lattice (and an issuer) of its own, so hosts a failed test left behind cannot interfere. */
let lattice = 'test0';
let issuer = TestIssuer.create(lattice);
beforeEach(() => {
  lattice = `test${opened.length}x${Math.random().toString(36).slice(2, 8)}`;
  issuer = TestIssuer.create(lattice);
});

/** A member of this test's lattice (a host unless `role` says otherwise), or of the lattice `trust` gives. */
async function host(servers: string[], options: Partial<NatsBusOptionsInput> = {}, role: MemberRole = 'host', trust?: LatticeTrust): Promise<TestHost> {
  const nc = await connectNats({ servers, randomize: false, reconnect: { waitMs: 50, jitterMs: 0 } }, silent);
  const t = trust ?? (await issuer.trust(role));
  const bus = new NatsBus(nc, t, options, silent);
  const h: TestHost = {
    bus,
    nc,
    creds: t.self,
    key: hostKeyFromSeed(t.self?.seed ?? options.hostSeed ?? generateKeyPair('server').seed),
    async close() {
      await bus.close();
      await nc.close();
    },
  };
  opened.push(h);
  return h;
}

/** The msgpack body of a batch frame (what any NATS client can read of it). */
function bodyOf(frame: Uint8Array): { reply: string; items: { id: string }[]; session: string; seq: number } {
  const at = frame[0] === ENVELOPE_SIGNED ? 3 + ((frame[1]! << 8) | frame[2]!) + 64 : frame[0] === ENVELOPE_MACS ? 34 + frame[33]! * 24 : 1;
  return decode(frame.subarray(at)) as { reply: string; items: { id: string }[]; session: string; seq: number };
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
    assert.equal(a.bus.hostId, a.creds!.hostId, "a member's host id is its credential's key");
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
    // The group shares batches: 50 turns of 4 calls each (one batch per turn).
    const answers: string[] = [];
    for (let turn = 0; turn < 50; turn++) answers.push(...(await Promise.all(Array.from({ length: 4 }, () => call(a, actorTarget(ACTOR), 'x').then(dec)))));
    // Until a has heard from both hosts, a batch with a MAC for one of them can reach the other,
    // which runs nothing of it and declines it; a sends it again, signed. Once per host at most.
    const stats = a.bus.stats();
    assert.ok(stats.resent <= 8, `resent ${stats.resent}`);
    assert.equal(stats.batchesSent, 50 + stats.resent / 4);
    assert.ok(b.bus.stats().unaddressed <= 1 && c.bus.stats().unaddressed <= 1);
    assert.equal(counts.b + counts.c, 200, 'each call served exactly once');
    assert.equal(answers.filter((x) => x === 'b').length, counts.b);
    assert.ok(counts.b >= 40 && counts.c >= 40, `both hosts served: ${JSON.stringify(counts)}`);
    assert.equal(counts.b % 4, 0, 'a batch is served by one host, whole');
    // Once one host stops serving, the other takes everything.
    const sub = (await host([server.url])).bus; // an unrelated host does not change the group
    void sub;
    await c.close();
    const after = await Promise.all(Array.from({ length: 20 }, () => call(a, actorTarget(ACTOR), 'x').then(dec)));
    assert.deepEqual(new Set(after), new Set(['b']));
    await a.close();
    await b.close();
  });

  test('MACs after first contact; a host that joins is learned through a decline, and learns the caller from its signed batches', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    const ran = { b: 0, c: 0 };
    const target = actorTarget(ACTOR);
    b.bus.serve(target, async () => (ran.b++, enc('b')));
    await b.bus.flush();
    // A plain subscription sees every batch sent to the target: record each frame's version and tag count.
    const raw = await connect({ servers: server.url });
    const frames: string[] = [];
    raw.subscribe(rpcSubject(a.bus.trust.prefix, target), { callback: (_e, m) => frames.push(m.data[0] === ENVELOPE_MACS ? `mac×${m.data[33]}` : `v${m.data[0]}`) });
    await raw.flush();
    assert.equal(dec(await call(a, target, 'first')), 'b');
    assert.equal(dec(await call(a, target, 'second')), 'b');
    assert.deepEqual(frames, ['v4', 'mac×1'], 'signed with the credential until b answered, then tagged for b');
    // c joins the queue group: a batch tagged for b alone that reaches c is declined there and sent again, signed.
    const c = await host([server.url]);
    c.bus.serve(target, async () => (ran.c++, enc('c')));
    await c.bus.flush();
    const answers: string[] = [];
    for (let i = 0; i < 40 && c.bus.stats().unaddressed === 0; i++) answers.push(dec(await call(a, target, `n${i}`)));
    assert.equal(c.bus.stats().unaddressed, 1, 'a batch without a MAC for c reached c');
    assert.equal(ran.b + ran.c, 2 + answers.length, 'nothing of it ran there: the call ran once, when it was sent again');
    assert.equal(a.bus.stats().resent, 1);
    assert.ok(frames.includes('v4', 1), 'the declined call went again, signed');
    // a signs its batches to the target until c has run one of them (so c learns a's
    // credential); from then on it tags every batch for both, and c serves its share without declines.
    for (let i = 0; i < 40 && frames.at(-1) !== 'mac×2'; i++) answers.push(dec(await call(a, target, `k${i}`)));
    frames.length = 0;
    for (let i = 0; i < 40; i++) answers.push(dec(await call(a, target, `m${i}`)));
    assert.ok(frames.every((f) => f === 'mac×2'), frames.join(' '));
    assert.ok(ran.c > 0 && c.bus.stats().unaddressed === 1, JSON.stringify(ran));
    assert.equal(ran.b + ran.c, 2 + answers.length, 'every call ran exactly once');
    await raw.close();
    await Promise.all([a.close(), b.close(), c.close()]);
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
    // Every call of a batch nobody serves fails, and only those: a batch to a served target in the same turn succeeds.
    const b = await host([server.url]);
    b.bus.serve(actorTarget(ACTOR), async (inv) => inv.msg);
    await b.bus.flush();
    const t1 = Date.now();
    const results = await Promise.allSettled([...Array.from({ length: 5 }, () => call(a, actorTarget('MNOBODY'), 'x', 5000)), call(a, actorTarget(ACTOR), 'served', 5000)]);
    for (const r of results.slice(0, 5)) assert.ok(r.status === 'rejected' && isInvocationError(r.reason) && r.reason.code === 'ACTOR_NOT_FOUND', String(r.status));
    assert.equal(results[5]!.status === 'fulfilled' && dec(results[5].value), 'served');
    assert.ok(Date.now() - t1 < 1000, `took ${Date.now() - t1} ms`);
    assert.equal(a.bus.stats().pending, 0);
    await b.close();
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

  test('forged, tampered, replayed, mixed, garbled, misrouted, stale and unadmitted batches are dropped, never answered; the bus keeps serving', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    let calls = 0;
    const target = actorTarget(ACTOR);
    b.bus.serve(target, async (inv) => (calls++, inv.msg));
    await b.bus.flush();
    const raw = await connect({ servers: server.url });
    // Anything the serving host answered lands here; each reply batch is read (and verified) as a would.
    const inbox = createInbox();
    const answers: string[] = [];
    const statuses: number[] = [];
    raw.subscribe(`${inbox}.>`, {
      callback: (_e, m) => {
        if (m.subject !== `${inbox}._`) return void answers.push(m.subject);
        readReplyBatch(m.data, { trust: a.bus.trust, key: a.key, reply: inbox }, (id, frame) => {
          answers.push(`${inbox}.${id}`);
          statuses.push(frame[0]!);
        });
      },
    });
    await raw.flush();
    const subject = rpcSubject(a.bus.trust.prefix, target);
    const aAuth: BatchAuth = { kind: 'signed', token: a.creds!.token };
    let seq = 1000;
    const good = (id: string): BatchItem => ({ id, origin: ACTOR, operation: 'Echo', msg: enc('evil'), deadline: Date.now() + 5000 });
    const batch = (over: Record<string, unknown> = {}) => ({ hostId: a.bus.hostId, target, sent: Date.now(), reply: inbox, session: 'raw', seq: seq++, items: [good('1'), good('2')], ...over });
    const member = async (role: MemberRole, from = issuer) => {
      const creds = await from.creds(role);
      return { creds, key: hostKeyFromSeed(creds.seed), auth: { kind: 'signed', token: creds.token } as BatchAuth };
    };
    const mallory = await member('host');
    const stranger = await member('host', TestIssuer.create(lattice));
    const provider = await member('provider');
    const ctl = await member('ctl');
    // Mallory, a member, signs a body that says it comes from a.
    const forged = encodeBatch(batch({ hostId: mallory.key.publicKey }), mallory.key, mallory.auth);
    const view = Buffer.from(forged.buffer, forged.byteOffset, forged.byteLength);
    view.write(a.bus.hostId, view.lastIndexOf(mallory.key.publicKey), 'latin1');
    // A genuine batch from a with one byte of an item changed after signing.
    const tampered = encodeBatch(batch(), a.key, aAuth);
    tampered[tampered.length - 2]! ^= 0x20;
    // Validly signed by a, but its second item is malformed: the whole batch goes.
    const mixed = encodeBatch(batch({ items: [good('1'), { ...good('2'), id: 'a.b' }] }), a.key, aAuth);
    const garbage = Uint8Array.from([ENVELOPE_SIGNED, ...new Uint8Array(80).fill(0xc1)]);
    const misrouted = encodeBatch(batch({ target: actorTarget('MOTHER') }), a.key, aAuth);
    const stale = encodeBatch(batch({ sent: Date.now() - 3_600_000 }), a.key, aAuth);
    // Credentials of another lattice's issuer, and of roles that may not call actors.
    const foreign = encodeBatch(batch({ hostId: stranger.key.publicKey }), stranger.key, stranger.auth);
    const fromCtl = encodeBatch(batch({ hostId: ctl.key.publicKey }), ctl.key, ctl.auth);
    // An open lattice's batch, and a batch in the format of an earlier wasmlet.
    const open = encodeBatch(batch(), a.key, OPEN_AUTH);
    const earlier = encodeBatch(batch(), a.key, aAuth);
    earlier[0] = 2;
    // With MACs: Mallory tags her body for b, then swaps a's key into the header; a's genuine tag over a changed body.
    const macForged = encodeBatch(batch({ hostId: mallory.key.publicKey }), mallory.key, { kind: 'mac', peers: [mallory.key.peer(b.bus.hostId)!] });
    macForged.set(a.key.raw, 1);
    const macTampered = encodeBatch(batch(), a.key, { kind: 'mac', peers: [a.key.peer(b.bus.hostId)!] });
    macTampered[macTampered.length - 2]! ^= 0x20;
    const payloads = [forged, tampered, mixed, garbage, misrouted, stale, foreign, fromCtl, open, earlier, macForged, macTampered, new Uint8Array(0)];
    for (const [i, payload] of payloads.entries()) {
      await assert.rejects(raw.request(subject, payload, { timeout: 300 }), (err: Error & { code?: string }) => err.code === 'TIMEOUT', 'never answered');
      assert.equal(calls, 0, `the handler never ran (payload ${i})`);
    }
    assert.deepEqual(answers, [], 'no item was answered');
    assert.equal(b.bus.stats().dropped, payloads.length);
    assert.deepEqual(b.bus.stats().droppedBy, { forged: 5, malformed: 3, misrouted: 1, stale: 1, refused: 3, replayed: 0, oversized: 0 });
    // The same batch, untouched and signed by a, is served: the drops above were for cause.
    const genuine = encodeBatch(batch(), a.key, aAuth);
    raw.publish(subject, genuine);
    await eventually(async () => assert.equal(answers.length, 2), 'both items answered');
    assert.deepEqual(answers.sort(), [`${inbox}.1`, `${inbox}.2`]);
    assert.equal(calls, 2);
    // Replayed: the same frame again, five times: nothing runs, nothing is answered.
    for (let i = 0; i < 5; i++) raw.publish(subject, genuine);
    await raw.flush();
    await eventually(async () => assert.equal(b.bus.stats().droppedBy.replayed, 5), 'replays dropped');
    assert.equal(calls, 2);
    assert.equal(answers.length, 2);
    // A provider process may call actors (the HTTP server does).
    raw.publish(subject, encodeBatch(batch({ hostId: provider.key.publicKey, items: [good('p')] }), provider.key, provider.auth));
    await eventually(async () => assert.equal(calls, 3), 'a provider member calls an actor');
    // A batch with MACs for other hosts only: nothing runs, every item is declined (so its
    // caller sends it again, signed), and the batch is not counted as dropped.
    answers.length = 0;
    statuses.length = 0;
    const elsewhere = hostKeyFromSeed(generateKeyPair('server').seed);
    raw.publish(subject, encodeBatch(batch({ items: [good('3'), good('4')] }), a.key, { kind: 'mac', peers: [a.key.peer(elsewhere.publicKey)!] }));
    await eventually(async () => assert.equal(answers.length, 2), 'both items declined');
    assert.equal(calls, 3, 'nothing of it ran');
    assert.equal(b.bus.stats().unaddressed, 1);
    assert.deepEqual(statuses, [REPLY_DECLINED, REPLY_DECLINED]);
    assert.equal(b.bus.stats().dropped, payloads.length + 5);
    // Legit traffic still flows.
    assert.equal(dec(await call(a, target, 'fine')), 'fine');
    assert.equal(calls, 4);
    await raw.close();
    await a.close();
    await b.close();
  });

  test('only hosts may call providers; provider processes may call actors; ctl members may call nothing', async () => {
    const b = await host([server.url]);
    const provider = await host([server.url], {}, 'provider');
    const ctl = await host([server.url], {}, 'ctl');
    const a = await host([server.url]);
    const kv = providerTarget('wasmlet:keyvalue', 'default');
    b.bus.serve(kv, async () => enc('kv'));
    b.bus.serve(actorTarget(ACTOR), async () => enc('actor'));
    await b.bus.flush();
    assert.equal(dec(await call(a, kv, 'x')), 'kv');
    assert.equal(dec(await call(provider, actorTarget(ACTOR), 'x')), 'actor');
    await rejectsCode(call(provider, kv, 'x', 300), 'DEADLINE_EXCEEDED');
    await rejectsCode(call(ctl, actorTarget(ACTOR), 'x', 300), 'DEADLINE_EXCEEDED');
    assert.equal(b.bus.stats().droppedBy.refused, 2);
    await Promise.all([a.close(), b.close(), provider.close(), ctl.close()]);
  });

  test('forged replies and declines are never believed: the caller takes only genuine answers (or fails at its deadline), and nothing runs twice', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    const target = actorTarget(ACTOR);
    let ran = 0;
    b.bus.serve(target, async () => (ran++, enc('genuine')));
    await b.bus.flush();
    // A forger joins the actor's queue group with a plain NATS client and answers every batch it
    // takes with every kind of forgery: an OK and a DECLINED signed by a stranger, the same in an
    // open lattice's format, a reply signed by a provider member (admitted, but not entitled to
    // answer for an actor), and garbage on the batch's own reply subject.
    const stranger = await TestIssuer.create(lattice).creds('host');
    const strangerKey = hostKeyFromSeed(stranger.seed);
    const providerCreds = await issuer.creds('provider');
    const providerKey = hostKeyFromSeed(providerCreds.seed);
    const raw = await connect({ servers: server.url });
    let taken = 0;
    raw.subscribe(rpcSubject(a.bus.trust.prefix, target), {
      queue: 'wasmlet',
      callback: (_e, m) => {
        taken++;
        const { reply, items } = bodyOf(m.data);
        const ok = items.flatMap((i) => [i.id, REPLY_OK, enc('forged')]);
        const declined = items.flatMap((i) => [i.id, REPLY_DECLINED, errorPayload('DECLINED', 'forged decline')]);
        for (const entries of [declined, ok]) {
          raw.publish(`${reply}._`, frameReplyBatch({ kind: 'signed', token: stranger.token, key: strangerKey }, reply, entries));
          raw.publish(`${reply}._`, frameReplyBatch({ kind: 'open', hostId: b.bus.hostId }, reply, entries));
          raw.publish(`${reply}._`, frameReplyBatch({ kind: 'signed', token: providerCreds.token, key: providerKey }, reply, entries));
        }
        if (m.reply) raw.publish(m.reply, Uint8Array.from([9, 9]));
      },
    });
    await raw.flush();
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      outcomes.push(await call(a, target, `n${i}`, 400).then(dec, (err: unknown) => (isInvocationError(err) ? err.code : String(err))));
    }
    assert.ok(taken > 0, 'the forger took some batches');
    assert.ok(outcomes.every((o) => o === 'genuine' || o === 'DEADLINE_EXCEEDED'), outcomes.join(' '));
    assert.equal(outcomes.filter((o) => o === 'genuine').length, ran, 'every call ran at most once, and only genuine answers were taken');
    assert.ok(outcomes.includes('genuine'), 'the genuine host answered its share');
    assert.ok(a.bus.stats().repliesDropped >= taken * 4, `dropped ${a.bus.stats().repliesDropped} forged reply batches`);
    assert.equal(a.bus.stats().resent, 0, 'no forged decline made a call go again');
    await raw.close();
    await a.close();
    await b.close();
  });

  test('replay: every message of a call captured and republished moves nothing', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    const target = actorTarget(ACTOR);
    let ran = 0;
    b.bus.serve(target, async () => (ran++, enc(String(ran))));
    await b.bus.flush();
    const raw = await connect({ servers: server.url });
    const captured: { subject: string; data: Uint8Array; reply?: string }[] = [];
    raw.subscribe(`${a.bus.trust.prefix}.>`, { callback: (_e, m) => captured.push({ subject: m.subject, data: m.data, ...(m.reply ? { reply: m.reply } : {}) }) });
    raw.subscribe('_INBOX.>', { callback: (_e, m) => captured.push({ subject: m.subject, data: m.data }) });
    await raw.flush();
    assert.equal(dec(await call(a, target, 'once')), '1');
    assert.equal(dec(await call(a, target, 'twice')), '2');
    await raw.flush();
    assert.ok(captured.length >= 4, `captured ${captured.length}`);
    for (let i = 0; i < 5; i++) for (const c of captured) raw.publish(c.subject, c.data, c.reply ? { reply: c.reply } : undefined);
    await raw.flush();
    await eventually(async () => assert.equal(b.bus.stats().droppedBy.replayed, 10), 'every replayed batch dropped');
    assert.equal(ran, 2, 'the counter moved once per call');
    assert.equal(a.bus.stats().pending, 0);
    await raw.close();
    await a.close();
    await b.close();
  });

  test('one turn, one batch per target, one signature; batches split at the item and byte bounds', async () => {
    const a = await host([server.url], { maxBatchItems: 10, maxBatchBytes: 8192 });
    const b = await host([server.url]);
    const seen: string[] = [];
    b.bus.serve(actorTarget(ACTOR), async (inv) => (seen.push(dec(inv.msg)), inv.msg));
    b.bus.serve(actorTarget('MB'), async (inv) => inv.msg);
    await b.bus.flush();
    // 8 calls to one target and 3 to another in one turn: two messages.
    const one = await Promise.all([...Array.from({ length: 8 }, (_, i) => call(a, actorTarget(ACTOR), `m${i}`)), ...Array.from({ length: 3 }, (_, i) => call(a, actorTarget('MB'), `b${i}`))]);
    assert.deepEqual(one.map(dec), [...Array.from({ length: 8 }, (_, i) => `m${i}`), 'b0', 'b1', 'b2']);
    assert.deepEqual(seen, Array.from({ length: 8 }, (_, i) => `m${i}`), 'items are served in the order they were sent');
    assert.equal(a.bus.stats().batchesSent, 2);
    assert.equal(b.bus.stats().batchesReceived, 2);
    // 25 calls in one turn with at most 10 per batch: 3 messages, each call answered with its own reply.
    const many = await Promise.all(Array.from({ length: 25 }, (_, i) => call(a, actorTarget(ACTOR), `n${i}`)));
    assert.deepEqual(many.map(dec), Array.from({ length: 25 }, (_, i) => `n${i}`));
    assert.equal(a.bus.stats().batchesSent, 5);
    // 1 KiB calls with at most 8 KiB per batch: split by size, below 10 items.
    const big = 'x'.repeat(1024);
    const sized = await Promise.all(Array.from({ length: 9 }, (_, i) => call(a, actorTarget(ACTOR), `${i}${big}`)));
    assert.deepEqual(sized.map((r) => dec(r).slice(0, 1)), Array.from({ length: 9 }, (_, i) => String(i)));
    assert.equal(a.bus.stats().batchesSent, 7, 'nine 1 KiB items need two 8 KiB batches');
    // A call larger than a batch may be fails on its own with BAD_PAYLOAD; its neighbours go through.
    const [tooBig, fine] = await Promise.allSettled([call(a, actorTarget(ACTOR), 'x'.repeat(9000)), call(a, actorTarget(ACTOR), 'fine')]);
    assert.equal(tooBig.status, 'rejected');
    assert.ok(isInvocationError(tooBig.reason) && tooBig.reason.code === 'PAYLOAD_TOO_LARGE' && /larger than a lattice message may be/.test(tooBig.reason.message), String(tooBig.status === 'rejected' && tooBig.reason));
    assert.equal(fine.status === 'fulfilled' && dec(fine.value), 'fine');
    assert.equal(a.bus.stats().pending, 0);
    await a.close();
    await b.close();
  });

  test('lattice message caps: an answer too large for a message fails its call at once with PAYLOAD_TOO_LARGE; a message past the cap is dropped unread', async () => {
    const a = await host([server.url]);
    const b = await host([server.url], { maxBatchBytes: 8192 });
    b.bus.serve(actorTarget(ACTOR), async (inv) => (dec(inv.msg) === 'big' ? new Uint8Array(20_000) : inv.msg));
    await b.bus.flush();
    const t0 = Date.now();
    const [big, small] = await Promise.allSettled([call(a, actorTarget(ACTOR), 'big'), call(a, actorTarget(ACTOR), 'small')]);
    assert.ok(big.status === 'rejected' && isInvocationError(big.reason) && big.reason.code === 'PAYLOAD_TOO_LARGE' && /20000 bytes/.test(big.reason.message), String(big.status === 'rejected' && big.reason));
    assert.ok(Date.now() - t0 < 1000, 'at once, not at the deadline');
    assert.equal(small.status === 'fulfilled' && dec(small.value), 'small', 'its neighbour in the batch is answered');
    // A message past b's cap (plus room for a credential and tags) is dropped before decoding.
    const raw = await connect({ servers: server.url });
    raw.publish(rpcSubject(b.bus.trust.prefix, actorTarget(ACTOR)), new Uint8Array(8192 + 16 * 1024 + 1).fill(4));
    await raw.flush();
    await eventually(async () => assert.equal(b.bus.stats().droppedBy.oversized, 1), 'dropped as oversized');
    await raw.close();
    await a.close();
    await b.close();
  });

  test("a turn's replies to one caller leave in one message, split at the byte bound", async () => {
    const a = await host([server.url]);
    const b = await host([server.url], { maxBatchBytes: 8192 });
    b.bus.serve(actorTarget(ACTOR), async (inv) => inv.msg);
    await b.bus.flush();
    const before = b.bus.stats().replyMessages;
    const small = await Promise.all(Array.from({ length: 20 }, (_, i) => call(a, actorTarget(ACTOR), `r${i}`)));
    assert.deepEqual(small.map(dec), Array.from({ length: 20 }, (_, i) => `r${i}`));
    assert.equal(b.bus.stats().replyMessages - before, 1, 'twenty replies, one message');
    // Nine 1 KiB replies with at most 8 KiB per message: two messages, every call answered.
    const big = 'y'.repeat(1024);
    const sized = await Promise.all(Array.from({ length: 9 }, (_, i) => call(a, actorTarget(ACTOR), `${i}${big}`)));
    assert.deepEqual(sized.map((r) => dec(r).slice(0, 1)), Array.from({ length: 9 }, (_, i) => String(i)));
    assert.equal(b.bus.stats().replyMessages - before, 3);
    // A lone reply is a reply batch of one (it names the host, as every reply batch does).
    assert.equal(dec(await call(a, actorTarget(ACTOR), 'one')), 'one');
    assert.equal(b.bus.stats().replyMessages - before, 4);
    assert.equal(a.bus.stats().pending, 0);
    await a.close();
    await b.close();
  });

  test('items of one batch keep their own deadlines and outcomes', async () => {
    const a = await host([server.url]);
    const b = await host([server.url]);
    b.bus.serve(actorTarget(ACTOR), async (inv) => {
      const text = dec(inv.msg);
      if (text === 'slow') await new Promise((r) => setTimeout(r, 600));
      if (text === 'fail') throw new InvocationError('TRAP', 'guest trapped');
      return inv.msg;
    });
    await b.bus.flush();
    const t0 = Date.now();
    const [slow, fast, fail, roomy] = await Promise.allSettled([
      call(a, actorTarget(ACTOR), 'slow', 200),
      call(a, actorTarget(ACTOR), 'fast', 200),
      call(a, actorTarget(ACTOR), 'fail', 200),
      call(a, actorTarget(ACTOR), 'slow', 3000),
    ]);
    assert.equal(a.bus.stats().batchesSent, 1, 'all four went in one batch');
    assert.ok(slow.status === 'rejected' && isInvocationError(slow.reason) && slow.reason.code === 'DEADLINE_EXCEEDED');
    assert.equal(fast.status === 'fulfilled' && dec(fast.value), 'fast');
    assert.ok(fail.status === 'rejected' && isInvocationError(fail.reason) && fail.reason.code === 'TRAP');
    assert.equal(roomy.status === 'fulfilled' && dec(roomy.value), 'slow');
    assert.ok(Date.now() - t0 >= 590);
    await a.close();
    await b.close();
  });

  test('a host that stops serving declines batches already routed to it; callers send them again, nothing is lost', async () => {
    // One shared connection keeps every protocol line in order: the batch, then the UNSUB,
    // then the other server's SUB. So the server routes the batch to the stopping bus, which
    // gets it after it stopped serving.
    const nc = await connectNats({ servers: [server.url] }, silent);
    const bus = async () => new NatsBus(nc, await issuer.trust('host'), {}, silent);
    const [a, b, c, d] = [await bus(), await bus(), await bus(), await bus()];
    const ran = { b: 0, c: 0, d: 0 };
    const target = actorTarget(ACTOR);
    const send = (text: string) => a.request({ origin: ACTOR, target, operation: 'Echo', msg: enc(text), deadline: Date.now() + 3000 });
    const sub = b.serve(target, async () => (ran.b++, enc('b')));
    await b.flush();
    const first = send('x');
    void a.flush(); // the batch goes now, before the UNSUB below
    sub.close();
    c.serve(target, async () => (ran.c++, enc('c')));
    assert.equal(dec(await first), 'c');
    assert.deepEqual(ran, { b: 0, c: 1, d: 0 }, 'run once, by the host that still serves');
    assert.equal(b.stats().declined, 1);
    assert.equal(a.stats().resent, 1);
    // The whole bus closing declines the same way (a host shutting down).
    const second = send('y');
    void a.flush();
    const closing = c.close();
    d.serve(target, async () => (ran.d++, enc('d')));
    assert.equal(dec(await second), 'd');
    await closing;
    assert.deepEqual(ran, { b: 0, c: 1, d: 1 });
    assert.equal(c.stats().declined, 1);
    // Declined with nobody left to serve: the resend meets no responders and fails at once.
    const t0 = Date.now();
    const third = send('z');
    void a.flush();
    await d.close();
    await rejectsCode(third, 'ACTOR_NOT_FOUND');
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    assert.equal(d.stats().declined, 1);
    assert.equal(ran.d, 1, 'a declined call is never run');
    await a.close();
    await b.close();
    await nc.close();
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
    const out = await eventually(() => call(a, actorTarget(ACTOR), 'after', 1000), 'calls after restart', 10_000);
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
      assert.equal(dec(await eventually(() => call(a, actorTarget(ACTOR), 'hello'), 'route interest', 5000)), 'hello');
      assert.equal(dec(await eventually(() => call(b, actorTarget('MA'), ''), 'route interest', 5000)), 'from a');

      // Kill a's server: a fails over to another server and calls resume.
      await s0.kill();
      const seen = new Set<string>();
      const out = await eventually(
        () =>
          call(a, actorTarget(ACTOR), 'again', 1000).catch((err: unknown) => {
            if (isInvocationError(err)) seen.add(err.code);
            throw err;
          }),
        'calls after failover',
        15_000,
      );
      assert.equal(dec(out), 'again');
      assert.notEqual(a.nc.getServer(), `127.0.0.1:${s0.port}`);
      for (const code of seen) assert.ok(['UNAVAILABLE', 'ACTOR_NOT_FOUND'].includes(code), `unexpected failure during failover: ${code}`);

      // Kill b's server: the serving side fails over too, and b's subscription follows it.
      await s1.kill();
      assert.equal(dec(await eventually(() => call(a, actorTarget(ACTOR), 'third', 1000), 'calls after serving side failover', 15_000)), 'third');
      assert.equal(b.nc.getServer(), `127.0.0.1:${s2.port}`);
      assert.equal(dec(await eventually(() => call(b, actorTarget('MA'), ''), 'b → a', 5000)), 'from a');
      await a.close();
      await b.close();
    } finally {
      await cluster.stop();
    }
  });
});

describe('open lattices (--insecure)', () => {
  test('open members talk unauthenticated; a closed lattice of the same name shares no subject with them', async () => {
    const server = await startNatsServer({ jetstream: false });
    try {
      const open = LatticeTrust.insecure(lattice);
      const a = await host([server.url], {}, 'host', open);
      const b = await host([server.url], {}, 'host', open);
      const closed = await host([server.url]);
      const closedCaller = await host([server.url]);
      b.bus.serve(actorTarget(ACTOR), async () => enc('open'));
      closed.bus.serve(actorTarget(ACTOR), async () => enc('closed'));
      await Promise.all([b.bus.flush(), closed.bus.flush()]);
      assert.notEqual(a.bus.trust.prefix, closed.bus.trust.prefix);
      for (let i = 0; i < 5; i++) {
        assert.equal(dec(await call(a, actorTarget(ACTOR), 'x')), 'open');
        assert.equal(dec(await call(closedCaller, actorTarget(ACTOR), 'x')), 'closed');
      }
      // An open lattice's frame published on the closed lattice's subject is dropped.
      const raw = await connect({ servers: server.url });
      const k = hostKeyFromSeed(generateKeyPair('server').seed);
      const frame = encodeBatch({ hostId: k.publicKey, target: actorTarget(ACTOR), sent: Date.now(), reply: createInbox(), session: 's', seq: 1, items: [{ id: '1', origin: ACTOR, operation: 'x', msg: enc(''), deadline: Date.now() + 1000 }] }, k, OPEN_AUTH);
      await assert.rejects(raw.request(rpcSubject(closed.bus.trust.prefix, actorTarget(ACTOR)), frame, { timeout: 300 }), (err: Error & { code?: string }) => err.code === 'TIMEOUT');
      assert.equal(closed.bus.stats().droppedBy.refused, 1);
      await raw.close();
      await Promise.all([a.close(), b.close(), closed.close(), closedCaller.close()]);
    } finally {
      await server.stop();
    }
  });
});
