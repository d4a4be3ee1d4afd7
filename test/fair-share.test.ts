/**
 * Fair share: an actor whose calls spin until their deadlines never holds every worker of a
 * default host. Meanwhile another actor keeps answering: at least 95% of its calls succeed, at a
 * p99 below 10× its p99 on the same host without the spinning load. A control run with the
 * share opened up (`maxConcurrency` = workers) shows the same measurement catching starvation.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import pino from 'pino';
import { encode, Host } from '../host/index.ts';
import { toolboxActor } from './helpers/wat.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);
const echoBytes = readFileSync(new URL('wascc/echo.wasm', fixtures));
const logger = pino({ level: 'silent' });
const request = encode({ method: 'GET', path: '/fair', queryString: '', header: {}, body: new Uint8Array() });
const DEADLINE_MS = 1000;

interface Measured {
  calls: number;
  ok: number;
  p99: number;
}

/** `clients` callers, each calling echo again as soon as it answers, for `ms`. */
async function closedLoop(host: Host, echo: string, clients: number, ms: number): Promise<Measured> {
  const latencies: number[] = [];
  let ok = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await host.invokeActor(echo, 'HandleRequest', request);
          ok++;
        } catch (err) {
          // counted as a failure: calls - ok
          if (process.env.FAIR_SHARE_VERBOSE) process.stderr.write(`echo failed: ${(err as Error).message}\n`);
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { calls: latencies.length, ok, p99: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]! };
}

/** Keeps `n` calls of the spinning actor in flight (each one runs until its deadline) until `stop` resolves. */
function spin(host: Host, spinner: string, n: number, stop: Promise<void>): Promise<number> {
  let stopped = false;
  let overran = 0;
  void stop.then(() => (stopped = true));
  return Promise.all(
    Array.from({ length: n }, async () => {
      while (!stopped) {
        await host.invokeActor(spinner, 'loop', new Uint8Array()).catch(() => overran++);
      }
    }),
  ).then(() => overran);
}

async function underSpinningLoad(spinnerOptions: { maxConcurrency?: number }): Promise<{ unloaded: Measured; loaded: Measured; overran: number; workers: number }> {
  // Default host options but a short deadline, so several spinning calls overrun during the run.
  const host = await Host.start({ deadlineMs: DEADLINE_MS }, { logger });
  try {
    const spinner = await host.startActor((await toolboxActor({ name: 'spinner' })).bytes, spinnerOptions);
    const echo = await host.startActor(echoBytes);
    await closedLoop(host, echo.id, 4, 300); // warm up: instances made, code optimized
    const unloaded = await closedLoop(host, echo.id, 4, 1500);
    let stop!: () => void;
    const spinning = spin(host, spinner.id, 4, new Promise<void>((r) => (stop = r)));
    await new Promise((r) => setTimeout(r, 100)); // the spinning calls have started
    const loaded = await closedLoop(host, echo.id, 4, 3 * DEADLINE_MS + 500);
    stop();
    const overran = await spinning;
    return { unloaded, loaded, overran, workers: host.options.workers };
  } finally {
    await host.stop();
  }
}

describe('fair share between actors', () => {
  it('keeps another actor answering while one actor’s calls spin to their deadlines (default settings)', async () => {
    const { unloaded, loaded, overran, workers } = await underSpinningLoad({});
    const summary = `workers ${workers}; unloaded: ${unloaded.calls} calls, p99 ${unloaded.p99.toFixed(2)} ms; loaded: ${loaded.ok}/${loaded.calls} ok, p99 ${loaded.p99.toFixed(2)} ms; ${overran} spinning calls overran`;
    if (process.env.FAIR_SHARE_VERBOSE) process.stderr.write(`${summary}\n`);
    assert.ok(overran >= 3, `the spinning actor's calls ran to their deadlines (${summary})`);
    assert.ok(loaded.ok / loaded.calls >= 0.95, `at least 95% of echo's calls succeeded (${summary})`);
    assert.ok(loaded.p99 < 10 * unloaded.p99, `echo's p99 stayed below 10× its unloaded p99 (${summary})`);
  });

  it('control: with the spinning actor allowed every worker, the same measurement sees echo starve', async () => {
    const { loaded, unloaded, workers } = await underSpinningLoad({ maxConcurrency: 1024 });
    const summary = `workers ${workers}; unloaded p99 ${unloaded.p99.toFixed(2)} ms; loaded: ${loaded.ok}/${loaded.calls} ok, p99 ${loaded.p99.toFixed(2)} ms`;
    if (process.env.FAIR_SHARE_VERBOSE) process.stderr.write(`${summary}\n`);
    assert.ok(loaded.ok / loaded.calls < 0.95 || loaded.p99 >= 10 * unloaded.p99, `echo starved (${summary})`);
  });
});
