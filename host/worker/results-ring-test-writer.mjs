// Worker of results-ring.test.ts: writes `total` results of known contents into the ring it is
// handed, retrying while the ring is full. Workers do not inherit the parent's loader hooks, so
// tsx is registered here.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { ResultsWriter } = await import('./results-ring.ts');
const { sab, total } = workerData;
const w = new ResultsWriter(sab);
for (let id = 1; id <= total; ) {
  const n = (id * 7919) % 3000;
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) p[i] = (id * 31 + i) & 0xff;
  if (w.write(id, p)) id++;
}
