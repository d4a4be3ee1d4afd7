/**
 * The lattice, against two ceilings measured in the same run with the same autocannon load:
 * - raw `node:http` hello-world (the HTTP ceiling);
 * - a bare HTTP → NATS `request()` → trivial responder bridge, in two processes (the NATS ceiling:
 *   what one hop over NATS costs with the stock client and nothing else);
 * - wasmlet: `wasmlet provider http-server` in one process → `wasmlet host` running waSCC's
 *   kvcounter in another → key-value, either in the host's process (memory backend) or in a
 *   third process (`wasmlet provider keyvalue`, memory backend), on a closed lattice (every
 *   process holds a member credential; every message authenticated) and on an open one
 *   (`--insecure`, nothing authenticated), and
 *   the third-process variant again with 8 workers on the host (a waPC host call blocks its
 *   worker for the round trip, so workers bound the calls in flight);
 * - the in-process path (`wasmlet up`, same actor, memory key-value), so the hop's cost shows.
 * Plus the bus alone: calls/s between two NatsBus instances in one process, closed and open.
 *
 * Every path that crosses NATS talks to a nats-server of its own that this run starts (loopback,
 * free port, JetStream for the lattice's link bucket). All paths are started
 * once and stay up; each round measures them one after another (after a warm-up load), the
 * bridge first, and a last bridge run closes the rounds, so that every path is compared with the
 * bridge runs just before and after it: this machine's speed drifts by tens of percent within
 * minutes.
 *
 * Usage: node --import tsx bench/lattice.ts [--duration 10 --connections 50 --repeat 3] [--only http|bus]
 *        [--two-processes-only] (skip the variants with key-value in a third process)
 * (`--bridge-http` and `--bridge-responder` are the child-process modes it uses itself.)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import pino from 'pino';
import { connectNats, generateKeyPair, LatticeTrust, mintMemberCredentials, NatsBus, type MemberRole } from '../host/index.ts';
import { authCosts, type AuthCost } from './lattice-auth.ts';
import { startNatsServer, type NatsServer } from '../test/helpers/nats-server.ts';
import { freePort, load, loadOptionsFromArgs, root, startProcess, type LoadOptions, type LoadResult } from './lib.ts';

const SELF = join(root, 'bench', 'lattice.ts');
const WASMLET = join(root, 'bin', 'wasmlet.mjs');
const KVCOUNTER_WASM = join(root, '..', 'shared', 'fixtures', 'wascc', 'kvcounter.wasm');
const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const BRIDGE_SUBJECT = 'bench.bridge';

export const names = {
  raw: 'raw node:http',
  bridge: 'HTTP → NATS request() → responder',
  lattice2: 'lattice: HTTP proc → kvcounter host (KV in host)',
  lattice2Off: 'lattice: HTTP proc → kvcounter host (KV in host), open lattice (--insecure)',
  lattice3: 'lattice: HTTP proc → kvcounter host → KV proc',
  lattice3Off: 'lattice: HTTP proc → kvcounter host → KV proc, open lattice (--insecure)',
  lattice3Workers: 'lattice: HTTP proc → kvcounter host (8 workers) → KV proc',
  local: 'in-process: wasmlet up kvcounter (memory KV)',
} as const;

/** Targets as ratios to the bridge. */
export const bridgeTargets: Record<string, number> = { [names.lattice2]: 1.2 };

// ------------------------------------------------------------------ child modes

/** Child mode: answers every request on the subject with a fixed body. */
async function bridgeResponder(url: string): Promise<void> {
  const nc = await connect({ servers: url });
  const body = new TextEncoder().encode('hello world');
  nc.subscribe(BRIDGE_SUBJECT, { callback: (_err, m) => m.respond(body) });
  await nc.flush();
  process.stdout.write('responder ready\n');
  process.on('SIGTERM', () => void nc.close().then(() => process.exit(0)));
}

