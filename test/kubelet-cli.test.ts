/**
 * `wasmlet kubelet` as the CLI runs it (commander, in-process): flags become node options, the
 * node registers with the API server and serves pods, and it stops cleanly; bad flags and a
 * missing kubeconfig are reported.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import pino from 'pino';
import { chooseKubeconfig, parseTaints, registerKubeletCommand } from '../kube/index.ts';
import type { NodeAgent } from '../kube/index.ts';
import { startKubeApiServer, type KubeApiServer } from './kube-api-server/index.ts';
import { isReady, podManifest, waitForPod } from './helpers/kubelet-harness.ts';

describe('wasmlet kubelet (CLI)', () => {
  let api: KubeApiServer;
  let dir: string;
  before(async () => {
    api = await startKubeApiServer({});
    dir = await mkdtemp(join(tmpdir(), 'kubelet-cli-'));
  });
  after(async () => {
    await api?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function cli(env: Record<string, string | undefined> = {}) {
    const out = { stdout: '', stderr: '' };
    let stop!: (s: string) => void;
    let started!: (a: NodeAgent) => void;
    const agent = new Promise<NodeAgent>((r) => (started = r));
    const program = new Command('wasmlet').exitOverride();
    registerKubeletCommand(program, {
      stdout: (s) => (out.stdout += s),
      stderr: (s) => (out.stderr += s),
      env: { HOME: dir, ...env },
      untilStop: () => new Promise((r) => (stop = r)),
      onStarted: started,
      logger: pino({ level: 'silent' }),
    });
    return { program, out, agent, stop: (s = 'SIGTERM') => stop(s) };
  }

  it('registers the node from flags, runs a pod from a local file image, and stops cleanly', async () => {
    const tokenFile = join(dir, 'tokens');
    await writeFile(tokenFile, '# tokens\nabc123\n');
    const c = cli({ KUBECONFIG: api.kubeconfigPath });
    const run = c.program.parseAsync(['kubelet', '--node-name', 'cli-node', '--port', '0', '--address', '127.0.0.1', '--token-file', tokenFile, '--label', 'zone=lab', '--taint', 'example.com/wasm=yes:NoSchedule', '--allow-local-files', '--allow-host-path', '/srv/a', '--allow-host-path', '/srv/b/../c', '--data-dir', join(dir, 'data'), '--workers', '1'], { from: 'user' });
    const agent = await Promise.race([c.agent, run.then(() => Promise.reject(new Error(`exited early: ${c.out.stderr}`)))]);
    assert.match(c.out.stderr, /wasmlet kubelet is up: node cli-node/);
    const node = api.store.get('nodes', undefined, 'cli-node') as unknown as { metadata: { labels: Record<string, string> }; spec: { taints: { key: string; effect: string }[] } };
    assert.equal(node.metadata.labels.zone, 'lab');
    assert.deepEqual(node.spec.taints.map((t) => `${t.key}:${t.effect}`), ['example.com/wasm:NoSchedule']);
    assert.deepEqual(agent.options.tokens, ['abc123']);
    assert.deepEqual(agent.options.allowHostPath, ['/srv/a', '/srv/c'], 'prefixes, `..` resolved');
    const echo = new URL('../../shared/fixtures/wascc/echo.wasm', import.meta.url);
    const copy = join(dir, 'echo.wasm');
    await writeFile(copy, await readFile(echo));
    api.store.create('pods', podManifest('cli-echo', { nodeName: 'cli-node', containers: [{ name: 'app', image: `file://${copy}` }] }));
    await waitForPod(api, 'cli-echo', isReady);
    c.stop();
    await run;
    const ready = (api.store.get('nodes', undefined, 'cli-node')!.status as { conditions: { type: string; status: string }[] }).conditions.find((x) => x.type === 'Ready');
    assert.equal(ready?.status, 'False');
  });

  it('reports a kubeconfig that cannot be loaded, and bad flags', async () => {
    const c = cli();
    await assert.rejects(c.program.parseAsync(['kubelet', '--kubeconfig', join(dir, 'nope.yaml'), '--node-name', 'x', '--port', '0'], { from: 'user' }), /cannot load the kubeconfig/);
    const d = cli();
    await assert.rejects(d.program.parseAsync(['kubelet', '--taint', 'broken', '--kubeconfig', api.kubeconfigPath], { from: 'user' }), /--taint "broken"/);
    assert.throws(() => parseTaints(['k=v:Sometimes']), /expected key/);
    const e = cli();
    await assert.rejects(e.program.parseAsync(['kubelet', '--allow-host-path', 'relative/dir', '--kubeconfig', api.kubeconfigPath], { from: 'user' }), /--allow-host-path "relative\/dir": expected an absolute directory path/);
    assert.deepEqual(chooseKubeconfig(undefined, { KUBECONFIG: `:${api.kubeconfigPath}:other` }), { kubeconfig: api.kubeconfigPath });
    assert.deepEqual(chooseKubeconfig(undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', HOME: dir }), { inCluster: true });
    assert.throws(() => chooseKubeconfig(undefined, { HOME: dir }), /no kubeconfig/);
  });
});
