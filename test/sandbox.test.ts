/**
 * `wasmlet sandbox`, used as the docs say, with the real kubectl: the node as `get nodes -o wide`
 * shows it, Krustlet's WASI workflow, a Deployment of 3 replicas of one image with their own IPs
 * behind a Service (EndpointSlices), the same image in two namespaces, a pod that cannot be
 * scheduled, strict field validation, and the sandbox's registry taking pushes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import pino from 'pino';
import { createImagePuller, pushWasm, registerSandboxCommand, startSandbox, type Sandbox } from '../kube/index.ts';
import { KUBECTL, loopbackCidr } from './helpers/kubelet-harness.ts';
import { repoRoot } from './helpers/component-actors.ts';
import { until } from './helpers/wait.ts';

const logger = pino({ level: process.env.WASMLET_TEST_LOG ?? 'silent' });

describe('wasmlet sandbox with kubectl', { skip: KUBECTL ? false : 'kubectl is not installed' }, () => {
  let sandbox: Sandbox;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmlet-sandbox-test-'));
    sandbox = await startSandbox({ dataDir: join(dir, 'data'), registryPort: 0, podCidr: loopbackCidr().cidr, buildDemos: false, workers: 2, logger });
  });
  after(async () => {
    await sandbox?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** kubectl with KUBECONFIG set, from the project's root, as a user runs it. */
  function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) =>
      execFile(KUBECTL!, ['--cache-dir', join(dir, 'cache'), ...args], { cwd: repoRoot, env: { ...process.env, KUBECONFIG: sandbox.kubeconfigPath }, timeout: 90_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      ),
    );
  }
  async function ok(...args: string[]): Promise<string> {
    const r = await kubectl(...args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }
  const get = async (url: string) => {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, text: await res.text() };
  };

  it('shows the node as kubectl get nodes -o wide does', async () => {
    const out = await ok('get', 'nodes', '-o', 'wide');
    assert.match(out, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME$/m);
    assert.match(out, /^wasmlet-sandbox\s+Ready\s+<none>\s+\S+\s+v1\.32\.0-wasmlet\s+127\.0\.0\.1\s+<none>\s+wasmlet \S+ \(Node\.js [\d.]+\)\s+\S+\s+wasmlet:\/\/\S+$/m);
  });

  it("runs Krustlet's WASI workflow verbatim, logs exactly as the demo says", async () => {
    assert.match(await ok('apply', '-f', 'demos/wasi/hello-world-rust/k8s.yaml'), /pod\/hello-world-wasi-rust created/);
    assert.match(await ok('wait', "--for=jsonpath={.status.phase}=Succeeded", 'pod/hello-world-wasi-rust', '--timeout=60s'), /condition met/);
    assert.equal(await ok('logs', 'hello-world-wasi-rust'), 'hello from stdout!\nhello from stderr!\nCONFIG_MAP_VAL=cool stuff\nFOO=bar\nPOD_NAME=hello-world-wasi-rust\nArgs are: []\n');
    const readme = await readFile(join(repoRoot, 'demos/wasi/hello-world-rust/README.md'), 'utf8');
    assert.ok(readme.includes('hello from stdout!\nhello from stderr!\nCONFIG_MAP_VAL=cool stuff\nFOO=bar\nPOD_NAME=hello-world-wasi-rust\nArgs are: []\n'), 'the README shows what the logs are');
    assert.match(await ok('delete', '-f', 'demos/wasi/hello-world-rust/k8s.yaml'), /pod "hello-world-wasi-rust" deleted/);
    assert.match(await ok('apply', '-f', 'demos/hello-world-wasi/k8s.yaml'), /pod\/hello-world-wasi created/);
    await ok('wait', "--for=jsonpath={.status.phase}=Succeeded", 'pod/hello-world-wasi', '--timeout=60s');
    assert.match(await ok('logs', 'hello-world-wasi'), /\/mnt\/config\/myval: cool stuff/);
    await ok('delete', '-f', 'demos/hello-world-wasi/k8s.yaml');
  });

  it('runs 3 replicas of one image, each on its own IP and port 8080, behind a Service', async () => {
    await ok('apply', '-f', 'demos/wascc-kvcounter/k8s.yaml');
    assert.match(await ok('rollout', 'status', 'deployment/kvcounter', '--timeout=90s'), /successfully rolled out/);
    const pods = JSON.parse(await ok('get', 'pods', '-l', 'app=kvcounter', '-o', 'json')) as { items: { metadata: { name: string }; status: { podIP: string; conditions: { type: string; status: string }[] } }[] };
    assert.equal(pods.items.length, 3);
    const ips = pods.items.map((p) => p.status.podIP);
    assert.equal(new Set(ips).size, 3, `three IPs: ${ips.join(' ')}`);
    assert.ok(pods.items.every((p) => p.status.conditions.find((c) => c.type === 'Ready')?.status === 'True'));
    const counts = [];
    for (const ip of ips) counts.push(JSON.parse((await get(`http://${ip}:8080/hits`)).text).counter);
    assert.deepEqual(counts, [1, 2, 3], 'every replica answers, counting together in the shared bucket');
    const slice = JSON.parse(await ok('get', 'endpointslices', '-l', 'kubernetes.io/service-name=kvcounter', '-o', 'json')).items[0];
    assert.deepEqual(slice.endpoints.map((e: { addresses: string[] }) => e.addresses[0]).sort(), [...ips].sort());
    assert.ok(slice.endpoints.every((e: { conditions: { ready: boolean } }) => e.conditions.ready));
    assert.deepEqual(slice.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);

    // Deleting one leaves the other two serving; the ReplicaSet replaces it.
    const [gone, ...kept] = pods.items;
    await ok('delete', 'pod', gone!.metadata.name, '--wait=false');
    for (const p of kept) assert.equal((await get(`http://${p.status.podIP}:8080/still`)).status, 200);
    await until(async () => {
      const now = JSON.parse((await kubectl('get', 'pods', '-l', 'app=kvcounter', '-o', 'json')).stdout).items as typeof pods.items;
      return now.length === 3 && !now.some((p) => p.metadata.name === gone!.metadata.name) && now.every((p) => p.status.conditions?.find((c) => c.type === 'Ready')?.status === 'True');
    }, 'a replacement replica', 30_000);
    await ok('delete', '-f', 'demos/wascc-kvcounter/k8s.yaml');
    await until(async () => JSON.parse((await kubectl('get', 'pods', '-l', 'app=kvcounter', '-o', 'json')).stdout).items.length === 0, 'replicas gone with their Deployment', 30_000);
  });

  it('runs the same image in two namespaces', async () => {
    const file = join(dir, 'staging.yaml');
    const echo = (await readFile(join(repoRoot, 'demos/wascc-echo/k8s.yaml'), 'utf8')).replace('name: wascc-echo\n', 'name: wascc-echo\n  namespace: staging\n');
    await writeFile(file, `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: staging\n---\n${echo}`);
    await ok('apply', '-f', 'demos/wascc-echo/k8s.yaml');
    await ok('apply', '-f', file);
    await ok('wait', '--for=condition=Ready', 'pod/wascc-echo', '--timeout=60s');
    await ok('wait', '--for=condition=Ready', 'pod/wascc-echo', '-n', 'staging', '--timeout=60s');
    for (const ns of ['default', 'staging']) {
      const ip = await ok('get', 'pod', 'wascc-echo', '-n', ns, '-o', 'jsonpath={.status.podIP}');
      assert.equal(JSON.parse((await get(`http://${ip}:8080/hello?who=world`)).text).query_string, 'who=world');
    }
    await ok('delete', '-f', 'demos/wascc-echo/k8s.yaml');
    await ok('delete', '-f', file);
  });

  it('explains a pod that cannot be scheduled, and refuses unknown fields', async () => {
    const file = join(dir, 'intolerant.yaml');
    await writeFile(file, 'apiVersion: v1\nkind: Pod\nmetadata: {name: intolerant}\nspec:\n  containers: [{name: a, image: 127.0.0.1:5000/wasmlet/wascc-echo:v1}]\n');
    await ok('apply', '-f', file);
    await until(async () => /FailedScheduling/.test((await kubectl('describe', 'pod', 'intolerant')).stdout), 'FailedScheduling in describe', 10_000);
    assert.match((await kubectl('describe', 'pod', 'intolerant')).stdout, /untolerated taint \{wasmlet\.dev\/arch: wasm32-wasmlet\}/);
    await ok('delete', 'pod', 'intolerant');
    const typo = join(dir, 'typo.yaml');
    await writeFile(typo, 'apiVersion: v1\nkind: Pod\nmetadata: {name: typo}\nspec:\n  containers: [{name: a, image: x, port: 80}]\n');
    const r = await kubectl('apply', '-f', typo);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /strict decoding error: unknown field "spec\.containers\[0\]\.port"/);
  });

  it('takes pushes into its registry, which the node pulls from', async () => {
    const bytes = await readFile(join(repoRoot, 'demos/wascc-echo/echo.wasm'));
    const pushed = await pushWasm(bytes, `${sandbox.registry}/mine/echo:v2`);
    const puller = createImagePuller({ cacheDir: join(dir, 'pull-cache') });
    const pulled = await puller.pull(`${sandbox.registry}/mine/echo:v2`, { policy: 'Always' });
    assert.equal(pulled.manifestDigest, pushed.manifestDigest);
    assert.deepEqual(Buffer.from(pulled.bytes), bytes);
    // A blob whose bytes do not match its digest is refused.
    const start = await fetch(`http://${sandbox.registry}/v2/mine/echo/blobs/uploads/`, { method: 'POST' });
    const location = new URL(start.headers.get('location')!, `http://${sandbox.registry}`);
    location.searchParams.set('digest', `sha256:${'0'.repeat(64)}`);
    const put = await fetch(location, { method: 'PUT', body: 'not that' });
    assert.equal(put.status, 400);
    assert.match(await put.text(), /DIGEST_INVALID/);
  });
});

describe('wasmlet sandbox (the command)', { skip: KUBECTL ? false : 'kubectl is not installed' }, () => {
  it('starts, prints the export line, and stops', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wasmlet-sandbox-cli-'));
    let out = '';
    let stop!: (s: string) => void;
    const stopped = new Promise<string>((r) => (stop = r));
    let done: Promise<unknown> = Promise.resolve();
    const started = new Promise<Sandbox>((resolve) => {
      const program = new Command().exitOverride();
      registerSandboxCommand(program, { stdout: (s) => (out += s), stderr: (s) => (out += s), env: {}, untilStop: () => stopped, onStarted: resolve, logger });
      done = program.parseAsync(['sandbox', '--data-dir', join(dir, 'data'), '--registry-port', '0', '--pod-cidr', loopbackCidr().cidr, '--no-build'], { from: 'user' });
    });
    try {
      const sandbox = await started;
      assert.match(out, new RegExp(`^export KUBECONFIG=${sandbox.kubeconfigPath.replace(/[/.]/g, '\\$&')}$`, 'm'));
      assert.match(out, /for trying wasmlet and for tests, not a Kubernetes/);
    } finally {
      stop('test');
      await done;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
