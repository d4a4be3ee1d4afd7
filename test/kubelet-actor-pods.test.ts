/**
 * Pods that become actors: the unmodified waSCC echo and kvcounter actors as pods (a containerPort
 * becomes the HTTP server's PORT), status kept true (phase, conditions, container statuses,
 * imageID, pod IP), Events, capability annotations and env (value, configMapKeyRef,
 * secretKeyRef, fieldRef) reaching actor config and link values, pods refused for a reason
 * (malformed annotation, unclaimed link, unsigned image) without touching
 * anything else, pull secrets and ImagePullBackOff, graceful deletion then grace-0 delete, several pods of one image as instances of one actor.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { HTTP_SERVER, KEY_VALUE } from '../host/index.ts';
import { freePort } from './helpers/redis-server.ts';
import { compileWat, toolboxActor } from './helpers/wat.ts';
import {
  condition,
  instanceOf,
  eventsFor,
  isReady,
  phaseIs,
  podManifest,
  startKubeletHarness,
  statusOf,
  waitForGone,
  waitForPod,
  type KubeletHarness,
} from './helpers/kubelet-harness.ts';
import { until } from './helpers/wait.ts';

const fixtures = new URL('../../shared/fixtures/', import.meta.url);
const echoBytes = readFileSync(new URL('wascc/echo.wasm', fixtures));
const kvcounterBytes = readFileSync(new URL('wascc/kvcounter.wasm', fixtures));
const ECHO = 'MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2';
const KVCOUNTER = 'MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ';

async function get(port: number, path: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

const failedWith = (reason: string) => (p: Parameters<typeof isReady>[0]) => statusOf(p).phase === 'Failed' && statusOf(p).reason === reason;

describe('node agent: actor pods', () => {
  let h: KubeletHarness;
  let echoPort: number;

  before(async () => {
    h = await startKubeletHarness();
    h.puller.set('registry.test/echo:v1', echoBytes).set('registry.test/kvcounter:v1', kvcounterBytes);
    echoPort = await freePort();
  });
  after(async () => h?.close());

  it('runs the waSCC echo actor as a pod: containerPort becomes PORT, status and Events are true', async () => {
    h.api.store.create('pods', podManifest('echo', { containers: [{ name: 'echo', image: 'registry.test/echo:v1', ports: [{ containerPort: echoPort }] }] }));
    const pod = await waitForPod(h.api, 'echo', isReady);
    const r = await get(echoPort, '/hello?x=1');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).path, '/hello');
    const s = statusOf(pod);
    assert.equal(s.phase, 'Running');
    for (const t of ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready']) assert.equal(condition(pod, t), 'True', t);
    assert.equal(s.podIP, '127.0.0.1');
    assert.ok(s.startTime && Date.parse(s.startTime) <= Date.now());
    const cs = s.containerStatuses![0];
    assert.equal(cs.name, 'echo');
    assert.equal(cs.ready, true);
    assert.equal(cs.started, true);
    assert.equal(cs.restartCount, 0);
    assert.ok(cs.state.running?.startedAt);
    assert.equal(cs.image, 'registry.test/echo:v1');
    assert.match(cs.imageID, /^registry\.test\/echo@sha256:[0-9a-f]{64}$/);
    assert.equal(cs.containerID, 'wasmlet://default/echo/echo');
    assert.equal(h.host.actor('default/echo/echo')?.module, ECHO);
    assert.equal(h.host.links.get('default/echo/echo', HTTP_SERVER)?.values.PORT, String(echoPort));
    await h.agent.settled();
    const reasons = eventsFor(h.api, 'echo').map((e) => e.reason);
    for (const r of ['Pulling', 'Pulled', 'Started']) assert.ok(reasons.includes(r), `event ${r} in ${reasons.join(',')}`);
    assert.deepEqual(h.puller.pulls.find((p) => p.ref === 'registry.test/echo:v1')?.policy, 'IfNotPresent');
  });

  it('turns annotations and env (value, configMapKeyRef, secretKeyRef, fieldRef) into actor config and link values', async () => {
    h.api.store.create('configmaps', { metadata: { name: 'kv-config', namespace: 'default' }, data: { greeting: 'hello from a configmap' } });
    h.api.store.create('secrets', { metadata: { name: 'kv-secret', namespace: 'default' }, data: { token: Buffer.from('s3cret').toString('base64') } });
    const port = await freePort();
    h.api.store.create(
      'pods',
      podManifest('kvcounter', {
        annotations: { 'wasmlet.dev/capabilities': 'keyvalue', 'wasmlet.dev/link.keyvalue.BUCKET': 'counters', 'wasmlet.dev/link.httpserver.ADDRESS': '127.0.0.1' },
        labels: { tier: 'backend' },
        containers: [
          {
            name: 'counter',
            image: 'registry.test/kvcounter:v1',
            ports: [{ name: 'http', containerPort: port }],
            env: [
              { name: 'PLAIN', value: 'plain-value' },
              { name: 'EXPANDED', value: 'x-$(PLAIN)-y' },
              { name: 'FROM_CM', valueFrom: { configMapKeyRef: { name: 'kv-config', key: 'greeting' } } },
              { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 'kv-secret', key: 'token' } } },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
              { name: 'TIER', valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } } },
              { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              { name: 'OPTIONAL_MISSING', valueFrom: { configMapKeyRef: { name: 'kv-config', key: 'nope', optional: true } } },
            ],
          },
        ],
      }),
    );
    const pod = await waitForPod(h.api, 'kvcounter', isReady);
    const expected = {
      PLAIN: 'plain-value',
      EXPANDED: 'x-plain-value-y',
      FROM_CM: 'hello from a configmap',
      FROM_SECRET: 's3cret',
      POD_NAME: 'kvcounter',
      POD_NAMESPACE: 'default',
      POD_UID: pod.metadata.uid,
      TIER: 'backend',
      NODE: 'wasmlet-test-node',
      POD_IP: '127.0.0.1',
    };
    const counter = instanceOf('kvcounter', 'counter');
    assert.equal(h.host.actor(counter)?.module, KVCOUNTER);
    assert.deepEqual(h.host.actorConfig(counter), expected);
    const kv = h.host.links.get(counter, KEY_VALUE)!;
    assert.deepEqual(kv.values, { ...expected, BUCKET: 'counters' });
    const http = h.host.links.get(counter, HTTP_SERVER)!;
    assert.equal(http.values.PORT, String(port));
    assert.equal(http.values.ADDRESS, '127.0.0.1');
    assert.deepEqual(JSON.parse((await get(port, '/k')).text), { counter: 1 });
    assert.deepEqual(JSON.parse((await get(port, '/k')).text), { counter: 2 });
  });

  it('fails a pod with a malformed annotation, with a reason and an Event, touching nothing else', async () => {
    const actorsBefore = h.host.actors().map((a) => a.id).sort();
    const linksBefore = h.host.links.list().length;
    const pullsBefore = h.puller.pulls.length;
    h.api.store.create('pods', podManifest('bad-annotation', { annotations: { 'wasmlet.dev/link.keyvalue.URL.extra.part': 'x' }, containers: [{ name: 'app', image: 'registry.test/kvcounter:v1' }] }));
    const pod = await waitForPod(h.api, 'bad-annotation', failedWith('InvalidCapabilityAnnotation'));
    assert.match(statusOf(pod).message!, /wasmlet\.dev\/link\.keyvalue\.URL\.extra\.part/);
    assert.equal(condition(pod, 'Ready'), 'False');
    await h.agent.settled();
    const ev = eventsFor(h.api, 'bad-annotation').find((e) => e.reason === 'InvalidCapabilityAnnotation');
    assert.equal(ev?.type, 'Warning');
    assert.deepEqual(h.host.actors().map((a) => a.id).sort(), actorsBefore);
    assert.equal(h.host.links.list().length, linksBefore);
    assert.equal((await get(echoPort, '/still')).status, 200, 'the echo pod keeps serving');
    assert.equal(h.puller.pulls.length, pullsBefore, 'no pull for a refused pod');
  });

  it('fails a pod whose actor does not claim a linked contract, starting nothing', async () => {
    const httpOnly = await toolboxActor({ name: 'http-only', caps: ['wascc:http_server'] });
    h.puller.set('registry.test/http-only:v1', httpOnly.bytes);
    h.api.store.create('pods', podManifest('unclaimed', { annotations: { 'wasmlet.dev/capabilities': 'keyvalue' }, containers: [{ name: 'app', image: 'registry.test/http-only:v1' }] }));
    const pod = await waitForPod(h.api, 'unclaimed', failedWith('LinkNotClaimed'));
    assert.match(statusOf(pod).message!, /does not claim wasmlet:keyvalue/);
    assert.match(statusOf(pod).message!, /wascc:http_server/, 'says what it does claim');
    const cs = statusOf(pod).containerStatuses![0];
    assert.equal(cs.state.terminated?.reason, 'LinkNotClaimed');
    assert.equal(h.host.actors().filter((a) => a.module === httpOnly.id).length, 0, 'actor not started');
    assert.equal(h.host.links.list().filter((l) => l.actor === instanceOf('unclaimed')).length, 0);
    await h.agent.settled();
    assert.ok(eventsFor(h.api, 'unclaimed').some((e) => e.reason === 'LinkNotClaimed' && e.type === 'Warning'));
  });

  it('fails a pod whose image is an unsigned module or not wasm at all, naming the reason', async () => {
    h.puller.set('registry.test/unsigned:v1', await compileWat('(module (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1) (memory (export "memory") 1))'));
    h.puller.set('registry.test/garbage:v1', new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0xff, 0xff]));
    h.api.store.create('pods', podManifest('unsigned', { containers: [{ name: 'app', image: 'registry.test/unsigned:v1' }] }));
    h.api.store.create('pods', podManifest('garbage', { containers: [{ name: 'app', image: 'registry.test/garbage:v1' }] }));
    const unsigned = await waitForPod(h.api, 'unsigned', failedWith('ActorRejected'));
    assert.match(statusOf(unsigned).message!, /CLAIMS_MISSING/);
    const garbage = await waitForPod(h.api, 'garbage', failedWith('ActorRejected'));
    assert.ok(statusOf(garbage).message!.length > 20, statusOf(garbage).message);
  });

  it('runs a second pod of the same image as its own instance, in the same namespace and in another', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    h.api.store.create('namespaces', { metadata: { name: 'staging' } });
    h.api.store.create('pods', podManifest('echo-twice', { containers: [{ name: 'echo', image: 'registry.test/echo:v1', ports: [{ containerPort: p1 }] }] }));
    h.api.store.create('pods', podManifest('echo', { namespace: 'staging', containers: [{ name: 'echo', image: 'registry.test/echo:v1', ports: [{ containerPort: p2 }] }] }));
    await waitForPod(h.api, 'echo-twice', isReady);
    const other = await waitForPod(h.api, 'echo', isReady, 15_000, 'staging');
    assert.equal(statusOf(other).containerStatuses![0].containerID, 'wasmlet://staging/echo/echo');
    const instances = h.host.actors().filter((a) => a.module === ECHO).map((a) => a.id).sort();
    assert.deepEqual(instances, ['default/echo-twice/echo', 'default/echo/echo', 'staging/echo/echo']);
    for (const port of [echoPort, p1, p2]) assert.equal((await get(port, '/fine')).status, 200);
    // Each instance has its own log.
    const logged = async (id: string) => {
      let n = 0;
      for await (const r of h.host.logs.read(id)) if (r.msg.includes('/fine')) n++;
      return n;
    };
    await until(async () => (await logged('staging/echo/echo')) === 1, 'the staging instance logged its one request');
    assert.equal(await logged('default/echo-twice/echo'), 1);
    h.api.store.delete('pods', 'staging', 'echo', { gracePeriodSeconds: 30 });
    await waitForGone(h.api, 'echo', 10_000, 'staging');
    assert.equal((await get(p1, '/still')).status, 200, 'the other instances keep serving');
    assert.equal((await get(echoPort, '/still')).status, 200);
  });

  it('waits with CreateContainerConfigError for a missing ConfigMap, and starts once it exists', async () => {
    const toolbox = await toolboxActor({ name: 'needs-config', caps: ['wascc:http_server'] });
    h.puller.set('registry.test/needs-config:v1', toolbox.bytes);
    h.api.store.create(
      'pods',
      podManifest('needs-config', { containers: [{ name: 'app', image: 'registry.test/needs-config:v1', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'late', key: 'x' } } }] }] }),
    );
    const waiting = await waitForPod(h.api, 'needs-config', (p) => statusOf(p).containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError');
    assert.equal(statusOf(waiting).phase, 'Pending');
    assert.match(statusOf(waiting).containerStatuses![0].state.waiting.message, /configmap "late" not found/);
    h.api.store.create('configmaps', { metadata: { name: 'late', namespace: 'default' }, data: { x: 'arrived' } });
    await waitForPod(h.api, 'needs-config', isReady);
    assert.deepEqual(h.host.actorConfig(instanceOf('needs-config')), { X: 'arrived' });
  });

  it('pulls with the credentials of imagePullSecrets and the container pull policy', async () => {
    const toolbox = await toolboxActor({ name: 'private', caps: [] });
    h.puller.set('private.registry.test/app:latest', toolbox.bytes);
    const dockerconfig = JSON.stringify({ auths: { 'private.registry.test': { username: 'robot', password: 'pw', auth: Buffer.from('robot:pw').toString('base64') } } });
    h.api.store.create('secrets', { metadata: { name: 'regcred', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(dockerconfig).toString('base64') } });
    h.api.store.create('pods', podManifest('private', { imagePullSecrets: [{ name: 'regcred' }], containers: [{ name: 'app', image: 'private.registry.test/app:latest' }] }));
    await waitForPod(h.api, 'private', isReady);
    const pull = h.puller.pulls.find((p) => p.ref === 'private.registry.test/app:latest')!;
    assert.equal(pull.policy, 'Always', ':latest defaults to Always');
    assert.deepEqual(pull.credentials.map((c) => [c.registry, c.username, c.password]), [['private.registry.test', 'robot', 'pw']]);
  });

  it('backs off pulling while the registry is unreachable (ImagePullBackOff), then runs', async () => {
    const toolbox = await toolboxActor({ name: 'late-image', caps: [] });
    h.puller.set('registry.test/late-image:v1', toolbox.bytes);
    h.puller.unreachable = true;
    try {
      h.api.store.create('pods', podManifest('late-image', { containers: [{ name: 'app', image: 'registry.test/late-image:v1' }] }));
      const p = await waitForPod(h.api, 'late-image', (x) => statusOf(x).containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff');
      assert.equal(statusOf(p).phase, 'Pending');
      await until(() => h.puller.pulls.filter((x) => x.ref === 'registry.test/late-image:v1').length >= 3, 'retried pulls', 10_000);
    } finally {
      h.puller.unreachable = false;
    }
    await waitForPod(h.api, 'late-image', isReady);
    await h.agent.settled();
    const reasons = eventsFor(h.api, 'late-image').map((e) => e.reason);
    assert.ok(reasons.includes('Failed') && reasons.includes('BackOff'), reasons.join(','));
  });

  it('keeps the provider of a link on the lattice when an annotation names one', async () => {
    const toolbox = await toolboxActor({ name: 'remote-kv', caps: ['wascc:keyvalue'] });
    h.puller.set('registry.test/remote-kv:v1', toolbox.bytes);
    h.api.store.create(
      'pods',
      podManifest('remote-kv', {
        annotations: { 'wasmlet.dev/links': '- contract: wascc:keyvalue\n  linkName: shared\n  provider: VPROVIDERONHOSTB\n  values: {URL: "redis://10.0.0.9:6379"}' },
        containers: [{ name: 'app', image: 'registry.test/remote-kv:v1' }],
      }),
    );
    await waitForPod(h.api, 'remote-kv', isReady);
    const link = h.host.links.get(instanceOf('remote-kv'), KEY_VALUE, 'shared')!;
    assert.equal(link.provider, 'VPROVIDERONHOSTB');
    assert.equal(link.values.URL, 'redis://10.0.0.9:6379');
  });

  it('deletes gracefully: stops the actor and its links, then removes the pod with grace 0', async () => {
    assert.ok(h.host.actor('default/echo/echo'));
    h.api.store.delete('pods', 'default', 'echo', { gracePeriodSeconds: 30 });
    assert.ok(h.api.store.get('pods', 'default', 'echo')?.metadata.deletionTimestamp, 'marked for deletion first');
    await waitForGone(h.api, 'echo', 10_000);
    assert.equal(h.host.actor('default/echo/echo'), undefined, 'actor stopped');
    assert.equal(h.host.links.get('default/echo/echo', HTTP_SERVER), undefined, 'link removed');
    await assert.rejects(get(echoPort, '/gone'), 'port closed');
    await h.agent.settled();
    assert.ok(eventsFor(h.api, 'echo').some((e) => e.reason === 'Killing'));
    // The actor can run again for a new pod.
    h.api.store.create('pods', podManifest('echo-again', { containers: [{ name: 'echo', image: 'registry.test/echo:v1', ports: [{ containerPort: echoPort }] }] }));
    await waitForPod(h.api, 'echo-again', isReady);
    assert.equal((await get(echoPort, '/back')).status, 200);
  });

  it('forgets a failed pod once it is deleted', async () => {
    assert.ok(h.agent.pods().some((p) => p.name === 'unclaimed'));
    h.api.store.delete('pods', 'default', 'unclaimed', { gracePeriodSeconds: 30 });
    await waitForGone(h.api, 'unclaimed', 10_000);
    await until(() => !h.agent.pods().some((p) => p.name === 'unclaimed'), 'agent forgot the pod', 5000);
    assert.equal(phaseIs('Failed')(h.api.store.get('pods', 'default', 'bad-annotation')!), true, 'other failed pods stay');
  });
});
