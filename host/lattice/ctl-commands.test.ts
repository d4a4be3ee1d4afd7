import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import { runCli, type CliRun } from '../../test/helpers/cli.ts';
import { pino } from 'pino';
import type { NatsConnection } from 'nats';
import { freePort, startNatsServer, type NatsServer } from '../../test/helpers/nats-server.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../claims/keys.ts';
import { signActor } from '../claims/claims.ts';
import { isOptionsError } from '../errors.ts';
import { connectNats } from './connection.ts';
import { ControlServer } from './control.ts';
import { addNatsOptions, latticeFromFlags, natsOptionsFromFlags, registerCtlCommands, type NatsFlags } from './ctl-commands.ts';
import type { LatticeTrust } from './membership.ts';
import { NatsClaimsStore } from './nats-claims-store.ts';
import { NatsLinkStore } from './nats-link-store.ts';
import { FakeHost, TestIssuer, TEST_ACTOR as ACTOR } from './test-support.ts';

const silent = pino({ level: 'silent' });
let server: NatsServer;
const conns: NatsConnection[] = [];
const cleanups: (() => Promise<void>)[] = [];
let n = 0;
let dir: string;

before(async () => {
  server = await startNatsServer({ auth: { token: 'ctl-token' } });
  dir = await mkdtemp(join(tmpdir(), 'wasmlet-ctl-'));
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Writes a member credential of `issuer` to a file of its own; returns the path. */
async function credsFile(issuer: TestIssuer, role: 'host' | 'provider' | 'ctl'): Promise<string> {
  const path = join(dir, `${role}-${n++}.creds`);
  await writeFile(path, (await issuer.creds(role)).creds, { mode: 0o600 });
  return path;
}

/** Runs `wasmlet ARGS…` in-process. */
function run(args: string[], extra: { env?: Record<string, string>; signal?: AbortSignal } = {}): Promise<CliRun> {
  return runCli(registerCtlCommands, args, extra);
}

async function lattice(hostCount: number): Promise<{ id: string; issuer: TestIssuer; hosts: FakeHost[]; trusts: LatticeTrust[]; ctls: ControlServer[]; args: string[]; nats: string[] }> {
  const id = `cli${n++}`;
  const issuer = TestIssuer.create(id);
  const hosts: FakeHost[] = [];
  const trusts: LatticeTrust[] = [];
  const ctls: ControlServer[] = [];
  for (let i = 0; i < hostCount; i++) {
    const nc = await connectNats({ servers: [server.url], token: 'ctl-token' }, silent);
    conns.push(nc);
    const trust = await issuer.trust('host');
    const links = await NatsLinkStore.open(nc, trust, {}, silent);
    const host = new FakeHost(links, `z${i}`, trust.self!.hostId);
    const ctl = new ControlServer(nc, trust, host, { heartbeatIntervalMs: 0 }, silent);
    await ctl.start();
    cleanups.push(async () => {
      await ctl.stop();
      await links.close();
    });
    hosts.push(host);
    trusts.push(trust);
    ctls.push(ctl);
  }
  const nats = ['--nats', server.url, '--nats-token', 'ctl-token'];
  return { id, issuer, hosts, trusts, ctls, nats, args: [...nats, '--lattice-creds', await credsFile(issuer, 'ctl'), '--lattice', id, '--gather-ms', '300'] };
}

test('flags → connection options: repeatable servers, auth kinds, env fallback, flags win', () => {
  const program = addNatsOptions(new Command('x').exitOverride().configureOutput({ writeErr: () => undefined }));
  program.parse(['--nats', 'nats://a:1,nats://b:2', '--nats', 'c:3', '--nats-user', 'u', '--nats-password', 'p', '--nats-max-reconnects', '-1', '--nats-reconnect-wait-ms', '250', '--lattice', 'prod'], { from: 'user' });
  const flags = program.opts<NatsFlags>();
  const o = natsOptionsFromFlags(flags, { NATS_TOKEN: 'from-env' });
  assert.deepEqual(o.servers, ['nats://a:1', 'nats://b:2', 'c:3']);
  assert.equal(o.user, 'u');
  assert.equal(o.pass, 'p');
  assert.equal(o.token, undefined, 'an auth flag overrides auth from the environment');
  assert.equal(o.reconnect.maxAttempts, -1);
  assert.equal(o.reconnect.waitMs, 250);
  assert.equal(latticeFromFlags(flags, { WASMLET_LATTICE: 'other' }), 'prod');

  const fromEnv = natsOptionsFromFlags({}, { NATS_URL: 'nats://e:1, nats://f:2', NATS_TOKEN: 't' });
  assert.deepEqual(fromEnv.servers, ['nats://e:1', 'nats://f:2']);
  assert.equal(fromEnv.token, 't');
  assert.equal(latticeFromFlags({}, { WASMLET_LATTICE: 'other' }), 'other');
  assert.deepEqual(natsOptionsFromFlags({}).servers, ['nats://127.0.0.1:4222'], 'the NATS default when nothing is given');

  const seed = generateKeyPair('user').seed;
  assert.equal(natsOptionsFromFlags({ nats: ['h:1'], natsNkey: seed }).nkeySeed, seed);
  assert.equal(natsOptionsFromFlags({ nats: ['h:1'], natsNkey: '/etc/user.nk' }).nkeyFile, '/etc/user.nk');
  assert.equal(natsOptionsFromFlags({ nats: ['h:1'], natsCreds: '/etc/u.creds' }).credsFile, '/etc/u.creds');
  assert.deepEqual(natsOptionsFromFlags({ nats: ['h:1'], natsTlsCa: 'ca.pem' }).tls, { ca: 'ca.pem' });
  assert.throws(() => natsOptionsFromFlags({ nats: ['h:1'], natsToken: 't', natsCreds: 'c' }), (e: unknown) => isOptionsError(e) && /one way to authenticate/.test((e as Error).message));
  assert.throws(() => natsOptionsFromFlags({ nats: ['http://h:1'] }), (e: unknown) => isOptionsError(e));
  assert.throws(() => program.parse(['--lattice', 'a.b'], { from: 'user' }), /lattice id/);
});

test('ctl get hosts / inventory, as tables and JSON', async () => {
  const L = await lattice(2);
  const hostsJson = await run(['ctl', 'get', 'hosts', ...L.args, '--json']);
  assert.equal(hostsJson.error, undefined, hostsJson.stderr);
  assert.deepEqual(JSON.parse(hostsJson.stdout).map((h: { hostId: string }) => h.hostId), L.hosts.map((h) => h.id).sort());
  const hostsTable = await run(['ctl', 'get', 'hosts', ...L.args]);
  assert.match(hostsTable.stdout, /^HOST\s+UPTIME\s+ACTORS\s+PROVIDERS\s+VERSION\s+LABELS$/m);
  for (const h of L.hosts) assert.match(hostsTable.stdout, new RegExp(`^${h.id}\\s+\\d+s\\s+0\\s+1\\s+\\S+\\s+zone=z\\d$`, 'm'));

  const requests: unknown[] = [];
  const fake = L.hosts[1]!;
  const startActor = fake.startActor.bind(fake);
  fake.startActor = (req) => (requests.push(req), startActor(req));
  const started = await run(['ctl', 'start', 'actor', '/srv/kv.wasm', '--host', L.hosts[1]!.id, '--config', 'A=1', '--config', 'B=x=y', '--max-concurrency', '1', '--max-memory-mib', '32', ...L.args]);
  assert.equal(started.error, undefined, started.stderr);
  assert.deepEqual(requests, [{ ref: '/srv/kv.wasm', config: { A: '1', B: 'x=y' }, maxConcurrency: 1, maxMemoryMiB: 32 }]);
  assert.equal(started.stdout, `started /srv/kv.wasm (${ACTOR}) on host ${L.hosts[1]!.id}\n`);
  assert.deepEqual(L.hosts[1]!.actors.get(ACTOR)?.config, { A: '1', B: 'x=y' });

  const inv = await run(['ctl', 'get', 'inventory', L.hosts[1]!.id, ...L.args]);
  assert.match(inv.stdout, new RegExp(`^${L.hosts[1]!.id}\\s+actor\\s+${ACTOR}\\s+/srv/kv.wasm\\s+running$`, 'm'));
  assert.match(inv.stdout, /provider\s+wasmlet:keyvalue\/default\s+keyvalue\s+running/);
  const all = JSON.parse((await run(['ctl', 'get', 'inventory', ...L.args, '--json'])).stdout) as unknown[];
  assert.equal(all.length, 2);
  // Instances of one module (e.g. a Kubernetes node's pods) are listed one per row, with the module they run.
  L.hosts[0]!.actors.set('default/web-1/app', { id: 'default/web-1/app', module: ACTOR, name: 'Key Value Counter', state: 'running' });
  const withInstances = await run(['ctl', 'get', 'inventory', L.hosts[0]!.id, ...L.args]);
  assert.match(withInstances.stdout, /^HOST\s+KIND\s+ID\s+NAME\s+MODULE\s+STATE$/m);
  assert.match(withInstances.stdout, new RegExp(`^${L.hosts[0]!.id}\\s+actor\\s+default/web-1/app\\s+Key Value Counter\\s+${ACTOR}\\s+running$`, 'm'));
  L.hosts[0]!.actors.delete('default/web-1/app');

  const stopped = await run(['ctl', 'stop', 'actor', ACTOR, ...L.args]);
  assert.equal(stopped.stdout, `stopped ${ACTOR} on host ${L.hosts[1]!.id}\n`);
  const again = await run(['ctl', 'stop', 'actor', ACTOR, ...L.args]);
  assert.equal(again.error?.exitCode, 1);
  assert.match(again.stderr, /runs on no host of lattice/);
});

test('ctl link put / get links / link del; secrets stay out of the table', async () => {
  const L = await lattice(1);
  const put = await run(['ctl', 'link', 'put', ACTOR, 'wascc:keyvalue', '--value', 'URL=redis://u:secret@h:6379', '--value', 'BUCKET=b', ...L.args]);
  assert.equal(put.error, undefined, put.stderr);
  assert.equal(put.stdout, `link put: ${ACTOR} → wasmlet:keyvalue (default) by host ${L.hosts[0]!.id}\n`);
  const table = await run(['ctl', 'get', 'links', ...L.args]);
  assert.match(table.stdout, new RegExp(`^${ACTOR}\\s+wasmlet:keyvalue\\s+default\\s+BUCKET,URL$`, 'm'));
  assert.ok(!table.stdout.includes('secret'));
  const asJson = JSON.parse((await run(['ctl', 'get', 'links', ...L.args, '--json'])).stdout);
  assert.equal(asJson[0].values.URL, 'redis://u:secret@h:6379');
  const refused = await run(['ctl', 'link', 'put', ACTOR, 'wasmlet:httpserver', '--value', 'PORT=nope', ...L.args]);
  assert.equal(refused.error?.exitCode, 1);
  assert.match(refused.stderr, /PORT must be a port number, got "nope" \[LINK_INVALID\]/);
  const bad = await run(['ctl', 'link', 'put', ACTOR, 'wasmlet:httpserver', '--value', 'novalue', ...L.args]);
  assert.match(bad.stderr, /expected KEY=VALUE/);
  const del = await run(['ctl', 'link', 'del', ACTOR, 'wascc:keyvalue', ...L.args]);
  assert.equal(del.stdout, `link deleted: ${ACTOR} → wascc:keyvalue (default)\n`);
  const none = await run(['ctl', 'get', 'links', ...L.args]);
  assert.equal(none.stdout, `no links on lattice ${L.id}\n`);
  const missing = await run(['ctl', 'link', 'del', ACTOR, 'wascc:keyvalue', ...L.args]);
  assert.match(missing.stderr, /no link .* on lattice/);
});

test('ctl get claims', async () => {
  const L = await lattice(1);
  const account = generateKeyPair('account');
  const signed = signActor(Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0]), { account: account.seed, name: 'Key Value Counter', caps: ['wascc:keyvalue', 'wascc:http_server'] });
  const store = await NatsClaimsStore.open(conns[conns.length - 1]!, L.trusts[0]!, {}, silent);
  await store.record(signed.token, signed.claims);
  await store.close();
  const r = await run(['ctl', 'get', 'claims', ...L.args]);
  assert.match(r.stdout, new RegExp(`^${signed.claims.sub}\\s+Key Value Counter\\s+${account.publicKey}\\s+wascc:keyvalue,wascc:http_server$`, 'm'));
});

