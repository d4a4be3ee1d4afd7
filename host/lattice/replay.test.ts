import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NonceCache, SequenceWindow } from './replay.ts';

test('sequence window: each batch number is accepted once, late ones within the window, nothing below it', () => {
  const w = new SequenceWindow({ size: 64, freshnessMs: 60_000 });
  const now = 1_000_000;
  assert.ok(w.accept('N1', 's', 10, now, now));
  assert.equal(w.accept('N1', 's', 10, now, now), false, 'the same batch again');
  assert.ok(w.accept('N1', 's', 12, now, now));
  assert.ok(w.accept('N1', 's', 11, now, now), 'a late batch inside the window');
  assert.equal(w.accept('N1', 's', 11, now, now), false);
  assert.ok(w.accept('N1', 's', 100, now, now), 'a jump forward');
  assert.ok(w.accept('N1', 's', 37, now, now), '63 below the top: still inside a 64-wide window');
  assert.equal(w.accept('N1', 's', 36, now, now), false, 'below the window: refused (could be a replay)');
  assert.equal(w.accept('N1', 's', 100, now, now), false);
  // Sessions and senders are separate.
  assert.ok(w.accept('N1', 't', 10, now, now));
  assert.ok(w.accept('N2', 's', 10, now, now));
  assert.equal(w.accept('N1', 's', -1, now, now), false);
  assert.equal(w.accept('N1', 's', 1.5, now, now), false);
});

test('sequence window: every number of a long shuffled run is accepted exactly once (bitmap shifts across words)', () => {
  const w = new SequenceWindow({ size: 4096, freshnessMs: 60_000 });
  const now = 5;
  const seqs = Array.from({ length: 3000 }, (_, i) => i);
  // Deliver in blocks of 50 reversed: late arrivals within the window.
  const order = seqs.flatMap((_, i) => (i % 50 === 0 ? seqs.slice(i, i + 50).reverse() : []));
  for (const s of order) assert.ok(w.accept('N', 'x', s, now, now), `seq ${s}`);
  for (const s of order) assert.equal(w.accept('N', 'x', s, now, now), false, `seq ${s} again`);
  // Shifts of every size, including by whole words and past the window.
  const v = new SequenceWindow({ size: 128, freshnessMs: 60_000 });
  let top = 0;
  assert.ok(v.accept('N', 'y', 0, now, now));
  for (const step of [1, 31, 32, 33, 64, 5, 127, 128, 1000]) {
    top += step;
    assert.ok(v.accept('N', 'y', top, now, now), `top ${top}`);
    assert.equal(v.accept('N', 'y', top, now, now), false);
    if (step < 128) assert.equal(v.accept('N', 'y', top - step, now, now), false, `${top - step} was seen`);
  }
});

test('sequence window: sessions idle past twice the freshness window are forgotten; a full table refuses new sessions', () => {
  const w = new SequenceWindow({ freshnessMs: 1000, maxSessions: 2 });
  assert.ok(w.accept('N', 'a', 1, 0, 0));
  assert.ok(w.accept('N', 'b', 1, 0, 0));
  assert.equal(w.accept('N', 'c', 1, 0, 10), false, 'full of fresh sessions');
  assert.ok(w.accept('N', 'c', 1, 5000, 5000), 'the idle ones were forgotten');
  assert.equal(w.sessions, 1);
});

test('nonce cache: a nonce is accepted once until it expires; a cache full of fresh nonces refuses', () => {
  const n = new NonceCache({ maxEntries: 2 });
  assert.ok(n.accept('x', 100, 0));
  assert.equal(n.accept('x', 100, 50), false);
  assert.ok(n.accept('y', 100, 50));
  assert.equal(n.accept('z', 200, 60), false, 'full');
  assert.ok(n.accept('z', 300, 150), 'expired ones make room');
  assert.ok(n.accept('x', 400, 150), 'an expired nonce may come again (its message would be stale by then)');
});
