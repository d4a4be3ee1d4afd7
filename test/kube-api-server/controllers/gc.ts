/**
 * The garbage collector, for background deletion (kubectl's default): when an object is gone, the
 * objects it owned (`metadata.ownerReferences`) are deleted too, and theirs in turn as they go
 * (a Deployment's ReplicaSets, their pods; a Service's EndpointSlices). Pods on a node are deleted
 * gracefully, as any pod delete.
 */
import type { Logger } from 'pino';
import type { KubeStore } from '../kube-store.ts';

/** Kinds that have owners here. */
const DEPENDENTS = ['replicasets', 'pods', 'endpointslices'];

export class GarbageCollector {
  readonly #unsubscribe: () => void;

  constructor(store: KubeStore, logger: Logger) {
    this.#unsubscribe = store.subscribe((e) => {
      if (e.type !== 'DELETED' || !e.object.metadata.uid) return;
      const uid = e.object.metadata.uid;
      const namespace = e.object.metadata.namespace;
      setImmediate(() => {
        for (const resource of DEPENDENTS) {
          for (const o of store.list(resource, namespace ? { namespace } : {})) {
            if (!(o.metadata.ownerReferences ?? []).some((r) => r.uid === uid) || o.metadata.deletionTimestamp) continue;
            try {
              store.delete(resource, o.metadata.namespace, o.metadata.name!);
            } catch (err) {
              logger.debug({ err, resource, name: o.metadata.name }, 'dependent already gone');
            }
          }
        }
      });
    });
  }

  stop(): void {
    this.#unsubscribe();
  }
}
