/** `wasmlet up` as a user runs it: a child process, a waSCC manifest as-is, real HTTP. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { freePort } from './helpers/redis-server.ts';
import { until } from './helpers/wait.ts';
import { publisherActor, subscriberActor } from './helpers/wascc-actors.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = fileURLToPath(new URL('../../shared/fixtures/wascc/', import.meta.url));
const bin = join(root, 'bin', 'wasmlet.mjs');

function run(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

describe('wasmlet up', () => {
  let dir: string;
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs a waSCC manifest as-is: built-in providers stand in for native ones', async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-up-'));
    const [echoPort, counterPort] = [await freePort(), await freePort()];
    const manifest = join(dir, 'manifest.yaml');
    await writeFile(
      manifest,
      `labels:
  sample: "wascc echo and kvcounter"
actors:
  - ${join(fixtures, 'echo.wasm')}
  - ${join(fixtures, 'kvcounter.wasm')}
capabilities:
  - path: ./examples/.assets/libwascc_httpsrv.so
  - path: ./examples/.assets/libkeyvalue.so
bindings:
  - actor: "MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2"
    capability: "wascc:http_server"
    values:
      PORT: ${echoPort}
      ADDRESS: 127.0.0.1
  - actor: "MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ"
    capability: "wascc:keyvalue"
  - actor: "MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ"
    capability: "wascc:http_server"
    values:
      PORT: ${counterPort}
      ADDRESS: 127.0.0.1
`,
    );
    const p = run(['up', manifest]);
    try {
      await until(() => p.output().includes('wasmlet is up'), 'wasmlet is up', 20_000);
      assert.match(p.output(), /native provider .*libwascc_httpsrv\.so cannot be loaded; serving wasmlet:httpserver with wasmlet's built-in http-server provider/);
      const echo = await fetch(`http://127.0.0.1:${echoPort}/hello?q=1`);
      assert.equal(echo.status, 200);
      assert.equal((await echo.json()).path, '/hello');
      const a = await (await fetch(`http://127.0.0.1:${counterPort}/x`)).json();
      const b = await (await fetch(`http://127.0.0.1:${counterPort}/x`)).json();
      assert.deepEqual([a, b], [{ counter: 1 }, { counter: 2 }]);
    } finally {
      p.child.kill('SIGTERM');
    }
    assert.equal(await p.exited, 0, 'stops cleanly on SIGTERM');
    assert.match(p.output(), /host stopped/);
  });

  it('runs a waSCC manifest that binds wascc:messaging and wascc:extras: HTTP → publisher → subscriber → request answered', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'wasmlet-up-'));
    const port = await freePort();
    const [publisher, subscriber] = [await publisherActor(), await subscriberActor({ caps: ['wascc:messaging', 'wascc:keyvalue', 'wascc:extras'] })];
    await writeFile(join(dir, 'publisher.wasm'), publisher.bytes);
    await writeFile(join(dir, 'subscriber.wasm'), subscriber.bytes);
    const manifest = join(dir, 'messaging.yaml');
    await writeFile(
      manifest,
      `actors:
  - ${join(dir, 'publisher.wasm')}
  - ${join(dir, 'subscriber.wasm')}
capabilities:
  - path: ./examples/.assets/libwascc_httpsrv.so
  - path: ./examples/.assets/libnats_provider.so
bindings:
  - { actor: "${publisher.id}", capability: "wascc:http_server", values: { PORT: ${port}, ADDRESS: 127.0.0.1 } }
  - { actor: "${publisher.id}", capability: "wascc:messaging" }
  - { actor: "${subscriber.id}", capability: "wascc:messaging", values: { SUBSCRIPTION: "demo.echo" } }
  - { actor: "${subscriber.id}", capability: "wascc:keyvalue" }
  - { actor: "${subscriber.id}", capability: "wascc:extras" }
`,
    );
    const p = run(['up', manifest, '--log-level', 'warn']);
    try {
      await until(() => p.output().includes('wasmlet is up'), 'wasmlet is up', 30_000);
      const res = await fetch(`http://127.0.0.1:${port}/hello/messaging?request=1`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '/hello/messaging');
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  it('runs one module as two instances, each with its own links (a wasmlet manifest)', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'wasmlet-up-'));
    const [portA, portB] = [await freePort(), await freePort()];
    const manifest = join(dir, 'instances.yaml');
    const instance = (name: string, port: number, bucket: string) => `  - actor: ${name}
    contract: wascc:http_server
    values: { PORT: "${port}", ADDRESS: 127.0.0.1 }
  - actor: ${name}
    contract: wascc:keyvalue
    values: { BUCKET: ${bucket} }
`;
    await writeFile(
      manifest,
      `apiVersion: wasmlet/v1
kind: Host
actors:
  - { path: ${join(fixtures, 'kvcounter.wasm')}, instance: counter-a }
  - { path: ${join(fixtures, 'kvcounter.wasm')}, instance: counter-b }
links:
${instance('counter-a', portA, 'a')}${instance('counter-b', portB, 'b')}`,
    );
    const p = run(['up', manifest]);
    try {
      await until(() => p.output().includes('wasmlet is up'), 'wasmlet is up', 20_000);
      assert.match(p.output(), /wasmlet is up: 2 actor\(s\), 4 link\(s\)/);
      const count = async (port: number) => ((await (await fetch(`http://127.0.0.1:${port}/x`)).json()) as { counter: number }).counter;
      assert.deepEqual([await count(portA), await count(portA), await count(portB)], [1, 2, 1], 'each instance counts in its own bucket');
      assert.match(p.output(), /Key Value Counter instance counter-a \(MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ\)/);
    } finally {
      p.child.kill('SIGTERM');
    }
    assert.equal(await p.exited, 0);
  });

  it('fails clearly for a contract it has no provider for', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'wasmlet-up-'));
    const manifest = join(dir, 'blobstore.yaml');
    await writeFile(manifest, `actors: []\ncapabilities:\n  - path: ./libwascc_fs.so\nbindings:\n  - actor: MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2\n    capability: wascc:blobstore\n`);
    const p = run(['up', manifest]);
    assert.equal(await p.exited, 1);
    assert.match(p.output(), /no provider for contract wascc:blobstore \(native provider .*libwascc_fs\.so cannot be loaded by wasmlet\); wasmlet has built-in providers for: wasmlet:httpserver, wasmlet:keyvalue, wasmlet:logging, .*wasmlet:httpclient/);
  });

  it('refuses an actor file that does not exist, naming it', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'wasmlet-up-'));
    const manifest = join(dir, 'missing.yaml');
    await writeFile(manifest, `actors:\n  - ./nope.wasm\n`);
    const p = run(['up', manifest]);
    assert.equal(await p.exited, 1);
    assert.match(p.output(), /cannot read actor .*nope\.wasm/);
  });

  it('refuses devices and other files that are not regular files, at once and without reading them: no hang, no memory blow-up', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'wasmlet-up-'));
    const manifest = join(dir, 'zero.yaml');
    await writeFile(manifest, `actors:\n  - /dev/zero\n`);
    const t0 = Date.now();
    const p = run(['up', manifest]);
    assert.equal(await p.exited, 1);
    assert.match(p.output(), /cannot load actor \/dev\/zero: actor file \/dev\/zero is not a regular file/);
    const q = run(['up', '/dev/zero']);
    assert.equal(await q.exited, 1);
    assert.match(q.output(), /manifest \/dev\/zero is not a regular file/);
    assert.ok(Date.now() - t0 < 20_000, `refused in ${Date.now() - t0} ms`);
  });
});
