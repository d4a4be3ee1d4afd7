/**
 * The demos' k8s.yaml, run as a user would with kubectl against the API test server (the test
 * plays the scheduler): apply, wait for Ready, curl the actor, kubectl logs, delete. Images come
 * from a fake puller under the references the manifests name; ports are moved to free ones.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { wapcRuntime } from '../host/index.ts';
import { buildTestActor, repoRoot, testComponentRuntime } from './helpers/component-actors.ts';
import { KUBECTL, kubectl, startKubeletHarness, startTestScheduler, type KubeletHarness } from './helpers/kubelet-harness.ts';
import { freePort } from './helpers/redis-server.ts';
import { until } from './helpers/wait.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);

describe('demos as pods, with kubectl', { skip: KUBECTL ? false : 'kubectl is not installed' }, () => {
  let h: KubeletHarness;
  let dir: string;
  let stopScheduler: () => void;

  before(async () => {
    h = await startKubeletHarness({ runtimes: [wapcRuntime, testComponentRuntime()] });
    dir = await mkdtemp(join(tmpdir(), 'kubelet-demos-'));
    stopScheduler = startTestScheduler(h.api);
    h.puller.set('127.0.0.1:5000/wasmlet/wascc-echo:v1', readFileSync(new URL('wascc/echo.wasm', fixtures)));
  });
  after(async () => {
    stopScheduler?.();
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The demo's manifest with its containerPort moved to a free port. */
  async function manifest(demo: string): Promise<{ path: string; port: number }> {
    const port = await freePort();
    const text = (await readFile(join(repoRoot, 'demos', demo, 'k8s.yaml'), 'utf8')).replace(/containerPort: \d+/, `containerPort: ${port}`);
    const path = join(dir, `${demo}.yaml`);
    await writeFile(path, text);
    return { path, port };
  }

  async function ok(...args: string[]): Promise<string> {
    const r = await kubectl(h.api, join(dir, 'cache'), ...args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  async function lifecycle(demo: string, pod: string, check: (port: number) => Promise<void>, logs?: (text: string) => void): Promise<void> {
    const { path, port } = await manifest(demo);
    assert.match(await ok('apply', '-f', path), new RegExp(`pod/${pod} created`));
    assert.match(await ok('wait', '--for=condition=Ready', `pod/${pod}`, '--timeout=120s'), /condition met/);
    await check(port);
    const text = await ok('logs', pod);
    logs?.(text);
    assert.match(await ok('delete', '-f', path, '--timeout=60s'), new RegExp(`pod "${pod}" deleted`));
    assert.equal(h.api.store.get('pods', 'default', pod), undefined);
  }

  it('wascc-echo: the waSCC echo actor answers on its containerPort', async () => {
    await lifecycle('wascc-echo', 'wascc-echo', async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/hello?who=world`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { path: string; query_string: string };
      assert.deepEqual([body.path, body.query_string], ['/hello', 'who=world']);
    });
  });

  it('hello: the TypeScript actor greets with config from env and a ConfigMap', { timeout: 300_000 }, async () => {
    h.puller.set('127.0.0.1:5000/wasmlet/hello:v1', (await buildTestActor(join(repoRoot, 'demos', 'hello'))).bytes);
    await lifecycle('hello', 'hello', async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await res.text(), 'Bonjour, kubernetes!\n');
    });
  });

  it('kv-counter: the TypeScript actor counts through its key-value link', { timeout: 300_000 }, async () => {
    h.puller.set('127.0.0.1:5000/wasmlet/kv-counter:v1', (await buildTestActor(join(repoRoot, 'demos', 'kv-counter'))).bytes);
    await lifecycle('kv-counter', 'kv-counter', async (port) => {
      const counts = [];
      for (let i = 0; i < 3; i++) counts.push(((await (await fetch(`http://127.0.0.1:${port}/a/b`)).json()) as { counter: number }).counter);
      assert.deepEqual(counts, [1, 2, 3]);
    });
  });

  it('logger: its log lines come back through kubectl logs', { timeout: 300_000 }, async () => {
    h.puller.set('127.0.0.1:5000/wasmlet/logger:v1', (await buildTestActor(join(repoRoot, 'demos', 'logger'))).bytes);
    let seen = '';
    await lifecycle(
      'logger',
      'logger',
      async (port) => {
        const res = await fetch(`http://127.0.0.1:${port}/hi?level=warn&msg=careful`);
        assert.equal(res.status, 200);
        await until(async () => (seen = (await kubectl(h.api, join(dir, 'cache'), 'logs', 'logger')).stdout).includes('careful'), 'the log line', 10_000);
      },
      (text) => assert.match(text, /careful/),
    );
    assert.match(seen, /GET \/hi/);
  });
});