/** Child mode: HTTP server that turns each request into one stock `request()` over NATS. */
async function bridgeHttp(url: string, port: number): Promise<void> {
  const nc = await connect({ servers: url });
  const server = createServer((req, res) => {
    nc.request(BRIDGE_SUBJECT, new Uint8Array(0), { timeout: 5000 }).then(
      (m) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': m.data.length });
        res.end(m.data);
      },
      (err: Error) => {
        res.writeHead(503);
        res.end(err.message);
      },
    );
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('bridge ready\n'));
  process.on('SIGTERM', () => server.close(() => void nc.close().then(() => process.exit(0))));
}

// ------------------------------------------------------------------ helpers

type Proc = Awaited<ReturnType<typeof startProcess>>;

async function stopAll(procs: Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.stop()));
}

/** Runs `wasmlet ARGS…` to completion; rejects with its output when it fails. */
function wasmletCmd(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [WASMLET, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`wasmlet ${args.join(' ')} exited ${code}: ${out}`))));
  });
}

/** Polls the URL until it answers 200 (links reach providers asynchronously). */
async function until200(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

// ------------------------------------------------------------------ paths

/**
 * A path's servers, started once and kept up for every round (so each round measures warm,
 * steady-state processes, and rounds of different paths sit close together in time).
 */
interface Path {
  name: string;
  url: string;
  stop(): Promise<void>;
}

async function started(name: string, url: string, procs: Proc[], ready: () => Promise<void>, nats?: NatsServer): Promise<Path> {
  const path = { name, url, stop: () => stopAll(procs).then(() => nats?.stop()) };
  try {
    await ready();
  } catch (err) {
    await path.stop();
    throw err;
  }
  return path;
}

async function startRaw(): Promise<Path> {
  const port = await freePort();
  const server = await startProcess([join(root, 'bench', 'raw-http-server.mjs'), String(port)], 'listening');
  return started(names.raw, `http://127.0.0.1:${port}/`, [server], async () => {});
}

/**
 * Every path that crosses NATS gets a nats-server of its own: the paths stay up together, and a
 * server's subject matching slows down with the subscriptions of paths that are not measured.
 */
async function startBridge(): Promise<Path> {
  const port = await freePort();
  const nats = await startNatsServer({ jetstream: false });
  const procs: Proc[] = [];
  const url = `http://127.0.0.1:${port}/`;
  return started(names.bridge, url, procs, async () => {
    procs.push(await startProcess(['--import', 'tsx', SELF, '--bridge-responder', nats.url], 'responder ready'));
    procs.push(await startProcess(['--import', 'tsx', SELF, '--bridge-http', nats.url, String(port)], 'bridge ready'));
    await until200(url);
  }, nats);
}

let latticeSeq = 0;

/** HTTP provider process → host process running kvcounter → key-value in the host or in a third process. */
/** A lattice issuer of this run's own, minting member credentials. */
function benchIssuer(lattice: string): { mint(role: MemberRole): ReturnType<typeof mintMemberCredentials> } {
  const key = generateKeyPair('account');
  return { mint: (role) => mintMemberCredentials({ lattice, issuer: key.publicKey, issuerSeed: key.seed }, { role }) };
}

async function startLattice(name: string, dir: string, kv: 'host' | 'process', closed: boolean, hostArgs: string[] = []): Promise<Path> {
  const latticeId = `bench${process.pid}x${latticeSeq++}`;
  const flags = ['--log-level', 'warn', ...(closed ? [] : ['--insecure'])];
  // On a closed lattice each process (and ctl) holds a member credential of its role.
  const creds: Partial<Record<MemberRole, string>> = {};
  if (closed) {
    const issuer = benchIssuer(latticeId);
    for (const role of ['host', 'provider', 'ctl'] as const) {
      creds[role] = join(dir, `${latticeId}-${role}.creds`);
      await writeFile(creds[role]!, (await issuer.mint(role)).creds, { mode: 0o600 });
    }
  }
  const manifest = join(dir, `${latticeId}.yaml`);
  // With the key-value link in the manifest, the host runs a memory key-value provider itself.
  await writeFile(manifest, `actors: [${KVCOUNTER_WASM}]\n${kv === 'host' ? `bindings:\n  - actor: ${KVCOUNTER}\n    capability: wascc:keyvalue\n` : ''}`);
  const port = await freePort();
  const procs: Proc[] = [];
  const nats = await startNatsServer();
  const env = (role: MemberRole) => ({ NATS_URL: nats.url, ...(closed ? { WASMLET_LATTICE_CREDS: creds[role]! } : { WASMLET_LATTICE: latticeId }) });
  const ctlFlags = closed ? [] : ['--insecure'];
  return started(name, `http://127.0.0.1:${port}/bench/counter`, procs, async () => {
    procs.push(await startProcess([WASMLET, 'host', '--manifest', manifest, ...hostArgs, ...flags], 'wasmlet host is up', env('host')));
    procs.push(await startProcess([WASMLET, 'provider', 'http-server', ...flags], 'wasmlet provider http-server is up', env('provider')));
    if (kv === 'process') {
      procs.push(await startProcess([WASMLET, 'provider', 'keyvalue', ...flags], 'wasmlet provider keyvalue is up', env('provider')));
      await wasmletCmd(['ctl', 'link', 'put', KVCOUNTER, 'wascc:keyvalue', ...ctlFlags], env('ctl'));
    }
    await wasmletCmd(['ctl', 'link', 'put', KVCOUNTER, 'wascc:http_server', '--value', `PORT=${port}`, '--value', 'ADDRESS=127.0.0.1', ...ctlFlags], env('ctl'));
    await until200(`http://127.0.0.1:${port}/warm`);
  }, nats);
}

async function startInProcess(dir: string): Promise<Path> {
  const port = await freePort();
  const manifest = join(dir, 'local.yaml');
  await writeFile(
    manifest,
    `actors: [${KVCOUNTER_WASM}]\nbindings:\n  - actor: ${KVCOUNTER}\n    capability: wascc:http_server\n    values: { PORT: "${port}", ADDRESS: 127.0.0.1 }\n  - actor: ${KVCOUNTER}\n    capability: wascc:keyvalue\n`,
  );
  const server = await startProcess([WASMLET, 'up', manifest, '--log-level', 'warn'], 'wasmlet is up');
  return started(names.local, `http://127.0.0.1:${port}/bench/counter`, [server], () => until200(`http://127.0.0.1:${port}/warm`));
}

// ------------------------------------------------------------------ the bus alone

export interface BusResult {
  /** A closed lattice (member credentials, authenticated batches and replies) or an open one. */
  closed: boolean;
  inFlight: number;
  callsPerSec: number;
  /** Calls per batch message, on average. */
  perBatch: number;
}

/** Two buses on two connections in this process; `inFlight` callers loop for `seconds`. */
export async function busThroughput(nats: NatsServer, closed: boolean, inFlight: number, seconds: number): Promise<BusResult> {
  const logger = pino({ level: 'silent' });
  const lattice = `busbench${latticeSeq++}`;
  const [nca, ncb] = [await connectNats({ servers: [nats.url] }, logger), await connectNats({ servers: [nats.url] }, logger)];
  const issuer = benchIssuer(lattice);
  const trust = async () => (closed ? LatticeTrust.closed(await issuer.mint('host')) : LatticeTrust.insecure(lattice));
  const a = new NatsBus(nca, await trust(), {}, logger);
  const b = new NatsBus(ncb, await trust(), {}, logger);
  try {
    b.serve('actor.MBENCH', async (inv) => inv.msg);
    await b.flush();
    const msg = new Uint8Array(64);
    let done = 0;
    let stop = false;
    const caller = async () => {
      while (!stop) {
        await a.request({ origin: 'MCALLER', target: 'actor.MBENCH', operation: 'Echo', msg, deadline: Date.now() + 5000 });
        done++;
      }
    };
    const callers = Array.from({ length: inFlight }, caller);
    await new Promise((r) => setTimeout(r, 1000)); // warm-up
    const [n0, b0, t0] = [done, a.stats().batchesSent, performance.now()];
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const [n1, b1, t1] = [done, a.stats().batchesSent, performance.now()];
    stop = true;
    await Promise.all(callers);
    return { closed, inFlight, callsPerSec: (n1 - n0) / ((t1 - t0) / 1000), perBatch: (n1 - n0) / Math.max(1, b1 - b0) };
  } finally {
    await a.close();
    await b.close();
    await nca.close();
    await ncb.close();
  }
}

// ------------------------------------------------------------------ the run

export interface LatticeBench {
  /** Every measured run of every path, by path name, in run order. */
  runs: Record<string, LoadResult[]>;
  bus: BusResult[];
  /** What authentication costs per message (closed lattice). */
  auth: AuthCost[];
  repeat: number;
}

export interface LatticeRunOptions {
  only?: 'http' | 'bus';
  /** Measure every path this many times, interleaved (the machine may be shared). Default 1. */
  repeat?: number;
  /** Include the three-process variants (key-value in its own process). Default true. */
  threeProcesses?: boolean;
}

export async function run(opts: LoadOptions, options: LatticeRunOptions = {}): Promise<LatticeBench> {
  const repeat = options.repeat ?? 1;
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-bench-lattice-'));
  // The bus section's server; the HTTP paths start their own.
  const nats = options.only === 'http' ? undefined : await startNatsServer();
  const runs: Record<string, LoadResult[]> = {};
  const bus: BusResult[] = [];
  const auth: AuthCost[] = [];
  const record = (r: LoadResult) => (runs[r.name] ??= []).push(r);
  try {
    if (nats) {
      auth.push(...(await authCosts()));
      for (const closed of [true, false]) {
        for (const inFlight of [16, 256]) bus.push(await busThroughput(nats, closed, inFlight, Math.max(2, Math.min(opts.durationSec, 5))));
      }
    }
    if (options.only !== 'bus') {
      const paths: Path[] = [];
      try {
        const base = await startBridge();
        paths.push(base);
        paths.push(await startRaw());
        paths.push(await startLattice(names.lattice2, dir, 'host', true));
        paths.push(await startLattice(names.lattice2Off, dir, 'host', false));
        if (options.threeProcesses ?? true) {
          paths.push(await startLattice(names.lattice3, dir, 'process', true));
          paths.push(await startLattice(names.lattice3Off, dir, 'process', false));
          // A waPC host call blocks its worker until the reply is back, so with key-value a hop
          // away the worker count bounds the calls in flight; more workers, more overlap.
          paths.push(await startLattice(names.lattice3Workers, dir, 'process', true, ['--workers', '8']));
        }
        paths.push(await startInProcess(dir));
        // Each round opens with the bridge, and one more bridge run closes the last round: every
        // other run sits between two bridge runs, and is compared with both (see pairedRatios).
        for (let i = 0; i < repeat; i++) {
          for (const p of paths) record(await load(p.name, p.url, opts));
        }
        record(await load(base.name, base.url, opts));
      } finally {
        await Promise.all(paths.map((p) => p.stop()));
      }
    }
    return { runs, bus, auth, repeat };
  } finally {
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The run with the median req/s (the lower middle one for an even count). */
function medianRun(rs: LoadResult[]): LoadResult {
  return [...rs].sort((a, b) => a.reqPerSec - b.reqPerSec)[Math.floor((rs.length - 1) / 2)]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Ratios of a path to a baseline measured in the same round (paths run interleaved, one round
 * after another): the machine's speed drifts, so a path is compared with the baseline runs next
 * to it, and the median of those ratios is reported with their range. When the baseline has one
 * run more than the path (the bridge opens every round and closes the last), a path's run is
 * compared with the geometric mean of the baseline runs before and after it.
 */
function pairedRatios(rs: LoadResult[], base: LoadResult[]): number[] {
  const around = base.length > rs.length;
  return rs.map((x, i) => {
    const before = base[Math.min(i, base.length - 1)]!.reqPerSec;
    return x.reqPerSec / (around ? Math.sqrt(before * base[i + 1]!.reqPerSec) : before);
  });
}

export function report(r: LatticeBench): string {
  const parts: string[] = [];
  const raw = r.runs[names.raw];
  const bridgeRuns = r.runs[names.bridge];
  if (raw && bridgeRuns) {
    const many = r.repeat > 1;
    parts.push(
      `| path | req/s${many ? ` (median of runs)` : ''} | × raw | × bridge${many ? ' (median of rounds; range)' : ''} | target (× bridge) | p50 ms | p99 ms | errors/non-2xx |`,
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const [name, rs] of Object.entries(r.runs)) {
      const m = medianRun(rs);
      const vsRaw = median(pairedRatios(rs, raw));
      const byRound = pairedRatios(rs, bridgeRuns);
      const vsBridge = median(byRound);
      const range = many ? ` (${Math.min(...byRound).toFixed(2)}–${Math.max(...byRound).toFixed(2)})` : '';
      const target = bridgeTargets[name];
      const mark = target === undefined ? '' : `${vsBridge >= target ? '≥' : '<'} ${target}`;
      const errors = rs.reduce((n, x) => n + x.errors, 0);
      const non2xx = rs.reduce((n, x) => n + x.non2xx, 0);
      parts.push(`| ${name} | ${Math.round(m.reqPerSec)} | ${vsRaw.toFixed(2)} | ${vsBridge.toFixed(2)}${range} | ${mark} | ${m.p50} | ${m.p99} | ${errors}/${non2xx} |`);
    }
    parts.push('');
  }
  if (r.bus.length) {
    parts.push('| bus alone (one process, two connections) | in flight | calls/s | calls per batch |', '|---|---:|---:|---:|');
    for (const b of r.bus) parts.push(`| ${b.closed ? 'closed' : 'open (--insecure)'} | ${b.inFlight} | ${Math.round(b.callsPerSec)} | ${b.perBatch.toFixed(1)} |`);
  }
  if (r.auth.length) {
    parts.push('', '| authentication, per message (closed lattice, one thread) | µs |', '|---|---:|');
    for (const a of r.auth) parts.push(`| ${a.what} | ${a.micros.toFixed(1)} |`);
  }
  return parts.join('\n').trimEnd();
}

export function latticeOptionsFromArgs(argv: string[]): LatticeRunOptions {
  const at = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  // `--only lattice` (from bench/run.ts) means the whole lattice section.
  const only = at('--only') === 'lattice' ? undefined : at('--only');
  if (only !== undefined && only !== 'http' && only !== 'bus') throw new Error(`--only must be http or bus, not ${only}`);
  const repeat = at('--repeat');
  return { ...(only ? { only } : {}), ...(repeat ? { repeat: Number(repeat) } : {}), ...(argv.includes('--two-processes-only') ? { threeProcesses: false } : {}) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  if (args[0] === '--bridge-responder') await bridgeResponder(args[1]!);
  else if (args[0] === '--bridge-http') await bridgeHttp(args[1]!, Number(args[2]));
  else {
    const opts = loadOptionsFromArgs(process.argv);
    const r = await run(opts, latticeOptionsFromArgs(process.argv));
    process.stdout.write(`\n## The NATS lattice\n\n${opts.connections} connections, ${opts.durationSec} s each, pipelining ${opts.pipelining}\n\n${report(r)}\n`);
  }
}
