import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '../codec.ts';
import { generateKeyPair } from '../claims/keys.ts';
import { isEnvelopeError, isWasmletError } from '../errors.ts';
import { ENVELOPE_INVALID, hostKeyFromSeed, type HostKey } from './envelope.ts';
import { LatticeTrust } from './membership.ts';
import { DECLINED, decodeReply, errorPayload, frameReplyBatch, readReplyBatch, REPLY_DECLINED, REPLY_ERROR, REPLY_OK, type ReplyAuth, type Responder } from './replies.ts';
import { TestIssuer } from './test-support.ts';

const issuer = TestIssuer.create('prod');
async function member(role: 'host' | 'provider' = 'host', from = issuer) {
  const creds = await from.creds(role);
  return { creds, trust: LatticeTrust.closed(creds), key: hostKeyFromSeed(creds.seed) };
}
const [caller, host, provider] = [await member(), await member(), await member('provider')];
const INBOX = '_INBOX.caller1';

function read(data: Uint8Array, who = caller, reply = INBOX): { responder: Responder; replies: [string, Uint8Array][] } {
  const replies: [string, Uint8Array][] = [];
  const responder = readReplyBatch(data, { trust: who.trust, key: who.key, reply }, (id, frame) => replies.push([id, frame]));
  return { responder, replies };
}

function rejects(fn: () => unknown, pattern: RegExp, reason?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWasmletError(err), String(err));
    assert.equal(err.code, ENVELOPE_INVALID, err.message);
    assert.match(err.message, pattern);
    if (reason) assert.equal(isEnvelopeError(err) && err.reason, reason);
    return true;
  });
}

const signedBy = (m: { creds: { token: string }; key: HostKey }): ReplyAuth => ({ kind: 'signed', token: m.creds.token, key: m.key });
const entries = (...frames: [string, number, Uint8Array][]) => frames.flat();

test('reply frames: ok, error and declined round trip; garbled ones are rejected', () => {
  const one = (status: number, payload: Uint8Array) => read(frameReplyBatch(signedBy(host), INBOX, ['1', status, payload])).replies[0]![1];
  const ok = decodeReply(one(REPLY_OK, Uint8Array.from([1, 2, 3])));
  assert.ok(ok.ok);
  assert.deepEqual([...ok.result], [1, 2, 3]);
  assert.deepEqual(decodeReply(one(REPLY_ERROR, errorPayload('DEADLINE_EXCEEDED', 'too slow'))), { ok: false, code: 'DEADLINE_EXCEEDED', message: 'too slow' });
  assert.deepEqual(decodeReply(one(REPLY_DECLINED, errorPayload(DECLINED, 'host stopping'))), { ok: false, code: 'DECLINED', message: 'host stopping', declined: true });
  assert.equal((decodeReply(one(REPLY_ERROR, errorPayload('DECLINED', 'x'))) as { declined?: true }).declined, undefined, 'an error code named DECLINED is not a decline');
  rejects(() => decodeReply(new Uint8Array(0)), /empty reply/);
  rejects(() => decodeReply(Uint8Array.from([7, 1])), /unknown reply status 7/);
  rejects(() => decodeReply(Uint8Array.from([1, 0xc1])), /not msgpack/);
  rejects(() => decodeReply(Uint8Array.from([1, ...encode({ code: 1 })])), /\{code, message\}/);
});

test('a signed reply batch names and proves its responder, and carries each reply with its id', () => {
  const framed = frameReplyBatch(signedBy(host), INBOX, entries(['a', REPLY_OK, Uint8Array.from([1, 2])], ['zz9', REPLY_ERROR, errorPayload('TRAP', 'boom')], ['1b', REPLY_OK, new Uint8Array(70_000)]));
  const { responder, replies } = read(framed);
  assert.equal(responder.hostId, host.key.publicKey);
  assert.equal(responder.member?.role, 'host');
  assert.deepEqual(replies.map(([id]) => id), ['a', 'zz9', '1b']);
  assert.deepEqual(decodeReply(replies[1]![1]), { ok: false, code: 'TRAP', message: 'boom' });
  assert.equal(replies[2]![1].byteLength, 70_001);
  assert.equal(caller.trust.known(host.key.publicKey)?.key, host.creds.key, 'the caller now knows the responder');
  // Bound to the caller's inbox: replayed to another caller (or another inbox), it does not verify.
  const other = read.bind(null, framed, caller, '_INBOX.someoneelse');
  rejects(other, /signature does not verify/, 'forged');
  // Any flipped byte after the credential.
  for (let i = 3 + host.creds.token.length; i < Math.min(framed.length, 3 + host.creds.token.length + 200); i++) {
    const copy = Uint8Array.from(framed);
    copy[i]! ^= 1;
    assert.throws(() => read(copy), (e) => isWasmletError(e) && e.code === ENVELOPE_INVALID, `byte ${i}`);
  }
});

