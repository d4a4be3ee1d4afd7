import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '../codec.ts';
import { generateKeyPair, signingKey, verifySignature } from '../claims/keys.ts';
import { isWasmletError } from '../errors.ts';
import {
  batchOverhead,
  decodeBatch,
  encodeBatch,
  encodeItem,
  ENVELOPE_INVALID,
  frameBatch,
  hostKeyFromSeed,
  HOST_KEY_INVALID,
  type Batch,
  type BatchItem,
} from './envelope.ts';
import { DECLINED, decodeReply, errorPayload, frameReplyBatch, readReplyBatch, REPLY_DECLINED, REPLY_ERROR, REPLY_OK } from './replies.ts';

/** One reply frame as a host sends it: through a reply batch, read back. */
function replyFrame(status: number, payload: Uint8Array): Uint8Array {
  let frame: Uint8Array | undefined;
  readReplyBatch(frameReplyBatch(key.publicKey, ['1', status, payload]), (_id, f) => (frame = f));
  return frame!;
}
const okReply = (result: Uint8Array) => replyFrame(REPLY_OK, result);
const errorReply = (code: string, message: string) => replyFrame(REPLY_ERROR, errorPayload(code, message));

const host = generateKeyPair('server');
const key = hostKeyFromSeed(host.seed);
const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';

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

function sample(overrides: Partial<Batch> = {}): Batch {
  return {
    hostId: key.publicKey,
    target: 'provider.wasmlet:keyvalue.default',
    sent: 1_700_000_000_000,
    reply: '_INBOX.abc123',
    items: [item(), item({ id: 'a2', operation: 'Get', deadline: 1_700_000_001_000 })],
    ...overrides,
  };
}

/** A signed frame around any msgpack body (to build batches a well-behaved sender never writes). */
function withBody(value: unknown, signer = key): Uint8Array {
  const body = encode(value);
  const f = new Uint8Array(65 + body.length);
  f[0] = 2;
  f.set(signer.sign(body), 1);
  f.set(body, 65);
  return f;
}

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isWasmletError(err), String(err));
    assert.equal(err.code, ENVELOPE_INVALID);
    assert.match(err.message, pattern);
    return true;
  });
}

/** A batch as plain data: message bytes as Buffers, every item field present (absent ones undefined). */
const plain = (b: Batch) => ({
  ...b,
  items: b.items.map((i) => ({ id: i.id, origin: i.origin, operation: i.operation, msg: Buffer.from(i.msg), deadline: i.deadline, actor: i.actor, linkName: i.linkName, claims: i.claims })),
});

test('host key: public key matches nkeys, signatures verify with keys.ts', () => {
  assert.equal(key.publicKey, host.publicKey);
  const data = new TextEncoder().encode('hello');
  assert.ok(verifySignature(host.publicKey, data, key.sign(data)));
  // And the other way: nkeys.js signs the same bytes (Ed25519 is deterministic).
  assert.deepEqual(Buffer.from(key.sign(data)), Buffer.from(signingKey(host.seed).sign(data)), 'Ed25519 is deterministic');
});

test('host key: only server seeds, never echoed', () => {
  const account = generateKeyPair('account').seed;
  assert.throws(() => hostKeyFromSeed(account), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID && /server nkey seed/.test(err.message) && !err.message.includes(account));
  assert.throws(() => hostKeyFromSeed('SNnotaseed'), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID);
});

test('round trip: shared fields once, every item field, optional ones included or left out', () => {
  const claims = { jti: 'j', iat: 1, iss: 'A', sub: 'M', wascap: { hash: 'H', caps: ['wascc:keyvalue'] } };
  const minimal = item({ id: 'a3' });
  delete minimal.actor;
  delete minimal.linkName;
  const batch = sample({ items: [item({ claims }), minimal] });
  const frame = encodeBatch(batch, key);
  assert.equal(frame[0], 2);
  const out = decodeBatch(frame);
  assert.deepEqual(plain(out), plain(batch));
  assert.equal(out.items[1]!.actor, undefined);
  assert.equal(out.items[1]!.claims, undefined);
  assert.equal(out.items[0]!.claims?.sub, 'M');
});

