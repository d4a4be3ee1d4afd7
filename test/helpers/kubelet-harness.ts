/**
 * A node agent under test: the Kubernetes API test server, a real Host with the built-in
 * providers, a FakeImagePuller, and a NodeAgent with fast timings, plus helpers to create pods,
 * wait for their status, read Events, and run kubectl against the server.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { HttpServerProvider, KeyValueProvider, LoggingProvider } from '../../capabilities/index.ts';
import { Host, type ActorRuntime } from '../../host/index.ts';
import { NodeAgent } from '../../kube/index.ts';
import type { NodeAgentOptionsInput } from '../../kube/index.ts';
import { startKubeApiServer, type KubeApiServer } from '../kube-api-server/index.ts';
import type { KubeObject } from '../kube-api-server/index.ts';
import { FakeImagePuller } from './fake-image-puller.ts';

export const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));
export const KUBELET_TOKEN = 'kubelet-test-token';
export const NODE = 'wasmlet-test-node';

export interface KubeletHarness {
  api: KubeApiServer;
  host: Host;
  http: HttpServerProvider;
  puller: FakeImagePuller;
  agent: NodeAgent;
  dir: string;
  /** Starts a new agent (after `agent.stop()`), with the same options unless overridden. */
  restartAgent(overrides?: Partial<NodeAgentOptionsInput>): Promise<NodeAgent>;
  close(): Promise<void>;
}

/** Options that make every timer of the agent fast, for tests. */
export function fastOptions(dir: string, api: KubeApiServer): NodeAgentOptionsInput {
  return {
    nodeName: NODE,
    address: '127.0.0.1',
    port: 0,
    tokens: [KUBELET_TOKEN],
    tokenReview: false,
    clientCa: api.tls.cert,
    leaseRenewIntervalMs: 200,
    nodeStatusUpdateIntervalMs: 300,
    podStatusRetryMs: 200,
    apiBackoff: { baseMs: 50, maxMs: 500 },
    imagePullBackoff: { baseMs: 100, maxMs: 800 },
    crashLoopBackoff: { baseMs: 200, maxMs: 1600 },
    trapPollMs: 50,
    crashTraps: 3,
    crashWindowMs: 10_000,
    defaultGracePeriodSeconds: 5,
    dataDir: join(dir, 'kubelet'),
  };
}

