/**
 * The lattice as an operator runs it: every host and provider is its own `wasmlet` process
 * (`wasmlet host`, `wasmlet provider …`, linked with `wasmlet ctl`), on a nats-server this test
 * starts. Failures are real: a provider process SIGKILLed and started again, a host stopped
 * (SIGTERM) under a steady request loop while another host serves the same actor, and the
 * nats-server killed and restarted under load.
 *
 * Lattice `procs`: host A runs waSCC's kvcounter with no provider of its own; the HTTP server and
 * key-value (NATS KV backend) providers are two more processes.
 * Lattice `pair`: hosts B1 and B2 both run kvcounter, each with an in-process memory key-value
 * provider (so each host keeps a counter of its own, which shows who served a request); the HTTP
 * server provider is a third process.
 * Both lattices are closed: every process holds a member credential of its lattice's issuer
 * (a rogue lattice of the same name is `lattice-rogue.test.ts`).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { generateKeyPair, mintMemberCredentials, type MemberRole } from '../host/index.ts';
import { freePort, startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { runWasmlet, startWasmlet, type WasmletProcess } from './helpers/wasmlet-process.ts';
import { eventually } from './helpers/wait.ts';

const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const kvcounterPath = fileURLToPath(new URL('../../shared/fixtures/wascc/kvcounter.wasm', import.meta.url));
/** The HTTP provider's invocation deadline (the host default): failures must come well before it. */
const DEADLINE_MS = 3000;
const FAST_MS = 1500;
/** Quick reconnects, so the outage test does not wait on the default backoff. */
const NATS_FLAGS = ['--log-level', 'warn', '--nats-reconnect-wait-ms', '100', '--nats-reconnect-jitter-ms', '0', '--heartbeat-ms', '0'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  ms: number;
  at: number;
  body: string;
}

/** One GET; network errors and timeouts are status 0 (the caller decides whether that is allowed). */
async function get(url: string, timeoutMs = DEADLINE_MS + 3000): Promise<Answer> {
  const t0 = Date.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    return { status: res.status, ms: Date.now() - t0, at: t0, body };
  } catch (err) {
    return { status: 0, ms: Date.now() - t0, at: t0, body: String(err) };
  }
}

function counterOf(a: Answer): number {
  assert.equal(a.status, 200, `expected 200, got ${a.status}: ${a.body}`);
  return (JSON.parse(a.body) as { counter: number }).counter;
}

/** Retries `fn` until it returns without throwing; bounded. */
/** `concurrency` loops of GETs until `stop()` (or `maxRequests`); every answer recorded. */
function requestLoop(url: string, concurrency: number, maxRequests: number): { answers: Answer[]; stop(): Promise<Answer[]> } {
  const answers: Answer[] = [];
  let stopped = false;
  const worker = async () => {
    while (!stopped && answers.length < maxRequests) answers.push(await get(url));
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    answers,
    async stop() {
      stopped = true;
      await Promise.all(workers);
      return answers;
    },
  };
}