test('one signature covers the whole batch; a batch of one has the same framing', () => {
  const one = encodeBatch(sample({ items: [item()] }), key);
  const many = encodeBatch(sample({ items: Array.from({ length: 300 }, (_, i) => item({ id: i.toString(36) })) }), key);
  assert.equal(one[0], many[0]);
  assert.equal(decodeBatch(one).items.length, 1);
  const out = decodeBatch(many);
  assert.equal(out.items.length, 300, 'past 15 items the array header is wider; still one batch');
  assert.deepEqual(out.items.map((i) => i.id), Array.from({ length: 300 }, (_, i) => i.toString(36)));
  // Items framed from pre-encoded bytes equal items encoded as objects.
  const { items, ...header } = sample();
  assert.deepEqual(Buffer.from(frameBatch(header, items.map(encodeItem), key)), Buffer.from(encodeBatch(sample(), key)));
  // batchOverhead is what the frame adds around its items.
  const itemBytes = items.map(encodeItem).reduce((n, b) => n + b.length, 0);
  assert.equal(batchOverhead(header, items.length) + itemBytes, encodeBatch(sample(), key).length);
  assert.equal(batchOverhead(header, items.length, { sign: false }) + itemBytes, encodeBatch(sample(), key, { sign: false }).length);
});

test('a signer cannot claim another host id; empty batches are not framed', () => {
  const other = generateKeyPair('server').publicKey;
  assert.throws(() => encodeBatch(sample({ hostId: other }), key), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID);
  assert.throws(() => encodeBatch(sample({ items: [] }), key), (err: Error & { code?: string }) => err.code === HOST_KEY_INVALID && /1–65535 items/.test(err.message));
});

test('tampered batch: any flipped byte of the body is rejected', () => {
  const frame = encodeBatch(sample(), key);
  let rejected = 0;
  // Flip each byte of the body in turn (the signature covers all of it, every item included).
  for (let i = 65; i < frame.length; i++) {
    const copy = frame.slice();
    copy[i]! ^= 0x01;
    try {
      decodeBatch(copy);
    } catch (err) {
      assert.equal((err as { code?: string }).code, ENVELOPE_INVALID);
      rejected++;
    }
  }
  assert.equal(rejected, frame.length - 65);
  // A changed second item under the old signature: the reason is the signature.
  const original = encodeBatch(sample(), key);
  const forged = encodeBatch(sample({ items: [item(), item({ id: 'a2', operation: 'Del', deadline: 1_700_000_001_000 })] }), key);
  assert.equal(forged.length, original.length);
  forged.set(original.subarray(1, 65), 1);
  rejects(() => decodeBatch(forged), /signature does not verify/);
  // An item appended to a signed batch.
  const appended = withBody({ ...sample(), items: [...sample().items, item({ id: 'evil', operation: 'Clear' })] });
  appended.set(original.subarray(1, 65), 1);
  rejects(() => decodeBatch(appended), /signature does not verify/);
  // A flipped signature byte.
  const badSig = original.slice();
  badSig[10]! ^= 0xff;
  rejects(() => decodeBatch(badSig), /signature does not verify/);
});

test('forged signature: signed by one host, claiming to be another', () => {
  const mallory = hostKeyFromSeed(generateKeyPair('server').seed);
  // Mallory signs a body naming the victim host.
  rejects(() => decodeBatch(withBody(sample(), mallory)), new RegExp(`signature does not verify against host ${key.publicKey}`));
  // Nor can an unsigned frame stand in for a signed one.
  rejects(() => decodeBatch(encodeBatch(sample(), key, { sign: false })), /unsigned batch.*requires signed invocations/);
});