test('ctl watch prints events until --count or the signal', async () => {
  const L = await lattice(1);
  const watching = run(['ctl', 'watch', ...L.args, '--count', '2', '--json', '--type', 'actor_started', '--type', 'link_put']);
  await new Promise((r) => setTimeout(r, 300)); // let the watch subscribe
  await run(['ctl', 'start', 'actor', 'x.wasm', ...L.args]);
  await run(['ctl', 'link', 'put', ACTOR, 'wasmlet:logging', ...L.args]);
  const r = await watching;
  assert.equal(r.error, undefined, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; specversion: string });
  assert.deepEqual(events.map((e) => e.type), ['dev.wasmlet.actor_started', 'dev.wasmlet.link_put']);

  const abort = new AbortController();
  const human = run(['ctl', 'watch', ...L.args], { signal: abort.signal });
  await new Promise((r) => setTimeout(r, 300));
  L.ctls[0]!.actorStopped(ACTOR);
  await new Promise((r) => setTimeout(r, 100));
  abort.abort();
  const h = await human;
  assert.equal(h.error, undefined, h.stderr);
  assert.match(h.stdout, new RegExp(`^\\S+Z  actor_stopped\\s+host=${L.hosts[0]!.id}  actor=${ACTOR}$`, 'm'));
});