describe('lattice processes', () => {
  let nats: NatsServer;
  let dir: string;
  const procs: WasmletProcess[] = [];
  /** Credential files by lattice and role. */
  const creds = new Map<string, string>();
  const envOf = (lattice: string, role: MemberRole) => ({ NATS_URL: nats.url, WASMLET_LATTICE_CREDS: creds.get(`${lattice}/${role}`)! });
  const start = (lattice: string, args: string[]) => {
    const p = startWasmlet([...args, ...NATS_FLAGS], envOf(lattice, args[0] === 'host' ? 'host' : 'provider'));
    procs.push(p);
    return p;
  };
  const ctl = async (lattice: string, args: string[]) => {
    const r = await runWasmlet(['ctl', ...args], envOf(lattice, 'ctl'));
    assert.equal(r.code, 0, `wasmlet ctl ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };

  // Lattice `procs`
  let hostA: WasmletProcess;
  let http1: WasmletProcess;
  let kv1: WasmletProcess;
  let port1: number;
  // Lattice `pair`
  let hostB1: WasmletProcess;
  let hostB2: WasmletProcess;
  let http2: WasmletProcess;
  let port2: number;

  before(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-lattice-procs-'));
    for (const lattice of ['procs', 'pair']) {
      const issuer = generateKeyPair('account');
      for (const role of ['host', 'provider', 'ctl'] as const) {
        const file = join(dir, `${lattice}-${role}.creds`);
        await writeFile(file, (await mintMemberCredentials({ lattice, issuer: issuer.publicKey, issuerSeed: issuer.seed }, { role })).creds, { mode: 0o600 });
        creds.set(`${lattice}/${role}`, file);
      }
    }
    [port1, port2] = [await freePort(), await freePort()];
    const actorOnly = join(dir, 'actor-only.yaml');
    await writeFile(actorOnly, `actors: [${kvcounterPath}]\n`);
    const withMemoryKv = join(dir, 'with-memory-kv.yaml');
    await writeFile(withMemoryKv, `actors: [${kvcounterPath}]\nbindings:\n  - actor: ${KVCOUNTER}\n    capability: wascc:keyvalue\n`);
    // Every process starts at once: their start-up (TypeScript loading) overlaps.
    hostA = start('procs', ['host', '--manifest', actorOnly]);
    http1 = start('procs', ['provider', 'http-server']);
    kv1 = start('procs', ['provider', 'keyvalue']);
    hostB1 = start('pair', ['host', '--manifest', withMemoryKv]);
    hostB2 = start('pair', ['host', '--manifest', withMemoryKv]);
    http2 = start('pair', ['provider', 'http-server']);
    await Promise.all([hostA, hostB1, hostB2].map((p) => p.waitFor('wasmlet host is up', 45_000)));
    await Promise.all([http1, http2].map((p) => p.waitFor('wasmlet provider http-server is up', 45_000)));
    await kv1.waitFor('wasmlet provider keyvalue is up', 45_000);
    // Links are kept in the lattice's JetStream bucket: whoever joins later learns them.
    await Promise.all([
      ctl('procs', ['link', 'put', KVCOUNTER, 'wascc:http_server', '--value', `PORT=${port1}`, '--value', 'ADDRESS=127.0.0.1']),
      ctl('procs', ['link', 'put', KVCOUNTER, 'wascc:keyvalue', '--value', 'BACKEND=nats', '--value', 'BUCKET=procs_counts']),
      ctl('pair', ['link', 'put', KVCOUNTER, 'wascc:http_server', '--value', `PORT=${port2}`, '--value', 'ADDRESS=127.0.0.1']),
    ]);
  });

  after(async () => {
    if (nats && !nats.running) await nats.restart().catch(() => undefined); // processes shut down cleanly with NATS up
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 8000)));
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a provider process killed: the actor sees errors at once (HTTP 500, no hang); started again, it re-learns its links from JetStream and serves', async () => {
    const url = `http://127.0.0.1:${port1}/procs/count`;
    // HTTP on the provider process → kvcounter on host A → Add on the key-value process.
    assert.equal(counterOf(await eventually(() => get(url).then((a) => (counterOf(a), a)), 'first count', 20_000)), 1);
    assert.equal(counterOf(await get(url)), 2);

    await kv1.kill();
    await sleep(200); // the server drops a dead client's subscriptions when its socket closes
    for (let i = 0; i < 3; i++) {
      const a = await get(url);
      assert.equal(a.status, 500, `the actor's key-value call failed, so it answered 500: ${a.status} ${a.body}`);
      assert.ok(a.ms < FAST_MS, `failed in ${a.ms} ms, well before the ${DEADLINE_MS} ms deadline`);
    }
    // The error the actor saw names the missing provider (the HTTP provider logs what the actor returned).
    assert.match(http1.output(), /nothing on the lattice serves provider\.wasmlet:keyvalue\.default/);

    // A new key-value process (a new host key, no state) learns the link, with its values
    // (BACKEND=nats, BUCKET=procs_counts), from the lattice bucket: the count goes on at 3.
    kv1 = start('procs', ['provider', 'keyvalue']);
    await kv1.waitFor('wasmlet provider keyvalue is up', 30_000);
    assert.equal(counterOf(await eventually(() => get(url).then((a) => (counterOf(a), a)), 'count after the restart', 15_000)), 3);
    assert.equal(counterOf(await get(url)), 4);
  });

  it('the same actor on two hosts shares the load; stopping one host (SIGTERM) under a steady request loop loses no request', async () => {
    const url = `http://127.0.0.1:${port2}/pair/count`;
    await eventually(() => get(`http://127.0.0.1:${port2}/warm`).then((a) => counterOf(a)), 'first answer', 20_000);
    const inventory = JSON.parse(await ctl('pair', ['get', 'inventory', '--json'])) as { hostId: string; actors: { id: string }[] }[];
    const running = inventory.filter((h) => h.actors.some((a) => a.id === KVCOUNTER));
    assert.equal(running.length, 2, 'kvcounter runs on both hosts');

    // One request at a time, so each is a batch of its own and the queue group picks a host
    // for each. Each host counts in its own memory: the answers are two interleaved sequences
    // 1..a and 1..b, and a value seen twice means both hosts served.
    const counters: number[] = [];
    for (let i = 0; i < 40; i++) counters.push(counterOf(await get(url)));
    const seen = new Map<number, number>();
    for (const c of counters) seen.set(c, (seen.get(c) ?? 0) + 1);
    assert.equal(seen.get(1), 2, `both hosts served: ${counters.join(',')}`);
    const twice = [...seen].filter(([, n]) => n === 2).length;
    const max = Math.max(...counters);
    assert.equal(max + twice, 40, `answers are two counting sequences (a + b = 40): ${counters.join(',')}`);
    for (const [value, n] of seen) assert.ok(n <= 2 && value <= max, `value ${value} seen ${n} times`);

    // A steady loop (3 requests in flight) across B1's shutdown. Kept short: every request is
    // also exposed to whatever else can go wrong in a host, and this test is about the stop.
    const loop = requestLoop(url, 3, 2000);
    await sleep(400);
    const stopAt = Date.now();
    const code = await hostB1.stop('SIGTERM', 15_000);
    const stoppedAt = Date.now();
    await sleep(400);
    const answers = await loop.stop();
    assert.equal(code, 0, `B1 stopped cleanly:\n${hostB1.output().slice(-2000)}`);
    const failed = answers.filter((a) => a.status !== 200);
    const logs = () => [hostB1, hostB2, http2].map((p) => p.output().slice(-1500)).join('\n---\n');
    assert.deepEqual(failed, [], `every request succeeded (${answers.length} requests; SIGTERM at ${stopAt}, exit at ${stoppedAt}):\n${logs()}`);
    assert.ok(answers.filter((a) => a.at < stopAt).length >= 5, 'the loop was running before the stop');
    assert.ok(answers.filter((a) => a.at >= stopAt && a.at <= stoppedAt).length >= 1, 'requests were sent while B1 stopped');
    assert.ok(answers.filter((a) => a.at > stoppedAt).length >= 3, 'and after');
    // Only B2 is left: its counter alone answers now, one step at a time.
    const [x, y] = [counterOf(await get(url)), counterOf(await get(url))];
    assert.equal(y, x + 1);
  });

  it('nats-server restarted while calls are in flight: calls during the outage fail fast with 503; afterwards every call succeeds, nothing restarted', async () => {
    const url = `http://127.0.0.1:${port1}/procs/outage`;
    const base = await eventually(() => get(url).then((a) => counterOf(a)), 'steady state', 15_000);

    const loop = requestLoop(url, 4, 2000);
    await sleep(500);
    await nats.kill();
    const killedAt = Date.now();
    // During the outage: each call fails at once, never at the deadline.
    const during: Answer[] = [];
    for (let i = 0; i < 5; i++) during.push(await get(url));
    await sleep(300);
    const restartingAt = Date.now();
    await nats.restart();
    const restartedAt = Date.now();
    const inLoop = await loop.stop();
    for (const a of during) {
      assert.equal(a.status, 503, `during the outage: ${a.status} ${a.body}`);
      assert.ok(a.ms < FAST_MS, `503 after ${a.ms} ms`);
    }
    // Calls in flight when the server died, and those the loop sent during the outage, ended
    // fast too: success (before), or 503 (in flight or during). No 504, no hang. A call sent
    // while the server was coming back may instead wait for the reconnect and succeed, but every
    // 503 is fast and nothing reaches the deadline.
    for (const a of inLoop) {
      assert.ok(a.status === 200 || a.status === 503, `in-flight call: ${a.status} ${a.body}`);
      const acrossOutage = a.at + a.ms > killedAt && a.at < restartingAt;
      if (acrossOutage || a.status === 503) {
        assert.ok(a.ms < FAST_MS, `a call across the outage took ${a.ms} ms (${a.status}; sent ${a.at - killedAt} ms after the kill)`);
      } else if (a.at < restartedAt) {
        assert.ok(a.ms < DEADLINE_MS, `a call during the restart took ${a.ms} ms (${a.status})`);
      }
    }
    assert.ok(inLoop.some((a) => a.status === 503), 'the loop saw the outage');

    // Back: once a call succeeds, every call succeeds; the count went on from where it was
    // (the counter lives in JetStream KV, acknowledged writes survive the restart).
    const first = counterOf(await eventually(() => get(url).then((a) => (counterOf(a), a)), 'first call after the restart', 20_000));
    assert.ok(first > base, `${first} > ${base}`);
    const afterwards: Answer[] = [];
    for (let i = 0; i < 20; i++) afterwards.push(await get(url));
    assert.deepEqual(
      afterwards.map(counterOf),
      Array.from({ length: 20 }, (_, i) => first + 1 + i),
      'every call after the restart succeeded, counting on',
    );
    assert.ok(hostA.running && http1.running && kv1.running, 'nothing was restarted');
  });
});
