import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, type CliRun } from '../../test/helpers/cli.ts';
import pino from 'pino';
import { startOciRegistry, type OciRegistry } from '../../test/helpers/oci-registry.ts';
import { MEDIA_TYPES } from './manifest.ts';
import { createImagePuller } from './puller.ts';
import { registerPushCommand } from './push-command.ts';

const fixtures = new URL('../shared/fixtures/', new URL('../../', import.meta.url));
const ECHO_PATH = new URL('wascc/echo.wasm', fixtures).pathname;
const ECHO = new Uint8Array(readFileSync(ECHO_PATH));
const dir = mkdtempSync(join(tmpdir(), 'wasmlet-push-cli-'));

let open: OciRegistry;
let secured: OciRegistry;
before(async () => {
  [open, secured] = await Promise.all([startOciRegistry(), startOciRegistry({ users: [{ username: 'carol', password: 'hunter2' }] })]);
});
after(async () => {
  await Promise.all([open?.stop(), secured?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], stdin = ''): Promise<CliRun> {
  return runCli(registerPushCommand, args, { readStdin: async () => stdin });
}

async function pull(ref: string, credentials?: Array<{ registry: string; username: string; password: string }>) {
  const puller = createImagePuller({ cacheDir: mkdtempSync(join(dir, 'cache-')), logger: pino({ level: 'silent' }) });
  return puller.pull(ref, { policy: 'Always', ...(credentials ? { credentials } : {}) });
}

test('wasmlet push publishes a module that pulls back byte-exact, with its annotations', async () => {
  const ref = `${open.host}/cli/echo:v1`;
  const r = await run(['push', ECHO_PATH, ref, '--annotation', 'org.opencontainers.image.version=1.0.0']);
  assert.equal(r.error, undefined, r.stderr);
  const manifestDigest = /manifest: (sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
  assert.ok(manifestDigest, r.stdout);
  assert.match(r.stdout, new RegExp(`^pushed ${ref.replace(/\./g, '\\.')}\\n`));
  assert.match(r.stdout, /layer: +sha256:[0-9a-f]{64} \(1997059 bytes\)/);

  const pulled = await pull(ref);
  assert.deepEqual(pulled.bytes, ECHO);
  assert.equal(pulled.manifestDigest, manifestDigest);
  assert.match(r.stdout, new RegExp(`image id: ${pulled.imageID.replace(/\./g, '\\.')}`));

  const manifest = await (await fetch(`${open.url}/v2/cli/echo/manifests/v1`, { headers: { accept: MEDIA_TYPES.ociManifest } })).json();
  assert.equal(manifest.annotations['org.opencontainers.image.version'], '1.0.0');
  assert.equal(manifest.layers[0].annotations['org.opencontainers.image.title'], 'echo.wasm');
});

test('wasmlet push with --username and --password-stdin; a wrong password fails with UNAUTHORIZED', async () => {
  const ref = `${secured.host}/cli/echo:v1`;
  const denied = await run(['push', ECHO_PATH, ref, '--username', 'carol', '--password-stdin'], 'wrong\n');
  assert.equal(denied.error?.exitCode, 1);
  assert.match(denied.stderr, /cannot push .* refused the credentials .*\[UNAUTHORIZED\]/);
  assert.ok(!denied.stderr.includes('wrong'), 'the password is never echoed');

  const anonymous = await run(['push', ECHO_PATH, ref]);
  assert.equal(anonymous.error?.exitCode, 1);
  assert.match(anonymous.stderr, /requires a user name and password.*\[UNAUTHORIZED\]/);

  const ok = await run(['push', ECHO_PATH, ref, '--username', 'carol', '--password-stdin'], 'hunter2\n');
  assert.equal(ok.error, undefined, ok.stderr);
  const pulled = await pull(ref, [{ registry: secured.host, username: 'carol', password: 'hunter2' }]);
  assert.deepEqual(pulled.bytes, ECHO);
});

test('wasmlet push reads credentials from --auth-file', async () => {
  const authFile = join(dir, 'config.json');
  writeFileSync(authFile, JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('carol:hunter2').toString('base64') } } }));
  const r = await run(['push', ECHO_PATH, `${secured.host}/cli/authfile:v1`, '--auth-file', authFile]);
  assert.equal(r.error, undefined, r.stderr);
  assert.match(r.stdout, /^pushed /);

  writeFileSync(join(dir, 'broken.json'), '{"auths": 1}');
  const broken = await run(['push', ECHO_PATH, `${secured.host}/cli/authfile:v1`, '--auth-file', join(dir, 'broken.json')]);
  assert.equal(broken.error?.exitCode, 1);
  assert.match(broken.stderr, /--auth-file .*"auths" is not an object/);
});

test('wasmlet push refuses bad input with a clear error and pushes nothing', async () => {
  const notWasm = join(dir, 'notes.txt');
  writeFileSync(notWasm, 'hello');
  const cases: Array<[string[], RegExp]> = [
    [['push', ECHO_PATH, 'Bad Ref'], /invalid image reference "Bad Ref"/],
    [['push', ECHO_PATH, `${open.host}/cli/x:v1`, '--password-stdin'], /--password-stdin needs --username/],
    [['push', ECHO_PATH, `${open.host}/cli/x:v1`, '--username', 'u'], /--username needs --password-stdin/],
    [['push', ECHO_PATH, `${open.host}/cli/x:v1`, '--annotation', 'novalue'], /expected key=value/],
    [['push', join(dir, 'absent.wasm'), `${open.host}/cli/x:v1`], /cannot read .*absent\.wasm: ENOENT/],
    [['push', notWasm, `${open.host}/cli/x:v1`], /not a WebAssembly binary.*\[NOT_WASM\]/],
  ];
  for (const [args, why] of cases) {
    const r = await run(args);
    assert.equal(r.error?.exitCode, 1, args.join(' '));
    assert.match(r.stderr, why, args.join(' '));
  }
  const res = await fetch(`${open.url}/v2/cli/x/tags/list`);
  assert.equal(res.status, 404, 'nothing was pushed');
  const empty = await run(['push', ECHO_PATH, `${secured.host}/cli/x:v1`, '--username', 'carol', '--password-stdin'], '');
  assert.match(empty.stderr, /standard input was empty/);
});

test('wasmlet push --insecure allows plain HTTP to a registry outside the loopback set', async (t) => {
  // `[::ffff:127.0.0.1]` (IPv4-mapped IPv6) reaches our loopback registry but is not one of the
  // loopback names that may use plain HTTP on their own, so it needs --insecure.
  const host = `[::ffff:127.0.0.1]:${open.port}`;
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = connect({ host: '::ffff:127.0.0.1', port: open.port }, () => resolve(true));
    socket.once('error', () => resolve(false));
    socket.once('connect', () => socket.destroy());
  });
  if (!reachable) return t.skip('this machine has no IPv6 sockets');
  const ref = `${host}/cli/insecure:v1`;
  const refused = await run(['push', ECHO_PATH, ref]);
  assert.equal(refused.error?.exitCode, 1);
  assert.match(refused.stderr, /cannot reach https:\/\/\[::ffff:7f00:1\]:\d+ \(.*\); if the registry speaks plain HTTP, list it in insecureRegistries \(wasmlet push --insecure\)/);
  const ok = await run(['push', ECHO_PATH, ref, '--insecure']);
  assert.equal(ok.error, undefined, ok.stderr);
  assert.deepEqual((await pull(`${open.host}/cli/insecure:v1`)).bytes, ECHO);
});
