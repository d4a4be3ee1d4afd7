/**
 * `wasmlet sandbox`: a single-node Kubernetes API sandbox on loopback, in one process, to try the
 * node on and for tests. It is the project's Kubernetes API test server with its controllers
 * (a scheduler that respects taints and tolerations, Deployments, ReplicaSets, EndpointSlices,
 * garbage collection), an OCI registry holding the demos' images, and a wasmlet kubelet joined to
 * it with a loopback pod CIDR, so replicas get their own IPs. It is not a Kubernetes: there is no
 * kube-proxy, DNS, RBAC or persistence, and everything is gone when it stops.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { z } from 'zod';
import { builtinProviders } from '../../capabilities/index.ts';
import { Host, parseWith } from '../../host/index.ts';
import { startKubeApiServer, type KubeApiServer } from '../../test/kube-api-server/index.ts';
import { NodeAgent } from '../node-agent.ts';
import { createImagePuller } from '../oci/puller.ts';
import { buildAndPushDemos, DEMO_REGISTRY, pushShippedDemos } from './demos.ts';
import { SandboxRegistry } from './registry.ts';

export const sandboxOptionsSchema = z
  .object({
    /** Where the kubeconfig, image cache, pod volumes and build cache go. Required. */
    dataDir: z.string().min(1),
    /** The node's name. Default `wasmlet-sandbox`. */
    nodeName: z.string().min(1).default('wasmlet-sandbox'),
    /** Pods' addresses. Default `127.10.0.0/24` (loopback: no setup on Linux). */
    podCidr: z.string().min(1).default('127.10.0.0/24'),
    /** The registry's port on 127.0.0.1. Default 5000, the port the demos' images name; 0 or a taken port: a free one (the node then maps 127.0.0.1:5000 to it). */
    registryPort: z.number().int().min(0).max(65535).default(5000),
    /** API server HTTPS port on 127.0.0.1 (0: a free one). Default 0. */
    apiPort: z.number().int().min(0).max(65535).default(0),
    /** Build the TypeScript demos and push them. Default true. */
    buildDemos: z.boolean().default(true),
    /** Worker threads of the node's host. Default: the host's default. */
    workers: z.number().int().min(1).max(256).optional(),
    logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function', 'a pino logger'),
  })
  .strict();

export type SandboxOptionsInput = z.input<typeof sandboxOptionsSchema>;

export interface Sandbox {
  readonly api: KubeApiServer;
  readonly agent: NodeAgent;
  readonly host: Host;
  /** `127.0.0.1:<port>` of the registry. */
  readonly registry: string;
  /** The kubeconfig to use (`export KUBECONFIG=…`). */
  readonly kubeconfigPath: string;
  /** Resolves when the TypeScript demos were built and pushed (or failed to). */
  readonly demosBuilt: Promise<string[]>;
  stop(): Promise<void>;
}

async function startRegistry(port: number, logger: Logger): Promise<SandboxRegistry> {
  try {
    return await SandboxRegistry.start({ port, logger });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw err;
    logger.warn({ port }, `port ${port} is taken: the sandbox registry takes a free port and the node pulls 127.0.0.1:${port}/… images from it`);
    return SandboxRegistry.start({ port: 0, logger });
  }
}

export async function startSandbox(input: SandboxOptionsInput): Promise<Sandbox> {
  const o = parseWith(sandboxOptionsSchema, 'sandbox options', input);
  const log = o.logger;
  await mkdir(o.dataDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch((err: unknown) => log.warn({ err }, 'sandbox part did not stop cleanly'));
  };
  try {
    const api = await startKubeApiServer({ controllers: true, httpsPort: o.apiPort, kubeconfigDir: o.dataDir, logger: log.child({ part: 'api-server' }) });
    stops.push(() => api.close());
    const registry = await startRegistry(o.registryPort, log.child({ part: 'registry' }));
    stops.push(() => registry.close());
    await pushShippedDemos(registry.host, log);

    const host = await Host.start({ ...(o.workers ? { workers: o.workers } : {}), labels: { 'wasmlet.dev/node': o.nodeName } }, { logger: log });
    stops.push(() => host.stop());
    for (const make of Object.values(builtinProviders)) await host.addProvider(make({}, log));
    const puller = createImagePuller({
      cacheDir: join(o.dataDir, 'images'),
      ...(registry.host !== DEMO_REGISTRY ? { mirrors: { [DEMO_REGISTRY]: registry.host } } : {}),
      logger: log,
    });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(api.kubeconfigPath);
    const agent = await NodeAgent.start(
      {
        nodeName: o.nodeName,
        address: '127.0.0.1',
        podCidr: o.podCidr,
        port: 0,
        clientCa: api.tls.cert,
        tokenReview: false,
        dataDir: join(o.dataDir, 'kubelet'),
      },
      { host, puller, logger: log, kubeConfig },
    );
    stops.push(() => agent.stop());
    const building = new AbortController();
    stops.push(async () => building.abort());
    const demosBuilt = o.buildDemos ? buildAndPushDemos(registry.host, o.dataDir, log, building.signal) : Promise.resolve([]);
    return { api, agent, host, registry: registry.host, kubeconfigPath: api.kubeconfigPath, demosBuilt, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
