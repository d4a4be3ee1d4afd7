import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '../codec.ts';
import { generateKeyPair, signingKey, verifySignature } from '../claims/keys.ts';
import { isWasmletError } from '../errors.ts';
import {
  decodeEnvelope,
  decodeReply,
  encodeEnvelope,
  encodeErrorReply,
  encodeOkReply,
  ENVELOPE_INVALID,
  hostKeyFromSeed,
  HOST_KEY_INVALID,
  type Envelope,
} from './envelope.ts';

const host = generateKeyPair('server');
const key = hostKeyFromSeed(host.seed);

function sample(overrides: Partial<Envelope> = {}): Envelope {
  return {
    id: 'a1',
    origin: 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ',
    target: 'provider.wasmlet:keyvalue.default',
    operation: 'Add',
    msg: Uint8Array.from([0x82, 0xa3, 0x6b, 0x65, 0x79, 0xa1, 0x78, 0xa5, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x01]),
    hostId: key.publicKey,
    deadline: 1_700_000_003_000,
    sent: 1_700_000_000_000,
    actor: 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ',
    linkName: 'default',
    ...overrides,
  };
}

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWasmletError(err), String(err));
    assert.equal(err.code, ENVELOPE_INVALID);
    assert.match(err.message, pattern);
    return true;
  });
}

test('host key: public key matches nkeys, signatures verify with keys.ts', () => {
  assert.equal(key.publicKey, host.publicKey);
  const data = new TextEncoder().encode('hello');
  assert.ok(verifySignature(host.publicKey, data, key.sign(data)));
  // And the other way: nkeys.js signs, node verifies through decodeEnvelope's path (same Ed25519).
  assert.deepEqual(Buffer.from(key.sign(data)), Buffer.from(signingKey(host.seed).sign(data)), 'Ed25519 is deterministic');
});

test('host key: only server seeds, never echoed', () => {
  const account = generateKeyPair('account').seed;
  assert.throws(() => hostKeyFromSeed(account), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID && /server nkey seed/.test(err.message) && !err.message.includes(account));
  assert.throws(() => hostKeyFromSeed('SNnotaseed'), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID);
});

test('round trip: every field, optional ones included or left out', () => {
  const env = sample({ claims: { jti: 'j', iat: 1, iss: 'A', sub: 'M', wascap: { hash: 'H', caps: ['wascc:keyvalue'] } } });
  const out = decodeEnvelope(encodeEnvelope(env, key));
  assert.deepEqual({ ...out, msg: Buffer.from(out.msg) }, { ...env, msg: Buffer.from(env.msg) });
  const minimal = sample();
  delete minimal.actor;
  delete minimal.linkName;
  const m = decodeEnvelope(encodeEnvelope(minimal, key));
  assert.equal(m.actor, undefined);
  assert.equal(m.linkName, undefined);
  assert.equal(m.claims, undefined);
  assert.equal(m.target, minimal.target);
});

test('a signer cannot claim another host id', () => {
  const other = generateKeyPair('server').publicKey;
  assert.throws(() => encodeEnvelope(sample({ hostId: other }), key), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID);
});

test('tampered body: any flipped byte is rejected', () => {
  const frame = encodeEnvelope(sample(), key);
  let rejected = 0;
  // Flip each byte of the body in turn (the signature covers all of it).
  for (let i = 65; i < frame.length; i++) {
    const copy = frame.slice();
    copy[i]! ^= 0x01;
    try {
      decodeEnvelope(copy);
    } catch (err) {
      assert.equal((err as { code?: string }).code, ENVELOPE_INVALID);
      rejected++;
    }
  }
  assert.equal(rejected, frame.length - 65);
  // A changed operation with the old signature: the reason is the signature.
  const forged = encodeEnvelope(sample({ operation: 'Set' }), key);
  const original = encodeEnvelope(sample(), key);
  forged.set(original.subarray(1, 65), 1);
  rejects(() => decodeEnvelope(forged), /signature does not verify/);
  // A flipped signature byte.
  const badSig = original.slice();
  badSig[10]! ^= 0xff;
  rejects(() => decodeEnvelope(badSig), /signature does not verify/);
});

test('wrong key: signed by one host, claiming to be another', () => {
  const mallory = hostKeyFromSeed(generateKeyPair('server').seed);
  // Mallory signs a body naming the victim host.
  const body = encode({ ...sample(), msg: sample().msg });
  const frame = new Uint8Array(65 + body.length);
  frame[0] = 1;
  frame.set(mallory.sign(body), 1);
  frame.set(body, 65);
  rejects(() => decodeEnvelope(frame), new RegExp(`signature does not verify against host ${key.publicKey}`));
});

