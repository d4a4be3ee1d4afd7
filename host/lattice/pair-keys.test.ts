import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { generateKeyPair, publicKeyBytes, seedBytes } from '../claims/keys.ts';
import { hostKeyFromSeed, type HostKey } from './envelope.ts';
import { edwardsToMontgomery } from './pair-keys.ts';

const newHost = (): HostKey => hostKeyFromSeed(generateKeyPair('server').seed);
const [a, b, c] = [newHost(), newHost(), newHost()];
test('the Curve25519 form of a host key is the X25519 key OpenSSL derives from the same seed', () => {
  for (let i = 0; i < 20; i++) {
    const pair = generateKeyPair('server');
    // X25519's private key is the first half of SHA-512(seed); OpenSSL computes its public key.
    const scalar = createHash('sha512').update(seedBytes(pair.seed)!).digest().subarray(0, 32);
    const x = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), scalar]), format: 'der', type: 'pkcs8' });
    const expected = createPublicKey(x).export({ format: 'der', type: 'spki' }).subarray(-32);
    assert.deepEqual(Buffer.from(edwardsToMontgomery(publicKeyBytes(pair.publicKey)!)!), expected);
  }
  // Encodings that are no field element, or map to no point, have no Curve25519 form.
  assert.equal(edwardsToMontgomery(Uint8Array.from([1, ...new Uint8Array(31)])), undefined, 'y = 1');
  assert.equal(edwardsToMontgomery(new Uint8Array(32).fill(0xff).fill(0x7f, 31)), undefined, 'y ≥ p');
  assert.equal(edwardsToMontgomery(new Uint8Array(31)), undefined);
});

test('pairwise keys: both hosts derive the same key per direction, and the two directions differ', () => {
  const ab = a.peer(b.publicKey)!;
  const ba = b.peer(a.publicKey)!;
  assert.deepEqual(ab.send, ba.receive);
  assert.deepEqual(ab.receive, ba.send);
  assert.notDeepEqual(ab.send, ab.receive);
  // Reply batches have keys of their own (a batch tag never passes as a reply tag).
  assert.deepEqual(ab.replySend, ba.replyReceive);
  assert.deepEqual(ab.replyReceive, ba.replySend);
  assert.notDeepEqual(ab.replySend, ab.send);
  assert.notDeepEqual(ab.replySend, ab.replyReceive);
  assert.notDeepEqual(ab.send, a.peer(c.publicKey)!.send, 'each pair has its own keys');
  assert.deepEqual(ab.fingerprint, b.fingerprint);
  assert.equal(a.peer(b.publicKey), ab, 'derived once, then cached');
  // Only server keys (N…) with a valid checksum.
  assert.equal(a.peer(generateKeyPair('account').publicKey), undefined);
  assert.equal(a.peer('NOTAKEY'), undefined);
});
