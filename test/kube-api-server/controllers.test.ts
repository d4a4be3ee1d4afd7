/**
 * The cluster parts the test server can run (controllers: true): scheduling (fit, taints,
 * capacity, FailedScheduling), Deployments → ReplicaSets → pods (scale, replace, roll out,
 * delete with garbage collection), Services → EndpointSlices and Endpoints following readiness,
 * and strict field validation. A stand-in kubelet marks bound pods Running with an IP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from './index.ts';
import { parseQuantity } from './controllers/index.ts';

const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));
const TAINT = { key: 'wasmlet.dev/arch', value: 'wasm32-wasmlet', effect: 'NoSchedule' };
const TOLERATION = { key: 'wasmlet.dev/arch', operator: 'Equal', value: 'wasm32-wasmlet', effect: 'NoSchedule' };

type Obj = Record<string, any>;
const s = (o: KubeObject | undefined): Obj => (o ?? {}) as Obj;

function node(name: string, pods: number, ready = true): Obj {
  return {
    metadata: { name, labels: { 'kubernetes.io/arch': 'wasm32-wasmlet', 'kubernetes.io/hostname': name } },
    spec: { taints: [TAINT] },
    status: { allocatable: { pods: String(pods), cpu: '2', memory: '4Gi' }, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

/** Marks every pod bound to a node Running with an IP, Ready unless its name is in `unready`. */
function fakeKubelet(api: KubeApiServer, unready: Set<string>): () => void {
  let n = 1;
  const ips = new Map<string, string>();
  const mark = () => {
    for (const p of api.store.list('pods')) {
      const spec = s(p).spec;
      if (!spec.nodeName) continue;
      if (p.metadata.deletionTimestamp) {
        api.store.delete('pods', p.metadata.namespace, p.metadata.name!, { gracePeriodSeconds: 0 });
        continue;
      }
      const ip = ips.get(p.metadata.uid!) ?? `10.244.0.${n++}`;
      ips.set(p.metadata.uid!, ip);
      const ready = unready.has(p.metadata.name!) ? 'False' : 'True';
      const status = s(p).status;
      if (status.podIP === ip && status.conditions?.find((c: Obj) => c.type === 'Ready')?.status === ready) continue;
      api.store.updateStatus('pods', { ...p, status: { ...status, phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: ready }] } });
    }
  };
  const unsubscribe = api.store.subscribe((e) => {
    if (e.resource === 'pods') setImmediate(mark);
  });
  return unsubscribe;
}

