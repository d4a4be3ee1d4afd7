/**
 * NATS's own wall around a closed lattice: a nats-server run with the configuration
 * `wasmlet lattice nats-config` prints admits only the lattice's members (their creds files are
 * NATS user credentials) and confines each to the subjects of its role. The lattice runs on it as
 * real processes, and a member of the wrong role cannot even publish a control request.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import { latticeScope, loadIssuer, subjectPrefix } from '../host/index.ts';
import { freePort, startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { runWasmlet, startWasmlet, type WasmletProcess } from './helpers/wasmlet-process.ts';
import { eventually } from './helpers/wait.ts';

const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';
const kvcounterPath = fileURLToPath(new URL('../../shared/fixtures/wascc/kvcounter.wasm', import.meta.url));
const FLAGS = ['--log-level', 'warn', '--heartbeat-ms', '0'];

/** Publishes as a member and reports whether the server refused it (a permissions violation). */
async function refused(nc: NatsConnection, act: () => void): Promise<string | undefined> {
  const seen: string[] = [];
  const iter = nc.status();
  const watching = (async () => {
    for await (const s of iter) if (s.type === 'error') seen.push(String(s.data));
  })();
  act();
  await nc.flush().catch((e: Error) => seen.push(e.message));
  await new Promise((r) => setTimeout(r, 200));
  (iter as unknown as { stop(): void }).stop();
  await watching.catch(() => undefined);
  return seen.find((x) => /permission/i.test(x));
}

describe('a lattice on a nats-server configured by `wasmlet lattice nats-config`', () => {
  let dir: string;
  let nats: NatsServer;
  let prefix: string;
  const creds: Record<string, string> = {};
  const procs: WasmletProcess[] = [];
  const conns: NatsConnection[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-nats-config-'));
    const issuerDir = join(dir, 'issuer');
    const init = await runWasmlet(['lattice', 'init', '--out', issuerDir, '--lattice', 'secure'], {}, 120_000);
    assert.equal(init.code, 0, init.stderr);
    await Promise.all(
      (['host', 'provider', 'ctl'] as const).map(async (role) => {
        const file = join(dir, `${role}.creds`);
        const r = await runWasmlet(['lattice', 'creds', '--issuer', join(issuerDir, 'issuer.nk'), '--role', role, '--name', `${role}-1`, '--out', file], {}, 120_000);
        assert.equal(r.code, 0, r.stderr);
        creds[role] = file;
      }),
    );
    const issuer = await loadIssuer(join(issuerDir, 'issuer.nk'));
    prefix = subjectPrefix('secure', latticeScope(issuer.issuer));
    const port = await freePort();
    const config = await runWasmlet(['lattice', 'nats-config', '--issuer', join(issuerDir, 'issuer.nk'), '--listen', `127.0.0.1:${port}`, '--store-dir', join(dir, 'js')], {}, 120_000);
    assert.equal(config.code, 0, config.stderr);
    nats = await startNatsServer({ port, configText: () => config.stdout });
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 8000)));
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('members connect with their lattice creds alone and serve requests; a client without creds cannot connect', async () => {
    const manifest = join(dir, 'kv.yaml');
    await writeFile(manifest, `actors: [${kvcounterPath}]\nbindings:\n  - actor: ${KVCOUNTER}\n    capability: wascc:keyvalue\n`);
    const env = (role: string) => ({ NATS_URL: nats.url, WASMLET_LATTICE_CREDS: creds[role]! });
    const host = startWasmlet(['host', '--manifest', manifest, ...FLAGS], env('host'));
    const http = startWasmlet(['provider', 'http-server', ...FLAGS], env('provider'));
    procs.push(host, http);
    await host.waitFor('wasmlet host is up', 45_000);
    await http.waitFor('wasmlet provider http-server is up', 45_000);
    const port = await freePort();
    const put = await runWasmlet(['ctl', 'link', 'put', KVCOUNTER, 'wascc:http_server', '--value', `PORT=${port}`, '--value', 'ADDRESS=127.0.0.1'], env('ctl'), 120_000);
    assert.equal(put.code, 0, put.stderr);
    const body = await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/secure`, { signal: AbortSignal.timeout(3000) });
      assert.equal(res.status, 200);
      return res.text();
    }, 'a request through the lattice', 15_000);
    assert.deepEqual(JSON.parse(body), { counter: 1 });
    await assert.rejects(connect({ servers: nats.url, maxReconnectAttempts: 0, timeout: 2000 }), /AUTHORIZATION|authorization/i);
  });

  it('each role is confined to its subjects: providers and hosts cannot publish control requests, ctl cannot invoke, providers cannot join an actor queue', async () => {
    const as = async (role: string) => {
      const nc = await connect({ servers: nats.url, authenticator: credsAuthenticator(await readFile(creds[role]!)), maxReconnectAttempts: 0 });
      conns.push(nc);
      return nc;
    };
    const provider = await as('provider');
    assert.match((await refused(provider, () => provider.publish(`${prefix}.ctl.actor.stop`, new TextEncoder().encode(JSON.stringify({ actor: KVCOUNTER }))))) ?? '', /permission/i, 'a provider cannot send ctl');
    assert.match((await refused(provider, () => provider.subscribe(`${prefix}.rpc.actor.${KVCOUNTER}`, { queue: 'wasmlet' }))) ?? '', /permission/i, "a provider cannot join an actor's queue group");
    const host = await as('host');
    assert.match((await refused(host, () => host.publish(`${prefix}.ctl.link.put`, new Uint8Array(2)))) ?? '', /permission/i, 'a host cannot send ctl');
    const ctl = await as('ctl');
    assert.match((await refused(ctl, () => ctl.publish(`${prefix}.rpc.actor.${KVCOUNTER}`, new Uint8Array(2)))) ?? '', /permission/i, 'ctl cannot invoke');
    // And what each role needs is allowed: ctl publishes control requests, hosts serve actors.
    assert.equal(await refused(ctl, () => ctl.publish(`${prefix}.ctl.ping.hosts`, new Uint8Array(0))), undefined);
    assert.equal(await refused(host, () => host.subscribe(`${prefix}.rpc.actor.${KVCOUNTER}`, { queue: 'wasmlet' })), undefined);
    // The lattice still works after the attempts.
    const hosts = await runWasmlet(['ctl', 'get', 'hosts', '--json', '--gather-ms', '500'], { NATS_URL: nats.url, WASMLET_LATTICE_CREDS: creds.ctl! }, 120_000);
    assert.equal((JSON.parse(hosts.stdout) as unknown[]).length, 2, hosts.stderr);
  });
});