test('mixed valid and invalid items: the whole batch is rejected, naming the bad item', () => {
  const good = { ...item(), msg: item().msg };
  rejects(() => decodeBatch(withBody({ ...sample(), items: [good, { ...good, id: 'b', operation: 7 }] })), /item 1: field "operation" must be a non-empty string/);
  rejects(() => decodeBatch(withBody({ ...sample(), items: [good, good, { ...good, msg: 'text' }] })), /item 2: field "msg" must be bytes/);
  rejects(() => decodeBatch(withBody({ ...sample(), items: [{ ...good, deadline: 'soon' }, good] })), /item 0: field "deadline" must be a number/);
  rejects(() => decodeBatch(withBody({ ...sample(), items: [good, { ...good, linkName: 3 }] })), /item 1: field "linkName" must be a string/);
  rejects(() => decodeBatch(withBody({ ...sample(), items: [good, { ...good, claims: 'x' }] })), /item 1: field "claims" must be a map/);
  rejects(() => decodeBatch(withBody({ ...sample(), items: [good, 5] })), /item 1 is not a msgpack map/);
  // Ids become reply subject tokens: no dots, wildcards or whitespace.
  for (const id of ['a.b', '*', '>', 'a b', 'x'.repeat(65)]) {
    rejects(() => decodeBatch(withBody({ ...sample(), items: [good, { ...good, id }] })), /item 1: field "id" must be one subject token/);
  }
});

test('allow-list: only listed hosts', () => {
  const frame = encodeBatch(sample(), key);
  const other = generateKeyPair('server').publicKey;
  rejects(() => decodeBatch(frame, { allowedHosts: new Set([other]) }), /not in the allowed host list/);
  assert.equal(decodeBatch(frame, { allowedHosts: new Set([other, key.publicKey]) }).hostId, key.publicKey);
  assert.equal(decodeBatch(frame, { allowedHosts: new Set() }).hostId, key.publicKey, 'an empty list allows any host');
});

test('the key cache: a second batch from a host reuses its parsed key, and still verifies', () => {
  const keyCache = new Map();
  decodeBatch(encodeBatch(sample(), key), { keyCache });
  assert.equal(keyCache.size, 1);
  assert.equal(decodeBatch(encodeBatch(sample(), key), { keyCache }).hostId, key.publicKey);
  assert.equal(keyCache.size, 1);
  const forged = encodeBatch(sample(), key);
  forged[10]! ^= 1;
  rejects(() => decodeBatch(forged, { keyCache }), /signature does not verify/);
});

test('bad msgpack, bad framing and bad batch fields are rejected with a reason', () => {
  rejects(() => decodeBatch(new Uint8Array(0)), /truncated/);
  rejects(() => decodeBatch(Uint8Array.from([2, ...new Uint8Array(64)])), /truncated/);
  const frame = encodeBatch(sample(), key);
  const v9 = frame.slice();
  v9[0] = 9;
  rejects(() => decodeBatch(v9), /unknown format version 9/);
  const v1 = frame.slice();
  v1[0] = 1;
  rejects(() => decodeBatch(v1), /format version 1 \(one envelope per message, from an earlier wasmlet\)/);
  const garbage = new Uint8Array(100).fill(0xc1);
  garbage[0] = 2;
  rejects(() => decodeBatch(garbage), /not msgpack/);
  rejects(() => decodeBatch(withBody([1, 2, 3])), /not a msgpack map/);
  rejects(() => decodeBatch(withBody({ ...sample(), target: '' })), /"target" must be a non-empty string/);
  rejects(() => decodeBatch(withBody({ ...sample(), sent: 'now' })), /"sent" must be a number/);
  rejects(() => decodeBatch(withBody({ ...sample(), reply: '_INBOX.*' })), /"reply" must be a subject/);
  rejects(() => decodeBatch(withBody({ ...sample(), reply: '_INBOX..x' })), /"reply" must be a subject/);
  rejects(() => decodeBatch(withBody({ ...sample(), hostId: KVCOUNTER })), /not a server public key/);
  rejects(() => decodeBatch(withBody({ ...sample(), items: [] })), /"items" must be a non-empty array/);
  rejects(() => decodeBatch(withBody({ ...sample(), items: 'x' })), /"items" must be a non-empty array/);
});

