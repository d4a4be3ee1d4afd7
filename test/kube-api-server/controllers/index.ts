/**
 * The cluster parts that are not the API server, for a cluster to try things on: a scheduler,
 * the Deployment and ReplicaSet controllers, the endpoint controllers and the garbage collector.
 * They work on the server's store directly (as in-process controllers would through a cache).
 */
import type { Logger } from 'pino';
import type { KubeStore } from '../kube-store.ts';
import { EndpointsController } from './endpoints.ts';
import { GarbageCollector } from './gc.ts';
import { Scheduler } from './scheduler.ts';
import { DeploymentController, ReplicaSetController } from './workloads.ts';

export interface Controllers {
  stop(): void;
}

/** Starts every controller against `store`; `stop()` ends them. */
export function startControllers(store: KubeStore, logger: Logger): Controllers {
  const parts = [new Scheduler(store, logger), new ReplicaSetController(store, logger), new DeploymentController(store, logger), new EndpointsController(store, logger), new GarbageCollector(store, logger)];
  return {
    stop: () => {
      for (const p of parts) p.stop();
    },
  };
}

export { parseQuantity } from './scheduler.ts';
export { podTemplateHash } from './workloads.ts';
export { SERVICE_NAME_LABEL } from './endpoints.ts';
