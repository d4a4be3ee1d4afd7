/**
 * Per-operation cost of the shared-memory key-value table (capabilities/keyvalue/shared-table.ts),
 * from one thread and with worker threads adding to the same counter at once.
 * Usage: node --import tsx bench/shared-table.ts [--ops 2000000] [--threads 2]
 */
import { Worker } from 'node:worker_threads';
import { SharedKeyValueTable } from '../capabilities/keyvalue/shared-table.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ops = arg('ops', 2_000_000);
const threads = arg('threads', 2);
const print = (s: string) => process.stdout.write(`${s}\n`);

function perOp(label: string, n: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(n, 200_000); i++) fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  print(`${label.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns/op`);
}

const table = SharedKeyValueTable.create();
table.set('greeting', 'hello, world', 0);
perOp('add on an existing key', ops, () => table.add('counter:hits', 1));
perOp('get of a short string', ops, () => table.get('greeting'));
perOp('set of a short string (same key)', ops, () => table.set('greeting', 'hello, world', 0));
perOp('get of a counter', ops, () => table.get('counter:hits'));
const keys = Array.from({ length: 100_000 }, (_, i) => `user:${i}:name`);
perOp('set over 100k keys', ops, (i) => table.set(keys[i % keys.length] as string, 'some value', 0));
perOp('get over 100k keys', ops, (i) => table.get(keys[i % keys.length] as string));
perOp('push', ops / 4, () => table.push('list', 'item'));
perOp('setAdd of an existing member', ops, () => table.setAdd('set', 'member'));

// Contention: `threads` workers and this thread add to one key at once.
const workerUrl = new URL('./shared-table-worker.mjs', import.meta.url);
const before = table.get('contended').value;
const workers = Array.from({ length: threads }, () => new Worker(workerUrl, { workerData: { buffer: table.buffer, ops } }));
await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r)))); // loaded
const t0 = process.hrtime.bigint();
for (const w of workers) w.postMessage('go');
const done = Promise.all(workers.map((w) => new Promise<number>((r) => w.once('message', r))));
for (let i = 0; i < ops; i++) table.add('contended', 1);
const mainNs = Number(process.hrtime.bigint() - t0) / ops;
const workerNs = await done;
const wallNs = Number(process.hrtime.bigint() - t0);
await Promise.all(workers.map((w) => w.terminate()));
const total = ops * (threads + 1);
const value = Number(table.get('contended').value) - Number(before || 0);
print(`add, ${threads} worker${threads === 1 ? '' : 's'} + main on one key: main ${mainNs.toFixed(0)} ns/op, workers ${workerNs.map((n) => n.toFixed(0)).join(', ')} ns/op, ` +
  `${(wallNs / total).toFixed(0)} ns/op overall (${(total / (wallNs / 1e9) / 1e6).toFixed(2)} M adds/s), sum ${value === total ? 'exact' : `WRONG (${value} of ${total})`}`);
