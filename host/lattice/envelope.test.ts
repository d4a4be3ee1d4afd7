import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '../codec.ts';
import { generateKeyPair, signingKey, verifySignature } from '../claims/keys.ts';
import { isBatchNotAddressed, isEnvelopeError, isWasmletError, type LatticeDropReason } from '../errors.ts';
import {
  batchOverhead,
  decodeBatch,
  encodeBatch,
  encodeItem,
  ENVELOPE_INVALID,
  ENVELOPE_MACS,
  ENVELOPE_SIGNED,
  frameBatch,
  hostKeyFromSeed,
  HOST_KEY_INVALID,
  OPEN_AUTH,
  type Batch,
  type BatchAuth,
  type BatchItem,
  type HostKey,
} from './envelope.ts';
import { LatticeTrust, parseMemberCredentials, type MemberCredentials } from './membership.ts';
import { FINGERPRINT_BYTES, TAG_BYTES } from './pair-keys.ts';
import { TestIssuer } from './test-support.ts';

const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const issuer = TestIssuer.create('prod');

interface Member {
  creds: MemberCredentials;
  trust: LatticeTrust;
  key: HostKey;
}

async function member(role: 'host' | 'provider' | 'ctl' = 'host', from = issuer, options: { expiresInSeconds?: number; now?: number } = {}): Promise<Member> {
  const creds = await from.creds(role, options);
  return { creds, trust: LatticeTrust.closed(creds), key: hostKeyFromSeed(creds.seed) };
}

const [a, b, c] = [await member(), await member(), await member()];
const signed = (m: Member): BatchAuth => ({ kind: 'signed', token: m.creds.token });

function item(overrides: Partial<BatchItem> = {}): BatchItem {
  return {
    id: 'a1',
    origin: KVCOUNTER,
    operation: 'Add',
    msg: Uint8Array.from([0x82, 0xa3, 0x6b, 0x65, 0x79, 0xa1, 0x78, 0xa5, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x01]),
    deadline: 1_700_000_003_000,
    actor: KVCOUNTER,
    linkName: 'default',
    ...overrides,
  };
}

function sample(from: Member = a, overrides: Partial<Batch> = {}): Batch {
  return {
    hostId: from.key.publicKey,
    target: 'provider.wasmlet:keyvalue.default',
    sent: 1_700_000_000_000,
    reply: '_INBOX.abc123',
    session: 's1',
    seq: 7,
    items: [item(), item({ id: 'a2', operation: 'Get', deadline: 1_700_000_001_000 })],
    ...overrides,
  };
}

/** A signed (version 4) frame around any msgpack body, with `by`'s credential: batches a well-behaved sender never writes. */
function withBody(value: unknown, by: Member = a, token = by.creds.token): Uint8Array {
  const body = encode(value);
  const label = Buffer.from('wasmlet batch v4\0');
  const t = Buffer.from(token, 'latin1');
  const f = Buffer.alloc(3 + t.length + 64 + body.length);
  f[0] = ENVELOPE_SIGNED;
  f.writeUInt16BE(t.length, 1);
  t.copy(f, 3);
  f.set(by.key.sign(Buffer.concat([label, body])), 3 + t.length);
  f.set(body, 3 + t.length + 64);
  return f;
}

const at = (receiver: Member = b) => ({ trust: receiver.trust, receiver: receiver.key });

function rejects(fn: () => unknown, pattern: RegExp, reason?: LatticeDropReason): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWasmletError(err), String(err));
    assert.equal(err.code, ENVELOPE_INVALID, err.message);
    assert.match(err.message, pattern);
    if (reason) assert.equal(isEnvelopeError(err) && err.reason, reason, err.message);
    return true;
  });
}

/** A batch as plain data: message bytes as Buffers, every item field present (absent ones undefined). */
const plain = (x: Batch) => ({
  hostId: x.hostId,
  target: x.target,
  sent: x.sent,
  reply: x.reply,
  session: x.session,
  seq: x.seq,
  items: x.items.map((i) => ({ id: i.id, origin: i.origin, operation: i.operation, msg: Buffer.from(i.msg), deadline: i.deadline, actor: i.actor, linkName: i.linkName, claims: i.claims })),
});

