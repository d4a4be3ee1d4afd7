import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli } from '../../test/helpers/cli.ts';
import { freePort } from '../../test/helpers/nats-server.ts';
import { isLatticeAuthError } from '../errors.ts';
import { parseMemberCredentials } from '../lattice/membership.ts';
import { registerLatticeAdminCommands } from './lattice-admin-commands.ts';
import { registerLatticeCommands, type LatticeCliDeps } from './lattice-commands.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wasmlet-lattice-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const admin = (args: string[]) => runCli(registerLatticeAdminCommands, args);

test('lattice init, creds and inspect: secrets 0600 and never printed, nothing overwritten, bad input refused', async () => {
  const issuerDir = join(dir, 'issuer');
  const init = await admin(['lattice', 'init', '--out', issuerDir, '--lattice', 'prod']);
  assert.equal(init.error, undefined, init.stderr);
  assert.match(init.stdout, /^A[A-Z2-7]{55}\n$/);
  assert.match(init.stderr, /lattice prod: issuer A[A-Z2-7]{55} .*subjects wasmlet\.prod\.i[0-9a-f]{16}\.>/);
  const again = await admin(['lattice', 'init', '--out', issuerDir]);
  assert.equal(again.error?.exitCode, 1);
  assert.match(again.stderr, /exists already; not replacing it .*\[LATTICE_ISSUER_EXISTS\]/);

  const out = join(dir, 'ctl.creds');
  const creds = await admin(['lattice', 'creds', '--issuer', join(issuerDir, 'issuer.nk'), '--role', 'ctl', '--name', 'ops', '--expires-in', '3600', '--out', out]);
  assert.equal(creds.error, undefined, creds.stderr);
  assert.equal((await stat(out)).mode & 0o777, 0o600);
  const parsed = parseMemberCredentials(await readFile(out));
  assert.equal(creds.stdout, `${parsed.key}\n`);
  assert.equal(parsed.role, 'ctl');
  assert.equal(parsed.name, 'ops');
  assert.ok(!creds.stdout.includes(parsed.seed) && !creds.stderr.includes(parsed.seed), 'the seed is never printed');
  const overwrite = await admin(['lattice', 'creds', '--issuer', join(issuerDir, 'issuer.nk'), '--role', 'ctl', '--out', out]);
  assert.match(overwrite.stderr, /exists already; not replacing it/);
  const badRole = await admin(['lattice', 'creds', '--issuer', join(issuerDir, 'issuer.nk'), '--role', 'admin', '--out', join(dir, 'x.creds')]);
  assert.match(badRole.stderr, /a role is one of: host, provider, ctl/);
  const noIssuer = await admin(['lattice', 'creds', '--issuer', join(dir, 'nope.nk'), '--role', 'host', '--out', join(dir, 'y.creds')]);
  assert.match(noIssuer.stderr, /cannot read .*nope\.nk: ENOENT \[LATTICE_ISSUER_UNREADABLE\]/);

  const inspect = await admin(['lattice', 'inspect', out, '--json']);
  const shown = JSON.parse(inspect.stdout) as Record<string, string>;
  assert.equal(shown.lattice, 'prod');
  assert.equal(shown.role, 'ctl');
  assert.equal(shown.key, parsed.key);
  assert.match(shown.subjects!, /^wasmlet\.prod\.i[0-9a-f]{16}\.>$/);
  assert.ok(!inspect.stdout.includes(parsed.seed));
  const notCreds = await admin(['lattice', 'inspect', join(issuerDir, 'lattice.json')]);
  assert.match(notCreds.stderr, /not a usable lattice credential/);

  const config = await admin(['lattice', 'nats-config', '--issuer', join(issuerDir, 'issuer.nk'), '--listen', '127.0.0.1:4333']);
  assert.match(config.stdout, /^listen: "127\.0\.0\.1:4333"$/m);
  assert.match(config.stdout, /^resolver: MEMORY$/m);
  assert.doesNotMatch(config.stdout, /\bS[AOU][A-Z2-7]{56}\b/, 'no seed in the configuration');
});

test('host and provider refuse to join without a credential of their role, saying how to make one, before touching NATS', async () => {
  const nowhere = `nats://127.0.0.1:${await freePort()}`;
  const deps: LatticeCliDeps = { providers: { logging: { contract: 'wasmlet:logging', make: () => { throw new Error('never made'); } } }, manifestProviders: () => ({}), load: async () => new Uint8Array(), version: 't' };
  const run = (args: string[], env: Record<string, string> = {}) => runCli((program, io) => registerLatticeCommands(program, { ...io, env, untilStopped: () => new Promise(() => {}) }, deps), args);
  for (const args of [['host', '--nats', nowhere], ['provider', 'logging', '--nats', nowhere]]) {
    await assert.rejects(run(args), (err: unknown) => isLatticeAuthError(err) && err.code === 'LATTICE_CREDS_MISSING' && /wasmlet lattice init --out DIR/.test(err.message) && /--insecure/.test(err.message), args[0]);
  }
  const issuerDir = join(dir, 'issuer2');
  await admin(['lattice', 'init', '--out', issuerDir]);
  const ctl = join(dir, 'ctl2.creds');
  await admin(['lattice', 'creds', '--issuer', join(issuerDir, 'issuer.nk'), '--role', 'ctl', '--out', ctl]);
  await assert.rejects(run(['host', '--nats', nowhere, '--lattice-creds', ctl]), (err: unknown) => isLatticeAuthError(err) && /is a ctl credential; this command needs a host credential/.test((err as Error).message));
  await assert.rejects(run(['provider', 'logging', '--nats', nowhere], { WASMLET_LATTICE_CREDS: ctl }), (err: unknown) => isLatticeAuthError(err) && /needs a provider credential/.test((err as Error).message));
});