test("a MAC'd reply batch is accepted only from a member the caller verified, under the pair's reply key", async () => {
  const framed = frameReplyBatch({ kind: 'mac', key: host.key, peer: host.key.peer(caller.key.publicKey)! }, INBOX, entries(['7', REPLY_OK, Uint8Array.from([9])]));
  const fresh = await member();
  // A caller that has not verified the responder's credential cannot accept its MACs.
  rejects(() => read(framed, fresh), /a member this host has not verified/, 'refused');
  read(frameReplyBatch(signedBy(host), INBOX, entries(['1', REPLY_OK, new Uint8Array(0)])));
  const { responder, replies } = read(framed);
  assert.equal(responder.hostId, host.key.publicKey);
  assert.deepEqual(replies.map(([id]) => id), ['7']);
  rejects(() => read(framed, caller, '_INBOX.other'), /MAC does not verify/, 'forged');
  const flipped = Uint8Array.from(framed);
  flipped[framed.length - 1]! ^= 1;
  rejects(() => read(flipped), /MAC does not verify/, 'forged');
  // Mallory MACs her own batch, then claims to be host.
  const mallory = hostKeyFromSeed(generateKeyPair('server').seed);
  const forged = frameReplyBatch({ kind: 'mac', key: mallory, peer: mallory.peer(caller.key.publicKey)! }, INBOX, entries(['7', REPLY_OK, Uint8Array.from([6])]));
  forged.set(host.key.raw, 1);
  rejects(() => read(forged), /MAC does not verify/, 'forged');
});

test('credentials of reply batches: another issuer is refused; open and closed lattices never mix; earlier formats are refused', async () => {
  const stranger = await member('host', TestIssuer.create('prod'));
  rejects(() => read(frameReplyBatch(signedBy(stranger), INBOX, entries(['1', REPLY_OK, new Uint8Array(0)]))), /not signed by this lattice's issuer/, 'forged');
  const open = frameReplyBatch({ kind: 'open', hostId: host.key.publicKey }, INBOX, entries(['1', REPLY_OK, new Uint8Array(0)]));
  rejects(() => read(open), /open lattice member, and this lattice is closed/, 'refused');
  const openCaller = { trust: LatticeTrust.insecure('prod'), key: caller.key, creds: caller.creds };
  assert.equal(read(open, openCaller).responder.hostId, host.key.publicKey);
  assert.equal(read(open, openCaller).responder.member, undefined);
  rejects(() => read(frameReplyBatch(signedBy(host), INBOX, entries(['1', REPLY_OK, new Uint8Array(0)])), openCaller), /runs an open lattice/, 'refused');
  rejects(() => read(Uint8Array.from([3, 1, 97, 0, 0, 0, 1, 0])), /earlier wasmlet/);
  for (const bad of [new Uint8Array(0), Uint8Array.from([0, 1]), Uint8Array.from([6, 0]), Uint8Array.from([7, 1]), Uint8Array.from([4, 0])]) {
    assert.throws(() => read(bad, openCaller), (e) => isWasmletError(e) && e.code === ENVELOPE_INVALID);
    assert.throws(() => read(bad), (e) => isWasmletError(e) && e.code === ENVELOPE_INVALID);
  }
  // A provider process's reply batch names a provider (the caller decides what it may answer).
  const two = frameReplyBatch(signedBy(provider), INBOX, entries(['1', REPLY_OK, Uint8Array.from([1])], ['2', REPLY_OK, Uint8Array.from([2])]));
  assert.equal(read(two).responder.member?.role, 'provider');
});
