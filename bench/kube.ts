/**
 * Node agent benchmark: pod apply → Ready, with the image uncached (pulled from a local registry)
 * and cached, against a baseline measured in the same run (starting the same actor straight on
 * the host, no Kubernetes); a burst of pods applied at once; and pods per node at steady state
 * (memory per idle actor pod, API requests per second while nothing changes).
 * Then the same node against the sandbox (kube-sandbox.ts): apply → Ready of single pods and of a
 * Deployment's pods through the API and scheduler, and the CPU of a readiness probe.
 * Usage: node --expose-gc --import tsx bench/kube.ts [--pods 10] [--burst 50] [--steady 200] [--sandbox-only]
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { HttpServerProvider, LoggingProvider } from '../capabilities/index.ts';
import { Host, LOGGING } from '../host/index.ts';
import { createImagePuller, NodeAgent, pushWasm } from '../kube/index.ts';
import { startOciRegistry, type OciRegistry } from '../test/helpers/oci-registry.ts';
import { compileWat, signTestActor, toolboxWat, type SignedTestActor } from '../test/helpers/wat.ts';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '../test/kube-api-server/index.ts';
import { reportSandbox, runSandbox } from './kube-sandbox.ts';

export interface KubeBenchOptions {
  /** Pods applied one after another for the latency figures. Default 10. */
  pods?: number;
  /** Pods applied at once. Default 50. */
  burst?: number;
  /** Idle actor pods for the steady-state figures. Default 200. */
  steady?: number;
}

export interface Latency {
  median: number;
  p90: number;
  mean: number;
}

export interface KubeBenchResult {
  source: 'registry' | 'local files';
  baselineStart: Latency;
  uncached: Latency;
  cached: Latency;
  burst: { pods: number; ms: number; podsPerSec: number };
  steady: { pods: number; rssPerPodKiB: number; heapPerPodKiB: number; podsPerGiB: number; apiRequestsPerSec: number };
}

const NODE = 'bench-node';

function latency(samples: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p90: s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

function pod(name: string, image: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', annotations: { 'wasmlet.dev/capabilities': 'logging' } },
    spec: {
      nodeName: NODE,
      tolerations: [{ key: 'wasmlet.dev/arch', operator: 'Exists' }],
      containers: [{ name: 'app', image, imagePullPolicy: 'IfNotPresent' }],
    },
  };
}

