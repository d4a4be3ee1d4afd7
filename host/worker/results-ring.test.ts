import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { RESULTS_CAPACITY, RESULTS_MAX_PAYLOAD, ResultsReader, resultsBuffer, ResultsWriter } from './results-ring.ts';

const bytesOf = (id: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (id * 31 + i) & 0xff);

test('results come out in order, with their extra bytes, across the end of the ring', () => {
  const sab = resultsBuffer();
  const [w, r] = [new ResultsWriter(sab), new ResultsReader(sab)];
  const seen: [number, number[], number[] | undefined][] = [];
  let id = 0;
  // Sizes that do not divide the ring, so entries wrap many times.
  for (let lap = 0; lap < 40; lap++) {
    const sent: [number, number[], number[] | undefined][] = [];
    for (let k = 0; k < 7; k++) {
      const payload = bytesOf(++id, (id * 977) % 9000);
      const extra = id % 3 === 0 ? bytesOf(id + 1, 17) : undefined;
      assert.ok(w.write(id, payload, extra), `entry ${id} fits`);
      sent.push([id, [...payload], extra && [...extra]]);
    }
    seen.length = 0;
    assert.equal(r.drain((i, p, x) => seen.push([i, [...p], x && [...x]])), 7);
    assert.deepEqual(seen, sent);
  }
  assert.equal(r.drain(() => assert.fail('nothing left')), 0);
});

test('a full ring and an oversized result say no (they go by message); space comes back once drained', () => {
  const sab = resultsBuffer();
  const [w, r] = [new ResultsWriter(sab), new ResultsReader(sab)];
  assert.equal(w.write(1, new Uint8Array(RESULTS_MAX_PAYLOAD + 1)), false);
  assert.equal(w.write(1, new Uint8Array(RESULTS_MAX_PAYLOAD - 4), new Uint8Array(8)), false, 'payload and extra count together');
  let n = 0;
  while (w.write(++n, new Uint8Array(60_000))) {}
  assert.equal(n - 1, Math.floor(RESULTS_CAPACITY / 60_012));
  assert.equal(r.drain(() => {}), n - 1);
  assert.ok(w.write(n, new Uint8Array(60_000)));
});

test('the doorbell rings once until the reader clears it', () => {
  const sab = resultsBuffer();
  const [w, r] = [new ResultsWriter(sab), new ResultsReader(sab)];
  assert.equal(w.ring(), true, 'post a doorbell');
  assert.equal(w.ring(), false, 'one is on its way already');
  r.clearDoorbell();
  assert.equal(w.ring(), true);
});

test('a writer thread and a reader thread: every result arrives once, intact, in order', async () => {
  const sab = resultsBuffer();
  const reader = new ResultsReader(sab);
  const total = 50_000;
  const worker = new Worker(new URL('./results-ring-test-writer.mjs', import.meta.url), { workerData: { sab, total } });
  let failed: Error | undefined;
  worker.on('error', (err) => (failed = err));
  let next = 1;
  while (next <= total) {
    if (failed) throw failed;
    reader.drain((id, p) => {
      assert.equal(id, next, 'in order, none lost or repeated');
      const n = (id * 7919) % 3000;
      assert.equal(p.byteLength, n);
      for (let i = 0; i < n; i += 97) assert.equal(p[i], (id * 31 + i) & 0xff);
      next++;
    });
    await new Promise((r) => setImmediate(r));
  }
  await worker.terminate();
});