test('replies: ok and error round trip; garbled ones are rejected', () => {
  const ok = decodeReply(okReply(Uint8Array.from([1, 2, 3])));
  assert.ok(ok.ok);
  assert.deepEqual([...ok.result], [1, 2, 3]);
  const empty = decodeReply(okReply(new Uint8Array(0)));
  assert.ok(empty.ok && empty.result.length === 0);
  assert.deepEqual(decodeReply(errorReply('DEADLINE_EXCEEDED', 'too slow')), { ok: false, code: 'DEADLINE_EXCEEDED', message: 'too slow' });
  // Declined: not run, send again; the flag cannot be confused with an error code of the same name.
  assert.deepEqual(decodeReply(replyFrame(REPLY_DECLINED, errorPayload(DECLINED, 'host stopping'))), { ok: false, code: 'DECLINED', message: 'host stopping', declined: true });
  assert.equal((decodeReply(errorReply('DECLINED', 'x')) as { declined?: true }).declined, undefined);
  rejects(() => decodeReply(new Uint8Array(0)), /empty reply/);
  rejects(() => decodeReply(Uint8Array.from([7, 1])), /unknown reply status 7/);
  rejects(() => decodeReply(Uint8Array.from([1, 0xc1])), /not msgpack/);
  rejects(() => decodeReply(Uint8Array.from([1, ...encode({ code: 1 })])), /\{code, message\}/);
});

test('antiforgery off: unsigned frames, accepted only by receivers that do not require signatures', () => {
  const unsigned = encodeBatch(sample(), key, { sign: false });
  assert.equal(unsigned[0], 0);
  assert.equal(unsigned.length, encodeBatch(sample(), key).length - 64);
  const out = decodeBatch(unsigned, { requireSignature: false });
  assert.equal(out.items[0]!.operation, 'Add');
  assert.equal(out.hostId, key.publicKey);
  // A receiver that does not verify still accepts signed frames, and still checks the fields.
  assert.equal(decodeBatch(encodeBatch(sample(), key), { requireSignature: false }).items[1]!.id, 'a2');
  rejects(() => decodeBatch(Uint8Array.from([0]), { requireSignature: false }), /no body/);
  rejects(() => decodeBatch(Uint8Array.from([0, 0xc1, 0xc1]), { requireSignature: false }), /not msgpack/);
  const badItem = encode({ ...sample(), items: [{ ...item(), msg: 'text' }] });
  rejects(() => decodeBatch(Uint8Array.from([0, ...badItem]), { requireSignature: false }), /item 0: field "msg" must be bytes/);
});

test('reply batches carry each reply with its id, and a garbled one is refused', () => {
  const frames = [okReply(Uint8Array.from([1, 2])), errorReply('TRAP', 'boom'), okReply(new Uint8Array(70_000))];
  const framed = frameReplyBatch(key.publicKey, frames.flatMap((f, i) => [['a', 'zz9', '1b'][i]!, f[0]!, f.subarray(1)]));
  const seen: [string, Uint8Array][] = [];
  assert.equal(readReplyBatch(framed, (id, frame) => seen.push([id, frame])), key.publicKey, 'names the answering host');
  assert.deepEqual(seen.map(([id]) => id), ['a', 'zz9', '1b']);
  const first = decodeReply(seen[0]![1]);
  assert.ok(first.ok && Buffer.from(first.result).equals(Buffer.from([1, 2])));
  assert.deepEqual(decodeReply(seen[1]![1]), { ok: false, code: 'TRAP', message: 'boom' });
  assert.equal(seen[2]![1].byteLength, 70_001);
  for (const bad of [new Uint8Array(0), Uint8Array.from([0, 1]), framed.subarray(0, framed.byteLength - 1), Uint8Array.from([4, 0]), Uint8Array.from([4, 9, 65])]) {
    assert.throws(() => readReplyBatch(bad, () => {}), (e) => isWasmletError(e) && e.code === ENVELOPE_INVALID);
  }
  // The reply batches of earlier wasmlet versions named no host.
  rejects(() => readReplyBatch(Uint8Array.from([3, 1, 97, 0, 0, 0, 1, 0]), () => {}), /earlier wasmlet \(no responding host id\)/);
});
