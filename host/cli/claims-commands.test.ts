import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli, type CliRun } from '../../test/helpers/cli.ts';
import { verifyActor } from '../claims/claims.ts';
import { generateKeyPair } from '../claims/keys.ts';
import { listCustomSections } from '../claims/wasm-sections.ts';
import { registerClaimsCommands } from './claims-commands.ts';

const fixtures = new URL('../shared/fixtures/', new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wasmlet-claims-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `(module (type (func)))` */
const SMALL_MODULE = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);

/** Runs the CLI in-process, as `wasmlet ARGS…`. */
function run(...args: string[]): Promise<CliRun> {
  return runCli(registerClaimsCommands, args);
}

function path(name: string): string {
  return join(dir, name);
}

test('keys gen writes the seed to a new 0600 file and prints only the public key', async () => {
  const seedFile = path('account.nk');
  const r = await run('keys', 'gen', 'account', '--out', seedFile);
  assert.equal(r.error, undefined);
  const seed = readFileSync(seedFile, 'utf8').trim();
  assert.match(seed, /^SA[A-Z2-7]{56}$/);
  assert.equal(statSync(seedFile).mode & 0o777, 0o600);
  const publicKey = /public key: (A[A-Z2-7]{55})/.exec(r.stdout)?.[1];
  assert.ok(publicKey, r.stdout);
  assert.ok(!r.stdout.includes(seed) && !r.stderr.includes(seed), 'the seed is never printed');

  // A second run must not destroy the existing seed.
  const again = await run('keys', 'gen', 'account', '--out', seedFile);
  assert.equal(again.error?.exitCode, 1);
  assert.match(again.stderr, /already exists \(not overwritten\)/);
  assert.equal(readFileSync(seedFile, 'utf8').trim(), seed);
});

test('keys gen without --out prints the seed, labelled; unknown kinds are refused', async () => {
  const r = await run('keys', 'gen', 'module');
  assert.equal(r.error, undefined);
  assert.match(r.stdout, /^public key: M[A-Z2-7]{55}\nseed: SM[A-Z2-7]{56}\n$/);
  const server = await run('keys', 'gen', 'server');
  assert.match(server.stdout, /^public key: N/);
  const bad = await run('keys', 'gen', 'wizard');
  assert.equal(bad.error?.exitCode, 1);
  assert.match(bad.stderr, /unknown key kind "wizard"/);
});

