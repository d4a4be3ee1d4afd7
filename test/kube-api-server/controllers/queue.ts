/**
 * What every controller of the test server shares: a work queue of keys, run once per turn of the
 * event loop (so a burst of changes is one reconcile), helpers over owner references and label
 * selectors, and writes that only happen when something changed (so controllers never wake each
 * other up in a loop).
 */
import type { Logger } from 'pino';
import type { KubeStore } from '../kube-store.ts';
import { parseLabelSelector, type LabelRequirement } from '../selectors.ts';
import { deepEqual, isPlainObject, type KubeObject, type StoreEvent } from '../types.ts';

export class WorkQueue {
  readonly #dirty = new Set<string>();
  #scheduled: NodeJS.Immediate | undefined;
  #stopped = false;

  constructor(
    private readonly name: string,
    private readonly run: (key: string) => void,
    private readonly logger: Logger,
  ) {}

  add(key: string): void {
    if (this.#stopped) return;
    this.#dirty.add(key);
    this.#scheduled ??= setImmediate(() => this.#drain());
  }

  #drain(): void {
    this.#scheduled = undefined;
    const keys = [...this.#dirty];
    this.#dirty.clear();
    for (const key of keys) {
      try {
        this.run(key);
      } catch (err) {
        this.logger.warn({ err, controller: this.name, key }, 'reconcile failed: retrying');
        setTimeout(() => this.add(key), 200).unref();
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    if (this.#scheduled) clearImmediate(this.#scheduled);
  }
}

/**
 * A controller: keys (`namespace/name`) of `resource` to reconcile, queued from the store's
 * changes by `keysFor`; every object of `resource` is reconciled once at start.
 */
export abstract class Controller {
  readonly #queue: WorkQueue;
  readonly #unsubscribe: () => void;

  constructor(
    protected readonly store: KubeStore,
    logger: Logger,
    name: string,
    resource: string,
  ) {
    this.#queue = new WorkQueue(name, (key) => this.sync(key), logger);
    this.#unsubscribe = store.subscribe((e) => {
      for (const key of this.keysFor(e)) this.#queue.add(key);
    });
    for (const o of store.list(resource)) this.#queue.add(keyOf(o));
  }

  /** The keys a change concerns. */
  protected abstract keysFor(e: StoreEvent): Iterable<string>;
  protected abstract sync(key: string): void;

  stop(): void {
    this.#unsubscribe();
    this.#queue.stop();
  }
}

export const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** The controlling owner of `o` when it is of `kind`. */
export function controllerOf(o: KubeObject, kind: string): { name: string; uid: string } | undefined {
  for (const ref of o.metadata.ownerReferences ?? []) {
    if (ref.controller === true && ref.kind === kind && typeof ref.name === 'string' && typeof ref.uid === 'string') return { name: ref.name, uid: ref.uid };
  }
  return undefined;
}

export function ownerReference(owner: KubeObject): Record<string, unknown> {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true };
}

const OPERATORS: Record<string, LabelRequirement['operator']> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!', Gt: 'gt', Lt: 'lt' };

/** A LabelSelector (`matchLabels`, `matchExpressions`) as requirements; undefined when it selects nothing. */
export function selectorRequirements(selector: unknown): LabelRequirement[] | undefined {
  if (!isPlainObject(selector)) return undefined;
  const reqs: LabelRequirement[] = [];
  if (isPlainObject(selector.matchLabels)) {
    for (const [k, v] of Object.entries(selector.matchLabels)) reqs.push(...parseLabelSelector(`${k}=${String(v)}`));
  }
  for (const e of Array.isArray(selector.matchExpressions) ? selector.matchExpressions : []) {
    if (!isPlainObject(e) || typeof e.key !== 'string' || typeof e.operator !== 'string' || !OPERATORS[e.operator]) continue;
    reqs.push({ key: e.key, operator: OPERATORS[e.operator]!, values: Array.isArray(e.values) ? e.values.map(String) : [] });
  }
  return reqs.length ? reqs : undefined;
}

/** A plain `key: value` selector (a Service's) as requirements. */
export function mapRequirements(selector: unknown): LabelRequirement[] | undefined {
  if (!isPlainObject(selector) || Object.keys(selector).length === 0) return undefined;
  return selectorRequirements({ matchLabels: selector });
}

export function conditionOf(o: unknown, type: string): Record<string, unknown> | undefined {
  const conditions = isPlainObject(o) && isPlainObject(o.status) && Array.isArray(o.status.conditions) ? o.status.conditions : [];
  return conditions.find((c): c is Record<string, unknown> => isPlainObject(c) && c.type === type);
}

export const isPodReady = (pod: KubeObject) => conditionOf(pod, 'Ready')?.status === 'True';
export const isPodActive = (pod: KubeObject) => {
  const phase = isPlainObject(pod.status) ? pod.status.phase : undefined;
  return !pod.metadata.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed';
};

/** Writes `status` when it differs from the object's. */
export function setStatus(store: KubeStore, resource: string, obj: KubeObject, status: Record<string, unknown>): void {
  if (deepEqual(obj.status, status)) return;
  store.updateStatus(resource, { ...obj, status });
}
