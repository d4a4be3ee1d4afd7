/**
 * A worker that dies holding the shared key-value table's lock (a crash inside an operation,
 * not a deadline kill) cannot wedge the bucket: the host recovers the lock through the route's
 * `recoverThread` as soon as the worker is gone, and other actors' calls go on at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { KeyValueProvider, SharedKeyValueTable } from '../capabilities/index.ts';
import { decode, encode, Host, isInvocationError, KEY_VALUE, type WorkerRoute } from '../host/index.ts';
import { until } from './helpers/wait.ts';
import { toolboxActor } from './helpers/wat.ts';

const logger = pino({ level: 'silent' });
const CRASH_ROUTE = new URL('./helpers/crash-route.ts', import.meta.url).href;

/** The key-value provider, with its worker route swapped for one that can crash holding the lock. */
class CrashableKeyValue extends KeyValueProvider {
  override workerRoute(actor: string, linkName: string): WorkerRoute | undefined {
    const route = super.workerRoute(actor, linkName);
    return route && { module: CRASH_ROUTE, data: route.data };
  }
}

describe('a worker that dies inside a key-value operation', () => {
  it('leaves the bucket usable: its lock is recovered when the worker ends, and calls go on', async () => {
    const host = await Host.start({ workers: 2, deadlineMs: 10_000 }, { logger });
    try {
      const provider = new CrashableKeyValue();
      await host.addProvider(provider);
      const [crasher, other] = await Promise.all([toolboxActor({ name: 'crasher' }), toolboxActor({ name: 'other' })]);
      for (const a of [crasher, other]) {
        await host.startActor(a.bytes);
        await host.putLink({ actor: a.id, contract: KEY_VALUE, values: { BUCKET: 'shared' } });
      }
      const table = SharedKeyValueTable.attach((provider.workerRoute(other.id, 'default')!.data as { buffer: SharedArrayBuffer }).buffer);
      const add = (actor: string) => host.invokeActor(actor, 'wascc:keyvalue/Add', encode({ key: 'n', value: 1 })).then((b) => decode<{ value: number }>(b).value);
      assert.equal(await add(other.id), 1);

      await assert.rejects(host.invokeActor(crasher.id, 'wascc:keyvalue/CrashHoldingLock', encode({})), (e) => isInvocationError(e) && e.code === 'TRAP' && /exited/.test(e.message));
      await until(() => table.recoveries.recovered === 1, 'the host recovered the lock of the worker that died');
      assert.equal(table.lockHolder, -1);
      assert.deepEqual(table.recoveries, { recovered: 1, resets: 0 }, 'the table checked out: nothing was lost');
      // Calls on the bucket go on at once (without recovery each would wait out the 2 s lock timeout and fail).
      const started = performance.now();
      assert.equal(await add(other.id), 2);
      assert.equal(await add(crasher.id), 3);
      assert.ok(performance.now() - started < 1500, `answered in ${Math.round(performance.now() - started)} ms`);
      assert.deepEqual(await provider.handle({ actor: other.id, linkName: 'default', operation: 'Get', msg: encode({ key: 'n' }) }).then((b) => decode(b)), { value: '3', exists: true });
    } finally {
      await host.stop();
    }
  });
});
