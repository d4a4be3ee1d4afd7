/**
 * A worker-route module for host tests: state in a SharedArrayBuffer (Int32 cells), so the test
 * sees what workers did. Operations: `Add` (cell 0 += 1, answers the msgpack map {value}),
 * `Spin` (busy-waits `spinMs`, then sets cell 1 to 1), `Fail` (throws).
 */
import type { WorkerRouteContext } from '../../host/index.ts';

export interface CounterRouteData {
  buffer: SharedArrayBuffer;
  spinMs?: number;
}

export function createWorkerHandler(data: CounterRouteData, { encode }: WorkerRouteContext): (operation: string, msg: Uint8Array) => Uint8Array {
  const cells = new Int32Array(data.buffer);
  return (operation) => {
    switch (operation) {
      case 'Add':
        return encode({ value: Atomics.add(cells, 0, 1) + 1, where: 'worker' });
      case 'Spin': {
        const until = Date.now() + (data.spinMs ?? 0);
        while (Date.now() < until) {}
        Atomics.store(cells, 1, 1);
        return encode({ spun: true });
      }
      case 'Fail':
        throw new Error('the route says no');
      default:
        throw new Error(`unknown operation ${operation}`);
    }
  };
}
