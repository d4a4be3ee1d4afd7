/**
 * Per-instance memory limits: `memory.grow` past an actor's limit fails as WebAssembly defines
 * it (returns -1), for waPC modules and components alike; the rest of the host is unaffected; and
 * after an instance that grew is discarded, the worker is replaced so that its memory goes back.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { decode, DEFAULT_MAX_MEMORY_MIB, encode, Host, isActorLoadError, isInvocationError, wapcRuntime } from '../host/index.ts';
import { buildTestActor, testComponentRuntime, toolboxProject } from './helpers/component-actors.ts';
import { until } from './helpers/wait.ts';
import { compileWat, growerWat, signTestActor, type SignedTestActor } from './helpers/wat.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);
const echoBytes = readFileSync(new URL('wascc/echo.wasm', fixtures));
const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const PAGES_PER_MIB = 16;

function pages(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

async function grow(host: Host, actor: string, n: number): Promise<{ result: number; size: number }> {
  const out = await host.invokeActor(actor, 'grow', pages(n));
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  return { result: v.getInt32(0, true), size: v.getInt32(4, true) };
}

describe('memory limits', () => {
  let grower: SignedTestActor;
  before(async () => {
    grower = signTestActor(await compileWat(growerWat()), { name: 'grower', caps: [] });
  });

  it(`caps every instance at ${DEFAULT_MAX_MEMORY_MIB} MiB by default: memory.grow past it returns -1, the host keeps serving`, async () => {
    const host = await Host.start({ workers: 2 }, { logger });
    try {
      const info = await host.startActor(grower.bytes);
      assert.equal(info.maxMemoryMiB, DEFAULT_MAX_MEMORY_MIB);
      const echo = await host.startActor(echoBytes);
      // 1 GiB at once: refused.
      assert.deepEqual(await grow(host, info.id, 1024 * PAGES_PER_MIB), { result: -1, size: 1 });
      // Up to the limit: granted, page for page; one page more: refused.
      assert.deepEqual(await grow(host, info.id, DEFAULT_MAX_MEMORY_MIB * PAGES_PER_MIB - 1), { result: 1, size: DEFAULT_MAX_MEMORY_MIB * PAGES_PER_MIB });
      assert.deepEqual(await grow(host, info.id, 1), { result: -1, size: DEFAULT_MAX_MEMORY_MIB * PAGES_PER_MIB });
      const out = decode<{ statusCode: number }>(await host.invokeActor(echo.id, 'HandleRequest', encode({ method: 'GET', path: '/', queryString: '', header: {}, body: new Uint8Array() })));
      assert.equal(out.statusCode, 200);
      assert.equal(host.workerRestarts, 0);
    } finally {
      await host.stop();
    }
  });

  it('takes the limit from the actor’s own options, and refuses an actor whose memory starts past it', async () => {
    const host = await Host.start({ workers: 2, maxMemoryMiB: 8 }, { logger });
    try {
      const info = await host.startActor(grower.bytes, { maxMemoryMiB: 2 });
      assert.equal(info.maxMemoryMiB, 2);
      assert.deepEqual(await grow(host, info.id, 2 * PAGES_PER_MIB), { result: -1, size: 1 });
      assert.deepEqual(await grow(host, info.id, 2 * PAGES_PER_MIB - 1), { result: 1, size: 2 * PAGES_PER_MIB });
      const big = signTestActor(await compileWat('(module (memory (export "memory") 256) (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1)))'), { name: 'big', caps: [] });
      await assert.rejects(host.startActor(big.bytes), (e) => isActorLoadError(e) && /starts at 16 MiB, more than the actor's limit of 8 MiB/.test(e.message));
      assert.equal((await host.startActor(big.bytes, { maxMemoryMiB: 16 })).maxMemoryMiB, 16);
    } finally {
      await host.stop();
    }
  });

  it('gives the memory of a discarded instance back: its worker is replaced once its calls are done', async () => {
    const host = await Host.start({ workers: 1, deadlineMs: 10_000 }, { logger });
    try {
      const info = await host.startActor(grower.bytes, { maxMemoryMiB: 256 });
      const echo = await host.startActor(echoBytes);
      await host.invokeActor(info.id, 'ping', new Uint8Array(4));
      const baseline = process.memoryUsage.rss();
      // Grows by 192 MiB and touches every page: the instance holds it.
      assert.equal(new TextDecoder().decode(await host.invokeActor(info.id, 'fill', pages(192 * PAGES_PER_MIB))), 'ok');
      const held = process.memoryUsage.rss();
      // Then traps: the instance is discarded, and with it what it held.
      await assert.rejects(host.invokeActor(info.id, 'trap', new Uint8Array(4)), (e) => isInvocationError(e) && e.code === 'TRAP');
      await until(() => host.workerRecycles === 1, 'the worker was replaced');
      let settled = 0;
      await until(
        () => {
          settled = process.memoryUsage.rss();
          return settled - baseline < 32 * MiB;
        },
        `RSS back within 32 MiB of where it was (${Math.round(baseline / MiB)} MiB)`,
        5_000,
      );
      assert.ok(held - baseline >= 150 * MiB, `the touched pages showed in RSS (+${Math.round((held - baseline) / MiB)} MiB)`);
      assert.equal(host.workerRestarts, 0, 'a planned replacement, not a failure');
      // The host serves on, the actor too (a fresh instance on the new worker).
      assert.equal(new TextDecoder().decode(await host.invokeActor(info.id, 'ping', new Uint8Array(4))), 'ok');
      const out = decode<{ statusCode: number }>(await host.invokeActor(echo.id, 'HandleRequest', encode({ method: 'GET', path: '/', queryString: '', header: {}, body: new Uint8Array() })));
      assert.equal(out.statusCode, 200);
      if (process.env.MEMORY_VERBOSE) process.stderr.write(`baseline ${Math.round(baseline / MiB)} MiB, held +${Math.round((held - baseline) / MiB)}, settled +${Math.round((settled - baseline) / MiB)}\n`);
    } finally {
      await host.stop();
    }
  });

  describe('components', () => {
    let host: Host;
    before(async () => {
      const built = await buildTestActor(toolboxProject);
      host = await Host.start({ workers: 2, deadlineMs: 10_000 }, { logger, runtimes: [wapcRuntime, testComponentRuntime()] });
      await host.startActor(built.bytes, { maxMemoryMiB: 24 });
    });
    after(() => host?.stop());

    const alloc = (actor: string, mib: number) =>
      host.invokeActor(actor, 'HandleRequest', encode({ method: 'GET', path: '/alloc', queryString: `mib=${mib}`, header: {}, body: new Uint8Array() })).then((b) => decode<{ statusCode: number }>(b));

    it('get the same limit: an allocation past it fails that call only, and the next call works', async () => {
      const [actor] = host.actors();
      assert.equal(actor!.maxMemoryMiB, 24);
      assert.equal((await alloc(actor!.id, 4)).statusCode, 200);
      await assert.rejects(alloc(actor!.id, 48), (e) => isInvocationError(e) && e.code === 'TRAP');
      assert.equal((await alloc(actor!.id, 4)).statusCode, 200);
      assert.equal(host.workerRestarts, 0);
    });
  });
});
