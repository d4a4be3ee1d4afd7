/**
 * `kubectl port-forward` to an actor pod, with the real kubectl: over its WebSocket default
 * (SPDY tunneled in WebSocket messages, which the API server carries to the kubelet as SPDY) and
 * over plain SPDY (KUBECTL_PORT_FORWARD_WEBSOCKETS=false); several connections and a large body through
 * one session; a port that is not the pod's is refused on the error stream.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isReady, KUBECTL, loopbackCidr, podManifest, startKubeletHarness, waitForPod, type KubeletHarness } from './helpers/kubelet-harness.ts';
import { freePort } from './helpers/redis-server.ts';
import { until } from './helpers/wait.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);

describe('kubectl port-forward to actor pods', { skip: KUBECTL ? false : 'kubectl is not installed' }, () => {
  let h: KubeletHarness;
  let dir: string;

  before(async () => {
    h = await startKubeletHarness({ agent: { podCidr: loopbackCidr().cidr } });
    dir = await mkdtemp(join(tmpdir(), 'kubelet-port-forward-'));
    h.puller.set('registry.test/echo:v1', readFileSync(new URL('wascc/echo.wasm', fixtures)));
    h.api.store.create('pods', podManifest('echo', { containers: [{ name: 'echo', image: 'registry.test/echo:v1', ports: [{ containerPort: 8080 }] }] }));
    await waitForPod(h.api, 'echo', isReady);
  });
  after(async () => {
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Starts kubectl port-forward; resolves once it says it forwards. */
  async function portForward(spec: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; output: () => string }> {
    const child = spawn(KUBECTL!, ['--kubeconfig', h.api.kubeconfigPath, '--cache-dir', join(dir, 'cache'), 'port-forward', 'pod/echo', spec, '-v=6'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    await until(() => /Forwarding from 127\.0\.0\.1/.test(out) || child.exitCode !== null, 'kubectl port-forward to start', 20_000);
    assert.match(out, /Forwarding from 127\.0\.0\.1/, out);
    return { child, output: () => out };
  }

  for (const [name, env] of [
    ['over WebSocket (kubectl\'s default)', {}],
    ['over SPDY', { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }],
  ] as const) {
    it(`forwards local connections to the pod's port ${name}`, async () => {
      const local = await freePort();
      const pf = await portForward(`${local}:8080`, env);
      try {
        for (let i = 0; i < 3; i++) {
          const res = await fetch(`http://127.0.0.1:${local}/hello?n=${i}`, { signal: AbortSignal.timeout(10_000) });
          assert.equal(res.status, 200);
          assert.equal(((await res.json()) as { query_string: string }).query_string, `n=${i}`);
        }
        const big = 'x'.repeat(300_000);
        const res = await fetch(`http://127.0.0.1:${local}/upload`, { method: 'POST', body: big, signal: AbortSignal.timeout(10_000) });
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as { body: number[] }).body.length, big.length, 'a 300 kB body went through and came back');
        // kubectl -v=6 says which dialer it used: the WebSocket one without falling back, or SPDY alone.
        if (env === undefined || Object.keys(env).length === 0) {
          assert.match(pf.output(), /Before WebSocket Upgrade Connection/);
          assert.doesNotMatch(pf.output(), /fallback to secondary dialer/);
        } else assert.doesNotMatch(pf.output(), /WebSocket/);
      } finally {
        pf.child.kill('SIGTERM');
      }
    });
  }

  it('refuses a port that is not the pod\'s', async () => {
    const local = await freePort();
    const pf = await portForward(`${local}:10250`);
    try {
      await fetch(`http://127.0.0.1:${local}/`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
      await until(() => /port 10250 is not a port of pod default\/echo \(its ports: 8080\)/.test(pf.output()), 'the refusal on the error stream', 10_000);
    } finally {
      pf.child.kill('SIGTERM');
    }
  });
});
