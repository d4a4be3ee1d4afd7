/** Shared benchmark plumbing: child-process servers, autocannon runs, ratio tables. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

export const root = fileURLToPath(new URL('..', import.meta.url));

export interface LoadOptions {
  connections: number;
  durationSec: number;
  warmupSec: number;
  pipelining: number;
}

export interface LoadResult {
  name: string;
  reqPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A server in its own process, ready once `readyText` appears on its output. */
export async function startProcess(args: string[], readyText: string, env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a half-started server behind
      reject(new Error(`server did not start: ${out.slice(-2000)}`));
    }, 30_000);
    const on = (d: Buffer) => {
      out += d;
      if (out.includes(readyText)) {
        clearTimeout(t);
        child.stdout!.off('data', on);
        child.stderr!.off('data', on);
        child.stdout!.resume();
        child.stderr!.resume();
        resolve();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (code) => reject(new Error(`server exited (${code}): ${out.slice(-2000)}`)));
  });
  return {
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export async function load(name: string, url: string, opts: LoadOptions): Promise<LoadResult> {
  if (opts.warmupSec > 0) await autocannon({ url, connections: opts.connections, duration: opts.warmupSec, pipelining: opts.pipelining });
  const r = await autocannon({ url, connections: opts.connections, duration: opts.durationSec, pipelining: opts.pipelining });
  return { name, reqPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

export function table(baseline: LoadResult, rows: LoadResult[], targets: Record<string, number> = {}): string {
  const lines = [
    `| path | req/s | ratio to ${baseline.name} | target | p50 ms | p99 ms | p99 ratio | errors/non-2xx |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of [baseline, ...rows]) {
    const ratio = r.reqPerSec / baseline.reqPerSec;
    const target = targets[r.name];
    const mark = target === undefined ? '' : `${ratio >= target ? '≥' : '<'} ${target}`;
    lines.push(`| ${r.name} | ${Math.round(r.reqPerSec)} | ${ratio.toFixed(2)} | ${mark} | ${r.p50} | ${r.p99} | ${(r.p99 / Math.max(baseline.p99, 1)).toFixed(2)} | ${r.errors}/${r.non2xx} |`);
  }
  return lines.join('\n');
}

export function loadOptionsFromArgs(argv: string[]): LoadOptions {
  const get = (flag: string, dflt: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  return { connections: get('--connections', 50), durationSec: get('--duration', 10), warmupSec: get('--warmup', 2), pipelining: get('--pipelining', 1) };
}