const ready = (p: KubeObject | undefined) => ((p?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

async function applyAndWait(api: KubeApiServer, names: string[], image: (i: number) => string): Promise<number> {
  const t = performance.now();
  names.forEach((n, i) => api.store.create('pods', pod(n, image(i))));
  await Promise.all(names.map((n) => api.store.waitFor('pods', 'default', n, ready, 120_000)));
  return performance.now() - t;
}

async function deleteAll(api: KubeApiServer, names: string[]): Promise<void> {
  for (const n of names) api.store.delete('pods', 'default', n, { gracePeriodSeconds: 30 });
  await Promise.all(names.map((n) => api.store.waitFor('pods', 'default', n, (p) => p === undefined, 120_000)));
}

export async function run(o: KubeBenchOptions = {}): Promise<KubeBenchResult> {
  const nPods = o.pods ?? 10;
  const nBurst = o.burst ?? 50;
  const nSteady = o.steady ?? 200;
  const logger = pino({ level: 'silent' });
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-bench-kube-'));
  const api = await startKubeApiServer({ historySize: 100_000 });
  let registry: OciRegistry | undefined;
  const host = await Host.start({ workers: 2 }, { logger });
  let agent: NodeAgent | undefined;
  try {
    await host.addProvider(new HttpServerProvider());
    await host.addProvider(new LoggingProvider());
    const useRegistry = existsSync('/usr/bin/docker-registry');
    if (useRegistry) registry = await startOciRegistry();
    const bytes = await compileWat(toolboxWat());
    const actors: SignedTestActor[] = Array.from({ length: Math.max(nPods, nBurst, nSteady) + nPods }, (_, i) => signTestActor(bytes, { name: `bench-${i}`, caps: ['wascc:logging'] }));
    const refs: string[] = [];
    for (const [i, a] of actors.entries()) {
      if (registry) refs.push((await pushWasm(a.bytes, `${registry.host}/bench/actor-${i}:v1`)).reference);
      else {
        const file = join(dir, `actor-${i}.wasm`);
        await writeFile(file, a.bytes);
        refs.push(`file://${file}`);
      }
    }

    // Baseline: the same kind of actor started straight on the host, with its link.
    const base: number[] = [];
    for (const a of actors.slice(-nPods)) {
      const t = performance.now();
      await host.startActor(a.bytes);
      await host.putLink({ actor: a.id, contract: LOGGING, values: {} });
      base.push(performance.now() - t);
    }
    for (const a of actors.slice(-nPods)) {
      await host.deleteLink(a.id, LOGGING);
      await host.stopActor(a.id);
    }

    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(api.kubeconfigPath);
    const puller = createImagePuller({ cacheDir: join(dir, 'images'), allowLocalFiles: !registry, logger });
    agent = await NodeAgent.start({ nodeName: NODE, address: '127.0.0.1', port: 0, tokenReview: false, maxPods: nSteady + 10, dataDir: join(dir, 'kubelet') }, { host, puller, logger, kubeConfig });

    const names = Array.from({ length: nPods }, (_, i) => `seq-${i}`);
    const uncached: number[] = [];
    for (const [i, n] of names.entries()) uncached.push(await applyAndWait(api, [n], () => refs[i]!));
    await deleteAll(api, names);
    const cached: number[] = [];
    for (const [i, n] of names.entries()) cached.push(await applyAndWait(api, [`${n}-again`], () => refs[i]!));
    await deleteAll(api, names.map((n) => `${n}-again`));

    // Burst: images cached first, then every pod at once.
    const burstNames = Array.from({ length: nBurst }, (_, i) => `burst-${i}`);
    for (let i = 0; i < nBurst; i++) await puller.pull(refs[i]!, { policy: 'IfNotPresent' });
    const burstMs = await applyAndWait(api, burstNames, (i) => refs[i]!);
    await deleteAll(api, burstNames);

    // Steady state: many idle actor pods.
    const steadyNames = Array.from({ length: nSteady }, (_, i) => `steady-${i}`);
    for (let i = 0; i < nSteady; i++) await puller.pull(refs[i]!, { policy: 'IfNotPresent' });
    globalThis.gc?.();
    const before = process.memoryUsage();
    await applyAndWait(api, steadyNames, (i) => refs[i]!);
    await agent.settled();
    await new Promise((r) => setTimeout(r, 1000));
    globalThis.gc?.();
    const after = process.memoryUsage();
    const r0 = api.requests.length;
    const windowMs = 12_000; // longer than the lease and node status intervals (10 s)
    await new Promise((r) => setTimeout(r, windowMs));
    const apiRequestsPerSec = (api.requests.length - r0) / (windowMs / 1000);
    const rssPerPod = (after.rss - before.rss) / nSteady;
    const heapPerPod = (after.heapUsed - before.heapUsed) / nSteady;
    await deleteAll(api, steadyNames);

    return {
      source: registry ? 'registry' : 'local files',
      baselineStart: latency(base),
      uncached: latency(uncached),
      cached: latency(cached),
      burst: { pods: nBurst, ms: burstMs, podsPerSec: nBurst / (burstMs / 1000) },
      steady: { pods: nSteady, rssPerPodKiB: rssPerPod / 1024, heapPerPodKiB: heapPerPod / 1024, podsPerGiB: rssPerPod > 0 ? Math.floor((1024 ** 3) / rssPerPod) : Infinity, apiRequestsPerSec },
    };
  } finally {
    await agent?.stop();
    await host.stop();
    await registry?.stop();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export function report(r: KubeBenchResult): string {
  const f = (n: number) => n.toFixed(1);
  const row = (name: string, l: Latency) => `| ${name} | ${f(l.median)} | ${f(l.p90)} | ${f(l.mean)} | ${(l.median / r.baselineStart.median).toFixed(1)}× |`;
  return [
    `Images from: ${r.source}. Baseline: the same actor started on the host directly (startActor + putLink).`,
    '',
    '| path | median ms | p90 ms | mean ms | median ratio to baseline |',
    '|---|---:|---:|---:|---:|',
    row('baseline: host.startActor + link', r.baselineStart),
    row('pod apply → Ready, image uncached', r.uncached),
    row('pod apply → Ready, image cached', r.cached),
    '',
    `Burst: ${r.burst.pods} pods applied at once, all Ready in ${f(r.burst.ms)} ms (${f(r.burst.podsPerSec)} pods/s).`,
    `Steady state: ${r.steady.pods} idle actor pods: ${f(r.steady.rssPerPodKiB)} KiB RSS and ${f(r.steady.heapPerPodKiB)} KiB heap per pod (≈ ${r.steady.podsPerGiB} pods per GiB of RSS); ${f(r.steady.apiRequestsPerSec)} API requests/s while nothing changes.`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : undefined);
  const opts: KubeBenchOptions = {};
  const [pods, burst, steady] = [arg('--pods'), arg('--burst'), arg('--steady')];
  if (pods) opts.pods = pods;
  if (burst) opts.burst = burst;
  if (steady) opts.steady = steady;
  if (!process.argv.includes('--sandbox-only')) process.stdout.write(`## Kubernetes node agent\n\n${report(await run(opts))}\n`);
  process.stdout.write(`\n## Kubernetes node on the sandbox\n\n${reportSandbox(await runSandbox(pods ? { pods } : {}))}\n`);
}
