import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asBytes, decode, DecodeError, encode } from './codec.ts';

describe('codec', () => {
  it('round-trips maps with string keys and bytes as bin', () => {
    const bytes = encode({ statusCode: 200, header: { a: 'b' }, body: new Uint8Array([1, 2, 3]) });
    const body = bytes.indexOf(0xc4); // bin 8
    assert.ok(body > 0, 'body encoded as msgpack bin');
    const out = decode<{ statusCode: number; header: Record<string, string>; body: Uint8Array }>(bytes);
    assert.equal(out.statusCode, 200);
    assert.deepEqual(out.header, { a: 'b' });
    assert.deepEqual([...asBytes(out.body)], [1, 2, 3]);
  });

  it('reads the first value and ignores trailing bytes, as rmp-serde does', () => {
    const bytes = Buffer.concat([encode({ value: 7 }), Buffer.from([0x01, 0x02, 0xff])]);
    assert.deepEqual(decode(bytes), { value: 7 });
  });

  it('refuses empty, reserved and truncated payloads with a DecodeError', () => {
    assert.throws(() => decode(new Uint8Array()), DecodeError);
    assert.throws(() => decode(Uint8Array.from([0xc1, 0xc1])), /reserved byte/);
    const truncated = encode({ key: 'a long enough string' }).subarray(0, 6);
    assert.throws(() => decode(truncated), DecodeError);
  });

  it('turns strings and number arrays into bytes and refuses other shapes', () => {
    assert.deepEqual([...asBytes('hi')], [104, 105]);
    assert.deepEqual([...asBytes([1, 2])], [1, 2]);
    assert.equal(asBytes(undefined).byteLength, 0);
    assert.throws(() => asBytes(42), /expected bytes/);
  });
});