export async function startKubeletHarness(opts: { agent?: Partial<NodeAgentOptionsInput>; workers?: number; bookmarkIntervalMs?: number; runtimes?: ActorRuntime[] } = {}): Promise<KubeletHarness> {
  const logger = pino({ level: process.env.WASMLET_TEST_LOG ?? 'silent' });
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-kubelet-test-'));
  const api = await startKubeApiServer({ bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 1000 });
  const host = await Host.start({ workers: opts.workers ?? 2, deadlineMs: 1500, drainMs: 2000 }, { logger, ...(opts.runtimes ? { runtimes: opts.runtimes } : {}) });
  const http = new HttpServerProvider({ drainTimeoutMs: 2000 });
  await host.addProvider(http);
  await host.addProvider(new KeyValueProvider());
  await host.addProvider(new LoggingProvider());
  const puller = new FakeImagePuller();
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(api.kubeconfigPath);
  const base = { ...fastOptions(dir, api), ...opts.agent };
  const h: KubeletHarness = {
    api,
    host,
    http,
    puller,
    dir,
    agent: await NodeAgent.start(base, { host, puller, logger, kubeConfig }),
    async restartAgent(overrides = {}) {
      await h.agent.stop();
      h.agent = await NodeAgent.start({ ...base, ...overrides }, { host, puller, logger, kubeConfig });
      return h.agent;
    },
    async close() {
      await h.agent.stop().catch(() => {});
      await host.stop();
      await api.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** A loopback /24 of its own, so test files running at once do not share addresses. */
export function loopbackCidr(): { cidr: string; prefix: string } {
  const octet = 20 + Math.floor(Math.random() * 200);
  const third = Math.floor(Math.random() * 250);
  return { cidr: `127.${octet}.${third}.0/24`, prefix: `127.${octet}.${third}.` };
}

/** The host instance id of a pod's actor container. */
export function instanceOf(pod: string, container = 'app', namespace = 'default'): string {
  return `${namespace}/${pod}/${container}`;
}

/** A pod bound to the test node, tolerating its taints. */
export function podManifest(name: string, spec: Partial<NonNullable<V1Pod['spec']>> & { annotations?: Record<string, string>; labels?: Record<string, string>; namespace?: string } = {}): Record<string, unknown> {
  const { annotations, labels, namespace, ...rest } = spec;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: namespace ?? 'default', labels: { app: name, ...labels }, ...(annotations ? { annotations } : {}) },
    spec: {
      nodeName: NODE,
      tolerations: [
        { key: 'wasmlet.dev/arch', operator: 'Equal', value: 'wasm32-wasmlet', effect: 'NoSchedule' },
        { key: 'wasmlet.dev/arch', operator: 'Equal', value: 'wasm32-wasmlet', effect: 'NoExecute' },
      ],
      containers: [{ name: 'app', image: `registry.test/${name}:v1` }],
      ...rest,
    },
  };
}

type PodStatus = { phase?: string; conditions?: { type: string; status: string; reason?: string }[]; containerStatuses?: any[]; initContainerStatuses?: any[]; reason?: string; message?: string; podIP?: string; startTime?: string };

export function statusOf(pod: KubeObject | undefined): PodStatus {
  return ((pod as { status?: PodStatus } | undefined)?.status ?? {}) as PodStatus;
}

export function condition(pod: KubeObject | undefined, type: string): string | undefined {
  return statusOf(pod).conditions?.find((c) => c.type === type)?.status;
}

/** Waits until the pod satisfies `check` (checked on every change); returns it. */
export async function waitForPod(api: KubeApiServer, name: string, check: (pod: KubeObject) => boolean, timeoutMs = 15_000, namespace = 'default'): Promise<KubeObject> {
  try {
    return (await api.store.waitFor('pods', namespace, name, (p) => p !== undefined && check(p), timeoutMs))!;
  } catch (err) {
    const pod = api.store.get('pods', namespace, name);
    throw new Error(`${(err as Error).message}; pod status now: ${JSON.stringify(statusOf(pod))}`, { cause: err });
  }
}

export const isReady = (p: KubeObject) => condition(p, 'Ready') === 'True';
export const phaseIs = (phase: string) => (p: KubeObject) => statusOf(p).phase === phase;

/** Waits until the pod no longer exists. */
export async function waitForGone(api: KubeApiServer, name: string, timeoutMs = 15_000, namespace = 'default'): Promise<void> {
  await api.store.waitFor('pods', namespace, name, (p) => p === undefined, timeoutMs);
}

/** Events about a pod, oldest first. */
export function eventsFor(api: KubeApiServer, name: string, namespace = 'default'): { reason: string; message: string; type: string; count: number }[] {
  return api.store
    .list('events', { namespace, fieldSelector: `involvedObject.name=${name}` })
    .map((e) => e as unknown as { reason: string; message: string; type: string; count: number });
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs kubectl against the test server (it must be installed: check KUBECTL first). */
export function kubectl(api: KubeApiServer, cacheDir: string, ...args: string[]): Promise<KubectlResult> {
  return new Promise((resolve) => {
    execFile(KUBECTL!, ['--kubeconfig', api.kubeconfigPath, '--cache-dir', cacheDir, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}

/**
 * Plays the scheduler for tests (the API test server has none): binds each pod that has no node
 * yet to `nodeName` when its nodeSelector matches the node's labels and its tolerations tolerate
 * the node's NoSchedule taints, through the real `pods/binding` API. Returns a stop function.
 */
export function startTestScheduler(api: KubeApiServer, nodeName = NODE): () => void {
  const kc = new KubeConfig();
  kc.loadFromFile(api.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const tolerates = (tols: Toleration[], taint: { key: string; value?: string; effect: string }) =>
    tols.some((t) => (t.operator === 'Exists' ? !t.key || t.key === taint.key : t.key === taint.key && (t.value ?? '') === (taint.value ?? '')) && (!t.effect || t.effect === taint.effect));
  const binding = new Set<string>();
  const consider = () => {
    const node = api.store.get('nodes', undefined, nodeName) as unknown as { metadata: { labels?: Record<string, string> }; spec?: { taints?: { key: string; value?: string; effect: string }[] } } | undefined;
    if (!node) return;
    for (const pod of api.store.list('pods')) {
      const spec = pod.spec as { nodeName?: string; nodeSelector?: Record<string, string>; tolerations?: Toleration[] };
      const key = `${pod.metadata.namespace}/${pod.metadata.name}/${pod.metadata.uid}`;
      if (spec.nodeName || binding.has(key) || pod.metadata.deletionTimestamp) continue;
      const selected = Object.entries(spec.nodeSelector ?? {}).every(([k, v]) => node.metadata.labels?.[k] === v);
      const tolerated = (node.spec?.taints ?? []).filter((t) => t.effect !== 'PreferNoSchedule').every((t) => tolerates(spec.tolerations ?? [], t));
      if (!selected || !tolerated) continue;
      binding.add(key);
      void core
        .createNamespacedPodBinding({ name: pod.metadata.name!, namespace: pod.metadata.namespace!, body: { metadata: { name: pod.metadata.name! }, target: { kind: 'Node', name: nodeName } } })
        .catch(() => binding.delete(key));
    }
  };
  const unsubscribe = api.store.subscribe((e) => {
    if (e.resource === 'pods' || e.resource === 'nodes') consider();
  });
  consider();
  return unsubscribe;
}
