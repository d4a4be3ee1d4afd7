// Worker of shared-table.test.ts: attaches to the tables the test hands it and runs calls on them.
// Workers do not inherit the parent's loader hooks, so tsx is registered here.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { SharedKeyValueTable } = await import('./shared-table.ts');
const { SharedHeap } = await import('./shared-heap.ts');

let table;

/** Waits on a shared gate word so every thread starts hammering at once. */
function waitGate(gate) {
  const word = new Int32Array(gate);
  while (Atomics.load(word, 0) === 0) Atomics.wait(word, 0, 0, 50);
}

/** Adds, pushes and set-adds `n` times; returns every value `add` answered. */
function hammer({ tag, n, gate }) {
  waitGate(gate);
  const adds = [];
  for (let i = 0; i < n; i++) {
    adds.push(table.add('counter', 1));
    table.push('list', `${tag}:${i}`);
    table.setAdd('set', `${tag}:${i}`);
  }
  return adds;
}

/** Changes the table without end (lists, sets and strings made, grown and deleted); the test terminates it. */
function churn({ tag }) {
  parentPort.postMessage({ churning: true });
  for (let i = 0; ; i++) {
    const k = `${tag}:${i % 7}`;
    table.push(`${k}:l`, `item ${i}`);
    table.setAdd(`${k}:s`, `member ${i % 3000}`);
    table.set(`${k}:v`, 'x'.repeat(i % 300), i % 5 === 0 ? 60 : 0);
    table.add(`${tag}:n`, 1);
    if (i % 1500 === 0) {
      table.del(`${k}:l`);
      table.del(`${k}:s`);
    }
    if (i % 97 === 0) table.listItemDelete(`${k}:l`, `item ${i - 50}`);
  }
}

/** Takes the table's lock and never lets go (a thread stuck, or about to die, inside an operation). */
function holdLock() {
  SharedHeap.attach(table.buffer, 1000).lock('hold');
  parentPort.postMessage({ holding: true });
  const never = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(never, 0, 0);
}

/**
 * Adds for `ms`, timing each call. Answers how many there were, and the Adds that had to wait
 * (over 0.05 ms, i.e. for another thread's operation): how many, their median, p90 and maximum (ms).
 */
function probe({ ms, gate }) {
  waitGate(gate);
  const waits = [];
  let calls = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    table.add('probe', 1);
    const d = performance.now() - t;
    calls++;
    if (d > 0.05) waits.push(d);
  }
  waits.sort((a, b) => a - b);
  const at = (q) => waits[Math.min(waits.length - 1, Math.floor(waits.length * q))] ?? 0;
  return { calls, waited: waits.length, median: at(0.5), p90: at(0.9), max: at(1) };
}

parentPort.on('message', ({ id, method, args }) => {
  try {
    let result;
    if (method === 'attach') {
      table = SharedKeyValueTable.attach(...args);
      result = table.size;
    } else if (method === 'hammer') {
      result = hammer(args[0]);
    } else if (method === 'churn') {
      result = churn(args[0]);
    } else if (method === 'holdLock') {
      result = holdLock();
    } else if (method === 'probe') {
      result = probe(args[0]);
    } else {
      result = table[method](...args);
    }
    parentPort.postMessage({ id, result });
  } catch (err) {
    parentPort.postMessage({ id, error: { name: err.name, code: err.code, message: err.message } });
  }
});
parentPort.postMessage({ ready: true });
