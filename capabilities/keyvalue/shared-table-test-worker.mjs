// Worker of shared-table.test.ts: attaches to the tables the test hands it and runs calls on them.
// Workers do not inherit the parent's loader hooks, so tsx is registered here.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { SharedKeyValueTable } = await import('./shared-table.ts');

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

parentPort.on('message', ({ id, method, args }) => {
  try {
    let result;
    if (method === 'attach') {
      table = SharedKeyValueTable.attach(...args);
      result = table.size;
    } else if (method === 'hammer') {
      result = hammer(args[0]);
    } else {
      result = table[method](...args);
    }
    parentPort.postMessage({ id, result });
  } catch (err) {
    parentPort.postMessage({ id, error: { name: err.name, code: err.code, message: err.message } });
  }
});
parentPort.postMessage({ ready: true });
