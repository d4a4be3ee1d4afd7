/**
 * Direct access to the test server's objects for tests: read what clients wrote, and set state
 * (e.g. a pod's status) as another component of the cluster would. Writes go through the same
 * API semantics as HTTP requests (resource versions, watch events, validation).
 */
import type { Registry } from './registry.ts';
import { resourceByPlural, type ResourceDef } from './resources.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import type { KubeObject, StoreEvent } from './types.ts';
import type { PatchType } from './patch.ts';

export interface StoreListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

function defOf(resource: string): ResourceDef {
  const def = resourceByPlural(resource);
  if (!def) throw new TypeError(`unknown resource ${JSON.stringify(resource)} (use a plural such as "pods")`);
  return def;
}

export class KubeStore {
  constructor(private readonly registry: Registry) {}

  /** The latest resource version issued. */
  get resourceVersion(): number {
    return this.registry.store.resourceVersion;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.registry.store.get(defOf(resource).plural, namespace, name);
  }

  list(resource: string, options: StoreListOptions = {}): KubeObject[] {
    const def = defOf(resource);
    return this.registry.list(def, {
      filter: {
        namespace: options.namespace,
        labels: parseLabelSelector(options.labelSelector ?? ''),
        fields: parseFieldSelector(options.fieldSelector ?? '', def),
      },
    }).items;
  }

  /** Creates an object; a namespaced object names its namespace in `metadata.namespace`. */
  create(resource: string, obj: unknown): KubeObject {
    const def = defOf(resource);
    const ns = (obj as KubeObject | undefined)?.metadata?.namespace;
    return this.registry.create(def, def.namespaced ? ns : undefined, obj);
  }

  /** Replaces an object (PUT semantics; `status` is kept for resources with a status subresource). */
  update(resource: string, obj: KubeObject): KubeObject {
    return this.registry.update(defOf(resource), obj.metadata.namespace, obj.metadata.name!, obj, 'main');
  }

  /** Replaces an object's status (PUT on `/status`). */
  updateStatus(resource: string, obj: KubeObject): KubeObject {
    return this.registry.update(defOf(resource), obj.metadata.namespace, obj.metadata.name!, obj, 'status');
  }

  patch(resource: string, namespace: string | undefined, name: string, type: PatchType, patch: unknown, options: { status?: boolean; fieldManager?: string } = {}): KubeObject {
    const body = typeof patch === 'string' ? patch : JSON.stringify(patch);
    return this.registry.patch(defOf(resource), namespace, name, type, body, options.status ? 'status' : 'main', options.fieldManager ?? 'test');
  }

  /** Deletes as DELETE does: pods on a node are only marked (deletionTimestamp) unless the grace period is 0. */
  delete(resource: string, namespace: string | undefined, name: string, options: { gracePeriodSeconds?: number } = {}): { object: KubeObject; removed: boolean } {
    return this.registry.delete(defOf(resource), namespace, name, options);
  }

  /** Binds a pod to a node, as a POST to `pods/{name}/binding` does (a scheduler's write). */
  bind(namespace: string, name: string, nodeName: string): void {
    this.registry.bind(namespace, name, { target: { kind: 'Node', name: nodeName } });
  }

  /** Calls `listener` for every change from now on; returns the unsubscribe function. */
  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.registry.store.subscribe((e) => listener(structuredClone(e)));
  }

  /**
   * Resolves with the object once `predicate` holds for it (checked now and on every change);
   * rejects after `timeoutMs`. `predicate` sees undefined while the object does not exist.
   */
  waitFor(resource: string, namespace: string | undefined, name: string, predicate: (obj: KubeObject | undefined) => boolean, timeoutMs = 5000): Promise<KubeObject | undefined> {
    const def = defOf(resource);
    return new Promise((resolve, reject) => {
      const check = () => {
        const obj = this.registry.store.get(def.plural, namespace, name);
        let ok: boolean;
        try {
          ok = predicate(obj);
        } catch (err) {
          cleanup();
          reject(err);
          return true;
        }
        if (!ok) return false;
        cleanup();
        resolve(obj);
        return true;
      };
      const unsubscribe = this.registry.store.subscribe((e) => {
        if (e.resource === def.plural) check();
      });
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${def.plural} ${namespace ? `${namespace}/` : ''}${name}`));
      }, timeoutMs);
      const cleanup = () => {
        unsubscribe();
        clearTimeout(timer);
      };
      check();
    });
  }
}
