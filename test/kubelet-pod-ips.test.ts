/**
 * Pod IPs: with a pod CIDR (a loopback range here, which Linux binds with no setup) each pod gets
 * its own address, its HTTP servers listen on podIP:containerPort, status and the downward API say
 * so, two replicas on one port coexist, a hostPort is forwarded from the node's address. Without a
 * pod CIDR, servers bind the node's address, never every address.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { HTTP_SERVER, isWasmletError } from '../host/index.ts';
import { instanceOf, isReady, loopbackCidr, NODE, podManifest, startKubeletHarness, statusOf, waitForGone, waitForPod, type KubeletHarness } from './helpers/kubelet-harness.ts';
import { freePort } from './helpers/redis-server.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);
const echoBytes = readFileSync(new URL('wascc/echo.wasm', fixtures));

async function status(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
}

const echoPod = (name: string, port: number, extra: Record<string, unknown> = {}) =>
  podManifest(name, { containers: [{ name: 'echo', image: 'registry.test/echo:v1', ports: [{ containerPort: port, ...extra }], env: [{ name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] }] });

describe('node agent: pod IPs', () => {
  let h: KubeletHarness;
  const range = loopbackCidr();

  before(async () => {
    h = await startKubeletHarness({ agent: { podCidr: range.cidr } });
    h.puller.set('registry.test/echo:v1', echoBytes);
  });
  after(async () => h?.close());

  it('gives each pod its own address; two replicas listen on the same port', async () => {
    h.api.store.create('pods', echoPod('replica-1', 8080));
    h.api.store.create('pods', echoPod('replica-2', 8080));
    const [p1, p2] = await Promise.all([waitForPod(h.api, 'replica-1', isReady), waitForPod(h.api, 'replica-2', isReady)]);
    const [ip1, ip2] = [statusOf(p1).podIP!, statusOf(p2).podIP!];
    assert.ok(ip1.startsWith(range.prefix) && ip2.startsWith(range.prefix), `${ip1} ${ip2} in ${range.cidr}`);
    assert.notEqual(ip1, ip2);
    assert.notEqual(ip1, `${range.prefix}0`, 'not the network address');
    const s1 = (p1 as unknown as { status: { podIPs: { ip: string }[]; hostIP: string } }).status;
    assert.deepEqual(s1.podIPs, [{ ip: ip1 }]);
    assert.equal(s1.hostIP, '127.0.0.1');
    for (const ip of [ip1, ip2]) assert.equal(await status(`http://${ip}:8080/hi`), 200, ip);
    // The link, the actor's config and the downward API agree on the address.
    assert.deepEqual(h.host.links.get(instanceOf('replica-1', 'echo'), HTTP_SERVER)?.values.ADDRESS, ip1);
    assert.equal(h.host.actorConfig(instanceOf('replica-2', 'echo'))?.MY_IP, ip2);
    // Nothing of theirs listens on the node's address.
    await assert.rejects(status('http://127.0.0.1:8080/'), 'not on the node address');
    assert.equal(h.agent.podCidr, range.cidr);
    const node = h.api.store.get('nodes', undefined, NODE) as unknown as { spec: { podCIDR: string; podCIDRs: string[] } };
    assert.deepEqual([node.spec.podCIDR, node.spec.podCIDRs], [range.cidr, [range.cidr]]);
  });

  it('forwards a hostPort from the node\'s address to the pod\'s port', async () => {
    const hostPort = await freePort();
    h.api.store.create('pods', echoPod('with-host-port', 8080, { hostPort }));
    const pod = await waitForPod(h.api, 'with-host-port', isReady);
    assert.equal(await status(`http://127.0.0.1:${hostPort}/via-node`), 200);
    assert.equal(await status(`http://${statusOf(pod).podIP}:8080/direct`), 200);
    h.api.store.delete('pods', 'default', 'with-host-port', { gracePeriodSeconds: 5 });
    await waitForGone(h.api, 'with-host-port');
    await assert.rejects(status(`http://127.0.0.1:${hostPort}/`), 'the forwarder closed with the pod');
  });

  it('frees a pod\'s address when the pod goes, and keeps it across container restarts', async () => {
    const ip = statusOf(h.api.store.get('pods', 'default', 'replica-2')).podIP!;
    h.api.store.delete('pods', 'default', 'replica-2', { gracePeriodSeconds: 5 });
    await waitForGone(h.api, 'replica-2');
    await assert.rejects(status(`http://${ip}:8080/`));
    assert.equal(await status(`http://${statusOf(h.api.store.get('pods', 'default', 'replica-1')).podIP}:8080/still`), 200, 'the other replica keeps serving');
  });

  it('refuses an annotation that would make a pod listen on another address', async () => {
    h.api.store.create('pods', podManifest('squatter', { annotations: { 'wasmlet.dev/link.httpserver.ADDRESS': '127.0.0.1' }, containers: [{ name: 'echo', image: 'registry.test/echo:v1', ports: [{ containerPort: 8080 }] }] }));
    const pod = await waitForPod(h.api, 'squatter', (p) => statusOf(p).phase === 'Failed');
    assert.equal(statusOf(pod).reason, 'InvalidCapabilityAnnotation');
    assert.match(statusOf(pod).message!, /own address/);
  });

  it('refuses a pod CIDR this machine cannot bind, naming the command that fixes it', async () => {
    await assert.rejects(h.restartAgent({ podCidr: '203.0.113.0/24' }), (e) => isWasmletError(e) && e.code === 'POD_CIDR_NOT_LOCAL' && /ip route add local 203\.0\.113\.0\/24 dev lo/.test(e.message));
    await assert.rejects(h.restartAgent({ podCidr: '127.10.0.1/24' }), /host bits set/);
  });

  it('takes the Node\'s spec.podCIDR when the cluster set one and --pod-cidr is not given', async () => {
    const other = loopbackCidr();
    h.api.store.delete('nodes', undefined, NODE);
    h.api.store.create('nodes', { metadata: { name: NODE }, spec: { podCIDR: other.cidr, podCIDRs: [other.cidr] } });
    await h.restartAgent({ podCidr: undefined });
    assert.equal(h.agent.podCidr, other.cidr);
    h.api.store.create('pods', echoPod('from-node-cidr', 8081));
    const pod = await waitForPod(h.api, 'from-node-cidr', isReady);
    assert.ok(statusOf(pod).podIP!.startsWith(other.prefix), statusOf(pod).podIP);
    // And a --pod-cidr that contradicts it is an error, not a guess.
    await assert.rejects(h.restartAgent({ podCidr: range.cidr }), (e) => isWasmletError(e) && e.code === 'POD_CIDR_CONFLICT');
  });
});

describe('node agent without a pod CIDR', () => {
  let h: KubeletHarness;
  before(async () => {
    h = await startKubeletHarness();
    h.puller.set('registry.test/echo:v1', echoBytes);
  });
  after(async () => h?.close());

  it('uses the node\'s address as the pod IP and binds only that address', async () => {
    const port = await freePort();
    h.api.store.create('pods', echoPod('on-node', port));
    const pod = await waitForPod(h.api, 'on-node', isReady);
    assert.equal(statusOf(pod).podIP, '127.0.0.1');
    assert.equal(await status(`http://127.0.0.1:${port}/`), 200);
    // 127.0.0.2 is this machine too: a server on 0.0.0.0 would answer there.
    await assert.rejects(status(`http://127.0.0.2:${port}/`), 'not bound to every address');
  });
});