test('claims inspect shows the claims of a real waSCC actor and that every check passes', async () => {
  const r = await run('claims', 'inspect', new URL('wascc/kvcounter.wasm', fixtures).pathname);
  assert.equal(r.error, undefined, r.stderr);
  assert.match(r.stdout, /subject: +MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ/);
  assert.match(r.stdout, /issuer: +AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5/);
  assert.match(r.stdout, /name: +Key Value Counter/);
  assert.match(r.stdout, /caps: +wascc:keyvalue, wascc:http_server/);
  assert.match(r.stdout, /issued at: +20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z/);
  assert.match(r.stdout, /expires: +never/);
  assert.match(r.stdout, /hash: +4B4BCE3588955E068DC9D32382C8727CBF46819C907AB3A1630ED7B97C530D13/);
  assert.match(r.stdout, /signature +ok/);
  assert.match(r.stdout, /hash +ok/);
  assert.doesNotMatch(r.stdout, /FAILED/);

  const json = await run('claims', 'inspect', new URL('wascc/echo.wasm', fixtures).pathname, '--json');
  const parsed = JSON.parse(json.stdout);
  assert.equal(parsed.valid, true);
  assert.equal(parsed.subject, 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2');
  assert.equal(parsed.hash, '5FCFF41C3E1A3EE89E10C23EFCCC17E08AFEF2CDC04F77364F108DBBA5480816');
  assert.deepEqual(parsed.claims.wascap.tags, ['example', 'echo']);
  assert.match(parsed.dates.iat, /^2020-/);
});

test('claims inspect of a patched actor prints the failed check and exits 1', async () => {
  const patched = path('patched-echo.wasm');
  copyFileSync(new URL('wascc/echo.wasm', fixtures), patched);
  const bytes = new Uint8Array(readFileSync(patched));
  bytes[2000] = bytes[2000]! ^ 0x01;
  writeFileSync(patched, bytes);
  const r = await run('claims', 'inspect', patched);
  assert.equal(r.error?.exitCode, 1);
  assert.equal(r.error?.code, 'claims.check-failed');
  assert.match(r.stdout, /signature +ok/);
  assert.match(r.stdout, /hash +FAILED: module hash mismatch \(claims say 5FCFF41C/);
  assert.match(r.stderr, /1 check\(s\) failed: hash/);
});

test('claims inspect of an unsigned or missing file fails with the reason', async () => {
  const unsigned = path('unsigned.wasm');
  writeFileSync(unsigned, SMALL_MODULE);
  const r = await run('claims', 'inspect', unsigned);
  assert.equal(r.error?.exitCode, 1);
  assert.equal(r.error?.code, 'CLAIMS_MISSING');
  assert.match(r.stderr, /not signed/);
  const missing = await run('claims', 'inspect', path('nope.wasm'));
  assert.equal(missing.error?.exitCode, 1);
  assert.match(missing.stderr, /ENOENT/);
});

test('claims sign with seeds from a file and literally: the output verifies and no seed is printed', async () => {
  const account = generateKeyPair('account');
  const module = generateKeyPair('module');
  const accountFile = path('signer.nk');
  writeFileSync(accountFile, `# account seed\n${account.seed}\n`, { mode: 0o600 });
  const input = path('small.wasm');
  writeFileSync(input, SMALL_MODULE);
  const out = path('small.signed.wasm');
  const before = Math.floor(Date.now() / 1000);
  const r = await run(
    'claims', 'sign', input,
    '--account', accountFile,
    '--module', module.seed,
    '--name', 'Small',
    '--cap', 'wascc:keyvalue', '--cap', 'wasmlet:logging',
    '--tag', 'test',
    '--expires-in', '3600',
    '--rev', '2', '--ver', '0.1.0',
    '-o', out,
  );
  assert.equal(r.error, undefined, r.stderr);
  for (const text of [r.stdout, r.stderr]) {
    assert.ok(!text.includes(account.seed) && !text.includes(module.seed), 'no seed in the output');
  }
  assert.match(r.stdout, new RegExp(`subject: ${module.publicKey}`));
  assert.deepEqual(readFileSync(input), Buffer.from(SMALL_MODULE), 'the input is left as it was');

  const actor = verifyActor(readFileSync(out), { issuers: [account.publicKey] });
  assert.equal(actor.subject, module.publicKey);
  assert.deepEqual(actor.claims.wascap.caps, ['wascc:keyvalue', 'wasmlet:logging']);
  assert.deepEqual(actor.claims.wascap.tags, ['test']);
  assert.equal(actor.claims.wascap.rev, 2);
  assert.equal(actor.claims.wascap.ver, '0.1.0');
  assert.ok(actor.claims.exp! >= before + 3600 && actor.claims.exp! <= before + 3602);

  const inspected = await run('claims', 'inspect', out);
  assert.equal(inspected.error, undefined);
  assert.match(inspected.stdout, /name: +Small/);
});

test('claims sign re-signs a real actor, replacing its jwt, with --nbf in the future', async () => {
  const account = generateKeyPair('account');
  const out = path('echo.resigned.wasm');
  const nbf = Math.floor(Date.now() / 1000) + 86_400;
  const r = await run(
    'claims', 'sign', new URL('wascc/echo.wasm', fixtures).pathname,
    '--account', account.seed, '--name', 'Echo again', '--cap', 'wascc:http_server', '--nbf', String(nbf), '-o', out,
  );
  assert.equal(r.error, undefined, r.stderr);
  assert.match(r.stdout, /new module key/);
  const bytes = readFileSync(out);
  assert.equal(listCustomSections(bytes).filter((s) => s.name === 'jwt').length, 1);
  assert.throws(() => verifyActor(bytes), { code: 'CLAIMS_NOT_YET_VALID' });
  assert.equal(verifyActor(bytes, { now: nbf }).hash, '5FCFF41C3E1A3EE89E10C23EFCCC17E08AFEF2CDC04F77364F108DBBA5480816');
  const inspected = await run('claims', 'inspect', out);
  assert.equal(inspected.error?.exitCode, 1);
  assert.match(inspected.stdout, /not-before +FAILED: claims are not valid before/);
});

test('claims sign refuses bad input clearly and writes nothing', async () => {
  const account = generateKeyPair('account');
  const module = generateKeyPair('module');
  const input = path('small2.wasm');
  writeFileSync(input, SMALL_MODULE);
  const out = path('never.wasm');
  const cases: Array<[string[], RegExp]> = [
    [['--account', module.seed, '--name', 'x'], /account: expected the seed of an account key, got the seed of a module key/],
    [['--account', path('no-such.nk'), '--name', 'x'], /--account: neither a seed nor a readable file \(ENOENT\)/],
    [['--account', input, '--name', 'x'], /--account: the file .* holds no nkey seed/],
    [['--account', account.seed], /required option '--name <name>' not specified/],
    [['--account', account.seed, '--name', 'x', '--exp', '5', '--expires-in', '5'], /cannot be used with/],
    [['--account', account.seed, '--name', 'x', '--rev', 'two'], /--rev must be an integer/],
    [['--account', account.seed, '--name', 'x', '--nbf', '200', '--exp', '100'], /expiresAt must be after notBefore/],
  ];
  for (const [flags, pattern] of cases) {
    const r = await run('claims', 'sign', input, ...flags, '-o', out);
    assert.equal(r.error?.exitCode, 1, flags.join(' '));
    assert.match(r.stderr, pattern);
    assert.ok(!r.stderr.includes(account.seed) && !r.stderr.includes(module.seed), 'no seed in the error');
    assert.ok(!existsSync(out), 'no output written');
  }
  const notWasm = path('not.wasm');
  writeFileSync(notWasm, '#!/bin/sh\necho hello\n');
  const r = await run('claims', 'sign', notWasm, '--account', account.seed, '--name', 'x', '-o', out);
  assert.equal(r.error?.code, 'WASM_MALFORMED');
  assert.match(r.stderr, /magic number/);
  assert.ok(!existsSync(out));
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left behind');
});
