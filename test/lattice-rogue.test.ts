/**
 * Two lattices with the same name on one nats-server, each made by its own operator with the
 * CLI (`wasmlet lattice init`, `lattice creds`), each running its own host and HTTP provider
 * processes. The second one tries everything its own credentials allow against the first:
 * nothing it does may invoke, answer, link, start or stop anything in the first, and the first
 * lattice's traffic keeps being served without a single failed request.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { registerCtlCommands, registerLatticeAdminCommands } from '../host/index.ts';
import { runCli } from './helpers/cli.ts';
import { freePort, startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { runWasmlet, startWasmlet, type WasmletProcess } from './helpers/wasmlet-process.ts';
import { eventually } from './helpers/wait.ts';

const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const kvcounterPath = fileURLToPath(new URL('../../shared/fixtures/wascc/kvcounter.wasm', import.meta.url));
const FLAGS = ['--log-level', 'warn', '--heartbeat-ms', '0'];
const LATTICE = 'shared';

interface Answer {
  status: number;
  body: string;
}

async function get(url: string): Promise<Answer> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(6000) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: 0, body: String(err) };
  }
}

function counterOf(a: Answer): number {
  assert.equal(a.status, 200, `expected 200, got ${a.status}: ${a.body}`);
  return (JSON.parse(a.body) as { counter: number }).counter;
}

describe('two lattices with one name, two issuers', () => {
  let nats: NatsServer;
  let dir: string;
  const procs: WasmletProcess[] = [];
  /** Creds files by operator ('ours', 'rogue') and member. */
  const creds: Record<string, string> = {};
  const env = (who: string) => ({ NATS_URL: nats.url, WASMLET_LATTICE_CREDS: creds[who]! });
  const ctl = async (who: 'ours' | 'rogue', args: string[]) => {
    const r = await runCli(registerCtlCommands, ['ctl', ...args, '--nats', nats.url, '--lattice-creds', creds[`${who}/ctl`]!, '--gather-ms', '500']);
    assert.equal(r.error, undefined, `${who}: wasmlet ctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  let port: number;
  let manifest: string;

  before(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-rogue-'));
    manifest = join(dir, 'kv.yaml');
    await writeFile(manifest, `actors: [${kvcounterPath}]\nbindings:\n  - actor: ${KVCOUNTER}\n    capability: wascc:keyvalue\n`);
    // Each operator makes its lattice: `lattice init` as a process, credentials with the same commands in-process.
    await Promise.all(
      ['ours', 'rogue'].map(async (who) => {
        const init = await runWasmlet(['lattice', 'init', '--out', join(dir, who), '--lattice', LATTICE], {}, 120_000);
        assert.equal(init.code, 0, init.stderr);
        for (const role of ['host', 'provider', 'ctl']) {
          creds[`${who}/${role}`] = join(dir, `${who}-${role}.creds`);
          const r = await runCli(registerLatticeAdminCommands, ['lattice', 'creds', '--issuer', join(dir, who, 'issuer.nk'), '--role', role, '--out', creds[`${who}/${role}`]!]);
          assert.equal(r.error, undefined, r.stderr);
        }
      }),
    );
    for (const who of ['ours', 'rogue']) {
      procs.push(startWasmlet(['host', '--manifest', manifest, ...FLAGS], env(`${who}/host`)));
      procs.push(startWasmlet(['provider', 'http-server', ...FLAGS], env(`${who}/provider`)));
    }
    await Promise.all(procs.map((p, i) => p.waitFor(i % 2 === 0 ? 'wasmlet host is up' : 'wasmlet provider http-server is up', 60_000)));
    port = await freePort();
    await ctl('ours', ['link', 'put', KVCOUNTER, 'wascc:http_server', '--value', `PORT=${port}`, '--value', 'ADDRESS=127.0.0.1']);
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 8000)));
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the second lattice can invoke, answer, link, start or stop nothing in the first, which serves every request meanwhile', async () => {
    const url = `http://127.0.0.1:${port}/shared/count`;
    const first = counterOf(await eventually(() => get(url).then((a) => (counterOf(a), a)), 'first count', 20_000));
    // One request at a time, each checked as it comes, while the rogue operator works.
    const answers: Answer[] = [];
    let stop = false;
    const loop = (async () => {
      while (!stop && answers.length < 2000) answers.push(await get(url));
    })();
    // Its ctl sees only its own members.
    const ours = JSON.parse(await ctl('ours', ['get', 'hosts', '--json'])) as { hostId: string }[];
    const theirs = JSON.parse(await ctl('rogue', ['get', 'hosts', '--json'])) as { hostId: string }[];
    assert.equal(ours.length, 2);
    assert.equal(theirs.length, 2);
    assert.ok(!theirs.some((h) => ours.some((o) => o.hostId === h.hostId)), 'no member of one lattice answers the other');
    // Whatever it stops, deletes or links stays in its own lattice.
    await ctl('rogue', ['stop', 'actor', KVCOUNTER]);
    await ctl('rogue', ['link', 'del', KVCOUNTER, 'wascc:keyvalue']);
    const roguePort = await freePort();
    await ctl('rogue', ['link', 'put', KVCOUNTER, 'wascc:http_server', '--value', `PORT=${roguePort}`, '--value', 'ADDRESS=127.0.0.1']);
    // Its own HTTP server serves its own lattice: its actor was stopped there, so no 200, and nothing reaches ours.
    const rogue = await eventually(() => get(`http://127.0.0.1:${roguePort}/shared/count`).then((a) => (assert.notEqual(a.status, 0), a)), 'the rogue HTTP server', 15_000);
    assert.notEqual(rogue.status, 200, `${rogue.status} ${rogue.body}`);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await loop;
    assert.ok(answers.length >= 5, `${answers.length} requests`);
    assert.deepEqual(answers.filter((a) => a.status !== 200), [], 'every request of the first lattice succeeded');
    assert.deepEqual(answers.map(counterOf), answers.map((_, i) => first + 1 + i), 'the count went on one by one: nothing ran twice or elsewhere');
    // The first lattice is as it was: its actor, its links.
    const inventory = JSON.parse(await ctl('ours', ['get', 'inventory', '--json'])) as { actors: { id: string }[] }[];
    assert.ok(inventory.some((h) => h.actors.some((x) => x.id === KVCOUNTER)));
    const links = JSON.parse(await ctl('ours', ['get', 'links', '--json'])) as { contract: string; values: Record<string, string> }[];
    assert.deepEqual(links.map((l) => l.contract).sort(), ['wasmlet:httpserver', 'wasmlet:keyvalue'], 'the rogue link del did not remove ours');
    assert.equal(links.find((l) => l.contract === 'wasmlet:httpserver')?.values.PORT, String(port), 'the rogue link put did not rewire ours');
  });
});
