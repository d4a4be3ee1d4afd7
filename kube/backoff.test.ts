import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, every, jittered, sleep } from './backoff.ts';
import { Limiter } from './limiter.ts';

describe('backoff', () => {
  it('doubles from the base up to the cap, as the kubelet does (10 s … 5 min)', () => {
    const b = { baseMs: 10_000, maxMs: 300_000 };
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 100].map((n) => backoffDelay(n, b)), [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });

  it('jitters within ±20%', () => {
    const b = { baseMs: 1000, maxMs: 1000 };
    assert.equal(jittered(0, b, () => 0), 800);
    assert.equal(jittered(0, b, () => 1), 1200);
  });

  it('sleeps until aborted', async () => {
    const ac = new AbortController();
    const t = Date.now();
    setTimeout(() => ac.abort(), 20);
    assert.equal(await sleep(5000, ac.signal), false);
    assert.ok(Date.now() - t < 1000);
    assert.equal(await sleep(5), true);
  });

  it('runs a loop until aborted, surviving errors', async () => {
    const ac = new AbortController();
    let runs = 0;
    const errors: unknown[] = [];
    const loop = every(5, async () => {
      runs++;
      if (runs === 2) throw new Error('boom');
      if (runs === 4) ac.abort();
    }, ac.signal, (e) => errors.push(e));
    await loop;
    assert.equal(runs, 4);
    assert.equal(errors.length, 1);
  });

  it('limits concurrency', async () => {
    const l = new Limiter(2);
    let running = 0;
    let peak = 0;
    await Promise.all(Array.from({ length: 6 }, () => l.run(async () => {
      peak = Math.max(peak, ++running);
      await sleep(5);
      running--;
    })));
    assert.equal(peak, 2);
  });
});