test("host key: a member's key is its host id with the server prefix; signatures verify; only server and member seeds", () => {
  assert.equal(a.key.publicKey, a.creds.hostId);
  assert.match(a.key.publicKey, /^N/);
  const data = new TextEncoder().encode('hello');
  assert.ok(verifySignature(a.creds.key, data, a.key.sign(data)), 'the U… key verifies what the host key signs');
  const server = generateKeyPair('server');
  const k = hostKeyFromSeed(server.seed);
  assert.equal(k.publicKey, server.publicKey);
  assert.deepEqual(Buffer.from(k.sign(data)), Buffer.from(signingKey(server.seed).sign(data)), 'Ed25519 is deterministic');
  const account = generateKeyPair('account').seed;
  assert.throws(() => hostKeyFromSeed(account), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID && /server or member nkey seed/.test(err.message) && !err.message.includes(account));
  assert.throws(() => hostKeyFromSeed('SNnotaseed'), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID);
});

test('signed batch round trip: the credential and one signature cover every item; the sender is verified', () => {
  const claims = { jti: 'j', iat: 1, iss: 'A', sub: 'M', wascap: { hash: 'H', caps: ['wascc:keyvalue'] } };
  const minimal = item({ id: 'a3' });
  delete minimal.actor;
  delete minimal.linkName;
  const batch = sample(a, { items: [item({ claims }), minimal] });
  const frame = encodeBatch(batch, a.key, signed(a));
  assert.equal(frame[0], ENVELOPE_SIGNED);
  const out = decodeBatch(frame, at(b));
  assert.deepEqual(plain(out), plain(batch));
  assert.equal(out.sender?.key, a.creds.key);
  assert.equal(out.sender?.role, 'host');
  assert.equal(out.items[1]!.actor, undefined);
  assert.equal(out.items[0]!.claims?.sub, 'M');
  assert.equal(b.trust.known(a.key.publicKey)?.key, a.creds.key, 'the receiver now knows the sender');
  // A batch of one has the same framing; past 15 items the array header is wider.
  const many = encodeBatch(sample(a, { items: Array.from({ length: 300 }, (_, i) => item({ id: i.toString(36) })) }), a.key, signed(a));
  assert.equal(decodeBatch(many, at(b)).items.length, 300);
  // Items framed from pre-encoded bytes equal items encoded as objects; batchOverhead is exact.
  const { items, ...header } = sample();
  const itemBytes = items.map(encodeItem).reduce((n, x) => n + x.length, 0);
  for (const auth of [signed(a), OPEN_AUTH, { kind: 'mac', peers: [a.key.peer(b.key.publicKey)!, a.key.peer(c.key.publicKey)!] } as BatchAuth]) {
    const f = frameBatch(header, items.map(encodeItem), a.key, auth);
    assert.equal(batchOverhead(header, items.length, auth) + itemBytes, f.length, auth.kind);
  }
});

test('a signer cannot claim another host id; empty batches and too many tags are not framed', () => {
  assert.throws(() => encodeBatch(sample(a, { hostId: b.key.publicKey }), a.key, signed(a)), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID);
  assert.throws(() => encodeBatch(sample(a, { items: [] }), a.key, signed(a)), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID && /1–65535 items/.test(err.message));
  const peer = a.key.peer(b.key.publicKey)!;
  assert.throws(() => encodeBatch(sample(), a.key, { kind: 'mac', peers: Array.from({ length: 256 }, () => peer) }), (e) => isWasmletError(e) && e.code === HOST_KEY_INVALID);
});

test('tampered and forged signed batches are rejected as forged', async () => {
  const frame = encodeBatch(sample(), a.key, signed(a));
  const bodyStart = 3 + a.creds.token.length + 64;
  let rejected = 0;
  for (let i = bodyStart; i < frame.length; i++) {
    const copy = frame.slice();
    copy[i]! ^= 0x01;
    try {
      decodeBatch(copy, at(b));
    } catch (err) {
      assert.equal((err as { code?: string }).code, ENVELOPE_INVALID);
      rejected++;
    }
  }
  assert.equal(rejected, frame.length - bodyStart, 'every flipped body byte');
  const badSig = frame.slice();
  badSig[bodyStart - 1]! ^= 0xff;
  rejects(() => decodeBatch(badSig, at(b)), /signature does not verify/, 'forged');
  // Mallory, a member, signs a body that names host a.
  const mallory = await member();
  rejects(() => decodeBatch(withBody(sample(a), mallory), at(b)), /body names host .* but .* authenticated it/, 'forged');
  // Mallory attaches a's credential to a body she signed herself.
  rejects(() => decodeBatch(withBody(sample(a), mallory, a.creds.token), at(b)), /signature does not verify/, 'forged');
});

