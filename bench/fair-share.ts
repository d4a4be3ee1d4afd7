/**
 * Fair share: HTTP → waSCC echo.wasm while another actor on the same host (`wasmlet up`, default
 * settings, in its own process) spins every call it gets until its deadline, against echo alone
 * on that host, in the same run. Echo's throughput and p99 under the spinning load are reported
 * as ratios to echo alone. The same is measured with the spinner's share opened up
 * (`maxConcurrency` = the workers), which is how every host behaved before fair share.
 *
 * Usage: node --import tsx bench/fair-share.ts [--duration 10 --connections 50 --spinners 4]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { compileWat, signTestActor, toolboxWat } from '../test/helpers/wat.ts';
import { freePort, load, loadOptionsFromArgs, root, startProcess, type LoadOptions, type LoadResult } from './lib.ts';

const ECHO = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const fixtures = join(root, '..', 'shared', 'fixtures', 'wascc');

export interface FairShareRow {
  name: string;
  alone: LoadResult;
  loaded: LoadResult;
  /** Spinner requests answered (all 504s at the deadline) while echo was measured. */
  spun: number;
}

interface Setup {
  dir: string;
  spinner: string;
  spinnerId: string;
}

async function setup(): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-bench-fair-'));
  // The test toolbox actor: a request whose bytes hold `~` spins until the host stops it.
  const signed = signTestActor(await compileWat(toolboxWat()), { name: 'spinner', caps: ['wascc:http_server'] });
  const spinner = join(dir, 'spinner.wasm');
  await writeFile(spinner, signed.bytes);
  return { dir, spinner, spinnerId: signed.id };
}

async function manifest(s: Setup, echoPort: number, spinPort: number, spinnerShare: number | undefined): Promise<string> {
  const path = join(s.dir, `host-${spinnerShare ?? 'default'}.yaml`);
  await writeFile(
    path,
    `apiVersion: wasmlet/v1
kind: Host
actors:
  - path: ${join(fixtures, 'echo.wasm')}
  - path: ${s.spinner}${spinnerShare ? `\n    maxConcurrency: ${spinnerShare}` : ''}
links:
  - { actor: ${ECHO}, contract: wascc:http_server, values: { PORT: "${echoPort}", ADDRESS: 127.0.0.1 } }
  - { actor: ${s.spinnerId}, contract: wascc:http_server, values: { PORT: "${spinPort}", ADDRESS: 127.0.0.1 } }
`,
  );
  return path;
}

/** Echo alone, then echo while `spinners` connections keep the spinner busy, on one host. */
async function measure(name: string, s: Setup, opts: LoadOptions, spinners: number, spinnerShare: number | undefined): Promise<FairShareRow> {
  const [echoPort, spinPort] = [await freePort(), await freePort()];
  const host = await startProcess([join(root, 'bin', 'wasmlet.mjs'), 'up', await manifest(s, echoPort, spinPort, spinnerShare), '--log-level', 'error'], 'wasmlet is up');
  try {
    const echoUrl = `http://127.0.0.1:${echoPort}/bench?q=1`;
    const alone = await load(`${name}: echo alone`, echoUrl, opts);
    const spinning = autocannon({ url: `http://127.0.0.1:${spinPort}/spin~`, connections: spinners, duration: opts.warmupSec + opts.durationSec + 1, timeout: 30 });
    await new Promise((r) => setTimeout(r, 200));
    const loaded = await load(`${name}: echo beside the spinner`, echoUrl, opts);
    const spun = await spinning;
    return { name, alone, loaded, spun: spun.requests.total };
  } finally {
    await host.stop();
  }
}

export async function run(opts: LoadOptions, spinners = 4): Promise<FairShareRow[]> {
  const s = await setup();
  try {
    const workers = Math.max(2, availableParallelism());
    return [await measure('fair share (default)', s, opts, spinners, undefined), await measure(`share opened (spinner maxConcurrency ${workers})`, s, opts, spinners, workers)];
  } finally {
    await rm(s.dir, { recursive: true, force: true });
  }
}

export function report(rows: FairShareRow[]): string {
  const lines = [
    '| host | echo alone req/s | beside the spinner req/s | throughput ratio | p99 alone ms | p99 beside ms | p99 ratio | echo errors/non-2xx beside | spinner answers |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${Math.round(r.alone.reqPerSec)} | ${Math.round(r.loaded.reqPerSec)} | ${(r.loaded.reqPerSec / r.alone.reqPerSec).toFixed(2)} | ${r.alone.p99} | ${r.loaded.p99} | ${(r.loaded.p99 / Math.max(r.alone.p99, 1)).toFixed(2)} | ${r.loaded.errors}/${r.loaded.non2xx} | ${r.spun} |`,
    );
  }
  return lines.join('\n');
}

export function spinnersFromArgs(argv: string[]): number {
  const i = argv.indexOf('--spinners');
  return i >= 0 ? Number(argv[i + 1]) : 4;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = loadOptionsFromArgs(process.argv);
  const spinners = spinnersFromArgs(process.argv);
  const rows = await run(opts, spinners);
  process.stdout.write(`\n${opts.connections} connections to echo, ${spinners} to the spinner, ${opts.durationSec} s each, pipelining ${opts.pipelining}\n\n${report(rows)}\n`);
}
