import assert from 'node:assert/strict';
import { test } from 'node:test';
import { actorTarget, providerTarget } from '../bus.ts';
import { ctlSubject, latticeBucket, latticeScope, OPEN_SCOPE, subjectPrefix, decodeKvToken, decodeSubjectToken, encodeKvToken, encodeSubjectToken, eventSubject, latticeIdSchema, rpcSubject } from './subjects.ts';
import { generateKeyPair } from '../claims/keys.ts';

/** What nats-server accepts in a published subject: non-empty tokens, no whitespace, no wildcards. */
const VALID_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;
/** JetStream KV keys (nats.js validKeyRe), not starting or ending with a dot. */
const VALID_KV_KEY = /^[-/=.\w]+$/;

const samples = ['', 'default', 'wasmlet:keyvalue', 'my link', 'a.b', '*', '>', 'tab\there', '%', '%41', '=', '=3A', 'ключ', '🔑', 'a/b', ' ', '..'];

test('subject tokens: plain ones stay readable, every token is valid, the mapping is injective and reversible', () => {
  assert.equal(encodeSubjectToken('wasmlet:keyvalue'), 'wasmlet:keyvalue');
  assert.equal(encodeSubjectToken('MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2'), 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2');
  assert.equal(encodeSubjectToken('my link'), 'my%20link');
  assert.equal(encodeSubjectToken(''), '%');
  const seen = new Map<string, string>();
  for (const s of samples) {
    const t = encodeSubjectToken(s);
    assert.match(t, /^[A-Za-z0-9_:%-]+$/, `${JSON.stringify(s)} → ${t}`);
    assert.equal(decodeSubjectToken(t), s);
    assert.ok(!seen.has(t), `${JSON.stringify(s)} and ${JSON.stringify(seen.get(t))} collide`);
    seen.set(t, s);
  }
});

test('KV tokens: valid KV key characters only, injective and reversible', () => {
  assert.equal(encodeKvToken('counter'), 'counter');
  assert.equal(encodeKvToken(':a:b'), '=3Aa=3Ab');
  const seen = new Set<string>();
  for (const s of samples) {
    const t = encodeKvToken(s);
    assert.match(t, VALID_KV_KEY);
    assert.ok(!t.startsWith('.') && !t.endsWith('.'));
    assert.equal(decodeKvToken(t), s);
    assert.ok(!seen.has(t));
    seen.add(t);
  }
});

test('subjects are namespaced by lattice and issuer scope, and always valid', () => {
  const P = subjectPrefix('prod', 'i0123456789abcdef');
  assert.equal(P, 'wasmlet.prod.i0123456789abcdef');
  assert.equal(rpcSubject(P, actorTarget('MABC')), 'wasmlet.prod.i0123456789abcdef.rpc.actor.MABC');
  assert.equal(rpcSubject(P, providerTarget('wasmlet:keyvalue', 'default')), 'wasmlet.prod.i0123456789abcdef.rpc.provider.wasmlet:keyvalue.default');
  assert.equal(ctlSubject(P, 'host', 'NABC', 'inventory'), 'wasmlet.prod.i0123456789abcdef.ctl.host.NABC.inventory');
  assert.equal(eventSubject(P, 'actor_started'), 'wasmlet.prod.i0123456789abcdef.evt.actor_started');
  assert.equal(subjectPrefix('prod', OPEN_SCOPE), 'wasmlet.prod.open');
  // The scope is a digest of the issuer key: two issuers, two subject spaces, two sets of buckets.
  const [i1, i2] = [generateKeyPair('account').publicKey, generateKeyPair('account').publicKey];
  assert.match(latticeScope(i1), /^i[0-9a-f]{16}$/);
  assert.equal(latticeScope(i1), latticeScope(i1));
  assert.notEqual(latticeScope(i1), latticeScope(i2));
  assert.notEqual(latticeBucket('prod', latticeScope(i1), 'links'), latticeBucket('prod', latticeScope(i2), 'links'));
  assert.match(latticeBucket('prod', latticeScope(i1), 'claims'), /^wasmlet_prod_i[0-9a-f]{16}_claims$/);
  for (const s of samples) {
    assert.match(rpcSubject('l', providerTarget('wasmlet:keyvalue', s)), VALID_SUBJECT);
    assert.match(ctlSubject('l', s), VALID_SUBJECT);
  }
  // Different link names never share a subject (except where the bus target strings are equal).
  assert.notEqual(rpcSubject('l', providerTarget('c', 'a b')), rpcSubject('l', providerTarget('c', 'a%20b')));
});

test('lattice ids: one safe token, usable in bucket names', () => {
  for (const ok of ['default', 'prod-1', 'a_b', 'X']) assert.ok(latticeIdSchema.safeParse(ok).success, ok);
  for (const bad of ['', 'a.b', 'a b', 'a*', 'ü', 'x'.repeat(65)]) assert.ok(!latticeIdSchema.safeParse(bad).success, bad);
});