test('credentials: another issuer, another lattice, expired, garbled or oversized are refused before anything runs', async () => {
  const stranger = await member('host', TestIssuer.create('prod'));
  rejects(() => decodeBatch(encodeBatch(sample(stranger), stranger.key, signed(stranger)), at(b)), /not signed by this lattice's issuer/, 'forged');
  // Same issuer key, another lattice name: a credential names its lattice.
  const other = await member('host', Object.assign(Object.create(Object.getPrototypeOf(issuer)), issuer, { lattice: 'staging' }) as TestIssuer);
  rejects(() => decodeBatch(encodeBatch(sample(other), other.key, signed(other)), at(b)), /for lattice "staging", not prod/, 'refused');
  // Expired: minted an hour ago for one minute.
  const old = await member('host', issuer, { expiresInSeconds: 60, now: Date.now() - 3_600_000 });
  assert.throws(() => parseMemberCredentials(old.creds.creds), /expired/, 'an expired credential cannot be held');
  rejects(() => decodeBatch(encodeBatch(sample(old), old.key, signed(old)), at(b)), /expired/, 'refused');
  const fresh = await issuer.creds('host', { expiresInSeconds: 1 });
  const soon = { creds: fresh, trust: LatticeTrust.closed(fresh), key: hostKeyFromSeed(fresh.seed) };
  const frame = encodeBatch(sample(soon), soon.key, signed(soon));
  assert.equal(decodeBatch(frame, at(c)).sender?.key, fresh.key);
  await new Promise((r) => setTimeout(r, 1100));
  rejects(() => decodeBatch(frame, at(c)), /expired/, 'refused');
  assert.equal(c.trust.known(soon.key.publicKey), undefined, 'an expired member is no longer known');
  // Garbage and oversized tokens.
  rejects(() => decodeBatch(withBody(sample(), a, 'not.a.jwt'), at(b)), /not signed by|not base64url|not Ed25519/, 'forged');
  rejects(() => decodeBatch(withBody(sample(), a, 'x'.repeat(9000)), at(b)), /truncated|bytes \(at most 8192\)/);
});

test('MACs after first contact: each tagged receiver checks its own tag; no signature is made', () => {
  let signatures = 0;
  const counting: HostKey = { ...a.key, sign: (d) => (signatures++, a.key.sign(d)) };
  // b and c learn a from a signed batch first.
  decodeBatch(encodeBatch(sample(), a.key, signed(a)), at(b));
  decodeBatch(encodeBatch(sample(), a.key, signed(a)), at(c));
  const frame = encodeBatch(sample(), counting, { kind: 'mac', peers: [a.key.peer(b.key.publicKey)!, a.key.peer(c.key.publicKey)!] });
  assert.equal(frame[0], ENVELOPE_MACS);
  assert.equal(signatures, 0);
  for (const receiver of [b, c]) {
    const out = decodeBatch(frame, at(receiver));
    assert.equal(out.hostId, a.key.publicKey);
    assert.equal(out.sender?.role, 'host');
    assert.deepEqual(out.items.map((i) => i.id), ['a1', 'a2']);
  }
});

test('a MAC batch this host cannot authenticate for itself runs nothing: declined so the caller sends it signed', async () => {
  const d = await member();
  // Tagged for b only: d has no tag.
  decodeBatch(encodeBatch(sample(), a.key, signed(a)), at(d));
  const forB = encodeBatch(sample(), a.key, { kind: 'mac', peers: [a.key.peer(b.key.publicKey)!] });
  const declined = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (err: unknown) => {
      assert.ok(isBatchNotAddressed(err), String(err));
      assert.equal(err.reply, '_INBOX.abc123');
      assert.deepEqual(err.ids, ['a1', 'a2']);
      assert.match(err.message, pattern);
      return true;
    });
  declined(() => decodeBatch(forB, at(d)), new RegExp(`no MAC for host ${d.key.publicKey}`));
  // Tagged for e, who has never seen a's credential: authentic, but not a verified member yet.
  const e = await member();
  declined(() => decodeBatch(encodeBatch(sample(), a.key, { kind: 'mac', peers: [a.key.peer(e.key.publicKey)!] }), at(e)), /not a member this host has verified/);
  // Declines go only to an inbox: a batch naming another reply subject is dropped.
  const elsewhere = encodeBatch(sample(a, { reply: 'wasmlet.prod.x.ctl.actor.stop' }), a.key, { kind: 'mac', peers: [a.key.peer(b.key.publicKey)!] });
  rejects(() => decodeBatch(elsewhere, at(d)), /must be an inbox/);
  // A batch without a tag for this host whose items are malformed is dropped, not declined.
  const bad = encodeBatch(sample(a, { items: [item({ id: 'a.b' })] }), a.key, { kind: 'mac', peers: [a.key.peer(b.key.publicKey)!] });
  rejects(() => decodeBatch(bad, at(d)), /item 0: field "id"/);
});