test('errors: unreachable NATS, wrong token, no host for a request', async () => {
  const port = await freePort();
  const down = await run(['ctl', 'get', 'hosts', '--insecure', '--nats', `nats://127.0.0.1:${port}`, '--nats-timeout-ms', '500']);
  assert.equal(down.error?.exitCode, 1);
  assert.match(down.stderr, new RegExp(`cannot connect to NATS at nats://127\\.0\\.0\\.1:${port}.*\\[NATS_CONNECT_FAILED\\]`));
  const wrong = await run(['ctl', 'get', 'hosts', '--insecure', '--nats', server.url, '--nats-token', 'wrong', '--nats-max-reconnects', '0']);
  assert.match(wrong.stderr, /AUTHORIZATION/i);
  assert.ok(!wrong.stderr.includes('wrong'.repeat(2)));
  const empty = await lattice(0);
  const r = await run(['ctl', 'start', 'actor', 'x.wasm', ...empty.args]);
  assert.match(r.stderr, /no host on lattice cli\d+ answers \[CTL_NO_HOST\]/);
  const noHosts = await run(['ctl', 'get', 'hosts', ...empty.args]);
  assert.equal(noHosts.stdout, `no hosts on lattice ${empty.id}\n`);
});

test('ctl needs a ctl credential of the lattice: none, another role, another lattice, or --insecure against a closed lattice', async () => {
  const L = await lattice(1);
  const none = await run(['ctl', 'get', 'hosts', ...L.nats, '--lattice', L.id]);
  assert.equal(none.error?.exitCode, 1);
  assert.match(none.stderr, /lattices are closed: .*--lattice-creds FILE.*wasmlet lattice init --out DIR.*wasmlet lattice creds .*--insecure.*\[LATTICE_CREDS_MISSING\]/);
  const provider = await run(['ctl', 'get', 'hosts', ...L.nats, '--lattice-creds', await credsFile(L.issuer, 'provider')]);
  assert.match(provider.stderr, /is a provider credential; this command needs a ctl credential.*\[LATTICE_CREDS_INVALID\]/);
  const other = await run(['ctl', 'get', 'hosts', ...L.nats, '--lattice-creds', await credsFile(L.issuer, 'ctl'), '--lattice', 'elsewhere']);
  assert.match(other.stderr, /is a credential of lattice cli\d+, not elsewhere/);
  const both = await run(['ctl', 'get', 'hosts', ...L.nats, '--lattice-creds', await credsFile(L.issuer, 'ctl'), '--insecure']);
  assert.match(both.stderr, /not both/);
  // From the environment.
  const fromEnv = await run(['ctl', 'get', 'hosts', ...L.nats, '--gather-ms', '300', '--json'], { env: { WASMLET_LATTICE_CREDS: await credsFile(L.issuer, 'ctl') } });
  assert.equal(JSON.parse(fromEnv.stdout).length, 1, fromEnv.stderr);
  // An open lattice of the same name shares no subject with the closed one: nobody answers.
  const open = await run(['ctl', 'get', 'hosts', ...L.nats, '--lattice', L.id, '--insecure', '--gather-ms', '300']);
  assert.equal(open.stdout, `no hosts on lattice ${L.id}\n`);
  // A ctl credential of another issuer with the same lattice name: its requests are dropped.
  const stranger = await run(['ctl', 'start', 'actor', 'x.wasm', ...L.nats, '--lattice-creds', await credsFile(TestIssuer.create(L.id), 'ctl'), '--timeout-ms', '500']);
  assert.match(stranger.stderr, /no host on lattice .* answers \[CTL_NO_HOST\]/, 'another issuer, another subject space');
  assert.equal(L.hosts[0]!.actors.size, 0);
  const missing = await run(['ctl', 'get', 'hosts', ...L.nats, '--lattice-creds', join(dir, 'nope.creds')]);
  assert.match(missing.stderr, /cannot read lattice credential .*nope\.creds: ENOENT/);
});
