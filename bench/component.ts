/**
 * TypeScript component actors, against raw node:http in the same run:
 * - HTTP → the kv-counter demo component (memory backend), served by a host in its own process;
 * - start time: signed file → first request answered, with a warm transpile cache and a cold one
 *   (each in a fresh process, host already running);
 * - idle instances per GiB of RSS (same component under many identities, one instance each).
 *
 * Usage: node --import tsx bench/component.ts [--duration 10 --connections 50]
 * (`--serve`, `--start` and `--idle` are the child-process modes it uses itself.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { buildActor } from '../actors-sdk/index.ts';
import { HttpServerProvider, KeyValueProvider } from '../capabilities/index.ts';
import { decode, encode, generateKeyPair, Host, signActor, wapcRuntime } from '../host/index.ts';
import { createComponentRuntime } from '../host/index.ts';
import { rawNodeHttp } from './http.ts';
import { freePort, load, loadOptionsFromArgs, root, startProcess, table, type LoadOptions, type LoadResult } from './lib.ts';

const SELF = join(root, 'bench', 'component.ts');
const logger = pino({ level: 'silent' });
const request = (path: string) => encode({ method: 'GET', path, queryString: '', header: {}, body: new Uint8Array() });

export const targets = { 'HTTP → kv-counter component (memory)': 0.15 };
/** Start time with a warm transpile cache (ms). */
export const startTargetMs = 150;

async function buildKvCounter(work: string): Promise<string> {
  const built = await buildActor(join(root, 'demos', 'kv-counter'), {
    cacheDir: join(tmpdir(), 'wasmlet-bench-build-cache'),
    keysDir: join(work, 'keys'),
    output: join(work, 'kv-counter.wasm'),
  });
  return built.path;
}

/** Child mode: a host serving the component over HTTP on `port` until killed. */
async function serve(wasm: string, port: number, cacheDir: string): Promise<void> {
  const host = await Host.start({}, { logger, runtimes: [wapcRuntime, createComponentRuntime({ cacheDir })] });
  await host.addProvider(new HttpServerProvider());
  await host.addProvider(new KeyValueProvider());
  const info = await host.startActor(readFileSync(wasm));
  await host.putLink({ actor: info.id, contract: 'wasmlet:keyvalue' });
  await host.putLink({ actor: info.id, contract: 'wasmlet:httpserver', values: { PORT: String(port), ADDRESS: '127.0.0.1' } });
  process.stdout.write('component server ready\n');
  process.on('SIGTERM', () => void host.stop().then(() => process.exit(0)));
}

/** Child mode: time from the signed file to the first answer, host already running. */
async function startOnce(wasm: string, cacheDir: string): Promise<void> {
  const host = await Host.start({ workers: 2 }, { logger, runtimes: [wapcRuntime, createComponentRuntime({ cacheDir })] });
  await host.addProvider(new KeyValueProvider());
  const t0 = performance.now();
  const info = await host.startActor(readFileSync(wasm));
  await host.putLink({ actor: info.id, contract: 'wasmlet:keyvalue' });
  const out = decode<{ statusCode: number }>(await host.invokeActor(info.id, 'HandleRequest', request('/start')));
  const ms = performance.now() - t0;
  if (out.statusCode !== 200) throw new Error(`first answer was ${out.statusCode}`);
  process.stdout.write(`${JSON.stringify({ ms })}\n`);
  await host.stop();
}

/** Child mode: RSS growth per idle instance. */
async function idle(wasm: string, cacheDir: string, count: number): Promise<void> {
  const bytes = readFileSync(wasm);
  const host = await Host.start({ workers: 1 }, { logger, runtimes: [wapcRuntime, createComponentRuntime({ cacheDir })] });
  await host.addProvider(new KeyValueProvider());
  const account = generateKeyPair('account');
  const signed = Array.from({ length: count + 1 }, (_, i) => signActor(bytes, { account: account.seed, name: `kv-${i}`, caps: ['wasmlet:keyvalue'] }));
  const warm = async (s: (typeof signed)[number]) => {
    const info = await host.startActor(s.bytes, { maxInstances: 1 });
    await host.putLink({ actor: info.id, contract: 'wasmlet:keyvalue' });
    await host.invokeActor(info.id, 'HandleRequest', request('/idle'));
  };
  await warm(signed[0]!); // compiled modules and glue are shared: count only what each instance adds
  global.gc?.();
  const before = process.memoryUsage().rss;
  for (const s of signed.slice(1)) await warm(s);
  global.gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const after = process.memoryUsage().rss;
  process.stdout.write(`${JSON.stringify({ perInstanceBytes: (after - before) / count, rssBytes: after })}\n`);
  await host.stop();
}

function child(args: string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', SELF, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`bench child ${args[0]} exited ${code}: ${out}`))));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface ComponentBench {
  baseline: LoadResult;
  rows: LoadResult[];
  startWarmMs: number;
  startColdMs: number;
  idleInstancesPerGiB: number;
  idleMiBPerInstance: number;
}

export async function run(opts: LoadOptions): Promise<ComponentBench> {
  const work = mkdtempSync(join(tmpdir(), 'wasmlet-bench-component-'));
  try {
    const wasm = await buildKvCounter(work);
    const cache = join(work, 'components');

    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < 3; i++) {
      const fresh = join(work, `cold-${i}`);
      cold.push((await child(['--start', wasm, fresh])).ms!);
      warm.push((await child(['--start', wasm, fresh])).ms!);
    }

    const baseline = await rawNodeHttp(opts);
    const port = await freePort();
    const server = await startProcess(['--import', 'tsx', SELF, '--serve', wasm, String(port), cache], 'component server ready');
    let http: LoadResult;
    try {
      http = await load('HTTP → kv-counter component (memory)', `http://127.0.0.1:${port}/bench/counter`, opts);
    } finally {
      await server.stop();
    }

    const count = 40;
    const { perInstanceBytes } = await child(['--idle', wasm, cache, String(count)]);
    return {
      baseline,
      rows: [http],
      startWarmMs: median(warm),
      startColdMs: median(cold),
      idleInstancesPerGiB: Math.floor(2 ** 30 / perInstanceBytes!),
      idleMiBPerInstance: perInstanceBytes! / 2 ** 20,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function report(r: ComponentBench): string {
  return [
    table(r.baseline, r.rows, targets),
    '',
    `| start (signed file → first answer) | ms | target |`,
    `|---|---:|---:|`,
    `| warm transpile cache | ${r.startWarmMs.toFixed(0)} | ${r.startWarmMs <= startTargetMs ? '≤' : '>'} ${startTargetMs} |`,
    `| cold (transpile with jco) | ${r.startColdMs.toFixed(0)} | |`,
    '',
    `idle instances: ${r.idleMiBPerInstance.toFixed(1)} MiB each, ${r.idleInstancesPerGiB} per GiB of RSS`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  if (args[0] === '--serve') await serve(args[1]!, Number(args[2]), args[3]!);
  else if (args[0] === '--start') await startOnce(args[1]!, args[2]!);
  else if (args[0] === '--idle') await idle(args[1]!, args[2]!, Number(args[3]));
  else {
    const opts = loadOptionsFromArgs(process.argv);
    const r = await run(opts);
    process.stdout.write(`\n## TypeScript component actors\n\n${opts.connections} connections, ${opts.durationSec} s, pipelining ${opts.pipelining}\n\n${report(r)}\n`);
  }
}
