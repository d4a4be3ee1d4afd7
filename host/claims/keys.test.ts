import assert from 'node:assert/strict';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { test } from 'node:test';
import { KEY_INVALID, KEY_KINDS, generateKeyPair, isPublicKey, keyKind, seedKind, signingKey, verifySignature } from './keys.ts';

const LETTER = { account: 'A', module: 'M', server: 'N', user: 'U', operator: 'O', cluster: 'C' } as const;
const data = new TextEncoder().encode('header.claims');

/** Raw 32-byte Ed25519 key of a public nkey, decoded independently of keys.ts (base32, drop prefix and CRC). */
function rawPublicKey(nkey: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of nkey) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  return bytes.subarray(1, 33);
}

test('generates key pairs of every kind, whose seeds sign what their public keys verify', () => {
  for (const kind of KEY_KINDS) {
    const pair = generateKeyPair(kind);
    assert.equal(pair.publicKey[0], LETTER[kind], kind);
    assert.equal(pair.seed.slice(0, 2), `S${LETTER[kind]}`, kind);
    assert.equal(keyKind(pair.publicKey), kind);
    assert.equal(seedKind(pair.seed), kind);
    const signer = signingKey(pair.seed);
    assert.equal(signer.publicKey, pair.publicKey);
    assert.equal(signer.kind, kind);
    const sig = signer.sign(data);
    assert.ok(verifySignature(pair.publicKey, data, sig), kind);
    assert.ok(!verifySignature(generateKeyPair(kind).publicKey, data, sig), `${kind}: another key must not verify`);
    assert.ok(!verifySignature(pair.publicKey, new TextEncoder().encode('header.claimz'), sig), `${kind}: other data`);
  }
  assert.notEqual(generateKeyPair('module').seed, generateKeyPair('module').seed);
});

test('module keys (unknown to nkeys.js) are real Ed25519 keys: node:crypto verifies their signatures', () => {
  const pair = generateKeyPair('module');
  const sig = signingKey(pair.seed).sign(data);
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), rawPublicKey(pair.publicKey)]);
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  assert.ok(cryptoVerify(null, data, key, sig));
});

test('reads the kinds of the waSCC fixture keys and rejects damaged ones', () => {
  assert.equal(keyKind('MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2'), 'module');
  assert.equal(keyKind('AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5'), 'account');
  // One character changed: the CRC no longer matches.
  assert.equal(keyKind('AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ4'), undefined);
  assert.equal(keyKind('AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ'), undefined);
  assert.equal(keyKind('not a key'), undefined);
  assert.equal(keyKind(''), undefined);
  assert.ok(isPublicKey('AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5', 'account'));
  assert.ok(!isPublicKey('AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5', 'module'));
  // A seed is not a public key.
  assert.equal(keyKind(generateKeyPair('account').seed), undefined);
  assert.equal(seedKind(generateKeyPair('account').publicKey), undefined);
});

test('signingKey refuses bad or wrong-kind seeds without echoing them', () => {
  const account = generateKeyPair('account');
  const module = generateKeyPair('module');
  const broken = `${account.seed.slice(0, 20)}${account.seed[20] === 'A' ? 'B' : 'A'}${account.seed.slice(21)}`;
  for (const [seed, expected, pattern] of [
    [broken, undefined, /not a valid nkey seed/],
    [account.publicKey, undefined, /not a valid nkey seed/],
    [module.seed, 'account', /expected the seed of an account key, got the seed of a module key/],
  ] as const) {
    assert.throws(
      () => signingKey(seed, expected),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, KEY_INVALID);
        assert.match(err.message, pattern);
        assert.ok(!err.message.includes(seed.slice(2, 20)), 'the seed must not appear in the message');
        return true;
      },
    );
  }
  assert.equal(verifySignature('garbage', data, new Uint8Array(64)), false);
});
