/**
 * The test API server driven by real clients: @kubernetes/client-node (typed APIs, every patch
 * type, status subresource, leases, Watch and the informer's resume / 410 relist / outage) and
 * the kubectl binary (apply, get, patch, label, wait, logs, delete).
 */
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startKubeApiServer, type KubeApiServer } from './index.ts';
import { nodeObject, startStubKubelet, type StubKubelet } from './testing.ts';
import { until } from '../helpers/wait.ts';

const NS = 'default';

function pod(name: string, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'registry.test/app:v1' }], ...extra } };
}

async function expectApiError(p: Promise<unknown>, code: number, reason?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ApiException, `expected ApiException, got ${String(err)}`);
    assert.equal(err.code, code);
    if (reason) assert.equal(JSON.parse(String(err.body)).reason, reason);
    return true;
  });
}

/** Resolves when `check` returns true, polling every 20 ms. */
describe('@kubernetes/client-node against the test API server', () => {
  let srv: KubeApiServer;
  let core: CoreV1Api;
  let coordination: CoordinationV1Api;
  let kc: KubeConfig;

  before(async () => {
    srv = await startKubeApiServer({ historySize: 100, bookmarkIntervalMs: 200 });
    kc = new KubeConfig();
    kc.loadFromFile(srv.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    coordination = kc.makeApiClient(CoordinationV1Api);
  });
  after(async () => {
    await srv.close();
  });

  it('creates, reads and lists over HTTPS with the token from the kubeconfig', async () => {
    const created = await core.createNamespacedPod({ namespace: NS, body: pod('alpha') });
    assert.equal(created.metadata?.name, 'alpha');
    assert.ok(created.metadata?.uid);
    assert.ok(created.metadata?.creationTimestamp instanceof Date);
    assert.equal(created.status?.phase, 'Pending');
    const read = await core.readNamespacedPod({ name: 'alpha', namespace: NS });
    assert.equal(read.metadata?.resourceVersion, created.metadata?.resourceVersion);
    const list = await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=alpha' });
    assert.equal(list.items.length, 1);
    assert.ok(list.metadata?.resourceVersion);
    await expectApiError(core.createNamespacedPod({ namespace: NS, body: pod('alpha') }), 409, 'AlreadyExists');
    await expectApiError(core.readNamespacedPod({ name: 'ghost', namespace: NS }), 404, 'NotFound');
    await expectApiError(core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'bad' }, spec: { containers: [] } } }), 422, 'Invalid');
  });

  it('patches with merge, strategic merge, JSON patch and server-side apply', async () => {
    const merge = await core.patchNamespacedPod({ name: 'alpha', namespace: NS, body: { metadata: { labels: { merged: 'yes' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    assert.equal(merge.metadata?.labels?.merged, 'yes');
    const strategic = await core.patchNamespacedPod(
      { name: 'alpha', namespace: NS, body: { spec: { containers: [{ name: 'app', image: 'registry.test/app:v2' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    assert.equal(strategic.spec?.containers[0]?.image, 'registry.test/app:v2');
    assert.equal(strategic.spec?.containers.length, 1);
    assert.equal(strategic.metadata?.generation, 2);
    const json = await core.patchNamespacedPod({ name: 'alpha', namespace: NS, body: [{ op: 'add', path: '/metadata/annotations', value: { note: 'json' } }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    assert.equal(json.metadata?.annotations?.note, 'json');
    await expectApiError(
      core.patchNamespacedPod({ name: 'alpha', namespace: NS, body: [{ op: 'test', path: '/metadata/name', value: 'other' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)),
      422,
    );
    const applied = await core.patchNamespacedConfigMap(
      { name: 'applied', namespace: NS, fieldManager: 'test', body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied' }, data: { a: '1' } } },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    assert.deepEqual(applied.data, { a: '1' });
  });

  it('writes status only through the status subresource', async () => {
    const fromMain = await core.patchNamespacedPod({ name: 'alpha', namespace: NS, body: { status: { phase: 'Failed' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    assert.equal(fromMain.status?.phase, 'Pending');
    const current = await core.readNamespacedPod({ name: 'alpha', namespace: NS });
    current.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
    const replaced = await core.replaceNamespacedPodStatus({ name: 'alpha', namespace: NS, body: current });
    assert.equal(replaced.status?.phase, 'Running');
    await expectApiError(core.replaceNamespacedPodStatus({ name: 'alpha', namespace: NS, body: current }), 409, 'Conflict');
    const patched = await core.patchNamespacedPodStatus(
      { name: 'alpha', namespace: NS, body: { status: { conditions: [{ type: 'Initialized', status: 'True' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    assert.deepEqual(patched.status?.conditions?.map((c) => c.type), ['Ready', 'Initialized']);
  });

  it('registers a node and updates its status, and keeps leases with optimistic concurrency', async () => {
    await core.createNode({ body: { metadata: { name: 'wasm-node', labels: { 'kubernetes.io/arch': 'wasm32-wasi' } }, spec: { taints: [{ key: 'kubernetes.io/arch', value: 'wasm32-wasi', effect: 'NoExecute' }] } } });
    const node = await core.patchNodeStatus(
      { name: 'wasm-node', body: { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }], addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    assert.equal(node.status?.conditions?.[0]?.reason, 'KubeletReady');
    assert.equal(node.spec?.taints?.[0]?.effect, 'NoExecute');
    const nodes = await core.listNode({ fieldSelector: 'metadata.name=wasm-node' });
    assert.equal(nodes.items.length, 1);

    const renew = new Date();
    const lease = await coordination.createNamespacedLease({
      namespace: 'kube-node-lease',
      body: { metadata: { name: 'wasm-node' }, spec: { holderIdentity: 'wasm-node', leaseDurationSeconds: 40, renewTime: renew as never } },
    });
    assert.equal(lease.spec?.holderIdentity, 'wasm-node');
    const stale = structuredClone(lease);
    lease.spec!.renewTime = new Date(renew.getTime() + 10_000) as never;
    const renewed = await coordination.replaceNamespacedLease({ name: 'wasm-node', namespace: 'kube-node-lease', body: lease });
    assert.notEqual(renewed.metadata?.resourceVersion, lease.metadata?.resourceVersion);
    await expectApiError(coordination.replaceNamespacedLease({ name: 'wasm-node', namespace: 'kube-node-lease', body: stale }), 409, 'Conflict');
    const stored = srv.store.get('leases', 'kube-node-lease', 'wasm-node')!;
    assert.equal(Date.parse((stored.spec as { renewTime: string }).renewTime), renew.getTime() + 10_000);
  });

  it('streams watch events to Watch, resuming from a resourceVersion', async () => {
    const start = String(srv.store.resourceVersion);
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'watched' }, data: { v: '1' } } });
    const events: string[] = [];
    let doneErr: unknown = 'not done';
    const watch = new Watch(kc);
    const req = await watch.watch(
      `/api/v1/namespaces/${NS}/configmaps`,
      { resourceVersion: start, allowWatchBookmarks: true },
      (type, obj) => events.push(`${type}:${obj.metadata?.name ?? ''}`),
      (err) => (doneErr = err),
    );
    await core.deleteNamespacedConfigMap({ name: 'watched', namespace: NS });
    await until(() => events.includes('DELETED:watched') && events.some((e) => e.startsWith('BOOKMARK')), 'watch events');
    assert.deepEqual(events.filter((e) => !e.startsWith('BOOKMARK')), ['ADDED:watched', 'DELETED:watched']);
    req.abort();
    await until(() => doneErr !== 'not done', 'watch end');
  });

  it('keeps an informer in step across dropped watches, 410 Gone relists, and an API server outage', async () => {
    await core.createNamespace({ body: { metadata: { name: 'inf' } } });
    await core.createNamespacedPod({ namespace: 'inf', body: pod('keep') });
    await core.createNamespacedPod({ namespace: 'inf', body: pod('doomed') });
    const informer = makeInformer(kc, '/api/v1/namespaces/inf/pods', () => core.listNamespacedPod({ namespace: 'inf' }));
    const seen: string[] = [];
    let errors = 0;
    let stopped = false;
    informer.on('add', (p) => seen.push(`add:${p.metadata?.name}`));
    informer.on('update', (p) => seen.push(`update:${p.metadata?.name}`));
    informer.on('delete', (p) => seen.push(`delete:${p.metadata?.name}`));
    informer.on('error', () => {
      errors++;
      // What client-node programs do: restart the informer after an error.
      setTimeout(() => {
        if (!stopped) void informer.start().catch(() => {});
      }, 100);
    });
    await informer.start();
    const names = () => informer.list('inf').map((p) => p.metadata!.name!).sort();
    await until(() => names().join() === 'doomed,keep', 'initial list');

    // A dropped watch resumes from the last resourceVersion without a relist.
    const listsBefore = srv.requests.filter((r) => r.path === '/api/v1/namespaces/inf/pods' && !r.query.includes('watch')).length;
    srv.closeWatches();
    await core.patchNamespacedPod({ name: 'keep', namespace: 'inf', body: { metadata: { labels: { v: '2' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await until(() => seen.includes('update:keep'), 'update after resume');
    const listsAfter = srv.requests.filter((r) => r.path === '/api/v1/namespaces/inf/pods' && !r.query.includes('watch')).length;
    assert.equal(listsAfter, listsBefore, 'resuming did not relist');

    // Compacted history: the resume gets 410 Gone and the informer relists, noticing what it missed.
    srv.closeWatches();
    srv.compactHistory();
    srv.store.delete('pods', 'inf', 'doomed');
    srv.store.create('pods', { ...pod('newcomer'), metadata: { name: 'newcomer', namespace: 'inf' } });
    await until(() => names().join() === 'keep,newcomer', 'relist after 410');
    assert.ok(seen.includes('delete:doomed'));
    assert.ok(seen.includes('add:newcomer'));
    assert.ok(srv.requests.some((r) => r.path === '/api/v1/namespaces/inf/pods' && r.query.includes('watch=true') && r.status === 200), 'watched again');

    // Outage: the API server goes away and comes back on the same port with the same data.
    await srv.stop();
    srv.store.create('pods', { ...pod('during-outage'), metadata: { name: 'during-outage', namespace: 'inf' } });
    await until(() => errors > 0, 'informer error during outage');
    await srv.restart();
    await until(() => names().includes('during-outage'), 'informer catches up after the outage');
    stopped = true;
    await informer.stop();
  });
});

const KUBECTL = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).error ? undefined : 'kubectl';

describe('kubectl against the test API server', { skip: KUBECTL ? false : 'kubectl is not installed' }, () => {
  let srv: KubeApiServer;
  let kubelet: StubKubelet;
  let dir: string;

  function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(KUBECTL!, ['--kubeconfig', srv.kubeconfigPath, '--cache-dir', join(dir, 'cache'), ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  async function ok(...args: string[]): Promise<string> {
    const r = await kubectl(...args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed: ${r.stderr}`);
    assert.equal(r.stderr.includes('warning'), false, `kubectl ${args.join(' ')} warned: ${r.stderr}`);
    return r.stdout;
  }

  const manifest = (image: string, extraLabel = '') => `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web${extraLabel}
spec:
  nodeName: wasm-node
  tolerations:
  - key: kubernetes.io/arch
    operator: Equal
    value: wasm32-wasi
    effect: NoExecute
  containers:
  - name: app
    image: ${image}
    ports:
    - containerPort: 8080
`;

  before(async () => {
    srv = await startKubeApiServer({});
    dir = await mkdtemp(join(tmpdir(), 'kubectl-test-'));
    kubelet = await startStubKubelet({ cert: srv.tls.cert, key: srv.tls.key, lines: ['hello from web'], followLines: ['still here'], intervalMs: 100 });
    srv.store.create('nodes', nodeObject('wasm-node', kubelet.port));
  });
  after(async () => {
    await kubelet?.close();
    await srv?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('applies a pod, then re-applies it with changes', async () => {
    await writeFile(join(dir, 'pod.yaml'), manifest('registry.test/web:v1'));
    assert.match(await ok('apply', '-f', join(dir, 'pod.yaml')), /pod\/web created/);
    const rv = srv.store.get('pods', 'default', 'web')!.metadata.resourceVersion;
    // kubectl re-sends the toleration list (it has no merge key, and the server added its
    // default tolerations), so it may say "configured"; the server sees no change.
    assert.match(await ok('apply', '-f', join(dir, 'pod.yaml')), /pod\/web (unchanged|configured)/);
    assert.equal(srv.store.get('pods', 'default', 'web')!.metadata.resourceVersion, rv, 'the same manifest changes nothing');
    await writeFile(join(dir, 'pod.yaml'), manifest('registry.test/web:v2', '\n    tier: frontend'));
    assert.match(await ok('apply', '-f', join(dir, 'pod.yaml')), /pod\/web configured/);
    const live = JSON.parse(await ok('get', 'pod', 'web', '-o', 'json'));
    assert.equal(live.spec.containers[0].image, 'registry.test/web:v2');
    assert.equal(live.metadata.labels.tier, 'frontend');
    assert.equal(live.metadata.generation, 2);
    assert.match(live.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], /web:v2/);
    const patchReq = srv.requests.find((r) => r.method === 'PATCH' && r.path.endsWith('/pods/web'));
    assert.equal(patchReq?.contentType, 'application/strategic-merge-patch+json', 'apply sent a strategic merge patch');
  });

  it('patches and labels, and prints tables', async () => {
    await ok('patch', 'pod', 'web', '-p', '{"metadata":{"annotations":{"kind":"strategic"}}}');
    await ok('patch', 'pod', 'web', '--type=merge', '-p', '{"metadata":{"annotations":{"kind2":"merge"}}}');
    await ok('patch', 'pod', 'web', '--type=json', '-p', '[{"op":"add","path":"/metadata/annotations/kind3","value":"json"}]');
    assert.match(await ok('label', 'pod', 'web', 'stage=test'), /pod\/web labeled/);
    const pod = srv.store.get('pods', 'default', 'web')!;
    assert.deepEqual(
      [pod.metadata.annotations!.kind, pod.metadata.annotations!.kind2, pod.metadata.annotations!.kind3, pod.metadata.labels!.stage],
      ['strategic', 'merge', 'json', 'test'],
    );
    const table = await ok('get', 'pods', '-l', 'stage=test');
    assert.match(table, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    assert.match(table, /^web\s+0\/1\s+Pending\s+0\s+/m);
    const refused = await kubectl('patch', 'pod', 'web', '-p', '{"spec":{"containers":[{"name":"app","env":[{"name":"A","value":"1"}]}]}}');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /pod updates may not change fields/);
    const missing = await kubectl('get', 'pod', 'nope');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Error from server \(NotFound\): pods "nope" not found/);
  });

  it('waits for the Ready condition set by someone else', async () => {
    const waiting = kubectl('wait', '--for=condition=Ready', 'pod/web', '--timeout=20s');
    await new Promise((r) => setTimeout(r, 500));
    const pod = srv.store.get('pods', 'default', 'web')!;
    srv.store.updateStatus('pods', { ...pod, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'registry.test/web:v2', imageID: '', started: true, state: { running: {} } }] } });
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pod\/web condition met/);
    assert.match(await ok('get', 'pod', 'web'), /^web\s+1\/1\s+Running/m);
  });

  it('reads logs through the kubelet proxy, following them', async () => {
    assert.equal(await ok('logs', 'web'), 'app: hello from web\n');
    assert.equal(await ok('logs', '-f', 'web', '--tail=10'), 'app: hello from web\napp: still here\n');
    assert.equal(kubelet.requests.at(-1)?.query.get('tailLines'), '10');
    const bad = await kubectl('logs', 'web', '-c', 'nope');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /container nope is not valid for pod web/);
  });

  it('deletes without waiting: the pod on a node terminates until its kubelet removes it', async () => {
    assert.match(await ok('delete', 'pod', 'web', '--wait=false'), /pod "web" deleted/);
    const terminating = srv.store.get('pods', 'default', 'web');
    assert.ok(terminating?.metadata.deletionTimestamp, 'the pod is terminating');
    assert.equal(terminating?.metadata.deletionGracePeriodSeconds, 30);
    assert.match(await ok('get', 'pod', 'web'), /Terminating/);
    srv.store.delete('pods', 'default', 'web', { gracePeriodSeconds: 0 });
    const gone = await kubectl('get', 'pod', 'web');
    assert.match(gone.stderr, /NotFound/);
    await writeFile(join(dir, 'pod.yaml'), manifest('registry.test/web:v3'));
    assert.match(await ok('apply', '-f', join(dir, 'pod.yaml')), /pod\/web created/);
  });

  it('lists leases and namespaces through discovery (short names, other groups)', async () => {
    srv.store.create('leases', { metadata: { name: 'wasm-node', namespace: 'kube-node-lease' }, spec: { holderIdentity: 'wasm-node' } });
    assert.match(await ok('get', 'leases', '-n', 'kube-node-lease'), /^wasm-node\s+wasm-node\s+/m);
    assert.match(await ok('get', 'ns'), /^kube-node-lease\s+Active/m);
    assert.match(await ok('get', 'no'), /^wasm-node\s+Ready/m);
  });
});
