/**
 * The node against the sandbox (`wasmlet sandbox`: API server, scheduler, controllers, registry,
 * node, all in this process): pod apply → Ready with the image cached, for single pods and for
 * the pods of a 10-replica Deployment, through the API server's HTTP API and its scheduler; and
 * the CPU one readiness probe costs the node (probe, HTTP server, actor call), measured as the CPU
 * of probed pods minus the same pods unprobed, per probe.
 * Usage: node --import tsx bench/kube-sandbox.ts [--pods 20] [--probe-seconds 10]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { pushWasm, startSandbox } from '../kube/index.ts';
import { compileWat, signTestActor, toolboxWat } from '../test/helpers/wat.ts';
import type { KubeObject } from '../test/kube-api-server/index.ts';

export interface SandboxBenchResult {
  singlePod: { median: number; p99: number; n: number };
  deployment: { median: number; p99: number; n: number; allReadyMedianMs: number };
  probe: { pods: number; seconds: number; probes: number; cpuMsPerProbe: number; idleCpuMsPerSec: number };
}

const TOLERATIONS = [{ key: 'wasmlet.dev/arch', operator: 'Exists' }];
const ready = (p: KubeObject | undefined) => ((p?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

function quantiles(samples: number[]): { median: number; p99: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p99: s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!, n: s.length };
}

function podSpec(image: string, probe?: Record<string, unknown>): Record<string, unknown> {
  return {
    tolerations: TOLERATIONS,
    nodeSelector: { 'kubernetes.io/arch': 'wasm32-wasmlet' },
    containers: [{ name: 'app', image, imagePullPolicy: 'IfNotPresent', ports: [{ containerPort: 8080 }], ...(probe ? { readinessProbe: probe } : {}) }],
  };
}

export async function runSandbox(o: { pods?: number; probeSeconds?: number } = {}): Promise<SandboxBenchResult> {
  const nPods = o.pods ?? 20;
  const probeSeconds = o.probeSeconds ?? 10;
  const logger = pino({ level: 'silent' });
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-bench-sandbox-'));
  const sandbox = await startSandbox({ dataDir: dir, registryPort: 0, podCidr: '127.11.0.0/16', buildDemos: false, workers: 2, logger });
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(sandbox.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const store = sandbox.api.store;
    const actor = signTestActor(await compileWat(toolboxWat()), { name: 'bench', caps: ['wascc:http_server'] });
    const image = (await pushWasm(actor.bytes, `${sandbox.registry}/bench/toolbox:v1`)).reference;
    const waitGone = (ns: string, name: string) => store.waitFor('pods', ns, name, (p) => p === undefined, 60_000);

    // Single pods: one warm-up that pulls the image into the cache, then nPods apply → Ready.
    const single: number[] = [];
    for (let i = -1; i < nPods; i++) {
      const name = `single-${i + 1}`;
      const t = performance.now();
      await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name }, spec: podSpec(image) as never } });
      await store.waitFor('pods', 'default', name, ready, 60_000);
      if (i >= 0) single.push(performance.now() - t);
      await core.deleteNamespacedPod({ name, namespace: 'default' });
      await waitGone('default', name);
    }

    // Deployments of 10 replicas: apply → each pod Ready, until nPods pods were measured.
    const perPod: number[] = [];
    const allReady: number[] = [];
    for (let d = 0; perPod.length < nPods; d++) {
      const name = `bench-${d}`;
      const labels = { app: name };
      const t = performance.now();
      const seen = new Map<string, number>();
      const unsubscribe = store.subscribe((e) => {
        if (e.resource === 'pods' && e.object.metadata.labels?.app === name && ready(e.object) && !seen.has(e.object.metadata.name!)) seen.set(e.object.metadata.name!, performance.now() - t);
      });
      await apps.createNamespacedDeployment({ namespace: 'default', body: { metadata: { name }, spec: { replicas: 10, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: podSpec(image) as never } } } });
      await store.waitFor('deployments', 'default', name, (x) => (x?.status as { readyReplicas?: number } | undefined)?.readyReplicas === 10, 120_000);
      unsubscribe();
      perPod.push(...seen.values());
      allReady.push(Math.max(...seen.values()));
      await apps.deleteNamespacedDeployment({ name, namespace: 'default' });
      await waitFor(() => store.list('pods', { labelSelector: `app=${name}` }).length === 0, 60_000);
    }

    // Probe CPU: the same pods with and without a 1 s httpGet readiness probe.
    const probePods = nPods;
    const cpuOver = async (probe: Record<string, unknown> | undefined): Promise<number> => {
      const names = Array.from({ length: probePods }, (_, i) => `probe-${probe ? 'on' : 'off'}-${i}`);
      for (const name of names) await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name }, spec: podSpec(image, probe) as never } });
      await Promise.all(names.map((n) => store.waitFor('pods', 'default', n, ready, 60_000)));
      await sandbox.agent.settled();
      await new Promise((r) => setTimeout(r, 1500));
      const c0 = process.cpuUsage();
      await new Promise((r) => setTimeout(r, probeSeconds * 1000));
      const c = process.cpuUsage(c0);
      for (const name of names) await core.deleteNamespacedPod({ name, namespace: 'default' });
      await Promise.all(names.map((n) => waitGone('default', n)));
      return (c.user + c.system) / 1000;
    };
    const idle = await cpuOver(undefined);
    const probed = await cpuOver({ httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 });
    const probes = probePods * probeSeconds;
    return {
      singlePod: quantiles(single),
      deployment: { ...quantiles(perPod.slice(0, nPods)), allReadyMedianMs: quantiles(allReady).median },
      probe: { pods: probePods, seconds: probeSeconds, probes, cpuMsPerProbe: Math.max(0, probed - idle) / probes, idleCpuMsPerSec: idle / probeSeconds },
    };
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function reportSandbox(r: SandboxBenchResult): string {
  const f = (n: number) => n.toFixed(1);
  return [
    'Against the sandbox (API server with scheduler and controllers, registry and node in one process), image cached, created through the API:',
    '',
    '| path | pods | median ms | p99 ms | target |',
    '|---|---:|---:|---:|---:|',
    `| one pod: apply → Ready | ${r.singlePod.n} | ${f(r.singlePod.median)} | ${f(r.singlePod.p99)} | ≤ 200 median |`,
    `| 10-replica Deployment: apply → each pod Ready | ${r.deployment.n} | ${f(r.deployment.median)} | ${f(r.deployment.p99)} | |`,
    '',
    `10-replica Deployment, apply → all 10 Ready: median ${f(r.deployment.allReadyMedianMs)} ms.`,
    `Readiness probes (httpGet every 1 s on ${r.probe.pods} pods for ${r.probe.seconds} s, ${r.probe.probes} probes): ${(r.probe.cpuMsPerProbe * 1000).toFixed(0)} µs of CPU per probe (probe, HTTP server and actor call), over ${f(r.probe.idleCpuMsPerSec)} ms/s of CPU the same pods cost unprobed.`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : undefined);
  const pods = arg('--pods');
  const probeSeconds = arg('--probe-seconds');
  process.stdout.write(`## Kubernetes node on the sandbox\n\n${reportSandbox(await runSandbox({ ...(pods ? { pods } : {}), ...(probeSeconds ? { probeSeconds } : {}) }))}\n`);
  process.exit(0);
}
