import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { generateKeyPair, publicKeyBytes, seedBytes } from '../claims/keys.ts';
import { isBatchNotAddressed, isWasmletError } from '../errors.ts';
import { batchOverhead, decodeBatch, encodeBatch, encodeItem, ENVELOPE_INVALID, frameBatch, hostKeyFromSeed, HOST_KEY_INVALID, type Batch, type HostKey } from './envelope.ts';
import { edwardsToMontgomery, FINGERPRINT_BYTES, TAG_BYTES } from './pair-keys.ts';

const newHost = (): HostKey => hostKeyFromSeed(generateKeyPair('server').seed);
const [a, b, c] = [newHost(), newHost(), newHost()];
const KV = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';

function batch(from: HostKey, over: Partial<Batch> = {}): Batch {
  const item = (id: string) => ({ id, origin: KV, operation: 'Add', msg: Uint8Array.from([0x81, 0xa1, 0x6b, 0x01]), deadline: 1_700_000_003_000 });
  return { hostId: from.publicKey, target: 'actor.' + KV, sent: 1_700_000_000_000, reply: '_INBOX.r1', items: [item('1'), item('2')], ...over };
}

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWasmletError(err), String(err));
    assert.equal(err.code, ENVELOPE_INVALID, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

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
  assert.notDeepEqual(ab.send, a.peer(c.publicKey)!.send, 'each pair has its own keys');
  assert.deepEqual(ab.fingerprint, b.fingerprint);
  assert.equal(a.peer(b.publicKey), ab, 'derived once, then cached');
  // Only server keys (N…) with a valid checksum.
  assert.equal(a.peer(generateKeyPair('account').publicKey), undefined);
  assert.equal(a.peer('NOTAKEY'), undefined);
});

test('a batch tagged for its receivers: each checks its own tag; no signature is made', () => {
  let signed = 0;
  const counting: HostKey = { ...a, sign: (d) => (signed++, a.sign(d)) };
  const frame = encodeBatch(batch(a), counting, { macFor: [a.peer(b.publicKey)!, a.peer(c.publicKey)!] });
  assert.equal(frame[0], 3);
  assert.equal(frame[1], 2);
  assert.equal(signed, 0);
  assert.deepEqual(Buffer.from(frame.subarray(2, 2 + FINGERPRINT_BYTES)), Buffer.from(b.fingerprint));
  for (const receiver of [b, c]) {
    const out = decodeBatch(frame, { receiver });
    assert.equal(out.hostId, a.publicKey);
    assert.deepEqual(out.items.map((i) => i.id), ['1', '2']);
  }
  // batchOverhead counts the tags.
  const { items, ...header } = batch(a);
  const macFor = [a.peer(b.publicKey)!, a.peer(c.publicKey)!];
  assert.equal(batchOverhead(header, 2, { macFor }) + items.map(encodeItem).reduce((n, x) => n + x.length, 0), frame.length);
  // More than 255 tags cannot be framed.
  assert.throws(() => frameBatch(header, items.map(encodeItem), a, { macFor: Array.from({ length: 256 }, () => macFor[0]!) }), (e) => isWasmletError(e) && e.code === HOST_KEY_INVALID);
});

test('a host without a tag in the batch runs nothing of it and learns where to decline', () => {
  const frame = encodeBatch(batch(a), a, { macFor: [a.peer(b.publicKey)!] });
  assert.throws(
    () => decodeBatch(frame, { receiver: c }),
    (err: unknown) => {
      assert.ok(isBatchNotAddressed(err), String(err));
      assert.equal(err.reply, '_INBOX.r1');
      assert.deepEqual(err.ids, ['1', '2']);
      assert.match(err.message, new RegExp(`no MAC for host ${c.publicKey}`));
      return true;
    },
  );
  // Without a host key, a receiver cannot check MACs at all.
  rejects(() => decodeBatch(frame), /has no host key to check them/);
  // A receiver that does not require antiforgery reads it as it is.
  assert.equal(decodeBatch(frame, { requireSignature: false }).items.length, 2);
  // A batch without a tag for this host whose items are malformed is dropped, not declined.
  const bad = encodeBatch(batch(a, { items: [{ ...batch(a).items[0]!, id: 'a.b' }] }), a, { macFor: [a.peer(b.publicKey)!] });
  rejects(() => decodeBatch(bad, { receiver: c }), /item 0: field "id"/);
});

test('tampered, forged and reflected batches with MACs are refused', () => {
  const frame = encodeBatch(batch(a), a, { macFor: [a.peer(b.publicKey)!] });
  const bodyStart = 2 + FINGERPRINT_BYTES + TAG_BYTES;
  // Any flipped byte of the body or of the tag.
  for (let i = bodyStart - TAG_BYTES; i < frame.length; i++) {
    const copy = Uint8Array.from(frame);
    copy[i]! ^= 0x01;
    assert.throws(() => decodeBatch(copy, { receiver: b }), (err: unknown) => isWasmletError(err) && err.code === ENVELOPE_INVALID, `byte ${i}`);
  }
  const flippedTag = Uint8Array.from(frame);
  flippedTag[bodyStart - 1]! ^= 0x80;
  rejects(() => decodeBatch(flippedTag, { receiver: b }), new RegExp(`MAC does not verify against host ${a.publicKey}`));
  // Mallory tags her own body for b, then swaps her host id for a's: b checks the tag under the a → b key.
  const mallory = newHost();
  const forged = encodeBatch(batch(mallory), mallory, { macFor: [mallory.peer(b.publicKey)!] });
  Buffer.from(forged.buffer, forged.byteOffset, forged.byteLength).write(a.publicKey, Buffer.from(forged).indexOf(mallory.publicKey), 'latin1');
  rejects(() => decodeBatch(forged, { receiver: b }), /MAC does not verify/);
  // A batch b tagged for a, refiled under b's own fingerprint, does not pass at b: keys have a direction.
  const reflected = encodeBatch(batch(b), b, { macFor: [b.peer(a.publicKey)!] });
  reflected.set(b.fingerprint, 2);
  rejects(() => decodeBatch(reflected, { receiver: b }), /MAC does not verify/);
  // Framing: no tags, or fewer bytes than the tags it announces.
  rejects(() => decodeBatch(Uint8Array.from([3, 0, 0x80])), /at least one tag/);
  rejects(() => decodeBatch(frame.subarray(0, bodyStart), { receiver: b }), /truncated/);
  // The allow-list applies to batches with MACs too.
  rejects(() => decodeBatch(frame, { receiver: b, allowedHosts: new Set([c.publicKey]) }), /not in the allowed host list/);
});