test('tampered, forged and reflected batches with MACs are refused', () => {
  decodeBatch(encodeBatch(sample(), a.key, signed(a)), at(b));
  decodeBatch(encodeBatch(sample(b), b.key, signed(b)), at(a));
  const frame = encodeBatch(sample(), a.key, { kind: 'mac', peers: [a.key.peer(b.key.publicKey)!] });
  const bodyStart = 2 + 32 + FINGERPRINT_BYTES + TAG_BYTES;
  for (let i = bodyStart - TAG_BYTES; i < frame.length; i++) {
    const copy = Uint8Array.from(frame);
    copy[i]! ^= 0x01;
    assert.throws(() => decodeBatch(copy, at(b)), (err: unknown) => isWasmletError(err) && err.code === ENVELOPE_INVALID, `byte ${i}`);
  }
  const flippedTag = Uint8Array.from(frame);
  flippedTag[bodyStart - 1]! ^= 0x80;
  rejects(() => decodeBatch(flippedTag, at(b)), new RegExp(`MAC does not verify against host ${a.key.publicKey}`), 'forged');
  // Mallory tags her own body for b, then swaps her key in the header for a's.
  const mallory = hostKeyFromSeed(generateKeyPair('server').seed);
  const forged = encodeBatch(sample(a, { hostId: mallory.publicKey }), mallory, { kind: 'mac', peers: [mallory.peer(b.key.publicKey)!] });
  forged.set(a.key.raw, 1);
  rejects(() => decodeBatch(forged, at(b)), /MAC does not verify/, 'forged');
  // A batch b tagged for a, refiled under b's own fingerprint, does not pass at b: keys have a direction.
  const reflected = encodeBatch(sample(b), b.key, { kind: 'mac', peers: [b.key.peer(a.key.publicKey)!] });
  reflected.set(b.key.fingerprint, 2 + 32);
  rejects(() => decodeBatch(reflected, at(b)), /MAC does not verify/);
  // Framing: no tags, or fewer bytes than the tags it announces.
  const noTags = new Uint8Array(40);
  noTags[0] = ENVELOPE_MACS;
  rejects(() => decodeBatch(noTags, at(b)), /at least one tag/);
  rejects(() => decodeBatch(frame.subarray(0, bodyStart), at(b)), /truncated/);
  // The allow-list applies to batches with MACs too.
  rejects(() => decodeBatch(frame, { ...at(b), allowedHosts: new Set([c.key.publicKey]) }), /not in the allowed host list/, 'refused');
});

