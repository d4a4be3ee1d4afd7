// Worker of bench/shared-table.ts: waits for "go", then adds to the contended counter.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { SharedKeyValueTable } = await import('../capabilities/keyvalue/shared-table.ts');
const table = SharedKeyValueTable.attach(workerData.buffer);
for (let i = 0; i < 100_000; i++) table.get('warm-up');
parentPort.postMessage('ready');
parentPort.once('message', () => {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < workerData.ops; i++) table.add('contended', 1);
  parentPort.postMessage(Number(process.hrtime.bigint() - t0) / workerData.ops);
});
