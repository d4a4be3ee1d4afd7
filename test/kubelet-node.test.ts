/**
 * The node agent's Node and Lease against the Kubernetes API test server: registration with our
 * labels, taints, capacity, conditions, addresses, nodeInfo and kubelet endpoint; the Ready
 * heartbeat; the Lease renewed; re-registration keeping what others put on the Node; NotReady on
 * shutdown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NODE, startKubeletHarness, type KubeletHarness } from './helpers/kubelet-harness.ts';
import { until } from './helpers/wait.ts';

type NodeObj = {
  metadata: { labels?: Record<string, string>; uid?: string };
  spec?: { taints?: { key: string; value?: string; effect: string }[] };
  status?: {
    conditions?: { type: string; status: string; reason?: string; lastHeartbeatTime?: string; lastTransitionTime?: string }[];
    addresses?: { type: string; address: string }[];
    capacity?: Record<string, string>;
    allocatable?: Record<string, string>;
    daemonEndpoints?: { kubeletEndpoint?: { Port?: number } };
    nodeInfo?: Record<string, string>;
  };
};

describe('node agent: Node and Lease', () => {
  let h: KubeletHarness;
  const node = () => h.api.store.get('nodes', undefined, NODE) as unknown as NodeObj | undefined;
  const lease = () => h.api.store.get('leases', 'kube-node-lease', NODE) as unknown as { spec: { renewTime: string; holderIdentity: string; leaseDurationSeconds: number }; metadata: { ownerReferences?: { kind: string; name: string; uid: string }[] } } | undefined;

  before(async () => {
    h = await startKubeletHarness({ agent: { labels: { 'example.com/team': 'wasm' }, maxPods: 42 } });
  });
  after(async () => h?.close());

  it('registers the Node with labels, taints, capacity, addresses, nodeInfo and the kubelet port', () => {
    const n = node();
    assert.ok(n, 'node exists');
    assert.deepEqual(
      { arch: n.metadata.labels?.['kubernetes.io/arch'], os: n.metadata.labels?.['kubernetes.io/os'], host: n.metadata.labels?.['kubernetes.io/hostname'], team: n.metadata.labels?.['example.com/team'] },
      { arch: 'wasm32-wasmlet', os: 'wasmlet', host: NODE, team: 'wasm' },
    );
    assert.deepEqual(
      n.spec?.taints?.map((t) => `${t.key}=${t.value}:${t.effect}`).sort(),
      ['wasmlet.dev/arch=wasm32-wasmlet:NoExecute', 'wasmlet.dev/arch=wasm32-wasmlet:NoSchedule'],
    );
    assert.equal(n.status?.capacity?.pods, '42');
    assert.equal(n.status?.allocatable?.pods, '42');
    assert.match(n.status?.capacity?.memory ?? '', /^\d+Ki$/);
    assert.deepEqual(n.status?.addresses, [
      { type: 'InternalIP', address: '127.0.0.1' },
      { type: 'Hostname', address: NODE },
    ]);
    assert.equal(n.status?.daemonEndpoints?.kubeletEndpoint?.Port, h.agent.port);
    assert.ok(h.agent.port > 0);
    assert.equal(n.status?.nodeInfo?.architecture, 'wasm32-wasmlet');
    assert.equal(n.status?.nodeInfo?.operatingSystem, 'wasmlet');
    assert.match(n.status?.nodeInfo?.kubeletVersion ?? '', /^v1\.\d+\.\d+/);
    assert.match(n.status?.nodeInfo?.containerRuntimeVersion ?? '', /^wasmlet:\/\//);
  });

  it('reports Ready with a heartbeat and every pressure condition False', async () => {
    const conds = () => Object.fromEntries((node()?.status?.conditions ?? []).map((c) => [c.type, c]));
    const c = conds();
    assert.equal(c.Ready?.status, 'True');
    assert.equal(c.Ready?.reason, 'KubeletReady');
    for (const t of ['MemoryPressure', 'DiskPressure', 'PIDPressure']) assert.equal(c[t]?.status, 'False', t);
    const firstBeat = c.Ready!.lastHeartbeatTime!;
    const transition = c.Ready!.lastTransitionTime!;
    await until(() => conds().Ready?.lastHeartbeatTime !== firstBeat, 'a newer heartbeat', 5000);
    assert.equal(conds().Ready?.lastTransitionTime, transition, 'transition time kept while Ready stays True');
  });

  it('keeps a Lease in kube-node-lease, owned by the Node, renewed on its interval', async () => {
    const l = lease();
    assert.ok(l, 'lease exists');
    assert.equal(l.spec.holderIdentity, NODE);
    assert.equal(l.spec.leaseDurationSeconds, 40);
    assert.match(l.spec.renewTime, /\.\d{6}Z$/, 'MicroTime with microseconds');
    assert.deepEqual(l.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid]), [['Node', NODE, node()!.metadata.uid]]);
    const first = Date.parse(l.spec.renewTime);
    await until(() => Date.parse(lease()!.spec.renewTime) > first, 'lease renewal', 3000);
  });

  it('recreates a Lease someone deleted', async () => {
    h.api.store.delete('leases', 'kube-node-lease', NODE);
    assert.equal(lease(), undefined);
    await until(() => lease() !== undefined, 'lease recreated', 3000);
  });

  it('re-registers over an existing Node, keeping taints and labels others added', async () => {
    const n = h.api.store.get('nodes', undefined, NODE)!;
    h.api.store.patch('nodes', undefined, NODE, 'merge', {
      metadata: { labels: { 'kubernetes.io/arch': 'tampered', 'other.io/keep': 'yes' } },
      spec: { taints: [...((n.spec as NodeObj['spec'])?.taints ?? []), { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] },
    });
    await h.restartAgent();
    const after = node()!;
    assert.equal(after.metadata.labels?.['kubernetes.io/arch'], 'wasm32-wasmlet', 'our label restored');
    assert.equal(after.metadata.labels?.['other.io/keep'], 'yes');
    assert.deepEqual(after.spec?.taints?.map((t) => `${t.key}:${t.effect}`).sort(), [
      'node.kubernetes.io/unreachable:NoExecute',
      'wasmlet.dev/arch:NoExecute',
      'wasmlet.dev/arch:NoSchedule',
    ]);
    assert.equal(after.status?.daemonEndpoints?.kubeletEndpoint?.Port, h.agent.port, 'new kubelet port reported');
  });

  it('marks the Node NotReady and stops renewing the Lease when it stops', async () => {
    await h.agent.stop();
    const ready = node()!.status!.conditions!.find((c) => c.type === 'Ready')!;
    assert.equal(ready.status, 'False');
    assert.equal(ready.reason, 'KubeletStopped');
    const renew = lease()!.spec.renewTime;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(lease()!.spec.renewTime, renew, 'no renewal after stop');
  });
});