test('open and closed lattices never read each other, and earlier formats are refused with a reason', () => {
  const open = LatticeTrust.insecure('prod');
  const k = hostKeyFromSeed(generateKeyPair('server').seed);
  const unsigned = encodeBatch(sample(a, { hostId: k.publicKey }), k, OPEN_AUTH);
  assert.equal(unsigned[0], 0);
  assert.equal(decodeBatch(unsigned, { trust: open, receiver: k }).sender, undefined);
  rejects(() => decodeBatch(unsigned, at(b)), /open lattice member, and this lattice is closed/, 'refused');
  rejects(() => decodeBatch(encodeBatch(sample(), a.key, signed(a)), { trust: open, receiver: k }), /runs an open lattice/, 'refused');
  for (const v of [1, 2, 3]) {
    const old = encodeBatch(sample(), a.key, signed(a));
    old[0] = v;
    rejects(() => decodeBatch(old, at(b)), new RegExp(`format version ${v} \\(an earlier wasmlet`), 'refused');
  }
  const v9 = encodeBatch(sample(), a.key, signed(a));
  v9[0] = 9;
  rejects(() => decodeBatch(v9, at(b)), /unknown format version 9/);
  rejects(() => decodeBatch(new Uint8Array(0), at(b)), /truncated/);
  rejects(() => decodeBatch(Uint8Array.from([0]), { trust: open, receiver: k }), /no body/);
});

test('mixed valid and invalid items, and bad batch fields: the whole batch is rejected, naming the reason', () => {
  const good = { ...item(), msg: item().msg };
  const base = sample();
  rejects(() => decodeBatch(withBody({ ...base, items: [good, { ...good, id: 'b', operation: 7 }] }), at(b)), /item 1: field "operation" must be a non-empty string/, 'malformed');
  rejects(() => decodeBatch(withBody({ ...base, items: [good, good, { ...good, msg: 'text' }] }), at(b)), /item 2: field "msg" must be bytes/);
  rejects(() => decodeBatch(withBody({ ...base, items: [{ ...good, deadline: 'soon' }, good] }), at(b)), /item 0: field "deadline" must be a number/);
  rejects(() => decodeBatch(withBody({ ...base, items: [good, { ...good, linkName: 3 }] }), at(b)), /item 1: field "linkName" must be a string/);
  rejects(() => decodeBatch(withBody({ ...base, items: [good, { ...good, claims: 'x' }] }), at(b)), /item 1: field "claims" must be a map/);
  rejects(() => decodeBatch(withBody({ ...base, items: [good, 5] }), at(b)), /item 1 is not a msgpack map/);
  for (const id of ['a.b', '*', '>', 'a b', 'x'.repeat(65)]) {
    rejects(() => decodeBatch(withBody({ ...base, items: [good, { ...good, id }] }), at(b)), /item 1: field "id" must be one subject token/);
  }
  rejects(() => decodeBatch(withBody([1, 2, 3]), at(b)), /not a msgpack map/);
  rejects(() => decodeBatch(withBody({ ...base, target: '' }), at(b)), /"target" must be a non-empty string/);
  rejects(() => decodeBatch(withBody({ ...base, sent: 'now' }), at(b)), /"sent" must be a number/);
  rejects(() => decodeBatch(withBody({ ...base, seq: -1 }), at(b)), /"seq" must be a whole number/);
  rejects(() => decodeBatch(withBody({ ...base, session: '' }), at(b)), /"session" must be a non-empty string/);
  rejects(() => decodeBatch(withBody({ ...base, reply: '_INBOX.*' }), at(b)), /"reply" must be an inbox/);
  rejects(() => decodeBatch(withBody({ ...base, reply: 'wasmlet.prod.evt.x' }), at(b)), /"reply" must be an inbox/);
  rejects(() => decodeBatch(withBody({ ...base, items: [] }), at(b)), /"items" must be a non-empty array/);
  const garbage = withBody({});
  garbage.fill(0xc1, 3 + a.creds.token.length + 64);
  rejects(() => decodeBatch(garbage, at(b)), /signature does not verify/, 'forged');
});

test('allow-list: only listed hosts, on top of membership', () => {
  const frame = encodeBatch(sample(), a.key, signed(a));
  rejects(() => decodeBatch(frame, { ...at(b), allowedHosts: new Set([c.key.publicKey]) }), /not in the allowed host list/, 'refused');
  assert.equal(decodeBatch(frame, { ...at(b), allowedHosts: new Set([c.key.publicKey, a.key.publicKey]) }).hostId, a.key.publicKey);
  assert.equal(decodeBatch(frame, { ...at(b), allowedHosts: new Set() }).hostId, a.key.publicKey, 'an empty list allows any member');
});
