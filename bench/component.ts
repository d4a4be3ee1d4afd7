/**
 * TypeScript component actors, against raw node:http in the same run:
 * - HTTP → the kv-counter demo component (memory backend), served by a host in its own process;
 * - start time: signed file → first request answered, with a warm transpile cache and a cold one
 *   (each in a fresh process, host already running);
 * - idle instances per GiB of RSS (same component under many identities, one instance each).
 *
 * Usage: node --import tsx bench/component.ts [--duration 10 --connections 50] [--workers N --max-instances N]
 *        [--part http|start] [--rounds 5]
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

/** Pool settings of the served host; unset fields keep the host's defaults. */
export interface PoolSettings {
  workers?: number;
  maxInstances?: number;
}

/** Child mode: a host serving the component over HTTP on `port` until killed. */
async function serve(wasm: string, port: number, cacheDir: string, pool: PoolSettings): Promise<void> {
  const host = await Host.start({ ...pool }, { logger, runtimes: [wapcRuntime, createComponentRuntime({ cacheDir })] });
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

/** `--workers N` and `--max-instances N` from the command line (the served host's pool). */
export function poolSettingsFromArgs(argv: string[]): PoolSettings {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  const workers = get('--workers');
  const maxInstances = get('--max-instances');
  return { ...(workers ? { workers } : {}), ...(maxInstances ? { maxInstances } : {}) };
}

export interface ComponentBenchOptions {
  /** The served host's pool; unset fields keep the host's defaults. */
  pool?: PoolSettings;
  /** Only the HTTP comparison, or only the start times. Default: everything. */
  part?: 'http' | 'start';
  /** Alternating rounds of raw node:http and the component (each `durationSec / rounds` long). Default 5. */
  rounds?: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Raw node:http and the component server, both kept running and loaded in alternating rounds
 * (raw first, then component first, …): on a shared machine, load from other processes comes
 * and goes, and alternating makes it fall on both paths alike, so the ratio stays meaningful.
 */
async function alternating(opts: LoadOptions, rounds: number, wasm: string, cache: string, pool: PoolSettings): Promise<{ baseline: LoadResult; http: LoadResult }> {
  const rawPort = await freePort();
  const raw = await startProcess([join(root, 'bench', 'raw-http-server.mjs'), String(rawPort)], 'listening');
  const port = await freePort();
  const poolArgs = [...(pool.workers ? ['--workers', String(pool.workers)] : []), ...(pool.maxInstances ? ['--max-instances', String(pool.maxInstances)] : [])];
  let server: Awaited<ReturnType<typeof startProcess>> | undefined;
  try {
    server = await startProcess(['--import', 'tsx', SELF, '--serve', wasm, String(port), cache, ...poolArgs], 'component server ready');
    const paths = [
      { name: 'raw node:http', url: `http://127.0.0.1:${rawPort}/`, results: [] as LoadResult[] },
      { name: 'HTTP → kv-counter component (memory)', url: `http://127.0.0.1:${port}/bench/counter`, results: [] as LoadResult[] },
    ];
    for (const p of paths) if (opts.warmupSec > 0) await load(p.name, p.url, { ...opts, durationSec: opts.warmupSec, warmupSec: 0 });
    const each = { ...opts, durationSec: opts.durationSec / rounds, warmupSec: 0 };
    for (let r = 0; r < rounds; r++) {
      for (const p of r % 2 === 0 ? paths : [...paths].reverse()) p.results.push(await load(p.name, p.url, each));
    }
    const combine = (p: (typeof paths)[number]): LoadResult => ({
      name: p.name,
      reqPerSec: mean(p.results.map((x) => x.reqPerSec)),
      p50: median(p.results.map((x) => x.p50)),
      p99: median(p.results.map((x) => x.p99)),
      errors: p.results.reduce((a, x) => a + x.errors, 0),
      non2xx: p.results.reduce((a, x) => a + x.non2xx, 0),
    });
    return { baseline: combine(paths[0]!), http: combine(paths[1]!) };
  } finally {
    await server?.stop();
    await raw.stop();
  }
}

export async function run(opts: LoadOptions, options: ComponentBenchOptions = {}): Promise<ComponentBench> {
  const { pool = {}, part, rounds = 5 } = options;
  const work = mkdtempSync(join(tmpdir(), 'wasmlet-bench-component-'));
  try {
    const wasm = await buildKvCounter(work);
    const cache = join(work, 'components');

    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < (part === 'http' ? 0 : 3); i++) {
      const fresh = join(work, `cold-${i}`);
      cold.push((await child(['--start', wasm, fresh])).ms!);
      warm.push((await child(['--start', wasm, fresh])).ms!);
    }
    const starts = { startWarmMs: cold.length ? median(warm) : NaN, startColdMs: cold.length ? median(cold) : NaN };
    if (part === 'start') {
      const none: LoadResult = { name: 'raw node:http', reqPerSec: 1, p50: 0, p99: 0, errors: 0, non2xx: 0 };
      return { baseline: none, rows: [], ...starts, idleInstancesPerGiB: 0, idleMiBPerInstance: 0 };
    }

    const { baseline, http } = await alternating(opts, Math.max(1, rounds), wasm, cache, pool);

    const count = 40;
    const { perInstanceBytes } = part === 'http' ? { perInstanceBytes: 0 } : await child(['--idle', wasm, cache, String(count)]);
    return {
      baseline,
      rows: [http],
      ...starts,
      idleInstancesPerGiB: perInstanceBytes ? Math.floor(2 ** 30 / perInstanceBytes) : 0,
      idleMiBPerInstance: (perInstanceBytes ?? 0) / 2 ** 20,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function report(r: ComponentBench): string {
  const parts: string[] = [];
  if (r.rows.length) parts.push(table(r.baseline, r.rows, targets), '');
  if (!Number.isNaN(r.startWarmMs)) {
    parts.push(
      `| start (signed file → first answer) | ms | target |`,
      `|---|---:|---:|`,
      `| warm transpile cache | ${r.startWarmMs.toFixed(0)} | ${r.startWarmMs <= startTargetMs ? '≤' : '>'} ${startTargetMs} |`,
      `| cold (transpile with jco) | ${r.startColdMs.toFixed(0)} | |`,
      '',
    );
  }
  if (r.idleMiBPerInstance > 0) parts.push(`idle instances: ${r.idleMiBPerInstance.toFixed(1)} MiB each, ${r.idleInstancesPerGiB} per GiB of RSS`);
  return parts.join('\n').trimEnd();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  if (args[0] === '--serve') await serve(args[1]!, Number(args[2]), args[3]!, poolSettingsFromArgs(args));
  else if (args[0] === '--start') await startOnce(args[1]!, args[2]!);
  else if (args[0] === '--idle') await idle(args[1]!, args[2]!, Number(args[3]));
  else {
    const opts = loadOptionsFromArgs(process.argv);
    const pool = poolSettingsFromArgs(process.argv);
    const flag = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
    const part = flag('--part') as ComponentBenchOptions['part'];
    const rounds = flag('--rounds') ? Number(flag('--rounds')) : undefined;
    const r = await run(opts, { pool, ...(part ? { part } : {}), ...(rounds ? { rounds } : {}) });
    const poolNote = `workers ${pool.workers ?? 'default'}, max instances ${pool.maxInstances ?? 'default'}`;
    process.stdout.write(`\n## TypeScript component actors\n\n${opts.connections} connections, ${opts.durationSec} s per path in ${rounds ?? 5} alternating rounds, pipelining ${opts.pipelining}, ${poolNote}\n\n${report(r)}\n`);
  }
}