test('allow-list: only listed hosts', () => {
  const frame = encodeEnvelope(sample(), key);
  const other = generateKeyPair('server').publicKey;
  rejects(() => decodeEnvelope(frame, { allowedHosts: new Set([other]) }), /not in the allowed host list/);
  assert.equal(decodeEnvelope(frame, { allowedHosts: new Set([other, key.publicKey]) }).hostId, key.publicKey);
  assert.equal(decodeEnvelope(frame, { allowedHosts: new Set() }).hostId, key.publicKey, 'an empty list allows any host');
});

test('bad msgpack, bad framing and bad fields are rejected with a reason', () => {
  rejects(() => decodeEnvelope(new Uint8Array(0)), /truncated/);
  rejects(() => decodeEnvelope(Uint8Array.from([1, ...new Uint8Array(64)])), /truncated/);
  const frame = encodeEnvelope(sample(), key);
  const v2 = frame.slice();
  v2[0] = 2;
  rejects(() => decodeEnvelope(v2), /unknown format version 2/);
  const garbage = new Uint8Array(100).fill(0xc1);
  garbage[0] = 1;
  rejects(() => decodeEnvelope(garbage), /not msgpack/);
  const withBody = (value: unknown, signer = key) => {
    const body = encode(value);
    const f = new Uint8Array(65 + body.length);
    f[0] = 1;
    f.set(signer.sign(body), 1);
    f.set(body, 65);
    return f;
  };
  rejects(() => decodeEnvelope(withBody([1, 2, 3])), /not a msgpack map/);
  rejects(() => decodeEnvelope(withBody({ ...sample(), operation: 7 })), /"operation" must be a non-empty string/);
  rejects(() => decodeEnvelope(withBody({ ...sample(), msg: 'text' })), /"msg" must be bytes/);
  rejects(() => decodeEnvelope(withBody({ ...sample(), deadline: 'soon' })), /"deadline" must be a number/);
  rejects(() => decodeEnvelope(withBody({ ...sample(), hostId: 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ' })), /not a server public key/);
  rejects(() => decodeEnvelope(withBody({ ...sample(), linkName: 3 })), /"linkName" must be a string/);
});

test('replies: ok and error round trip; garbled ones are rejected', () => {
  const ok = decodeReply(encodeOkReply(Uint8Array.from([1, 2, 3])));
  assert.ok(ok.ok);
  assert.deepEqual([...ok.result], [1, 2, 3]);
  const empty = decodeReply(encodeOkReply(new Uint8Array(0)));
  assert.ok(empty.ok && empty.result.length === 0);
  assert.deepEqual(decodeReply(encodeErrorReply('DEADLINE_EXCEEDED', 'too slow')), { ok: false, code: 'DEADLINE_EXCEEDED', message: 'too slow' });
  rejects(() => decodeReply(new Uint8Array(0)), /empty reply/);
  rejects(() => decodeReply(Uint8Array.from([7, 1])), /unknown reply status 7/);
  rejects(() => decodeReply(Uint8Array.from([1, 0xc1])), /not msgpack/);
  rejects(() => decodeReply(Uint8Array.from([1, ...encode({ code: 1 })])), /\{code, message\}/);
});

test('antiforgery off: unsigned frames, accepted only by receivers that do not require signatures', () => {
  const unsigned = encodeEnvelope(sample(), key, { sign: false });
  assert.equal(unsigned[0], 0);
  assert.ok(unsigned.length < encodeEnvelope(sample(), key).length);
  rejects(() => decodeEnvelope(unsigned), /unsigned envelope.*requires signed invocations/);
  const out = decodeEnvelope(unsigned, { requireSignature: false });
  assert.equal(out.operation, 'Add');
  assert.equal(out.hostId, key.publicKey);
  // A receiver that does not verify still accepts signed frames, and still checks the fields.
  assert.equal(decodeEnvelope(encodeEnvelope(sample(), key), { requireSignature: false }).id, 'a1');
  rejects(() => decodeEnvelope(Uint8Array.from([0]), { requireSignature: false }), /no body/);
  rejects(() => decodeEnvelope(Uint8Array.from([0, 0xc1, 0xc1]), { requireSignature: false }), /not msgpack/);
});
