/**
 * The node agent with the real OCI puller and a real registry (docker-registry on a free loopback
 * port): a pod's image is pulled (imageID = the manifest digest), pull secrets authenticate to a
 * registry with basic auth, a registry that goes away means ImagePullBackOff and the pod runs once
 * it returns, and a corrupt blob is refused by its digest.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { Host } from '../host/index.ts';
import { NodeAgent } from '../kube/index.ts';
import { createImagePuller } from '../kube/index.ts';
import { pushWasm } from '../kube/index.ts';
import { startKubeApiServer, type KubeApiServer } from './kube-api-server/index.ts';
import { fastOptions, instanceOf, isReady, podManifest, statusOf, waitForPod } from './helpers/kubelet-harness.ts';
import { startOciRegistry, type OciRegistry } from './helpers/oci-registry.ts';
import { toolboxActor } from './helpers/wat.ts';

const REGISTRY_BINARY = '/usr/bin/docker-registry';

describe('node agent with a real registry', { skip: existsSync(REGISTRY_BINARY) ? false : 'docker-registry is not installed' }, () => {
  let api: KubeApiServer;
  let registry: OciRegistry;
  let secured: OciRegistry;
  let host: Host;
  let agent: NodeAgent;
  let dir: string;

  before(async () => {
    const logger = pino({ level: 'silent' });
    dir = await mkdtemp(join(tmpdir(), 'kubelet-registry-'));
    api = await startKubeApiServer({});
    registry = await startOciRegistry();
    secured = await startOciRegistry({ users: [{ username: 'robot', password: 'pw-123' }] });
    host = await Host.start({ workers: 2 }, { logger });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(api.kubeconfigPath);
    const puller = createImagePuller({ cacheDir: join(dir, 'images'), logger });
    agent = await NodeAgent.start(fastOptions(dir, api), { host, puller, logger, kubeConfig });
  });
  after(async () => {
    await agent?.stop();
    await host?.stop();
    await registry?.stop();
    await secured?.stop();
    await api?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('pulls a pushed actor and reports its manifest digest as imageID', async () => {
    const actor = await toolboxActor({ name: 'pushed', caps: [] });
    const pushed = await pushWasm(actor.bytes, `${registry.host}/wasmlet/pushed:v1`);
    api.store.create('pods', podManifest('pushed', { containers: [{ name: 'app', image: `${registry.host}/wasmlet/pushed:v1` }] }));
    const pod = await waitForPod(api, 'pushed', isReady, 30_000);
    assert.equal(statusOf(pod).containerStatuses![0].imageID, pushed.imageID);
    assert.equal(host.actor(instanceOf('pushed'))?.module, actor.id);
  });

  it('authenticates with the imagePullSecrets of the pod', async () => {
    const actor = await toolboxActor({ name: 'private', caps: [] });
    const creds = [{ registry: secured.host, username: 'robot', password: 'pw-123' }];
    await pushWasm(actor.bytes, `${secured.host}/team/private:v1`, { credentials: creds });
    api.store.create('pods', podManifest('no-secret', { containers: [{ name: 'app', image: `${secured.host}/team/private:v1` }] }));
    const refused = await waitForPod(api, 'no-secret', (p) => ['ErrImagePull', 'ImagePullBackOff'].includes(statusOf(p).containerStatuses?.[0]?.state?.waiting?.reason), 30_000);
    assert.match(statusOf(refused).containerStatuses![0].state.waiting.message, /UNAUTHORIZED|unauthorized|401/i);
    const config = JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('robot:pw-123').toString('base64') } } });
    api.store.create('secrets', { metadata: { name: 'robot', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(config).toString('base64') } });
    api.store.create('pods', podManifest('with-secret', { imagePullSecrets: [{ name: 'robot' }], containers: [{ name: 'app', image: `${secured.host}/team/private:v1` }] }));
    await waitForPod(api, 'with-secret', isReady, 30_000);
  });

  it('backs off while the registry is down, and runs the pod once it is back', async () => {
    const actor = await toolboxActor({ name: 'outage', caps: [] });
    await pushWasm(actor.bytes, `${registry.host}/wasmlet/outage:v1`);
    await registry.kill();
    try {
      api.store.create('pods', podManifest('outage', { containers: [{ name: 'app', image: `${registry.host}/wasmlet/outage:v1` }] }));
      const p = await waitForPod(api, 'outage', (x) => statusOf(x).containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff', 30_000);
      assert.equal(statusOf(p).phase, 'Pending');
    } finally {
      await registry.restart();
    }
    await waitForPod(api, 'outage', isReady, 30_000);
  });

  it('refuses a blob whose bytes do not match its digest', async () => {
    const actor = await toolboxActor({ name: 'tampered', caps: [] });
    const pushed = await pushWasm(actor.bytes, `${registry.host}/wasmlet/tampered:v1`);
    const evil = new Uint8Array(actor.bytes);
    evil[evil.length - 1] ^= 0xff;
    await writeFile(registry.blobDataPath(pushed.layerDigest), evil);
    api.store.create('pods', podManifest('tampered', { containers: [{ name: 'app', image: `${registry.host}/wasmlet/tampered:v1` }] }));
    const p = await waitForPod(api, 'tampered', (x) => ['ErrImagePull', 'ImagePullBackOff'].includes(statusOf(x).containerStatuses?.[0]?.state?.waiting?.reason), 30_000);
    assert.match(statusOf(p).containerStatuses![0].state.waiting.message, /digest|DIGEST/);
    assert.equal(host.actor(instanceOf('tampered')), undefined);
  });
});