const waitUntil = async (what: string, cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('API test server: controllers', () => {
  let api: KubeApiServer;
  let stopKubelet: () => void;
  const unready = new Set<string>();
  let dir: string;

  before(async () => {
    api = await startKubeApiServer({ controllers: true });
    dir = await mkdtemp(join(tmpdir(), 'kube-controllers-'));
    stopKubelet = fakeKubelet(api, unready);
  });
  after(async () => {
    stopKubelet?.();
    await api?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const pods = (ns = 'default') => api.store.list('pods', { namespace: ns }).filter((p) => !p.metadata.deletionTimestamp);
  const eventsOf = (name: string) => api.store.list('events', { fieldSelector: `involvedObject.name=${name}` }).map((e) => s(e));

  it('reads resource quantities', () => {
    assert.deepEqual(['500m', '2', '64Mi', '1Gi', '1k', 'x'].map(parseQuantity), [0.5, 2, 64 * 2 ** 20, 2 ** 30, 1000, undefined]);
  });

  it('schedules a pod that fits and explains one that does not', async () => {
    api.store.create('pods', { metadata: { name: 'early', namespace: 'default' }, spec: { tolerations: [TOLERATION], containers: [{ name: 'a', image: 'x' }] } });
    await waitUntil('FailedScheduling without nodes', () => eventsOf('early').some((e) => e.reason === 'FailedScheduling'));
    assert.equal(eventsOf('early')[0]!.message, 'no nodes available to schedule pods');
    api.store.create('nodes', node('n1', 3));
    await waitUntil('early bound', () => s(api.store.get('pods', 'default', 'early')).spec.nodeName === 'n1');
    assert.ok(eventsOf('early').some((e) => e.reason === 'Scheduled' && e.message === 'Successfully assigned default/early to n1' && e.source.component === 'default-scheduler'));

    api.store.create('pods', { metadata: { name: 'intolerant', namespace: 'default' }, spec: { containers: [{ name: 'a', image: 'x' }] } });
    api.store.create('pods', { metadata: { name: 'picky', namespace: 'default' }, spec: { nodeSelector: { 'kubernetes.io/arch': 'amd64' }, tolerations: [TOLERATION], containers: [{ name: 'a', image: 'x' }] } });
    api.store.create('pods', { metadata: { name: 'greedy', namespace: 'default' }, spec: { tolerations: [TOLERATION], containers: [{ name: 'a', image: 'x', resources: { requests: { cpu: '3' } } }] } });
    await waitUntil('three FailedScheduling', () => ['intolerant', 'picky', 'greedy'].every((n) => eventsOf(n).some((e) => e.reason === 'FailedScheduling')));
    const msg = (n: string) => eventsOf(n).find((e) => e.reason === 'FailedScheduling')!.message;
    assert.equal(msg('intolerant'), '0/1 nodes are available: 1 node(s) had untolerated taint {wasmlet.dev/arch: wasm32-wasmlet}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.');
    assert.match(msg('picky'), /1 node\(s\) didn't match Pod's node affinity\/selector/);
    assert.match(msg('greedy'), /1 Insufficient cpu/);
    const cond = s(api.store.get('pods', 'default', 'intolerant')).status.conditions.find((c: Obj) => c.type === 'PodScheduled');
    assert.deepEqual([cond.status, cond.reason], ['False', 'Unschedulable']);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(eventsOf('intolerant').filter((e) => e.reason === 'FailedScheduling').length, 1, 'an unchanged verdict is not repeated');
    for (const n of ['intolerant', 'picky', 'greedy', 'early']) api.store.delete('pods', 'default', n, { gracePeriodSeconds: 0 });
  });

  it('runs a Deployment: a ReplicaSet, its pods, status, scaling, replacing a deleted pod', async () => {
    api.store.create('nodes', node('n2', 10));
    const template = { metadata: { labels: { app: 'web' } }, spec: { tolerations: [TOLERATION], containers: [{ name: 'web', image: 'reg/web:v1', ports: [{ name: 'http', containerPort: 8080 }] }] } };
    api.store.create('deployments', { metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template } });
    await waitUntil('3 available', () => s(api.store.get('deployments', 'default', 'web')).status?.availableReplicas === 3);
    const d = s(api.store.get('deployments', 'default', 'web'));
    assert.deepEqual([d.status.replicas, d.status.updatedReplicas, d.status.readyReplicas, d.status.observedGeneration], [3, 3, 3, 1]);
    assert.deepEqual(d.status.conditions.map((c: Obj) => [c.type, c.status, c.reason]), [['Available', 'True', 'MinimumReplicasAvailable'], ['Progressing', 'True', 'NewReplicaSetAvailable']]);
    const rs = api.store.list('replicasets', { namespace: 'default' });
    assert.equal(rs.length, 1);
    assert.match(rs[0]!.metadata.name!, /^web-[a-z0-9]{10}$/);
    const web = pods().filter((p) => p.metadata.labels?.app === 'web');
    assert.equal(web.length, 3);
    for (const p of web) {
      assert.match(p.metadata.name!, new RegExp(`^${rs[0]!.metadata.name}-[a-z0-9]{5}$`));
      assert.equal(p.metadata.ownerReferences?.[0]?.uid, rs[0]!.metadata.uid);
      assert.ok(s(p).spec.nodeName, 'scheduled');
    }
    api.store.delete('pods', 'default', web[0]!.metadata.name!, { gracePeriodSeconds: 0 });
    await waitUntil('a replacement', () => pods().filter((p) => p.metadata.labels?.app === 'web').length === 3 && !pods().some((p) => p.metadata.name === web[0]!.metadata.name));
    api.store.patch('deployments', 'default', 'web', 'merge', { spec: { replicas: 1 } });
    await waitUntil('scaled to 1', () => pods().filter((p) => p.metadata.labels?.app === 'web').length === 1 && s(api.store.get('deployments', 'default', 'web')).status.replicas === 1);
  });

  it('rolls out a new template to a new ReplicaSet and retires the old one', async () => {
    api.store.patch('deployments', 'default', 'web', 'strategic', { spec: { replicas: 2, template: { spec: { containers: [{ name: 'web', image: 'reg/web:v2' }] } } } });
    await waitUntil('v2 everywhere', () => {
      const web = pods().filter((p) => p.metadata.labels?.app === 'web');
      return web.length === 2 && web.every((p) => s(p).spec.containers[0].image === 'reg/web:v2');
    });
    const sets = api.store.list('replicasets', { namespace: 'default' }).map((r) => [s(r).spec.replicas, r.metadata.annotations?.['deployment.kubernetes.io/revision']]);
    assert.deepEqual(sets.sort(), [[0, '1'], [2, '2']]);
  });

  it('lists a Service\'s pods in an EndpointSlice, Ready ones as ready', async () => {
    api.store.create('services', { metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } });
    const svc = s(api.store.get('services', 'default', 'web'));
    assert.match(svc.spec.clusterIP, /^10\.96\.\d+\.\d+$/);
    assert.equal(svc.spec.type, 'ClusterIP');
    const slice = () => s(api.store.list('endpointslices', { namespace: 'default', labelSelector: 'kubernetes.io/service-name=web' })[0]);
    await waitUntil('2 endpoints', () => slice().endpoints?.length === 2).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(slice())} pods ${JSON.stringify(pods().map((p) => [p.metadata.name, p.metadata.labels, s(p).status?.podIP, s(p).spec.containers[0].ports]))}`); });
    assert.deepEqual(slice().ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
    assert.ok(slice().endpoints.every((e: Obj) => e.conditions.ready === true && e.targetRef.kind === 'Pod'));
    assert.equal(slice().metadata.ownerReferences[0].kind, 'Service');
    const web = pods().filter((p) => p.metadata.labels?.app === 'web');
    unready.add(web[0]!.metadata.name!);
    api.store.patch('pods', 'default', web[0]!.metadata.name!, 'merge', { metadata: { annotations: { poke: '1' } } });
    await waitUntil('one not ready', () => slice().endpoints.filter((e: Obj) => e.conditions.ready).length === 1);
    const notReady = slice().endpoints.find((e: Obj) => !e.conditions.ready);
    assert.equal(notReady.targetRef.name, web[0]!.metadata.name);
    const ep = s(api.store.get('endpoints', 'default', 'web'));
    assert.equal(ep.subsets[0].addresses.length, 1);
    assert.equal(ep.subsets[0].notReadyAddresses.length, 1);
  });

  it('deletes what a Deployment and a Service owned once they are gone', async () => {
    api.store.delete('deployments', 'default', 'web');
    api.store.delete('services', 'default', 'web');
    await waitUntil('all gone', () => pods().filter((p) => p.metadata.labels?.app === 'web').length === 0 && api.store.list('replicasets').length === 0 && api.store.list('endpointslices').length === 0);
  });

  it('refuses unknown fields when kubectl asks for strict validation', { skip: KUBECTL ? false : 'kubectl is not installed' }, async () => {
    const file = join(dir, 'typo.yaml');
    await writeFile(file, 'apiVersion: v1\nkind: Pod\nmetadata: {name: typo}\nspec:\n  containers: [{name: a, image: x, imagePullPolice: Always}]\n');
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(KUBECTL!, ['--kubeconfig', api.kubeconfigPath, '--cache-dir', join(dir, 'cache'), 'apply', '-f', file], (err, _out, stderr) => resolve({ code: err ? 1 : 0, stderr })),
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec\.containers\[0\]\.imagePullPolice"/);
    assert.equal(api.store.get('pods', 'default', 'typo'), undefined);
  });

  it('warns about unknown fields with fieldValidation=Warn and ignores them with Ignore', async () => {
    const post = (mode: string, name: string) =>
      fetch(`${api.url}/api/v1/namespaces/default/configmaps?fieldValidation=${mode}`, { method: 'POST', headers: { Authorization: `Bearer ${api.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ metadata: { name, colour: 'red' }, data: {} }) });
    const warned = await post('Warn', 'warned');
    assert.equal(warned.status, 201);
    assert.equal(warned.headers.get('warning'), '299 - "unknown field \\"metadata.colour\\""');
    const ignored = await post('Ignore', 'ignored');
    assert.equal(ignored.status, 201);
    assert.equal(ignored.headers.get('warning'), null);
    assert.equal((await post('Bogus', 'bogus')).status, 400);
  });
});
