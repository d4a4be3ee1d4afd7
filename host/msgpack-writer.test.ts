import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, encode } from './codec.ts';
import { sizeBin, sizeHeader, sizeNum, sizeStr, utf8Length, Writer } from './msgpack-writer.ts';

const strings = ['', 'a', 'x'.repeat(31), 'x'.repeat(32), 'y'.repeat(255), 'y'.repeat(256), 'z'.repeat(65_535), 'z'.repeat(65_536), 'héllo', '日本語のテキスト'.repeat(3), '😀 emoji', 'e\u0301'.repeat(40)];
const numbers = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 0xffffffff, 0x100000000, 1_700_000_003_000, -1, -129, 0.5, -2.25, Number.MAX_SAFE_INTEGER, 1e300];
const bins = [0, 1, 255, 256, 65_535, 65_536].map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff));

test('strings, bins and numbers decode to what was written, at the size computed beforehand', () => {
  for (const s of strings) {
    const w = new Writer(sizeStr(s)).str(s);
    assert.equal(decode(w.done()), s, `string of ${s.length}`);
    assert.equal(utf8Length(s), Buffer.byteLength(s));
    assert.ok(w.buf.equals(encode(s)), 'the same bytes as the general encoder');
  }
  for (const b of bins) {
    const out = decode<Uint8Array>(new Writer(sizeBin(b.byteLength)).bin(b).done());
    assert.deepEqual(Buffer.from(out), Buffer.from(b), `bin of ${b.byteLength}`);
  }
  for (const n of numbers) assert.equal(decode(new Writer(sizeNum(n)).num(n).done()), n, `number ${n}`);
});

test('maps and arrays of any size, and pre-encoded values, compose', () => {
  for (const count of [0, 15, 16, 65_535, 65_536]) {
    const entries = Array.from({ length: count }, (_, i) => [`k${i}`, i] as const);
    const size = sizeHeader(count) + entries.reduce((n, [k, v]) => n + sizeStr(k) + sizeNum(v), 0);
    const w = new Writer(size).mapHeader(count);
    for (const [k, v] of entries) w.str(k).num(v);
    assert.deepEqual(decode(w.done()), Object.fromEntries(entries), `map of ${count}`);
  }
  const list = new Writer(sizeHeader(17) + 17).arrayHeader(17);
  for (let i = 0; i < 17; i++) list.num(i);
  assert.deepEqual(decode(list.done()), Array.from({ length: 17 }, (_, i) => i));
  const inner = encode({ nested: [1, 'two', { three: true }] });
  const w = new Writer(sizeHeader(1) + sizeStr('v') + inner.byteLength).mapHeader(1).str('v').raw(inner);
  assert.deepEqual(decode(w.done()), { v: { nested: [1, 'two', { three: true }] } });
});

test('a wrong size is a loud bug, never a short or padded message', () => {
  assert.throws(() => new Writer(3).str('a').done(), /sized 3 bytes, wrote 2/);
  assert.throws(() => new Writer(1).str('ab').done(), /sized 1 bytes, wrote 3/);
});

test('bytes in memory of their own on request, else a view into the shared pool', () => {
  const own = new Writer(sizeStr('ab'), true).str('ab').done();
  assert.equal(own.byteOffset, 0);
  assert.equal(own.buffer.byteLength, own.byteLength);
  const pooled = new Writer(sizeStr('ab')).str('ab').done();
  assert.ok(pooled.buffer.byteLength > pooled.byteLength);
  assert.deepEqual([...own], [...pooled]);
});
